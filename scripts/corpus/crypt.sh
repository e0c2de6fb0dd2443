# crypt: hex, empty and keyring keys, legacy and capi cipher specs, every optional param, after
# writes and after key wipe / key set; cryptsetup plain and LUKS2 mappings (keyring keys,
# sector_size 4096, authenticated encryption over dm-integrity).
d=$(mkloop 32); big=$(mkloop 64)
k64=$(printf '%02x' $(seq 0 63))
k32=${k64:0:64}; k16=${k64:0:32}
dmc corpus-crypt "0 65536 crypt aes-xts-plain64 $k64 0 $d 0"
dd if=/dev/urandom of="$(devpath corpus-crypt)" bs=64k count=16 oflag=direct 2>/dev/null
record corpus-crypt "aes-xts-plain64, 512-bit hex key, after writes"
dmsetup suspend corpus-crypt
dmsetup message corpus-crypt 0 key wipe
record corpus-crypt "suspended, after key wipe (the table shows a key of zeroes)"
dmsetup message corpus-crypt 0 key set "$k64"
dmsetup resume corpus-crypt
record corpus-crypt "after key set and resume"
dmsetup remove corpus-crypt
dmc corpus-crypt-opts "0 65528 crypt aes-xts-plain64 $k64 8 $d 8 8 iv_large_sectors no_write_workqueue NO_READ_WORKQUEUE submit_from_crypt_cpus same_cpu_crypt sector_size:4096 allow_discards allow_discards"
record corpus-crypt-opts "every flag and sector_size:4096 given out of order, repeated, in upper case (printed the kernel's way)"
dmsetup remove corpus-crypt-opts
dmc corpus-crypt-0 "0 65536 crypt aes-xts-plain64 $k32 0 $d 0 2 sector_size:512 allow_discards"
record corpus-crypt-0 "AES-128-XTS; sector_size:512 (the default, not printed) and allow_discards"
dmsetup remove corpus-crypt-0
i=0
for spec in "capi:cbc(aes)-essiv:sha256 $k32" "capi:xts(aes)-plain64 $k64" "capi:ecb(aes) $k16" "aes $k16" "aes-plain $k16" "aes-ecb $k16" \
  "aes-cbc-essiv:sha256 $k32" "aes:2-cbc-plain $k32" "aes-cbc-benbi $k16" "aes-cbc-plain64be $k16" "aes-cbc-null $k16" "aes-cbc-eboiv $k16" \
  "aes-xts-elephant $k64" "aes-xts-essiv:sha256 $k64" "cipher_null-ecb -"; do
  i=$((i + 1))
  dmc "corpus-crypt-s$i" "0 65536 crypt $spec 0 $d 0"
  record "corpus-crypt-s$i" "cipher ${spec%% *}"
  dmsetup remove "corpus-crypt-s$i"
done
lmk=$(for _ in $(seq 65); do printf '%s' "$k16"; done)
dmc corpus-crypt-lmk "0 65536 crypt aes:64-cbc-lmk $lmk 0 $d 0"
record corpus-crypt-lmk "loop-AES version 3: aes:64-cbc-lmk, 65 keys"
dmsetup remove corpus-crypt-lmk
# Keys of the kernel keyring (add_key(2) into the user keyring, where dm-crypt's request_key finds them).
addkey() { perl -e 'my ($t, $d, $p) = @ARGV; $p = pack("H*", $p); syscall(248, $t, $d, $p, length($p), -4) > 0 or die "add_key: $!\n"' "$1" "$2" "$3" >/dev/null; }
addkey logon corpus:k1 "$k64"
addkey user corpus-k2 "$k64"
dmc corpus-crypt-kr "0 65536 crypt aes-xts-plain64 :64:logon:corpus:k1 0 $d 0"
dd if=/dev/urandom of="$(devpath corpus-crypt-kr)" bs=64k count=4 oflag=direct 2>/dev/null
record corpus-crypt-kr "a logon key of the keyring"
dmsetup suspend corpus-crypt-kr
dmsetup message corpus-crypt-kr 0 key set :64:user:corpus-k2
dmsetup resume corpus-crypt-kr
record corpus-crypt-kr "key set to a user key of the keyring"
dmsetup remove corpus-crypt-kr
# cryptsetup's mappings.
kf="$(mktemp -p "${DEVMAPPER_SCRATCH:-/tmp}" corpus-key-XXXXXX)"
printf '%s' "$k64" | perl -ne 'print pack("H*", $_)' > "$kf"
p=$(devnode "$d")
cryptsetup open --type plain --cipher aes-xts-plain64 --key-size 512 --key-file "$kf" "$p" corpus-crypt-plain
record corpus-crypt-plain "cryptsetup open --type plain --cipher aes-xts-plain64 --key-size 512"
cryptsetup close corpus-crypt-plain
cryptsetup open --type plain --cipher aes-cbc-essiv:sha256 --key-size 256 --key-file "$kf" --offset 2048 --skip 16 --sector-size 4096 --iv-large-sectors --allow-discards --perf-same_cpu_crypt --perf-submit_from_crypt_cpus --perf-no_read_workqueue --perf-no_write_workqueue "$p" corpus-crypt-plain2
record corpus-crypt-plain2 "cryptsetup plain, aes-cbc-essiv:sha256, --offset, --skip, sector size 4096, iv-large-sectors, every perf flag"
cryptsetup close corpus-crypt-plain2
printf 'corpus' > "$kf"
lf="--pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file $kf"
of="--key-file $kf"
# shellcheck disable=SC2086
cryptsetup luksFormat -q --type luks2 $lf --uuid 0c0c0c0c-0000-4000-8000-000000000001 "$p"
# shellcheck disable=SC2086
cryptsetup open $of "$p" corpus-crypt-luks
record corpus-crypt-luks "cryptsetup LUKS2 (the key in the kernel keyring, data after the header)"
cryptsetup close corpus-crypt-luks
# shellcheck disable=SC2086
cryptsetup luksFormat -q --type luks2 $lf --sector-size 4096 --cipher aes-cbc-essiv:sha256 --key-size 256 --uuid 0c0c0c0c-0000-4000-8000-000000000002 "$p"
# shellcheck disable=SC2086
cryptsetup open $of --allow-discards "$p" corpus-crypt-luks4k
record corpus-crypt-luks4k "cryptsetup LUKS2, aes-cbc-essiv:sha256, 4096-byte sectors (IVs still in 512-byte units: no iv_large_sectors), allow-discards"
cryptsetup close corpus-crypt-luks4k
pb=$(devnode "$big")
# shellcheck disable=SC2086
cryptsetup luksFormat -q --type luks2 $lf --integrity hmac-sha256 --integrity-no-wipe --uuid 0c0c0c0c-0000-4000-8000-000000000003 "$pb"
# shellcheck disable=SC2086
cryptsetup open $of "$pb" corpus-crypt-luksint
record corpus-crypt-luksint "cryptsetup LUKS2 --integrity hmac-sha256: authenc over dm-integrity, integrity:32:aead"
cryptsetup close corpus-crypt-luksint
rm -f "$kf"
