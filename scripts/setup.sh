#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages devmapper's build, sandbox and tests use, when missing:
# user-mode-linux (the sandbox kernel), kmod (modprobe inside it), dmsetup, strace, udev,
# cryptsetup-bin (cryptsetup, veritysetup, integritysetup), thin-provisioning-tools
# (thin_check) and lvm2 (lvcreate, lvs: the interop tests): peers and tools inside the sandbox; libdevmapper-dev for the benchmark's C peer; a C++ toolchain with cmake for the addon, clang with
# its libFuzzer and sanitizer runtimes, and valgrind, for npm run fuzz / test:sanitize.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

SUDO=()
if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo -n); fi

installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = 'install ok installed' ]; }

missing=()
for pkg in user-mode-linux kmod dmsetup strace udev perl-base valgrind cryptsetup-bin thin-provisioning-tools lvm2 libdevmapper-dev; do
  installed "$pkg" || missing+=("$pkg")
done
for tool in cmake:cmake g++:g++ make:make; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || installed "${tool#*:}" || missing+=("${tool#*:}")
done
command -v clang++ >/dev/null 2>&1 || missing+=(clang)
updated=0
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  "${SUDO[@]}" apt-get update
  updated=1
  "${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
fi
# libFuzzer and the sanitizer runtimes of this clang (libclang-rt-N-dev on Debian 12).
fuzzer_lib="$(clang++ -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null || true)"
if [ ! -f "$fuzzer_lib" ] && [ ! -f "$(dirname "$(clang++ -print-libgcc-file-name --rtlib=compiler-rt 2>/dev/null)")/libclang_rt.fuzzer-x86_64.a" ]; then
  major="$(clang++ -dumpversion | cut -d. -f1)"
  echo "setup: installing libclang-rt-${major}-dev (libFuzzer)"
  [ "$updated" -eq 1 ] || "${SUDO[@]}" apt-get update
  "${SUDO[@]}" apt-get install -y --no-install-recommends "libclang-rt-${major}-dev"
fi
command -v node >/dev/null 2>&1 || { echo "setup: Node.js >= 20.19 is needed (apt-get install nodejs npm, or nodejs.org)" >&2; exit 1; }
