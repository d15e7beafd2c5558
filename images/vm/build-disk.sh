#!/usr/bin/env bash
# build-disk.sh OUT_DIR [SIZE]
#
# Runs inside a privileged build container started from a minilab node image
# (images/vm/files already copied onto its /) and turns that node's root file
# system into what the qemu driver boots:
#   OUT_DIR/vmlinuz     Debian's kernel for the node's release (the package
#                       linux-image-amd64 points at), unpacked
#   OUT_DIR/initrd.img  a small initramfs of our own: static busybox, the
#                       modules that reach the root disk (virtio_blk, ext4) and
#                       images/vm/initrd-init, which mounts /dev/vda and
#                       switches to it (Debian's initramfs-tools would add udev
#                       and seconds of boot under emulation for nothing)
#   OUT_DIR/disk.raw    the root file system as ext4 of SIZE (default 4G;
#                       sparse), made by mke2fs -d from this container's root,
#                       with what a VM needs and a container does not: the
#                       kernel's modules, an SSH server (the host's way in),
#                       e2fsprogs (fsck, and growing the root to the profile's
#                       disk size at first boot) and acpid (stop's ACPI power button)
# Packages come from the node's own Debian release through the apt
# configuration present. Nothing is written outside OUT_DIR but this
# container's root, which is thrown away.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
die() { echo "build-disk: error: $*" >&2; exit 1; }
log() { echo "build-disk: $*" >&2; }

[[ $# -ge 1 && -d "$1" ]] || die "usage: $0 OUT_DIR [SIZE] (OUT_DIR must exist)"
out="$1"
size="${2:-4G}"
export DEBIAN_FRONTEND=noninteractive

install_packages() {
  log "installing openssh-server, e2fsprogs and acpid"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends openssh-server e2fsprogs acpid >/dev/null
  # the host hands each node its host key (pinned from the first connection): none made here
  rm -f /etc/ssh/ssh_host_*
}

# The kernel package, unpacked without its maintainer scripts (they would run
# initramfs-tools). Prints the kernel release.
KVER=""
install_kernel() {
  local pkg tmp
  pkg="$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ && !p { print $2; p = 1 }')"
  [[ -n "$pkg" ]] || die "apt knows no kernel behind linux-image-amd64"
  log "kernel package $pkg"
  tmp="$(mktemp -d)"
  (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$pkg") || die "could not download $pkg"
  dpkg-deb -x "$tmp"/*.deb "$tmp/k"
  KVER="$(ls "$tmp/k/usr/lib/modules")"
  cp "$tmp/k/boot/vmlinuz-$KVER" "$out/vmlinuz"
  local mods="/usr/lib/modules/$KVER"
  rm -rf "$mods"
  mkdir -p "$mods"
  cp -a "$tmp/k/usr/lib/modules/$KVER/." "$mods/"
  rm -rf "$tmp"
  # hardware a QEMU guest never has
  local d
  for d in sound drivers/gpu drivers/media drivers/net/wireless drivers/net/ethernet drivers/net/can \
           drivers/infiniband drivers/staging drivers/bluetooth drivers/iio drivers/usb drivers/hid \
           drivers/input drivers/isdn drivers/platform drivers/scsi drivers/ata drivers/mmc drivers/mtd \
           drivers/thunderbolt drivers/hwmon drivers/edac drivers/nfc drivers/leds drivers/power \
           drivers/video drivers/w1 drivers/i2c drivers/spi drivers/pinctrl drivers/gnss \
           drivers/firewire drivers/pcmcia drivers/atm net/bluetooth net/wireless net/mac80211 \
           net/can net/nfc net/atm; do
    rm -rf "${mods:?}/kernel/$d"
  done
  depmod -a "$KVER"
}

# initramfs: busybox, the root disk's modules (decompressed, in load order), init
build_initrd() {
  local dir
  dir="$(mktemp -d)"
  mkdir -p "$dir"/{bin,dev,proc,sys,newroot,modules}
  cp /usr/bin/busybox "$dir/bin/busybox"
  ln -s busybox "$dir/bin/sh"
  # e2fsck and the libraries it links: the root file system is checked before it is mounted
  # (no udev in the node, so systemd's own fsck of / would wait for a device unit forever)
  local lib
  cp /usr/sbin/e2fsck "$dir/bin/e2fsck"
  for lib in $(ldd /usr/sbin/e2fsck | awk '$2 == "=>" { print $3 } $1 ~ /^\// { print $1 }'); do
    mkdir -p "$dir$(dirname "$lib")"
    cp -L "$lib" "$dir$lib"
  done
  install -m 0755 "$here/initrd-init" "$dir/init"
  local n=0 path
  while read -r path; do
    n=$((n + 1))
    case "$path" in
      *.xz) busybox unxz -c "$path" > "$dir/modules/$(printf %02d $n)-$(basename "${path%.xz}")" ;;
      *.zst) die "zstd-compressed module $path: busybox cannot unpack it" ;;
      *) cp "$path" "$dir/modules/$(printf %02d $n)-$(basename "$path")" ;;
    esac
  done < <(for m in virtio_blk ext4; do modprobe -S "$KVER" --show-depends "$m"; done |
             awk '$1 == "insmod" && !seen[$2]++ { print $2 }')
  log "initramfs with $n modules"
  (cd "$dir" && find . | LC_ALL=C sort | busybox cpio -o -H newc 2>/dev/null) | gzip -9 > "$out/initrd.img"
  rm -rf "$dir"
}

# The root file system: this container's own root, seen through a bind mount
# of / alone (no /proc, /sys, /dev or the engine's /etc/hosts above it).
make_disk() {
  local root
  root="$(mktemp -d)"
  mount --bind / "$root"
  # the engine's bind mounts hide these: the VM's are written at boot (minilab-vm-setup)
  : > "$root/etc/hostname"
  printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$root/etc/hosts"
  : > "$root/etc/resolv.conf"
  rm -rf "${root:?}/tmp/"* "${root:?}/out" 2>/dev/null || true
  # the engine's marks of a container: systemd (detect-virt, unit conditions) would take the VM for one
  rm -f "$root/.dockerenv" "$root/run/.containerenv"
  rm -rf "${root:?}/opt/minilab/vm-build"
  # a VM's root is remounted as fstab says (the node image masks this for containers)
  rm -f "$root/etc/systemd/system/systemd-remount-fs.service"
  rm -f "$out/disk.raw"
  log "ext4 root file system of $size"
  mke2fs -q -t ext4 -L minilab-root -d "$root" "$out/disk.raw" "$size"
  umount "$root"
  rmdir "$root"
}

install_packages
install_kernel
build_initrd
systemctl enable minilab-vm.service ssh.service acpid.service >/dev/null
apt-get clean
rm -rf /var/lib/apt/lists/*
make_disk
log "done: $(du -h --apparent-size "$out/disk.raw" | cut -f1) apparent, $(du -h "$out/disk.raw" | cut -f1) used"
