# era: fresh, after writes, checkpoints, a held metadata snapshot, a resume, an odd block size.
m=$(mkloop 4); o=$(mkloop 8); m2=$(mkloop 4)
dmc corpus-era "0 16384 era $m $o 128"
record corpus-era "fresh, 64 KiB blocks"
dd if=/dev/urandom of="$(devpath corpus-era)" bs=64k count=4 oflag=direct 2>/dev/null
record corpus-era "after four block writes"
dmsetup message corpus-era 0 checkpoint
record corpus-era "after a checkpoint (the era moves on)"
dmsetup message corpus-era 0 take_metadata_snap
record corpus-era "metadata snapshot held (its root shown)"
era_invalidate --metadata-snapshot --written-since 1 "$(devnode "$m")" >/dev/null
dmsetup message corpus-era 0 drop_metadata_snap
record corpus-era "metadata snapshot dropped"
dmsetup suspend corpus-era
dmsetup resume corpus-era
record corpus-era "after a suspend and resume (the era moves on)"
dmc corpus-era-24 "0 16384 era $m2 $o 24"
record corpus-era-24 "12 KiB blocks (a multiple of 8 sectors, not a power of two)"
