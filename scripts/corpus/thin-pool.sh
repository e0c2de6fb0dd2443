# thin-pool: fresh, with thin devices written, each feature arg, messages (transaction id, a
# held metadata snapshot), a read_only reload, and out of data space with error_if_no_space.
zero_meta() { dd if=/dev/zero of="$(devnode "$1")" bs=4096 count=1 oflag=direct status=none; }
m1=$(mkloop 8); d1=$(mkloop 64); zero_meta "$m1"
dmc corpus-pool "0 131072 thin-pool $m1 $d1 128 16"
record corpus-pool "64 KiB blocks, low water mark 16, no features, fresh"
dmsetup message corpus-pool 0 create_thin 0
dmsetup message corpus-pool 0 create_thin 1
dmc corpus-pool-t0 "0 65536 thin $(devnum corpus-pool) 0"
dd if=/dev/urandom of="$(devpath corpus-pool-t0)" bs=64k count=40 oflag=direct status=none
record corpus-pool "two thin devices, 40 blocks written through one"
dmsetup message corpus-pool 0 set_transaction_id 0 7
record corpus-pool "transaction id set to 7 by message"
dmsetup message corpus-pool 0 set_transaction_id 7 18446744073709551615
record corpus-pool "transaction id set to the largest 64-bit value"
dmsetup message corpus-pool 0 reserve_metadata_snap
record corpus-pool "a metadata snapshot held (reserve_metadata_snap)"
dmsetup message corpus-pool 0 release_metadata_snap
dmsetup message corpus-pool 0 delete 1
record corpus-pool "metadata snapshot released, thin device 1 deleted"
dmsetup remove corpus-pool-t0
printf '0 131072 thin-pool %s %s 128 16 1 read_only\n' "$m1" "$d1" | dmsetup reload corpus-pool
dmsetup suspend corpus-pool; dmsetup resume corpus-pool
record corpus-pool "reloaded read_only over the formatted metadata (mode ro)"
dmsetup remove corpus-pool

m2=$(mkloop 8); zero_meta "$m2"
dmc corpus-pool-sz "0 131072 thin-pool $m2 $d1 256 0 1 skip_block_zeroing"
record corpus-pool-sz "128 KiB blocks, skip_block_zeroing, low water mark 0"
dmsetup remove corpus-pool-sz
m3=$(mkloop 8); zero_meta "$m3"
dmc corpus-pool-nd "0 131072 thin-pool $m3 $d1 128 0 1 no_discard_passdown"
record corpus-pool-nd "no_discard_passdown"
dmsetup remove corpus-pool-nd
m4=$(mkloop 8); zero_meta "$m4"
dmc corpus-pool-4 "0 131072 thin-pool $m4 $d1 1024 8 4 error_if_no_space ignore_discard no_discard_passdown skip_block_zeroing"
record corpus-pool-4 "four features given out of order (printed in the kernel's order), 512 KiB blocks"
dmsetup remove corpus-pool-4
m5=$(mkloop 8); zero_meta "$m5"
dmc corpus-pool-ig "0 131072 thin-pool $m5 $d1 2097152 0 2 IGNORE_DISCARD ignore_discard"
record corpus-pool-ig "ignore_discard given twice and in capitals, 1 GiB blocks"
dmsetup remove corpus-pool-ig

# A pool of 16 blocks (1 MiB) under a 4 MiB thin device: writing 2 MiB runs it out of space.
m6=$(mkloop 8); d6=$(mkloop 1); zero_meta "$m6"
dmc corpus-pool-full "0 2048 thin-pool $m6 $d6 128 4 1 error_if_no_space"
dmsetup message corpus-pool-full 0 create_thin 0
dmc corpus-pool-full-t "0 8192 thin $(devnum corpus-pool-full) 0"
dd if=/dev/urandom of="$(devpath corpus-pool-full-t)" bs=64k count=8 oflag=direct status=none
record corpus-pool-full "error_if_no_space, 8 of its 16 data blocks used"
dd if=/dev/urandom of="$(devpath corpus-pool-full-t)" bs=64k count=32 oflag=direct status=none 2>/dev/null || true
record corpus-pool-full "error_if_no_space, out of data space after writing past the end of the data device"

# Metadata on a linear device turned into an error device: the next commit fails, the abort
# too, and the pool goes to fail mode.
m7=$(mkloop 8); d7=$(mkloop 8); zero_meta "$m7"
dmc corpus-pool-meta "0 16384 linear $m7 0"
dmc corpus-pool-fail "0 16384 thin-pool $(devnum corpus-pool-meta) $d7 128 0"
dmsetup message corpus-pool-fail 0 create_thin 0
dmc corpus-pool-fail-t "0 16384 thin $(devnum corpus-pool-fail) 0"
printf '0 16384 error\n' | dmsetup reload corpus-pool-meta
dmsetup suspend corpus-pool-meta; dmsetup resume corpus-pool-meta
dd if=/dev/urandom of="$(devpath corpus-pool-fail-t)" bs=64k count=1 oflag=direct status=none 2>/dev/null || true
# The periodic commit (every second) fails, and so does its abort. A status read first makes
# that commit itself and then answers Error: wait, so the corpus shows the mode.
sleep 2
record corpus-pool-fail "fail mode: a commit and its abort failed"
