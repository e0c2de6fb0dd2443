#!/usr/bin/env bash
# npm run fuzz -- [SECONDS]: builds the libFuzzer target over the ioctl core (native/dm_ioctl.*)
# with clang, ASan and UBSan in build-fuzz/, and runs it for SECONDS (default $FUZZ_SECONDS or
# 60) from the checked-in seed corpus (fuzz/corpus; what it finds goes to a scratch directory).
# A crash, a sanitizer report or a leak fails the run; the crashing input is kept in
# build-fuzz/artifacts/. DEVMAPPER_FUZZER runs another fuzzer binary instead of building this one.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-${FUZZ_SECONDS:-60}}"
case "$seconds" in ''|*[!0-9]*) echo "fuzz: seconds must be a whole number, got '$seconds'" >&2; exit 2;; esac
fuzzer="${DEVMAPPER_FUZZER:-}"
if [ -z "$fuzzer" ]; then
  command -v clang++ >/dev/null || { echo "fuzz: clang++ is missing (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }
  cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
    -DDEVMAPPER_FUZZ=ON -DDEVMAPPER_WERROR=ON >/dev/null
  cmake --build build-fuzz --target dm_ioctl_fuzz >/dev/null
  fuzzer=./build-fuzz/dm_ioctl_fuzz
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p build-fuzz/artifacts
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# The fuzzer's own exit status decides, not grep's (which fails when nothing matched).
set +e
"$fuzzer" -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=2048 \
  -artifact_prefix=build-fuzz/artifacts/ "$work" fuzz/corpus 2>&1 |
  grep -E '^(stat::|#[0-9]+ +DONE|==[0-9]+==|SUMMARY|INFO: Running|.*runtime error)|Done [0-9]+ runs'
status="${PIPESTATUS[0]}"
set -e
if [ "$status" -ne 0 ]; then echo "fuzz: FAILED (exit $status); inputs in build-fuzz/artifacts/" >&2; exit "$status"; fi
echo "fuzz: ${seconds} s, no crash, no sanitizer report"
