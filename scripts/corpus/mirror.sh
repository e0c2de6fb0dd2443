# mirror: core and disk logs, sync/nosync, the features, a leg that failed.
a=$(mkloop 8); b=$(mkloop 8); c=$(mkloop 8); l=$(mkloop 1); l2=$(mkloop 1)
wait_sync() {
  for _ in $(seq 100); do
    read -r -a w <<<"$(dmsetup status "$1")"
    local r="${w[$((4 + w[3]))]}"
    [ "${r%%/*}" = "${r##*/}" ] && return 0
    sleep 0.1
  done
}
dmc corpus-mirror-core "0 16384 mirror core 1 1024 2 $a 0 $b 0"
wait_sync corpus-mirror-core
record corpus-mirror-core "core log, two legs, in sync"
dmsetup remove corpus-mirror-core
dmc corpus-mirror-nosync "0 8192 mirror core 2 512 nosync 2 $a 8192 $b 8192 1 handle_errors"
record corpus-mirror-nosync "core log, nosync (in sync at once), handle_errors"
dmsetup remove corpus-mirror-nosync
dmc corpus-mirror-disk "0 16384 mirror disk 3 $l 1024 sync 3 $a 0 $b 0 $c 0 2 handle_errors keep_log"
wait_sync corpus-mirror-disk
record corpus-mirror-disk "disk log, forced sync, three legs, handle_errors and keep_log, in sync"
dmsetup remove corpus-mirror-disk
dmc corpus-mirror-disk2 "0 16384 mirror disk 2 $l2 128 2 $a 0 $b 0"
record corpus-mirror-disk2 "disk log, 64 KiB regions"
dmsetup remove corpus-mirror-disk2
dmc corpus-bad "0 8192 error"
bad=$(devnum corpus-bad)
# Without handle_errors the kernel marks the leg and completes the write on the other (with
# it, writes would wait for a reload by dmeventd).
dmc corpus-mirror-dead "0 8192 mirror core 2 64 nosync 2 $a 0 $bad 0"
dd if=/dev/zero of="$(devpath corpus-mirror-dead)" bs=4096 count=4 oflag=direct 2>/dev/null || true
sleep 0.5
record corpus-mirror-dead "a leg on an error device after a failed write (D)"
