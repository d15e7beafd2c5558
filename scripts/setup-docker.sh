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

if ! command -v dockerd >/dev/null 2>&1 || [ "$(dockerd --version | sed -E 's/.*version ([0-9]+).*/\1/')" -lt 24 ]; then
  . "$(dirname "$0")/apt-trixie.sh"
  log "installing docker.io from trixie"
  install_from_trixie docker.io
fi

log "starting dockerd"
mkdir -p /var/log
. "$(dirname "$0")/daemon.sh"
start_daemon /var/log/minilab-dockerd.log dockerd
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
