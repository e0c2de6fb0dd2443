# thin: fresh (nothing mapped), written, a snapshot taken on the suspended origin and written
# apart, an external origin, and larger data blocks.
zero_meta() { dd if=/dev/zero of="$(devnode "$1")" bs=4096 count=1 oflag=direct status=none; }
m=$(mkloop 8); d=$(mkloop 64); o=$(mkloop 16); zero_meta "$m"
dmc corpus-thin-pool "0 131072 thin-pool $m $d 128 0"
pool=$(devnum corpus-thin-pool)
dmsetup message corpus-thin-pool 0 create_thin 0
dmc corpus-thin "0 65536 thin $pool 0"
record corpus-thin "a new thin device: nothing mapped"
dd if=/dev/urandom of="$(devpath corpus-thin)" bs=64k count=4 oflag=direct status=none
dd if=/dev/urandom of="$(devpath corpus-thin)" bs=64k count=2 seek=100 oflag=direct status=none
record corpus-thin "6 blocks written, the highest at block 101"
dmsetup suspend corpus-thin
dmsetup message corpus-thin-pool 0 create_snap 1 0
dmsetup resume corpus-thin
dmc corpus-thin-snap "0 65536 thin $pool 1"
record corpus-thin-snap "a snapshot of it, sharing its blocks"
dd if=/dev/urandom of="$(devpath corpus-thin-snap)" bs=64k count=1 seek=300 oflag=direct status=none
record corpus-thin-snap "the snapshot written apart (one more block of its own)"
dd if=/dev/urandom of="$(devnode "$o")" bs=64k count=16 oflag=direct status=none
dmsetup message corpus-thin-pool 0 create_thin 2
dmc corpus-thin-ext "0 32768 thin $pool 2 $o"
record corpus-thin-ext "an external origin, nothing provisioned"
dd if=/dev/urandom of="$(devpath corpus-thin-ext)" bs=4k count=1 seek=3 oflag=direct status=none
record corpus-thin-ext "an external origin, one 4 KiB write (one whole block provisioned)"
dmsetup remove corpus-thin-ext corpus-thin-snap corpus-thin
dmsetup remove corpus-thin-pool
m2=$(mkloop 8); zero_meta "$m2"
dmc corpus-thin-pool2 "0 131072 thin-pool $m2 $d 2048 0 1 skip_block_zeroing"
dmsetup message corpus-thin-pool2 0 create_thin 16777215
dmc corpus-thin-big "0 65536 thin $(devnum corpus-thin-pool2) 16777215"
dd if=/dev/urandom of="$(devpath corpus-thin-big)" bs=4k count=1 seek=1000 oflag=direct status=none
record corpus-thin-big "1 MiB blocks, the largest device id, one block mapped"

# The pool's metadata on a linear device turned into an error device: the pool fails, and the
# thin device's table and status both read Fail.
m3=$(mkloop 8); d3=$(mkloop 8); zero_meta "$m3"
dmc corpus-thin-meta "0 16384 linear $m3 0"
dmc corpus-thin-pool3 "0 16384 thin-pool $(devnum corpus-thin-meta) $d3 128 0"
dmsetup message corpus-thin-pool3 0 create_thin 0
dmc corpus-thin-fail "0 16384 thin $(devnum corpus-thin-pool3) 0"
printf '0 16384 error\n' | dmsetup reload corpus-thin-meta
dmsetup suspend corpus-thin-meta; dmsetup resume corpus-thin-meta
dd if=/dev/urandom of="$(devpath corpus-thin-fail)" bs=64k count=1 oflag=direct status=none 2>/dev/null || true
sleep 2
record corpus-thin-fail "its pool in fail mode: the table reads Fail too"
