# raid: raid0/1/4/5/6, metadata devices, the optional params, recovering and in sync,
# degraded with '-' legs.
for i in $(seq 1 4); do eval "md$i=\$(mkloop 1)"; eval "d$i=\$(mkloop 16)"; done
wait_idle() {
  for _ in $(seq 200); do
    read -r -a w <<<"$(dmsetup status "$1")"
    local r="${w[6]}"
    [ "${r%%/*}" = "${r##*/}" ] && [ "${w[7]}" = idle ] && return 0
    sleep 0.1
  done
}
dmc corpus-raid1 "0 16384 raid raid1 5 0 region_size 1024 max_recovery_rate 64 2 $md1 $d1 $md2 $d2"
sleep 0.5
record corpus-raid1 "raid1, metadata devices, recovery throttled: resynchronizing"
dmsetup message corpus-raid1 0 idle || true
dmsetup remove corpus-raid1
dd if=/dev/zero of="$(devnode "$md1")" bs=1M count=1 2>/dev/null; dd if=/dev/zero of="$(devnode "$md2")" bs=1M count=1 2>/dev/null
dmc corpus-raid1b "0 16384 raid raid1 3 0 region_size 1024 2 $md1 $d1 $md2 $d2"
wait_idle corpus-raid1b
record corpus-raid1b "raid1 with metadata, in sync"
dmsetup message corpus-raid1b 0 check
wait_idle corpus-raid1b
record corpus-raid1b "raid1 after a check (mismatch count)"
dmsetup remove corpus-raid1b
dd if=/dev/zero of="$(devnode "$md1")" bs=1M count=1 2>/dev/null; dd if=/dev/zero of="$(devnode "$md2")" bs=1M count=1 2>/dev/null
dmc corpus-raid1wm "0 16384 raid raid1 10 0 sync write_mostly 1 max_write_behind 256 region_size 512 daemon_sleep 1000 2 $md1 $d1 $md2 $d2"
wait_idle corpus-raid1wm
record corpus-raid1wm "raid1, write_mostly leg 1, max_write_behind, sync, region_size, daemon_sleep (reordered by the kernel)"
dmsetup remove corpus-raid1wm
dd if=/dev/zero of="$(devnode "$md1")" bs=1M count=1 2>/dev/null; dd if=/dev/zero of="$(devnode "$md2")" bs=1M count=1 2>/dev/null
dmc corpus-raid1rb "0 16384 raid raid1 6 0 nosync max_recovery_rate 64 region_size 1024 2 $md1 $d1 $md2 $d2"
record corpus-raid1rb "raid1 made in sync (nosync)"
dmsetup remove corpus-raid1rb
dmc corpus-raid1rb "0 16384 raid raid1 7 0 rebuild 1 max_recovery_rate 64 region_size 1024 2 $md1 $d1 $md2 $d2"
sleep 0.5
record corpus-raid1rb "raid1 rebuilding leg 1, throttled: recovery under way"
dmsetup message corpus-raid1rb 0 idle || true
dmsetup remove corpus-raid1rb
dmc corpus-raid1ns "0 16384 raid raid1 2 0 nosync 2 - $d1 - $d2"
record corpus-raid1ns "raid1 without metadata, nosync"
dmsetup remove corpus-raid1ns
dmc corpus-raid5 "0 16384 raid raid5_ls 3 64 min_recovery_rate 100 3 - $d1 - $d2 - $d3"
wait_idle corpus-raid5
record corpus-raid5 "raid5_ls, three legs, in sync"
dmsetup remove corpus-raid5
dmc corpus-raid5d "0 16384 raid raid5_ls 1 64 3 - $d1 - $d2 - -"
record corpus-raid5d "raid5_ls degraded: the third leg missing (-)"
dmsetup remove corpus-raid5d
dd if=/dev/zero of="$(devnode "$md1")" bs=1M count=1 2>/dev/null; dd if=/dev/zero of="$(devnode "$md2")" bs=1M count=1 2>/dev/null; dd if=/dev/zero of="$(devnode "$md3")" bs=1M count=1 2>/dev/null
dmc corpus-raid5r "0 16384 raid raid5_ra 5 128 max_recovery_rate 64 stripe_cache 256 3 $md1 $d1 $md2 $d2 $md3 $d3"
sleep 0.5
record corpus-raid5r "raid5_ra with metadata, throttled: initial resync under way"
dmsetup message corpus-raid5r 0 frozen || true
record corpus-raid5r "raid5_ra frozen"
dmsetup remove corpus-raid5r
dmc corpus-raid6 "0 16384 raid raid6_zr 11 64 rebuild 1 daemon_sleep 2000 max_recovery_rate 5000 stripe_cache 512 region_size 2048 4 - $d1 - $d2 - $d3 - $d4"
wait_idle corpus-raid6
record corpus-raid6 "raid6_zr, rebuild leg 1, daemon_sleep, max_recovery_rate, stripe_cache, region_size"
dmsetup remove corpus-raid6
# No raid10: the sandbox's kernel refuses to run one ("md: pers->run() failed").
dmc corpus-raid0 "0 32768 raid raid0 1 64 2 - $d1 - $d2"
record corpus-raid0 "raid0, two legs"
dmsetup remove corpus-raid0
dmc corpus-raid4 "0 16384 raid raid4 1 128 3 - $d1 - $d2 - $d3"
wait_idle corpus-raid4
record corpus-raid4 "raid4, three legs"
