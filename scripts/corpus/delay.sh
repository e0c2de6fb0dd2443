# delay: one, two and three (read, write, flush) triplets, and the status while reads, writes
# and flushes are being held back.
a=$(mkloop 4); b=$(mkloop 4); c=$(mkloop 4)
dmc corpus-delay1 "0 8192 delay $a 0 200"
record corpus-delay1 "reads, writes and flushes 200 ms on one device"
dmc corpus-delay2 "0 4096 delay $a 0 0 $b 2048 500"
record corpus-delay2 "reads at once, writes 500 ms to another device at an offset"
dmc corpus-delay3 "0 8192 delay $a 0 50 $b 0 100 $c 0 4294967295"
record corpus-delay3 "read, write and flush triplets on three devices"
dmc corpus-delay-held "0 8192 delay $a 0 3000 $b 0 3000 $c 0 3000"
dev="$(devpath corpus-delay-held)"
dd if="$dev" of=/dev/null bs=4096 count=1 iflag=direct status=none &
r=$!
dd if=/dev/zero of="$dev" bs=4096 count=1 seek=4 oflag=direct status=none &
wr=$!
sleep 1
record corpus-delay-held "3 s on every class: a read and a write held back"
wait "$r" "$wr"
sync "$dev" &
f=$!
sleep 1
record corpus-delay-held "3 s on every class: a flush held back"
wait "$f"
