#!/usr/bin/env bash
# build-tools-layer.sh ROOTFS_TAR_OR_DIR OUT.tar
#
# Makes a small image layer (a tar of a root tree) with the userspace tools
# that some component images need, taken from the node base root filesystem
# (the output of build-rootfs.sh, as a tar or an unpacked directory):
#   - iptables/ip6tables, both backends: xtables-nft-multi and
#     xtables-legacy-multi with their -save/-restore names, their extension
#     modules; plain iptables, iptables-save, ... go through iptables-wrapper,
#     which picks the backend the node uses on first call (kube-proxy)
#   - nft (kube-proxy's nftables mode), conntrack (kube-proxy clean-up)
#   - busybox (static) with a link for every applet: /bin/sh, mkdir, rm,
#     chmod, ... (local-path-provisioner's helper pod)
#   - the shared libraries all of these need (resolved with the rootfs's own
#     ldd, in a chroot), and a minimal /etc (passwd, group, nsswitch.conf,
#     protocols, services)
# The layer uses the merged-/usr layout (/bin, /sbin, /lib, /lib64 are links
# into /usr). Output is deterministic for the same input (sorted, mtime 0,
# owner 0:0), so its digest only changes when the tools do.
# Must run as root (chroot).
set -euo pipefail

die() { echo "build-tools-layer: error: $*" >&2; exit 1; }
log() { echo "build-tools-layer: $*" >&2; }

[[ $# -eq 2 && -n "$1" && -n "$2" ]] || die "usage: $0 ROOTFS_TAR_OR_DIR OUT.tar"
[[ "$(id -u)" -eq 0 ]] || die "must run as root (resolves libraries with chroot)"

src="$1"
out="$2"
mkdir -p -- "$(dirname -- "$out")"
out="$(cd -- "$(dirname -- "$out")" && pwd)/$(basename -- "$out")"

work="$(mktemp -d "$(dirname -- "$out")/.minilab-tools.XXXXXX")"
trap 'rm -rf -- "$work" "${out}.partial"' EXIT

if [[ -d "$src" ]]; then
  root="$(cd -- "$src" && pwd)"
elif [[ -f "$src" ]]; then
  log "unpacking $src"
  root="$work/rootfs"
  mkdir -p "$root"
  tar -C "$root" --numeric-owner -xf "$src" \
    || die "could not unpack $src"
else
  die "$src is neither a directory nor a file"
fi
[[ -x "$root/usr/bin/ldd" ]] || die "$src has no /usr/bin/ldd (not a Debian root filesystem?)"

layer="$work/layer"
mkdir -p "$layer"/usr/{bin,sbin,lib,lib64} "$layer"/{etc,tmp,root,run,var/tmp}
chmod 1777 "$layer/tmp" "$layer/var/tmp"
chmod 700 "$layer/root"
for d in bin sbin lib lib64; do ln -s "usr/$d" "$layer/$d"; done

# path inside the layer for an absolute path of the merged-/usr rootfs
usr_path() {
  case "$1" in
    /bin/*|/sbin/*|/lib/*|/lib64/*) echo "/usr$1" ;;
    *) echo "$1" ;;
  esac
}

# copy one file (following links) from the rootfs, keeping the name it was
# asked by as a link when that differs (sonames, ld.so in /lib64)
place() {
  local want="$1" real dest
  real="$(chroot "$root" readlink -f "$want")" || die "cannot resolve $want in the rootfs"
  [[ -f "$root$real" ]] || die "the rootfs lacks $want"
  dest="$(usr_path "$real")"
  if [[ ! -e "$layer$dest" ]]; then
    mkdir -p "$(dirname "$layer$dest")"
    cp -p "$root$real" "$layer$dest"
  fi
  local alias
  alias="$(usr_path "$want")"
  if [[ "$alias" != "$dest" && ! -e "$layer$alias" && ! -L "$layer$alias" ]]; then
    mkdir -p "$(dirname "$layer$alias")"
    if [[ "$(dirname "$alias")" == "$(dirname "$dest")" ]]; then
      ln -s "$(basename "$dest")" "$layer$alias"
    else
      ln -s "$dest" "$layer$alias"
    fi
  fi
}

# copy an executable or library and everything it links against
place_with_libs() {
  local f="$1" lib
  place "$f"
  # ldd prints "name => /path (addr)" or "/path (addr)"; skip the vDSO
  while read -r lib; do
    [[ -n "$lib" ]] && place "$lib"
  done < <(chroot "$root" /usr/bin/ldd "$f" 2>/dev/null \
             | awk '$2 == "=>" && $3 ~ /^\// { print $3; next } $1 ~ /^\// { print $1 }')
}

log "collecting iptables, nft, conntrack and their libraries"
for bin in /usr/sbin/xtables-nft-multi /usr/sbin/xtables-legacy-multi /usr/sbin/nft /usr/sbin/conntrack; do
  place_with_libs "$bin"
done
# iptables extensions are loaded at run time
xt_dir=/usr/lib/x86_64-linux-gnu/xtables
[[ -d "$root$xt_dir" ]] || xt_dir="$(cd "$root" && find usr/lib -maxdepth 2 -type d -name xtables | head -n1 | sed 's#^#/#')"
[[ -n "$xt_dir" && -d "$root$xt_dir" ]] || die "no xtables extension directory in the rootfs"
for ext in "$root$xt_dir"/*.so; do
  place_with_libs "${ext#"$root"}"
done

# backend names: fixed links into each multi-call binary
for name in iptables ip6tables; do
  for suffix in "" -save -restore; do
    ln -s xtables-nft-multi "$layer/usr/sbin/${name}-nft${suffix}"
    ln -s xtables-legacy-multi "$layer/usr/sbin/${name}-legacy${suffix}"
    ln -s iptables-wrapper "$layer/usr/sbin/${name}${suffix}"
  done
done

cat > "$layer/usr/sbin/iptables-wrapper" <<'EOF'
#!/bin/sh
# iptables-wrapper: iptables, ip6tables and their -save/-restore point here
# until the first call, which finds the backend (nft or legacy) that the node
# uses, re-points those links straight at it, and runs the command.
# The kubelet marks its backend with KUBE-IPTABLES-HINT / KUBE-KUBELET-CANARY
# chains in the mangle table; without them, the backend with more rules wins.
set -eu
mode=""
for m in nft legacy; do
  if { "xtables-$m-multi" iptables-save -t mangle; "xtables-$m-multi" ip6tables-save -t mangle; } 2>/dev/null \
       | grep -qE '^:(KUBE-IPTABLES-HINT|KUBE-KUBELET-CANARY) '; then
    mode="$m"
    break
  fi
done
if [ -z "$mode" ]; then
  legacy=$( { xtables-legacy-multi iptables-save; xtables-legacy-multi ip6tables-save; } 2>/dev/null | grep -c '^-' || true)
  nft=$( { xtables-nft-multi iptables-save; xtables-nft-multi ip6tables-save; } 2>/dev/null | grep -c '^-' || true)
  if [ "${legacy:-0}" -gt "${nft:-0}" ]; then mode=legacy; else mode=nft; fi
fi
for n in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
  ln -sf "xtables-$mode-multi" "/usr/sbin/$n" 2>/dev/null || true
done
exec "/usr/sbin/xtables-$mode-multi" "$(basename "$0")" "$@"
EOF
chmod 755 "$layer/usr/sbin/iptables-wrapper"

log "adding busybox and its applets"
[[ -x "$root/usr/bin/busybox" ]] || die "the rootfs has no /usr/bin/busybox (busybox-static)"
if chroot "$root" /usr/bin/ldd /usr/bin/busybox >/dev/null 2>&1; then
  die "/usr/bin/busybox in the rootfs is dynamically linked; install busybox-static"
fi
cp -p "$root/usr/bin/busybox" "$layer/usr/bin/busybox"
while read -r applet; do
  case "$applet" in
    bin/*|sbin/*|usr/bin/*|usr/sbin/*) ;;
    *) continue ;;
  esac
  dest="$(usr_path "/$applet")"
  # never shadow a real tool of this layer
  [[ -e "$layer$dest" || -L "$layer$dest" ]] && continue
  ln -s /usr/bin/busybox "$layer$dest"
done < <(chroot "$root" /usr/bin/busybox --list-full)

log "writing /etc"
cat > "$layer/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat > "$layer/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
cat > "$layer/etc/nsswitch.conf" <<'EOF'
passwd:    files
group:     files
shadow:    files
hosts:     files dns
networks:  files
protocols: files
services:  files
ethers:    files
rpc:       files
EOF
for f in protocols services ethertypes; do
  if [[ -f "$root/etc/$f" ]]; then cp -p "$root/etc/$f" "$layer/etc/$f"; fi
done

# smoke test in a chroot of the layer alone: every tool must start
log "checking the tools run from the layer alone"
for cmd in "xtables-nft-multi iptables --version" "xtables-legacy-multi iptables --version" \
           "nft --version" "conntrack --version" "sh -c true"; do
  # shellcheck disable=SC2086
  chroot "$layer" /usr/bin/env PATH=/usr/sbin:/usr/bin $cmd >/dev/null 2>&1 \
    || die "'$cmd' does not run from the layer (missing library?)"
done

tar -C "$layer" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
    --format=gnu -cf "${out}.partial" .
mv -f -- "${out}.partial" "$out"
size_bytes=$(stat -c %s "$out")
log "done: $out $(( (size_bytes + 524288) / 1048576 )) MiB ($size_bytes bytes), $(tar -tf "$out" | wc -l) entries"
