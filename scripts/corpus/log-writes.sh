# log-writes: fresh, after writes and a mark, and with logging disabled (a log device too small).
a=$(mkloop 8); l=$(mkloop 8); s=$(mkloop 1)
dmc corpus-lw "0 16384 log-writes $a $l"
record corpus-lw "fresh"
dd if=/dev/urandom of="$(devpath corpus-lw)" bs=4096 count=8 oflag=direct conv=fsync 2>/dev/null
dmsetup message corpus-lw 0 mark after-writes
sleep 1
record corpus-lw "after 8 direct writes and a mark"
dmc corpus-lw-small "0 16384 log-writes $a $s"
dd if=/dev/urandom of="$(devpath corpus-lw-small)" bs=4096 count=512 oflag=direct conv=fsync 2>/dev/null || true
sleep 1
record corpus-lw-small "a log device too small: logging disabled"
