# flakey: every feature the 6.1 kernel knows (drop_writes, error_writes, corrupt_bio_byte r and
# w), intervals always down (0 up), always up (0 down) and cycling, after writes that failed or
# were dropped. The kernel prints the table back with a trailing blank and reports no status.
a=$(mkloop 4)
w() { dd if=/dev/urandom of="$(devpath "$1")" bs=4096 count=1 oflag=direct status=none 2>/dev/null || true; }
dmc corpus-fl-down "0 8192 flakey $a 0 0 5"
w corpus-fl-down
record corpus-fl-down "no features (count omitted), always down: a write failed"
dmc corpus-fl-up "0 4096 flakey $a 2048 5 0 0"
w corpus-fl-up
record corpus-fl-up "no features, at an offset, always up: a write went through"
dmc corpus-fl-cycle "0 4096 flakey $a 0 1 1 0"
record corpus-fl-cycle "one second up, one second down"
dmc corpus-fl-drop "0 8192 flakey $a 0 0 4294967295 1 DROP_WRITES"
w corpus-fl-drop
record corpus-fl-drop "drop_writes given in capitals, always down: a write dropped"
dmc corpus-fl-err "0 8192 flakey $a 0 30 60 1 error_writes"
w corpus-fl-err
record corpus-fl-err "error_writes, 30 s up and 60 s down"
dmc corpus-fl-cr "0 8192 flakey $a 0 0 1 5 corrupt_bio_byte 1 r 255 0"
dd if="$(devpath corpus-fl-cr)" of=/dev/null bs=4096 count=1 iflag=direct status=none
record corpus-fl-cr "corrupt_bio_byte of reads, every bio, after a read"
dmc corpus-fl-cw "0 8192 flakey $a 0 0 1 5 corrupt_bio_byte 4096 W 0 2048"
w corpus-fl-cw
record corpus-fl-cw "corrupt_bio_byte of writes (W in capitals) with a flags mask, after a write"
dmc corpus-fl-six "0 8192 flakey $a 0 7 3 6 corrupt_bio_byte 512 r 7 0 error_writes"
record corpus-fl-six "error_writes after corrupt_bio_byte of reads: six feature args, printed back in the kernel's order"
