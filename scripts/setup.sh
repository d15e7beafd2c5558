#!/usr/bin/env bash
# One-command set-up of a fresh Debian machine for minilab development and CI (run as root):
# OS packages, a Docker engine, podman and QEMU, npm dependencies, the build, and the node image.
# Safe to run again: every step skips what is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'setup: %s\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
  echo "setup: needs root to install packages and start dockerd" >&2
  echo "hint: run 'sudo scripts/setup.sh'" >&2
  exit 3
fi

packages=(busybox-static debootstrap tmux chromium ca-certificates gcc make bzip2 libc6-dev libseccomp-dev pkg-config)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v go >/dev/null || { echo "setup: Go is needed to build the Kubernetes components" >&2; echo "hint: install Go >= 1.24 (apt-get install -t trixie golang) and run this again" >&2; exit 3; }

bash scripts/setup-docker.sh
# podman too, for --driver podman and its tests (MINILAB_SKIP_PODMAN=1 leaves it out).
# A failure here leaves Docker's set-up whole: it is said, and the podman tests fail for it.
podman_ready=0
if [ "${MINILAB_SKIP_PODMAN:-}" != 1 ]; then
  if bash scripts/setup-podman.sh; then podman_ready=1; else log "podman could not be set up (above); Docker's set-up goes on"; fi
fi

# QEMU too, for --driver qemu and its tests (MINILAB_SKIP_QEMU=1 leaves it out); as with podman,
# a failure is said and Docker's set-up goes on.
qemu_ready=0
if [ "${MINILAB_SKIP_QEMU:-}" != 1 ]; then
  if bash scripts/setup-qemu.sh; then qemu_ready=1; else log "QEMU could not be set up (above); Docker's set-up goes on"; fi
fi

# Every node runs a kubelet and containerd, each holding inotify instances: a highly available
# cluster (five containers) beside another cluster ran out of the kernel's default 128. The
# values kind's documentation recommends; raised only, never lowered.
for pair in fs.inotify.max_user_watches=524288 fs.inotify.max_user_instances=512; do
  key=${pair%%=*} want=${pair#*=}
  have=$(sysctl -n "$key" 2>/dev/null || echo 0)
  if [ "$have" -lt "$want" ]; then
    log "raising $key from $have to $want"
    sysctl -q -w "$pair" || log "could not set $key (read-only /proc/sys?): start fewer clusters at once"
  fi
done

# npm ci empties node_modules and installs it again (12 s here) on every run: skipped when
# node_modules was installed by this script from the same package-lock.json.
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat node_modules/.minilab-package-lock.sha256 2>/dev/null)" = "$lock_sum" ]; then
  log "npm dependencies already installed from this package-lock.json"
else
  log "installing npm dependencies"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_sum" > node_modules/.minilab-package-lock.sha256
fi
log "building minilab"
npm run build --silent

if [ "${MINILAB_SKIP_IMAGE:-}" != 1 ]; then
  log "building the node image and the add-ons' images (cached stages make this quick after the first time)"
  node dist/src/main.js image build --addons
  if [ "$podman_ready" = 1 ]; then
    log "building the node image into podman's store (the same cached stages)"
    node dist/src/main.js image build --driver podman
  fi
  if [ "$qemu_ready" = 1 ]; then
    log "making the node image's VM disk (kernel, SSH server, ext4 root) for --driver qemu"
    node dist/src/main.js image build --driver qemu
  fi
fi
log "done: try 'node dist/src/main.js start' (or 'npm link' and 'minilab start')"
