#!/usr/bin/env bash
# npm run test:sanitize: the machines' part of the tests. Any sanitizer report fails the run.
#  1. The libFuzzer target over the ioctl core (ASan + UBSan) for $FUZZ_SECONDS (default 60),
#     from the seed corpus.
#  2. The addon built with AddressSanitizer and UndefinedBehaviorSanitizer (build-asan/), under
#     the host's unit tests that drive it (requests, waits, watches, teardown of workers).
#  3. The addon built with UndefinedBehaviorSanitizer (build-ubsan/), under the whole kernel
#     suite in the sandbox.
#  4. The addon as shipped (build/Release) under the kernel suite in the sandbox but its
#     per-target files and the examples (they drive the same native paths as the core files,
#     with other strings; under memcheck they would more than double the run) and io-threads
#     (it checks scheduling against a 1.5 s delay, which memcheck's slowdown overtakes), the test
#     process run by Valgrind memcheck, judged by scripts/check-valgrind.js. This is the
#     kernel suite's address checker: ASan cannot start inside User-Mode Linux, where a process
#     has 512 GiB of address space (up to 0x7fc0000000) and ASan's fixed x86-64 shadow layout
#     needs its high shadow at 2 TiB and its shadow gap where UML maps stacks and libraries
#     ("Shadow memory range interleaves with an existing memory mapping").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/fuzz.sh "${FUZZ_SECONDS:-60}"

cmakejs=(node node_modules/cmake-js/bin/cmake-js compile --CDDEVMAPPER_WERROR=ON)
"${cmakejs[@]}" --out build-asan --CDDEVMAPPER_SANITIZE=address,undefined >/dev/null
"${cmakejs[@]}" --out build-ubsan --CDDEVMAPPER_SANITIZE=undefined >/dev/null
runtime="$(g++ -print-file-name=libasan.so)"
[ -f "$runtime" ] || { echo "test:sanitize: no ASan runtime at $runtime (g++'s libasan)" >&2; exit 1; }
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
# Node itself is not built with ASan: its own allocations at exit are not ours to report.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1"

echo "test:sanitize: unit tests on the host with build-asan (ASan + UBSan, $runtime preloaded)"
DEVMAPPER_ADDON="$PWD/build-asan/Release/devmapper.node" LD_PRELOAD="$runtime" \
  node node_modules/mocha/bin/mocha.js test/unit/native.test.ts test/unit/teardown.test.ts test/unit/client.test.ts

# sync-targets runs the targets' tests again through the synchronous client: the addon's
# synchronous paths are in sync.test.ts already, and the run's time is better spent elsewhere.
# The storage recipes (workflows/) drive the native paths the target tests drive, with the
# same requests: both sanitizer runs leave them to the plain kernel suite.
echo "test:sanitize: kernel suite (but sync-targets and workflows/) in the sandbox with build-ubsan (UBSan)"
DEVMAPPER_ADDON="$PWD/build-ubsan/Release/devmapper.node" node scripts/kernel-tests.js '!sync-targets' '!workflows/'

echo "test:sanitize: kernel suite (but targets/, workflows/, sync-targets, examples and io-threads) in the sandbox with build/Release under Valgrind memcheck"
report="$PWD/build/valgrind-kernel.xml"
rm -f "$report"
# Memcheck multiplies the test process's memory and time: more guest memory, longer timeouts.
DEVMAPPER_TEST_VALGRIND="$report" DEVMAPPER_SANDBOX_MEMORY=3072 DEVMAPPER_TEST_TIMEOUT=600000 \
  node scripts/kernel-tests.js '!targets/' '!workflows/' '!sync-targets' '!examples' '!io-threads'
node scripts/check-valgrind.js "$report"
