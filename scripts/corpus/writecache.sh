# writecache: ssd mode (the sandbox has no pmem), fresh, after writes, flushed, every ssd option.
o=$(mkloop 32); c1=$(mkloop 8); c2=$(mkloop 8); c3=$(mkloop 8)
dmc corpus-wc "0 65536 writecache s $o $c1 4096 0"
record corpus-wc "ssd mode, 4 KiB blocks, no options, fresh"
dd if=/dev/urandom of="$(devpath corpus-wc)" bs=64k count=10 oflag=direct 2>/dev/null
dd if="$(devpath corpus-wc)" of=/dev/null bs=64k count=20 iflag=direct 2>/dev/null
record corpus-wc "after writes and reads: blocks in use, counters"
dmsetup message corpus-wc 0 flush
record corpus-wc "after the flush message: everything written back"
dmsetup message corpus-wc 0 clear_stats
record corpus-wc "after clear_stats"
dmsetup remove corpus-wc
dmc corpus-wc2 "0 65536 writecache s $o $c2 4096 12 start_sector 16 high_watermark 60 low_watermark 40 writeback_jobs 128 autocommit_blocks 32 autocommit_time 1000"
record corpus-wc2 "start_sector, watermarks, writeback_jobs, autocommit"
dmsetup remove corpus-wc2
dmc corpus-wc3 "0 65536 writecache s $o $c3 512 6 cleaner max_age 60000 metadata_only pause_writeback 3000"
record corpus-wc3 "512-byte blocks, cleaner, max_age, metadata_only, pause_writeback"
dmsetup message corpus-wc3 0 cleaner
record corpus-wc3 "after the cleaner message"
