# integrity: journal, bitmap, direct and recovery modes; internal hashes with and without keys,
# the journal encrypted and MACed, a meta device with recalculation; data written, then tampered
# with on the backing device so reads fail and the mismatch count rises; integritysetup's table.
K=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
d1=$(mkloop 32)
dmc corpus-int "0 1 integrity $d1 0 4 J 1 internal_hash:crc32c"
record corpus-int "journal mode, crc32c, 4-byte tags, fresh (the kernel prints its sizes)"
size=$(dmsetup status corpus-int | awk '{ print $5 }')
dmsetup remove corpus-int
dmc corpus-int "0 $size integrity $d1 0 4 J 6 journal_sectors:352 interleave_sectors:32768 buffer_sectors:128 journal_watermark:50 commit_time:10000 internal_hash:crc32c"
dd if=/dev/urandom of="$(devpath corpus-int)" bs=64k count=64 oflag=direct 2>/dev/null
dd if="$(devpath corpus-int)" of=/dev/null bs=64k count=64 iflag=direct 2>/dev/null
record corpus-int "the whole device mapped, after 4 MiB written and read back"
dmsetup remove corpus-int
# Sectors 4096.. of the backing device hold data (past the superblock, the journal and the
# first run of tags): overwrite some.
dd if=/dev/urandom of="$(devnode "$d1")" bs=512 seek=4096 count=16 oflag=direct conv=notrunc 2>/dev/null
dmc corpus-int "0 $size integrity $d1 0 4 J 6 journal_sectors:352 interleave_sectors:32768 buffer_sectors:128 journal_watermark:50 commit_time:10000 internal_hash:crc32c"
if dd if="$(devpath corpus-int)" of=/dev/null bs=64k count=64 iflag=direct 2>/dev/null; then echo "integrity: a read of tampered data succeeded" >&2; exit 1; fi
record corpus-int "after the backing data was tampered with: the read failed, mismatches counted"
dmsetup remove corpus-int

d2=$(mkloop 32)
dmc corpus-int-sha "0 8192 integrity $d2 0 - J 1 internal_hash:sha256"
record corpus-int-sha "tag size - (sha256's 32 bytes)"
dmsetup remove corpus-int-sha
dd if=/dev/zero of="$(devnode "$d2")" bs=1M count=1 oflag=direct 2>/dev/null
dmc corpus-int-bitmap "0 8192 integrity $d2 0 32 B 4 block_size:4096 sectors_per_bit:65536 bitmap_flush_interval:5000 internal_hash:sha256"
dd if=/dev/urandom of="$(devpath corpus-int-bitmap)" bs=4k count=256 oflag=direct 2>/dev/null
record corpus-int-bitmap "bitmap mode, 4 KiB blocks, sectors_per_bit, bitmap_flush_interval, after writes"
dmsetup remove corpus-int-bitmap

d3=$(mkloop 32)
dmc corpus-int-keyed "0 8192 integrity $d3 0 32 J 8 internal_hash:hmac(sha256):$K journal_mac:hmac(sha256):$K journal_crypt:cbc(aes):$K fix_padding fix_hmac allow_discards journal_sectors:1000 commit_time:500"
record corpus-int-keyed "hmac(sha256) tags with a key, journal encrypted (cbc(aes)) and MACed, fix_padding, fix_hmac, allow_discards"
# blkdiscard -f: its probe would read sectors never written, whose tags do not match.
dd if=/dev/urandom of="$(devpath corpus-int-keyed)" bs=4k count=16 oflag=direct 2>/dev/null
blkdiscard -f -o 0 -l 32768 "$(devpath corpus-int-keyed)" 2>/dev/null
dd if="$(devpath corpus-int-keyed)" of=/dev/null bs=4k count=16 iflag=direct 2>/dev/null
record corpus-int-keyed "after writes, a discard of half of them and reads: no mismatch"
if dd if="$(devpath corpus-int-keyed)" of=/dev/null bs=4k skip=100 count=1 iflag=direct 2>/dev/null; then echo "integrity: a read of a block never written succeeded" >&2; exit 1; fi
record corpus-int-keyed "after a read of a block never written (no recalculate): a mismatch"
dmsetup remove corpus-int-keyed
dd if=/dev/zero of="$(devnode "$d3")" bs=1M count=1 oflag=direct 2>/dev/null
dmc corpus-int-direct "0 8192 integrity $d3 0 4 D 2 interleave_sectors:1000 internal_hash:crc32c"
record corpus-int-direct "direct mode, interleave_sectors rounded down to a power of two"
dmsetup remove corpus-int-direct
dmc corpus-int-recovery "0 8192 integrity $d3 0 4 R 1 internal_hash:crc32c"
record corpus-int-recovery "recovery mode over the same superblock"
dmsetup remove corpus-int-recovery
dd if=/dev/zero of="$(devnode "$d3")" bs=1M count=1 oflag=direct 2>/dev/null
dmc corpus-int-notag "0 8192 integrity $d3 0 16 D 0"
record corpus-int-notag "direct mode, no internal hash (tags from the layer above)"
dmsetup remove corpus-int-notag

d4=$(mkloop 32); m4=$(mkloop 8)
dmc corpus-int-meta "0 8192 integrity $d4 0 4 J 5 meta_device:$m4 internal_hash:crc32c recalculate legacy_recalculate buffer_sectors:64"
record corpus-int-meta "meta device, recalculate, legacy_recalculate, buffer_sectors"
dmsetup remove corpus-int-meta
dmc corpus-int-meta "0 8192 integrity $d4 0 4 J 4 meta_device:$m4 internal_hash:crc32c reset_recalculate journal_watermark:70"
record corpus-int-meta "reset_recalculate, journal_watermark"
dmsetup remove corpus-int-meta

d5=$(mkloop 32)
integritysetup format -q --integrity crc32c --tag-size 4 --sector-size 4096 "$(devnode "$d5")" >/dev/null
integritysetup open --integrity crc32c "$(devnode "$d5")" corpus-int-setup
record corpus-int-setup "integritysetup format and open: crc32c, 4 KiB sectors"
integritysetup close corpus-int-setup
