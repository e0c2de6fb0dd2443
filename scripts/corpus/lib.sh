# Helpers for the corpus scripts (scripts/corpus/<type>.sh), sourced by scripts/make-corpus.js
# inside the kernel sandbox, as root. Each script makes devices with dmsetup (or the natural
# tool), acts on them, and calls `record` to print what the kernel reports, in the corpus
# format that test/unit/corpus.test.ts reads:
#   # <case description>
#   table <one row of dmsetup table>
#   status <one row of dmsetup status>
set -euo pipefail

CORPUS_PREFIX=corpus-
LOOPS=()

# mkloop MiB: a loop device over a new sparse file; prints its major:minor, sets LOOP_PATH.
mkloop() {
  local file
  file="$(mktemp -p "${DEVMAPPER_SCRATCH:-/tmp}" corpus-XXXXXX.img)"
  truncate -s "$1M" "$file"
  LOOP_PATH="$(losetup --find --show "$file")"
  LOOPS+=("$LOOP_PATH")
  lsblk -dno MAJ:MIN "$LOOP_PATH" | tr -d ' '
}

# record NAME DESCRIPTION: the device's table and status rows, as the kernel gives them.
record() {
  local name="$1" desc="$2" line
  echo "# $desc"
  dmsetup table --showkeys "$name" | while IFS= read -r line; do echo "table ${line% }"; done
  dmsetup status "$name" | while IFS= read -r line; do echo "status ${line% }"; done
}

# dmc NAME TABLE: dmsetup create with the table on stdin (named with the corpus prefix).
dmc() {
  printf '%s\n' "$2" | dmsetup create "$1"
}

cleanup() {
  local d
  for d in $(dmsetup ls 2>/dev/null | awk -v p="$CORPUS_PREFIX" 'index($1, p) == 1 { print $1 }' | sort -r); do
    dmsetup remove --retry "$d" >/dev/null 2>&1 || true
  done
  for d in $(dmsetup ls 2>/dev/null | awk -v p="$CORPUS_PREFIX" 'index($1, p) == 1 { print $1 }'); do
    dmsetup remove --retry "$d" >/dev/null 2>&1 || true
  done
  for d in "${LOOPS[@]}"; do losetup -d "$d" 2>/dev/null || true; done
}
trap cleanup EXIT

# devpath NAME: the device's node, /dev/dm-N (devtmpfs makes it; /dev/mapper links need udev).
devpath() {
  echo "/dev/$(dmsetup info -c --noheadings -o blkdevname "$1" | tr -d ' ')"
}

# devnum NAME: the device's major:minor.
devnum() {
  dmsetup info -c --noheadings -o major,minor --separator : "$1" | tr -d ' '
}

# devnode MAJ:MIN: the node of a block device by number (mkloop runs in a subshell, so its
# LOOP_PATH does not reach the caller), from sysfs.
devnode() {
  echo "/dev/$(sed -n 's/^DEVNAME=//p' "/sys/dev/block/$1/uevent")"
}
