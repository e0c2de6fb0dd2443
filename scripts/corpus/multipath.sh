# multipath: two loop devices over the same file are two paths to the same storage; one and two
# priority groups, each path selector the sandbox has, the features, path failure and
# reinstatement, group bypass and switching, queue_if_no_path by message.
file="$(mktemp -p "${DEVMAPPER_SCRATCH:-/tmp}" corpus-XXXXXX.img)"
truncate -s 16M "$file"
p0="$(losetup --find --show "$file")"; LOOPS+=("$p0")
p1="$(losetup --find --show "$file")"; LOOPS+=("$p1")
a=$(lsblk -dno MAJ:MIN "$p0" | tr -d ' '); b=$(lsblk -dno MAJ:MIN "$p1" | tr -d ' ')
io() { dd if=/dev/zero of="$(devpath "$1")" bs=4k count=8 oflag=direct 2>/dev/null; }

dmc corpus-mp-rr "0 32768 multipath 0 0 1 1 round-robin 0 2 1 $a 1 $b 1"
record corpus-mp-rr "round-robin, one group of two paths, fresh (I/O queued until the first path is chosen)"
io corpus-mp-rr
record corpus-mp-rr "round-robin after I/O: the group is active"
dmsetup message corpus-mp-rr 0 fail_path "$a"
record corpus-mp-rr "a path failed by message"
io corpus-mp-rr
dmsetup message corpus-mp-rr 0 reinstate_path "$a"
record corpus-mp-rr "the path reinstated (its fail count stays)"
dmsetup message corpus-mp-rr 0 queue_if_no_path
record corpus-mp-rr "queue_if_no_path set by message (shown in the table)"
dmsetup message corpus-mp-rr 0 fail_if_no_path
dmsetup remove corpus-mp-rr

dmc corpus-mp-2g "0 32768 multipath 0 0 2 1 round-robin 0 1 1 $a 1 round-robin 0 1 1 $b 1"
record corpus-mp-2g "two groups of one path each, fresh"
io corpus-mp-2g
dmsetup message corpus-mp-2g 0 disable_group 1
record corpus-mp-2g "group 1 disabled"
dmsetup message corpus-mp-2g 0 enable_group 1
io corpus-mp-2g
dmsetup message corpus-mp-2g 0 switch_group 2
record corpus-mp-2g "switch_group 2 before any I/O: the next group is 2 (and the table's initial group)"
io corpus-mp-2g
record corpus-mp-2g "after I/O on group 2: it is active"
dmsetup message corpus-mp-2g 0 fail_path "$b"
io corpus-mp-2g
record corpus-mp-2g "group 2's path failed: I/O fails over to group 1"
dmsetup message corpus-mp-2g 0 fail_path "$a"
record corpus-mp-2g "every path failed"
dmsetup remove corpus-mp-2g

dmc corpus-mp-ql "0 32768 multipath 5 queue_if_no_path pg_init_retries 5 pg_init_delay_msecs 500 0 1 1 queue-length 0 2 1 $a 0 $b 1"
io corpus-mp-ql
record corpus-mp-ql "queue-length (in-flight counts), queue_if_no_path, pg_init_retries, pg_init_delay_msecs, repeat counts 0 and 1"
dmsetup remove corpus-mp-ql

dmc corpus-mp-st "0 32768 multipath 0 0 1 1 service-time 0 2 2 $a 1 2 $b 1 8"
io corpus-mp-st
record corpus-mp-st "service-time with relative throughputs 2 and 8, after I/O"
dmsetup remove corpus-mp-st

dmc corpus-mp-mixed "0 32768 multipath 1 retain_attached_hw_handler 0 2 2 queue-length 0 1 1 $a 1 service-time 0 1 2 $b 0 0"
record corpus-mp-mixed "two groups with different selectors, the second first, retain_attached_hw_handler"
dmsetup remove corpus-mp-mixed

dmc corpus-mp-bio "0 32768 multipath 2 queue_mode bio 0 1 1 round-robin 0 2 0 $a $b"
io corpus-mp-bio
record corpus-mp-bio "queue_mode bio (the kernel adds retain_attached_hw_handler), path args left to their defaults"
dmsetup remove corpus-mp-bio

dmc corpus-mp-user "0 32768 multipath 2 queue_mode mq 0 1 1 round-robin 0 2 1 $a 1000 $b 1000"
record corpus-mp-user "queue_mode mq and repeat_count 1000 as given: the kernel prints the default mode and repeat count 1"
dmsetup remove corpus-mp-user

dmc corpus-mp-hw "0 32768 multipath 0 1 emc 1 1 round-robin 0 1 1 $a 1"
record corpus-mp-hw "a hardware handler by name (no SCSI in the sandbox: the name is kept, status prints none)"
dmsetup remove corpus-mp-hw

dmc corpus-mp-none "0 32768 multipath 0 0 0 0"
record corpus-mp-none "no priority groups"
