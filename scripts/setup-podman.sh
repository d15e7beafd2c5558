#!/usr/bin/env bash
# Ensures podman 4 or later is installed and its API service answers on the rootful socket
# (/run/podman/podman.sock), for `minilab start --driver podman` and the tests. When it answers
# already, nothing is touched. Otherwise installs Debian trixie's podman (bookworm's is 4.3; trixie's
# 5.4 is what minilab is tested with) and starts `podman system service` in the background (where
# systemd runs, `systemctl enable --now podman.socket` is the usual way; minilab also starts the
# service itself when it finds none).
set -euo pipefail

log() { printf 'setup-podman: %s\n' "$*"; }
socket=/run/podman/podman.sock

service_answers() {
  command -v podman >/dev/null 2>&1 && [ -S "$socket" ] &&
    PODMAN_IGNORE_CGROUPSV1_WARNING=1 timeout 5 podman --remote --url "unix://$socket" version >/dev/null 2>&1
}

if service_answers; then
  log "podman service already answering on $socket; leaving it as it is"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "setup-podman: installing podman and starting its rootful service needs root" >&2
  echo "hint: run 'sudo scripts/setup-podman.sh', or start your own: systemctl --user enable --now podman.socket" >&2
  exit 3
fi

major() { podman version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1; }
if ! command -v podman >/dev/null 2>&1 || [ "$(major)" -lt 4 ] 2>/dev/null || [ -z "$(major)" ]; then
  . "$(dirname "$0")/apt-trixie.sh"
  log "installing podman from trixie (5.4; bookworm's 4.3 is older than minilab is tested with)"
  install_from_trixie --no-install-recommends podman aardvark-dns catatonit
  # The package may have started a service (its socket unit, where systemd runs): use that one.
  if service_answers; then
    log "podman service answering on $socket"
    exit 0
  fi
fi

if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then
  log "starting podman.socket (systemd)"
  systemctl enable --now podman.socket
else
  log "starting the podman service on $socket (no systemd here: podman system service in the background)"
  mkdir -p /run/podman /var/log
  # Nothing answers on it (checked above): a socket file left by a service that died would make
  # the new one fail to listen.
  rm -f "$socket"
  . "$(dirname "$0")/daemon.sh"
  PODMAN_IGNORE_CGROUPSV1_WARNING=1 start_daemon /var/log/minilab-podman.log \
    podman system service --time=0 "unix://$socket"
fi
for _ in $(seq 1 30); do
  if service_answers; then
    log "podman $(podman version --format '{{.Client.Version}}' 2>/dev/null) answering on $socket"
    exit 0
  fi
  sleep 1
done
echo "setup-podman: the podman service did not answer within 30 s; last log lines:" >&2
tail -n 20 /var/log/minilab-podman.log >&2 2>/dev/null || journalctl -u podman.service -n 20 >&2 || true
exit 3
