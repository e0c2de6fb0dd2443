# unstriped: each stripe of a two-stripe striped device, one of four, and the kernel's edge cases.
a=$(mkloop 8); b=$(mkloop 8)
dmc corpus-unstriped-raid0 "0 32768 striped 2 128 $a 0 $b 0"
r=$(devnum corpus-unstriped-raid0)
dmc corpus-unstriped-0 "0 16384 unstriped 2 128 0 $r 0"
record corpus-unstriped-0 "stripe 0 of a two-stripe striped device, 64 KiB chunks"
dmc corpus-unstriped-1 "0 16384 unstriped 2 128 1 $r 0"
record corpus-unstriped-1 "stripe 1 of the same"
dmc corpus-unstriped-4 "0 4096 unstriped 4 8 3 $a 2048"
record corpus-unstriped-4 "stripe 3 of four, 4 KiB chunks, from sector 2048 of a loop device"
dmc corpus-unstriped-1of1 "0 1024 unstriped 1 1 0 $b 0"
record corpus-unstriped-1of1 "one stripe, one-sector chunks"
dmc corpus-unstriped-edge "0 1024 unstriped 2 8 2 $b 0"
record corpus-unstriped-edge "stripe number equal to the stripe count (the kernel takes it)"
