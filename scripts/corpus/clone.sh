# clone: hydration held back, under way and stopped, writes hydrating regions, tuning by message, hydration run to
# completion, and a clone made with both features and core args.
m=$(mkloop 4); s=$(mkloop 16); d=$(mkloop 16)
dd if=/dev/urandom of="$(devnode "$s")" bs=1M count=16 2>/dev/null
dmc corpus-clone "0 32768 clone $m $d $s 8 1 no_hydration"
record corpus-clone "hydration held back (no_hydration): nothing hydrated yet"
dd if=/dev/zero of="$(devpath corpus-clone)" bs=4k count=16 oflag=direct 2>/dev/null
record corpus-clone "16 regions written through the clone, so hydrated without a copy"
dmsetup message corpus-clone 0 hydration_threshold 64
dmsetup message corpus-clone 0 hydration_batch_size 8
record corpus-clone "core args changed by message: the status shows them, the table keeps the constructor's"
dmsetup message corpus-clone 0 enable_hydration
record corpus-clone "hydration just enabled"
for _ in $(seq 100); do
  read -r -a w <<<"$(dmsetup status corpus-clone)"
  [ "${w[6]%%/*}" = "${w[6]##*/}" ] && break
  sleep 0.1
done
record corpus-clone "hydration complete: every region hydrated"
# A source behind a delay target makes hydration slow enough to catch it under way.
dmc corpus-slow "0 32768 delay $s 0 20"
slow=$(devnum corpus-slow)
m4=$(mkloop 4); d4=$(mkloop 16)
dmc corpus-clone4 "0 32768 clone $m4 $d4 $slow 8 0 4 hydration_threshold 4 hydration_batch_size 1"
sleep 0.3
record corpus-clone4 "hydration under way from a slow source (regions hydrating)"
dmsetup message corpus-clone4 0 disable_hydration
record corpus-clone4 "hydration stopped by message part way"
dmsetup remove corpus-clone4
m2=$(mkloop 4); d2=$(mkloop 16)
dmc corpus-clone2 "0 32768 clone $m2 $d2 $s 64 2 no_hydration no_discard_passdown 4 hydration_threshold 16 hydration_batch_size 4"
record corpus-clone2 "64-sector regions, both features, both core args"
m3=$(mkloop 4); d3=$(mkloop 16)
dmc corpus-clone3 "0 32768 clone $m3 $d3 $s 8 0 2 hydration_batch_size 2"
record corpus-clone3 "no features, one core arg"
