#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages devmapper's build, sandbox and tests use, when missing:
# user-mode-linux (the sandbox kernel), kmod (modprobe inside it), dmsetup, strace and udev
# (peers and tools inside the sandbox), and a C++ toolchain with cmake for the addon.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

SUDO=()
if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo -n); fi

installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = 'install ok installed' ]; }

missing=()
for pkg in user-mode-linux kmod dmsetup strace udev perl-base; do
  installed "$pkg" || missing+=("$pkg")
done
for tool in cmake:cmake g++:g++ make:make; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || installed "${tool#*:}" || missing+=("${tool#*:}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  "${SUDO[@]}" apt-get update
  "${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
fi
command -v node >/dev/null 2>&1 || { echo "setup: Node.js >= 20.19 is needed (apt-get install nodejs npm, or nodejs.org)" >&2; exit 1; }
