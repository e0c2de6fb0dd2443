# verity: veritysetup's table, then our own tables over its hash trees (every option the
# sandbox kernel takes; no FEC or signatures built in), version 0, no salt, a hash tree on the
# data device; a data block tampered with so reads fail (status C), and with ignore_corruption.
d=$(mkloop 8); h=$(mkloop 2)
dd if=/dev/urandom of="$(devnode "$d")" bs=1M count=8 oflag=direct 2>/dev/null
out=$(veritysetup format "$(devnode "$d")" "$(devnode "$h")")
root=$(printf '%s\n' "$out" | sed -n 's/^Root hash:[[:space:]]*//p')
salt=$(printf '%s\n' "$out" | sed -n 's/^Salt:[[:space:]]*//p')
veritysetup open "$(devnode "$d")" corpus-vs "$(devnode "$h")" "$root"
dd if="$(devpath corpus-vs)" of=/dev/null bs=1M 2>/dev/null
record corpus-vs "veritysetup format and open (sha256, 4 KiB blocks), all data read"
veritysetup close corpus-vs
base="0 16384 verity 1 $d $h 4096 4096 2048 1 sha256 $root $salt"
dmsetup create --readonly corpus-v1 --table "$base 2 ignore_corruption ignore_zero_blocks"
record corpus-v1 "ignore_corruption, ignore_zero_blocks"
dmsetup remove corpus-v1
dmsetup create --readonly corpus-v2 --table "$base 2 check_at_most_once try_verify_in_tasklet"
record corpus-v2 "check_at_most_once, try_verify_in_tasklet"
dmsetup remove corpus-v2
dmsetup create --readonly corpus-v3 --table "$base 1 panic_on_corruption"
record corpus-v3 "panic_on_corruption (not triggered)"
dmsetup remove corpus-v3
dmsetup create --readonly corpus-v4 --table "$base 1 restart_on_corruption"
record corpus-v4 "restart_on_corruption (not triggered)"
dmsetup remove corpus-v4

d0=$(mkloop 4); h0=$(mkloop 1)
dd if=/dev/urandom of="$(devnode "$d0")" bs=1M count=4 oflag=direct 2>/dev/null
out=$(veritysetup format --format=0 --salt=- --data-block-size=1024 --hash-block-size=4096 "$(devnode "$d0")" "$(devnode "$h0")")
root0=$(printf '%s\n' "$out" | sed -n 's/^Root hash:[[:space:]]*//p')
dmsetup create --readonly corpus-v0 --table "0 8192 verity 0 $d0 $h0 1024 4096 4096 1 sha256 $root0 -"
dd if="$(devpath corpus-v0)" of=/dev/null bs=1M 2>/dev/null
record corpus-v0 "version 0, no salt, 1 KiB data blocks and 4 KiB hash blocks, all data read"
dmsetup remove corpus-v0

ds=$(mkloop 8)
dd if=/dev/urandom of="$(devnode "$ds")" bs=1M count=4 oflag=direct 2>/dev/null
out=$(veritysetup format --data-blocks=1024 --hash-offset=4194304 --hash=sha1 "$(devnode "$ds")" "$(devnode "$ds")")
roots=$(printf '%s\n' "$out" | sed -n 's/^Root hash:[[:space:]]*//p')
salts=$(printf '%s\n' "$out" | sed -n 's/^Salt:[[:space:]]*//p')
veritysetup open --data-blocks=1024 --hash-offset=4194304 --hash=sha1 "$(devnode "$ds")" corpus-vsame "$(devnode "$ds")" "$roots"
record corpus-vsame "the hash tree on the data device after the data (sha1)"
veritysetup close corpus-vsame

# Block 2 of the data overwritten: a direct read of it fails, the status turns C.
dd if=/dev/urandom of="$(devnode "$d")" bs=4096 seek=2 count=1 oflag=direct conv=notrunc 2>/dev/null
dmsetup create --readonly corpus-vbad --table "$base"
if dd if="$(devpath corpus-vbad)" of=/dev/null bs=4096 skip=2 count=1 iflag=direct 2>/dev/null; then echo "verity: a read of a tampered block succeeded" >&2; exit 1; fi
record corpus-vbad "after a data block was tampered with: the read failed"
dmsetup remove corpus-vbad
dmsetup create --readonly corpus-vign --table "$base 1 ignore_corruption"
dd if="$(devpath corpus-vign)" of=/dev/null bs=4096 skip=2 count=1 iflag=direct 2>/dev/null
record corpus-vign "ignore_corruption after the tampering: the read succeeded, corruption reported"
