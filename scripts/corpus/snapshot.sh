# snapshot: persistent (P, PO), transient (N), the discard features, the chunk size left to the
# kernel (0), tables read inactive during a handover, and the states: usage growing with writes
# to the origin and to the snapshot, Invalid (COW full, through the origin, through a P
# snapshot, and reloaded from a COW marked invalid), Overflow (a PO snapshot written full).
r=$(mkloop 16); c=$(mkloop 1); c2=$(mkloop 1); c3=$(mkloop 4)
dmc corpus-snap-real "0 32768 linear $r 0"
real=$(devnum corpus-snap-real)
# table_inactive NAME DESCRIPTION: the inactive table, as the kernel prints it before a resume.
table_inactive() {
  local line
  echo "# $2"
  dmsetup table --inactive "$1" | while IFS= read -r line; do echo "table ${line% }"; done
}
# zero_header MAJ:MIN: a fresh COW (no snapshot header).
zero_header() {
  dd if=/dev/zero of="$(devnode "$1")" bs=4k count=2 oflag=direct 2>/dev/null
}

dmc corpus-snap "0 32768 snapshot $real $c P 8"
dmc corpus-snap-origin "0 32768 snapshot-origin $real"
record corpus-snap "persistent, 4 KiB chunks, fresh (header and one metadata area)"
dd if=/dev/urandom of="$(devpath corpus-snap-origin)" bs=4k count=16 oflag=direct 2>/dev/null
record corpus-snap "after 64 KiB written to the origin (old data copied out)"
dd if=/dev/urandom of="$(devpath corpus-snap)" bs=4k count=8 seek=64 oflag=direct 2>/dev/null
record corpus-snap "after 32 KiB written to the snapshot"
dd if=/dev/urandom of="$(devpath corpus-snap-origin)" bs=4k count=300 seek=100 oflag=direct 2>/dev/null
record corpus-snap "Invalid: the COW filled up through writes to the origin"
dmsetup remove corpus-snap
dmsetup suspend corpus-snap-origin
dmc corpus-snap-again "0 32768 snapshot $real $c P 8"
dmsetup resume corpus-snap-origin
record corpus-snap-again "Invalid: loaded again over a COW whose header says invalid"
dmsetup remove corpus-snap-again

zero_header "$c"
dmc corpus-snap-po "0 32768 snapshot $real $c PO 0"
record corpus-snap-po "persistent with overflow, chunk size 0 on a fresh COW: the kernel's 32 sectors"
dd if=/dev/urandom of="$(devpath corpus-snap-po)" bs=4k count=400 oflag=direct 2>/dev/null || true
record corpus-snap-po "Overflow: the COW filled up through writes to the snapshot"
dmsetup remove corpus-snap-po

zero_header "$c2"
dmc corpus-snap-p "0 32768 snapshot $real $c2 P 16"
dd if=/dev/urandom of="$(devpath corpus-snap-p)" bs=4k count=400 oflag=direct 2>/dev/null || true
record corpus-snap-p "Invalid: a P snapshot (no overflow support) written full"
dmsetup remove corpus-snap-p

dmc corpus-snap-hdr "0 32768 snapshot $real $c3 P 64"
dd if=/dev/urandom of="$(devpath corpus-snap-hdr)" bs=4k count=8 oflag=direct 2>/dev/null
dmsetup remove corpus-snap-hdr
dmsetup suspend corpus-snap-origin
dmc corpus-snap-hdr "0 32768 snapshot $real $c3 p 0"
dmsetup resume corpus-snap-origin
record corpus-snap-hdr "persistent, loaded again with chunk size 0 and a lower-case p: the header's 64 sectors"
dmsetup remove corpus-snap-hdr

dmc corpus-snap-n "0 32768 snapshot $real $c2 N 16"
record corpus-snap-n "transient, 8 KiB chunks, fresh (no metadata)"
dd if=/dev/urandom of="$(devpath corpus-snap-origin)" bs=4k count=8 seek=2000 oflag=direct 2>/dev/null
record corpus-snap-n "transient, after writes to the origin"
printf '0 32768 snapshot %s %s N 0\n' "$real" "$c2" | dmsetup load corpus-snap-n
table_inactive corpus-snap-n "transient, reload with chunk size 0 before its resume: the kernel prints 0 until the handover"
dmsetup suspend corpus-snap-n
dmsetup resume corpus-snap-n
record corpus-snap-n "transient, after the reload's handover: the old table's chunks and chunk size"
dmsetup remove corpus-snap-n

zero_header "$c3"
dmc corpus-snap-d "0 32768 snapshot $real $c3 N 8 2 discard_zeroes_cow discard_passdown_origin"
record corpus-snap-d "transient with discard_zeroes_cow and discard_passdown_origin"
dmsetup remove corpus-snap-d
dmc corpus-snap-d1 "0 32768 snapshot $real $c3 PO 128 1 discard_zeroes_cow"
record corpus-snap-d1 "persistent with overflow, 64 KiB chunks, discard_zeroes_cow"
