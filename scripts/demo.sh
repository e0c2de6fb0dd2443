#!/usr/bin/env bash
# Everything a new user needs, then the demo: system packages, npm ci, build, and a
# device-mapper session driven from Node inside the kernel sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm ci
npm run demo
