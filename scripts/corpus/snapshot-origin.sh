# snapshot-origin: over a loop device and over a dm device, alone and with snapshots taking
# copies of its writes (its status stays empty).
r=$(mkloop 16); c=$(mkloop 4)
dmc corpus-origin-loop "0 32768 snapshot-origin $r"
record corpus-origin-loop "over a loop device, no snapshot yet"
dmsetup remove corpus-origin-loop
dmc corpus-origin-real "0 32768 linear $r 0"
real=$(devnum corpus-origin-real)
dmc corpus-origin-snap "0 32768 snapshot $real $c P 8"
dmc corpus-origin "0 32768 snapshot-origin $real"
record corpus-origin "over a linear device (LVM's -real), one persistent snapshot"
dd if=/dev/urandom of="$(devpath corpus-origin)" bs=4k count=16 oflag=direct 2>/dev/null
record corpus-origin "after writes copied out to the snapshot"
dmc corpus-origin-half "0 16384 snapshot-origin $real"
record corpus-origin-half "a second origin on the same device, half its length"
