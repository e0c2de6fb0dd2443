# striped: two and three stripes, a dead stripe after a failed write.
a=$(mkloop 8); b=$(mkloop 8); c=$(mkloop 8)
dmc corpus-striped2 "0 8192 striped 2 128 $a 0 $b 2048"
record corpus-striped2 "two stripes, 64 KiB chunks, second stripe at an offset"
dmc corpus-striped3 "0 12288 striped 3 8 $a 4096 $b 8192 $c 0"
record corpus-striped3 "three stripes, 4 KiB chunks"
# A stripe over an error device fails its I/O: the kernel marks it D.
dmc corpus-bad "0 8192 error"
bad=$(devnum corpus-bad)
dmc corpus-striped-dead "0 4096 striped 2 8 $a 0 $bad 0"
dd if=/dev/zero of="$(devpath corpus-striped-dead)" bs=4096 count=4 oflag=direct 2>/dev/null || true
record corpus-striped-dead "a stripe on an error device after a failed write (D)"
