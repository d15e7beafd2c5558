#!/usr/bin/env bash
# build-rootfs.sh OUT.tar
#
# Builds the minilab node base root filesystem from Debian packages, without
# any container registry:
#   debootstrap --variant=minbase --include=<packages.txt> SUITE  (default trixie)
#   clean-rootfs.sh on the result
#   tar --numeric-owner of the tree to OUT.tar (written atomically)
# Must run as root (debootstrap chroots and creates device nodes). Installs
# debootstrap with apt-get when it is missing. Uses debootstrap's default
# mirror, or the one in $MINILAB_DEBIAN_MIRROR when set.
#
# Environment (all optional):
#   MINILAB_DEBIAN_SUITE    Debian suite to bootstrap (default: trixie)
#   MINILAB_DEBIAN_MIRROR   mirror URL passed to debootstrap (default: its own)
#   MINILAB_DEB_CACHE       directory that keeps downloaded .deb files between
#                           runs (default: none; every run downloads)
#   MINILAB_BUILD_DIR       where the temporary tree is made (default: next to
#                           OUT.tar; needs ~600 MB, must allow exec and devices)
#
# The resulting tar is a plain root filesystem: import it as an image with
# Cmd ["/sbin/init"], Env container=docker and StopSignal SIGRTMIN+3.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
suite="${MINILAB_DEBIAN_SUITE:-trixie}"

die() { echo "build-rootfs: error: $*" >&2; exit 1; }
log() { echo "build-rootfs: $*" >&2; }

[[ $# -eq 1 && -n "$1" ]] || die "usage: $0 OUT.tar"
[[ "$(id -u)" -eq 0 ]] || die "must run as root (debootstrap needs chroot and mknod)"

out="$1"
out_dir="$(dirname -- "$out")"
mkdir -p -- "$out_dir"
out="$(cd -- "$out_dir" && pwd)/$(basename -- "$out")"

# package list: one per line, '#' comments
packages_file="${here}/packages.txt"
[[ -r "$packages_file" ]] || die "cannot read $packages_file"
packages="$(sed -e 's/#.*//' "$packages_file" | tr -s ' \t\r' '\n' | grep -v '^$' | paste -sd, -)"
[[ -n "$packages" ]] || die "$packages_file lists no package"

if ! command -v debootstrap >/dev/null 2>&1; then
  log "installing debootstrap with apt-get"
  command -v apt-get >/dev/null 2>&1 || die "debootstrap is missing and there is no apt-get to install it"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends debootstrap >/dev/null 2>&1 || {
    apt-get update -qq >/dev/null
    apt-get install -y --no-install-recommends debootstrap >/dev/null
  } || die "could not install debootstrap"
fi

build_parent="${MINILAB_BUILD_DIR:-$(dirname -- "$out")}"
mkdir -p -- "$build_parent"
work="$(mktemp -d "${build_parent%/}/.minilab-rootfs.XXXXXX")"
tree="${work}/rootfs"

cleanup() {
  local rc=$?
  # debootstrap mounts proc/sys in the target; a failed run can leave them
  if [[ -d "$tree" ]]; then
    local m
    for m in $(awk -v t="$tree" 'index($2, t) == 1 { print $2 }' /proc/mounts | sort -r); do
      umount -l "$m" 2>/dev/null || true
    done
  fi
  rm -rf -- "$work"
  rm -f -- "${out}.partial"
  exit $rc
}
trap cleanup EXIT

start=$(date +%s)
debootstrap_args=(--variant=minbase --include="$packages")
if [[ -n "${MINILAB_DEB_CACHE:-}" ]]; then
  mkdir -p -- "$MINILAB_DEB_CACHE"
  debootstrap_args+=(--cache-dir="$(cd -- "$MINILAB_DEB_CACHE" && pwd)")
fi
log "debootstrap $suite ($(tr ',' '\n' <<<"$packages" | wc -l) extra packages) into $tree"
log "  packages: $packages"
if ! debootstrap "${debootstrap_args[@]}" "$suite" "$tree" ${MINILAB_DEBIAN_MIRROR:+"$MINILAB_DEBIAN_MIRROR"} \
      > "${work}/debootstrap.log" 2>&1; then
  tail -n 30 "${work}/debootstrap.log" >&2
  if [[ -f "${tree}/debootstrap/debootstrap.log" ]]; then
    tail -n 30 "${tree}/debootstrap/debootstrap.log" >&2
  fi
  die "debootstrap failed (log above)"
fi
log "debootstrap done in $(( $(date +%s) - start ))s"

"${here}/clean-rootfs.sh" "$tree"

# sanity checks: what a node cannot boot or run containers without
for f in sbin/init usr/lib/cni/bridge \
         usr/sbin/iptables usr/bin/busybox usr/bin/bash; do
  [[ -e "${tree}/${f}" || -L "${tree}/${f}" ]] || die "rootfs lacks /$f"
done

log "writing $out"
tar -C "$tree" --numeric-owner --xattrs --xattrs-include='security.capability' \
    -cf "${out}.partial" .
mv -f -- "${out}.partial" "$out"

size_bytes=$(stat -c %s "$out")
log "done in $(( $(date +%s) - start ))s: $out $(( size_bytes / 1024 / 1024 )) MiB ($size_bytes bytes)"
