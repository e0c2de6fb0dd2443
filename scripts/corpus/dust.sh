# dust: bypass and fail_read_on_bad_block modes, verbose and quiet, 512-byte blocks at an offset.
a=$(mkloop 8)
dmc corpus-dust "0 16384 dust $a 0 4096"
record corpus-dust "fresh, 4 KiB blocks: bypass, verbose"
dmsetup message corpus-dust 0 addbadblock 3
dmsetup message corpus-dust 0 addbadblock 5 2
dmsetup message corpus-dust 0 enable
record corpus-dust "bad blocks added, enabled: fail_read_on_bad_block"
dd if="$(devpath corpus-dust)" of=/dev/null bs=4096 skip=3 count=1 iflag=direct 2>/dev/null || true
dmsetup message corpus-dust 0 quiet
record corpus-dust "after a failed read, quiet mode"
dmsetup message corpus-dust 0 disable
record corpus-dust "disabled again, still quiet"
dmsetup message corpus-dust 0 quiet
dmc corpus-dust-512 "0 8192 dust $a 2048 512"
record corpus-dust-512 "512-byte blocks, from sector 2048"
