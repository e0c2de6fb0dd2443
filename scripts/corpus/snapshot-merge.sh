# snapshot-merge: a snapshot's COW handed over to a snapshot-merge that takes the origin's
# place, recorded mid-merge (reads from the COW slowed down by a delay target), merged, and
# the states Merge failed (a read error from the COW) and Invalid (merging an invalid snapshot).
r=$(mkloop 16); c=$(mkloop 4); c2=$(mkloop 1)
dmc corpus-merge-real "0 32768 linear $r 0"
real=$(devnum corpus-merge-real)
dmc corpus-merge-cow "0 8192 linear $c 0"
cow=$(devnum corpus-merge-cow)
# snapshot_of COW CHUNK: a snapshot over a fresh COW and the origin, the snapshot written in
# every other chunk (so the merge goes chunk by chunk).
snapshot_of() {
  dd if=/dev/zero of="$(devnode "$1")" bs=4k count=2 oflag=direct 2>/dev/null
  dmc corpus-merge-snap "0 32768 snapshot $real $1 P $2"
  dmc corpus-merge "0 32768 snapshot-origin $real"
  for i in $(seq 0 2 30); do dd if=/dev/urandom of="$(devpath corpus-merge-snap)" bs=4k count=1 seek="$i" oflag=direct 2>/dev/null; done
}
# merge NAME TABLE: hands the snapshot's COW over to a snapshot-merge loaded in the origin's place.
merge() {
  dmsetup suspend corpus-merge-snap
  printf '0 32768 snapshot-merge %s\n' "$1" | dmsetup load corpus-merge
  dmsetup suspend corpus-merge
  dmsetup resume corpus-merge
}
# wait_merged NAME: until <sectors_allocated> equals <metadata_sectors>, or a state word.
wait_merged() {
  for _ in $(seq 200); do
    read -r -a w <<<"$(dmsetup status "$1")"
    [ "${w[3]%%/*}" = "${w[4]:-}" ] && return 0
    case "${w[3]}" in *[!0-9/]*) return 0 ;; esac
    sleep 0.05
  done
}

snapshot_of "$cow" 8
printf '0 8192 delay %s 0 100\n' "$c" | dmsetup load corpus-merge-cow
dmsetup suspend corpus-merge-cow
dmsetup resume corpus-merge-cow
merge "$real $cow P 8"
record corpus-merge "merging, 4 KiB chunks, data left in the COW (reads from it delayed 100 ms)"
wait_merged corpus-merge
record corpus-merge "merged: sectors allocated equal the metadata sectors"
dmsetup remove corpus-merge-snap
dmsetup remove corpus-merge

printf '0 8192 linear %s 0\n' "$c" | dmsetup load corpus-merge-cow
dmsetup suspend corpus-merge-cow
dmsetup resume corpus-merge-cow
snapshot_of "$cow" 16
# The header and the first metadata area stay readable; the data chunks after them fail.
printf '0 32 linear %s 0\n32 8160 error\n' "$c" | dmsetup load corpus-merge-cow
dmsetup suspend corpus-merge-cow
dmsetup resume corpus-merge-cow
merge "$real $cow PO 16"
wait_merged corpus-merge
record corpus-merge "Merge failed: a read error from the COW stopped the merge"
dmsetup remove corpus-merge-snap
dmsetup remove corpus-merge

dd if=/dev/zero of="$(devnode "$c2")" bs=4k count=2 oflag=direct 2>/dev/null
dmc corpus-merge-snap "0 32768 snapshot $real $c2 P 8 1 discard_zeroes_cow"
dmc corpus-merge "0 32768 snapshot-origin $real"
dd if=/dev/urandom of="$(devpath corpus-merge)" bs=4k count=300 oflag=direct 2>/dev/null
merge "$real $c2 P 8 1 discard_zeroes_cow"
record corpus-merge "Invalid: merging a snapshot whose COW had filled up (discard_zeroes_cow)"
