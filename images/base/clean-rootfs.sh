#!/usr/bin/env bash
# clean-rootfs.sh [ROOT]
#
# Turns a freshly installed Debian root filesystem (debootstrap output, or "/"
# inside a Dockerfile RUN) into the minilab node base: drops documentation,
# locales and package caches, empties the machine identity, and disables or
# masks the systemd units that have no business in a node container.
#
# ROOT defaults to "/". Works on a directory without chroot: it only moves
# files and symlinks. Safe to run more than once.
set -euo pipefail

root="${1:-/}"
root="${root%/}"          # "/" becomes "", "/x/" becomes "/x"

die() { echo "clean-rootfs: error: $*" >&2; exit 1; }
log() { echo "clean-rootfs: $*" >&2; }

[[ -d "${root}/etc" && -d "${root}/usr" ]] || die "'${1:-/}' does not look like a root filesystem"
[[ -e "${root}/usr/lib/systemd/systemd" ]] || die "systemd is not installed in '${1:-/}'"

# 1. Documentation, man pages, locales: never read inside a node.
#    Also keep them out of later apt installs (dpkg path-exclude).
log "removing docs, man pages, locales"
rm -rf "${root}"/usr/share/doc/* "${root}"/usr/share/doc-base/* \
       "${root}"/usr/share/man/* "${root}"/usr/share/info/* \
       "${root}"/usr/share/lintian/* "${root}"/usr/share/linda/* \
       "${root}"/usr/share/bug/* "${root}"/usr/share/menu/*
find "${root}/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias \
     -exec rm -rf {} + 2>/dev/null || true
mkdir -p "${root}/etc/dpkg/dpkg.cfg.d"
cat > "${root}/etc/dpkg/dpkg.cfg.d/minilab-nodoc" <<'EOF'
# minilab node: do not install documentation, man pages or translations
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/lintian/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
EOF

# 2. CNI plugins: a node uses bridge, host-local, loopback and portmap (the
#     pod network minilab writes); the other plugins (dhcp, macvlan, ipvlan,
#     vlan, ptp, vrf, sbr, ...) are ~45 MB nobody calls. Kept when asked for
#     a full set with MINILAB_KEEP_ALL_CNI=1.
if [ -d "${root}/usr/lib/cni" ] && [ "${MINILAB_KEEP_ALL_CNI:-}" != 1 ]; then
  log "keeping only the CNI plugins a node uses (bridge, host-local, loopback, portmap)"
  find "${root}/usr/lib/cni" -maxdepth 1 -type f \
    ! -name bridge ! -name host-local ! -name loopback ! -name portmap -delete
fi

# 3. Package manager caches and lists, logs, temporary files.
log "removing apt lists, caches, logs, temporary files"
rm -rf "${root}"/var/lib/apt/lists/* \
       "${root}"/var/cache/apt/*.bin "${root}"/var/cache/apt/archives/*.deb \
       "${root}"/var/cache/apt/archives/partial/* \
       "${root}"/var/cache/debconf/*-old "${root}"/var/lib/dpkg/*-old \
       "${root}"/var/cache/ldconfig/aux-cache \
       "${root}"/tmp/* "${root}"/var/tmp/* \
       "${root}"/debootstrap
# keep the log directory tree, drop every log file
find "${root}/var/log" -type f -delete 2>/dev/null || true
rm -rf "${root}"/var/log/journal/*

# 4. Identity: every node container gets its own machine-id (the node
#    entrypoint generates it); dbus reads the same id.
log "emptying machine-id"
: > "${root}/etc/machine-id"
mkdir -p "${root}/var/lib/dbus"
rm -f "${root}/var/lib/dbus/machine-id"
ln -s /etc/machine-id "${root}/var/lib/dbus/machine-id"
rm -f "${root}/var/lib/systemd/random-seed" "${root}/var/lib/systemd/credential.secret"

# 5. systemd units.
#    Drop every enablement that the package scripts made (getty, apt/dpkg
#    timers, fstrim, pstore, ...), then enable exactly what the node needs.
log "resetting enabled units"
find "${root}/etc/systemd/system" -mindepth 2 -maxdepth 2 -path '*.wants/*' -type l -delete
find "${root}/etc/systemd/system" -mindepth 1 -maxdepth 1 -name '*.wants' -type d -empty -delete

mkdir -p "${root}/etc/systemd/system/multi-user.target.wants"
# containerd's own unit comes with the runtime built from Go modules (images/runtime)
ln -sf /usr/local/lib/systemd/system/containerd.service \
       "${root}/etc/systemd/system/multi-user.target.wants/containerd.service"

#    Mask units that would touch the host kernel or the console, or that
#    only make sense on a real machine.
masked=(
  # consoles and logins on ttys
  getty.target getty@.service serial-getty@.service console-getty.service
  container-getty@.service getty-static.service
  # binfmt_misc registration is kernel-global
  systemd-binfmt.service proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount
  # kernel pseudo file systems that the container must not (re)mount
  sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount
  sys-fs-fuse-connections.mount dev-hugepages.mount
  # /tmp is a tmpfs given by the container engine
  tmp.mount
  # loading kernel modules into the host kernel at boot
  systemd-modules-load.service
  # udev (not installed; masked in case someone adds it)
  systemd-udevd.service systemd-udev-trigger.service systemd-udev-settle.service
  systemd-udevd-control.socket systemd-udevd-kernel.socket systemd-hwdb-update.service
  # machine setup and maintenance that does not apply to a container
  systemd-firstboot.service systemd-pstore.service systemd-remount-fs.service
  apt-daily.timer apt-daily-upgrade.timer apt-daily.service apt-daily-upgrade.service
  dpkg-db-backup.timer dpkg-db-backup.service fstrim.timer fstrim.service
  e2scrub_all.timer e2scrub_reap.service
  # first-boot bookkeeping after a /usr update, utmp records, module loading on demand: each
  # runs once per boot, before containerd may start, and does nothing a node needs
  systemd-journal-catalog-update.service systemd-update-done.service
  systemd-update-utmp.service systemd-update-utmp-runlevel.service modprobe@.service
)
log "masking ${#masked[@]} units"
for unit in "${masked[@]}"; do
  ln -sfn /dev/null "${root}/etc/systemd/system/${unit}"
done

# 6. sysctl defaults shipped by packages set kernel-global keys
#    (kernel.core_pattern, kernel.pid_max): in a privileged container they
#    would change the host. Mask every packaged sysctl.d file; the node's own
#    /etc/sysctl.d files (network namespaced keys only) still apply.
for f in "${root}"/usr/lib/sysctl.d/*.conf; do
  [[ -e "$f" ]] || continue
  ln -sfn /dev/null "${root}/etc/sysctl.d/$(basename "$f")"
done

# 7. Make sure PID 1 is systemd.
[[ -e "${root}/sbin/init" ]] || ln -s /usr/lib/systemd/systemd "${root}/sbin/init"

# 8. Keep /var to few files: in a node /var is a volume, and the container engine fills a new
#    volume from the image one file at a time when it creates the node (dpkg's 615 files made
#    that take half a second). dpkg's database lives under /opt and stays usable through a link.
if [[ -d "${root}/var/lib/dpkg" && ! -L "${root}/var/lib/dpkg" ]]; then
  mkdir -p "${root}/opt/minilab"
  rm -rf "${root}/opt/minilab/dpkg"
  mv "${root}/var/lib/dpkg" "${root}/opt/minilab/dpkg"
  ln -s /opt/minilab/dpkg "${root}/var/lib/dpkg"
fi

log "done"
