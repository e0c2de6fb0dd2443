# cache: each mode and policy, after I/O, with features, a core arg set by message.
o=$(mkloop 32); c=$(mkloop 16)
m1=$(mkloop 4); m2=$(mkloop 4); m3=$(mkloop 4); m4=$(mkloop 4); m5=$(mkloop 4)
dmc corpus-cache "0 65536 cache $m1 $c $o 512 1 writeback smq 0"
record corpus-cache "writeback, smq, 256 KiB blocks, fresh"
for _ in 1 2 3 4; do dd if="$(devpath corpus-cache)" of=/dev/null bs=64k count=128 iflag=direct 2>/dev/null; done
dd if=/dev/urandom of="$(devpath corpus-cache)" bs=64k count=64 oflag=direct 2>/dev/null
sleep 1
record corpus-cache "writeback, smq, after reads and writes (hits, misses, promotions, dirty)"
dmsetup message corpus-cache 0 migration_threshold 4096
record corpus-cache "migration_threshold set by message"
dmsetup remove corpus-cache
dmc corpus-cache-wt "0 65536 cache $m2 $c $o 256 3 writethrough metadata2 no_discard_passdown mq 4 sequential_threshold 100 random_threshold 8"
dd if="$(devpath corpus-cache-wt)" of=/dev/null bs=64k count=64 iflag=direct 2>/dev/null
record corpus-cache-wt "writethrough, metadata2, no_discard_passdown, mq with its (ignored) args, after reads"
dmsetup remove corpus-cache-wt
dmc corpus-cache-pt "0 65536 cache $m3 $c $o 512 1 passthrough smq 2 migration_threshold 1024"
record corpus-cache-pt "passthrough, smq with migration_threshold as a policy arg"
dmsetup message corpus-cache-pt 0 invalidate_cblocks 0 2-4
dmsetup remove corpus-cache-pt
dmc corpus-cache-cl "0 65536 cache $m4 $c $o 512 0 cleaner 0"
record corpus-cache-cl "no feature args (writeback), cleaner policy"
dmsetup remove corpus-cache-cl
dmc corpus-cache-m2 "0 65536 cache $m5 $c $o 1024 2 metadata2 writeback smq 0"
record corpus-cache-m2 "metadata2 then writeback, 512 KiB blocks"
