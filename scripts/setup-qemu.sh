#!/usr/bin/env bash
# Ensures QEMU (qemu-system-x86_64 and qemu-img) is installed, for `minilab start --driver qemu`
# and its tests. Installs Debian trixie's (10.0; bookworm's 7.2 conflicts with the trixie
# libraries docker.io brings). Nothing is started: minilab runs QEMU itself, one process per node.
set -euo pipefail

log() { printf 'setup-qemu: %s\n' "$*"; }

if command -v qemu-system-x86_64 >/dev/null 2>&1 && command -v qemu-img >/dev/null 2>&1; then
  log "QEMU already installed ($(qemu-system-x86_64 --version | head -n1))"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "setup-qemu: installing QEMU needs root" >&2
  echo "hint: run 'sudo scripts/setup-qemu.sh', or install qemu-system-x86 and qemu-utils yourself" >&2
  exit 3
fi
. "$(dirname "$0")/apt-trixie.sh"
log "installing qemu-system-x86 and qemu-utils from trixie"
install_from_trixie --no-install-recommends qemu-system-x86 qemu-utils
log "installed $(qemu-system-x86_64 --version | head -n1)"
