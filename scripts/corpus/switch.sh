# switch: two and three paths; the table stays as made after set_region_mappings (no status).
a=$(mkloop 4); b=$(mkloop 4); c=$(mkloop 4)
dmc corpus-switch2 "0 8192 switch 2 128 0 $a 0 $b 0"
record corpus-switch2 "two paths, 64 KiB regions"
dmc corpus-switch3 "0 6144 switch 3 8 0 $a 16 $b 0 $c 2048"
dmsetup message corpus-switch3 0 set_region_mappings 0:1 :2 :0 R3,a 40:2
record corpus-switch3 "three paths at offsets, after set_region_mappings with : and R forms"
