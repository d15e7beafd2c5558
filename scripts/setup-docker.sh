#!/usr/bin/env bash
# Ensures a Docker engine answers on this machine. When one already answers,
# nothing is touched. Otherwise installs Debian trixie's docker.io (bookworm's
# 20.10 cannot run --privileged on machines whose capability bounding set lacks
# CAP_SYS_RESOURCE) and starts dockerd in the background.
set -euo pipefail

log() { printf 'setup-docker: %s\n' "$*"; }

engine_answers() {
  command -v docker >/dev/null 2>&1 && timeout 5 docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

if engine_answers; then
  log "engine already answering ($(docker version --format '{{.Server.Version}}')); leaving it as it is"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "setup-docker: no Docker engine answers and installing one needs root" >&2
  echo "hint: run 'sudo scripts/setup-docker.sh', or start your own engine" >&2
  exit 3
fi

. /etc/os-release
if ! command -v dockerd >/dev/null 2>&1 || [ "$(dockerd --version | sed -E 's/.*version ([0-9]+).*/\1/')" -lt 24 ]; then
  export DEBIAN_FRONTEND=noninteractive
  if [ "${VERSION_CODENAME:-}" = bookworm ]; then
    # Reuse the mirror this machine is already configured with: never name one here.
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [ -n "$uri" ] || uri=$(awk '/^deb / && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    if [ -z "$uri" ]; then
      echo "setup-docker: cannot find this machine's Debian mirror in the apt configuration" >&2
      echo "hint: add a trixie apt source by hand, then run this again" >&2
      exit 3
    fi
    cat > /etc/apt/sources.list.d/minilab-trixie.sources <<SRC
Types: deb
URIs: $uri
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    cat > /etc/apt/preferences.d/minilab-trixie <<PIN
Package: *
Pin: release n=trixie
Pin-Priority: 100
PIN
    log "installing docker.io from trixie (pinned low, nothing else upgraded)"
    apt-get update -qq
    apt-get install -y -qq -t trixie docker.io >/dev/null
  else
    log "installing docker.io"
    apt-get update -qq
    apt-get install -y -qq docker.io >/dev/null
  fi
fi

log "starting dockerd"
mkdir -p /var/log
setsid nohup dockerd >/var/log/minilab-dockerd.log 2>&1 < /dev/null &
for _ in $(seq 1 60); do
  if engine_answers; then
    log "engine answering ($(docker version --format '{{.Server.Version}}'))"
    exit 0
  fi
  sleep 1
done
echo "setup-docker: dockerd did not answer within 60 s; last log lines:" >&2
tail -n 20 /var/log/minilab-dockerd.log >&2
exit 3
