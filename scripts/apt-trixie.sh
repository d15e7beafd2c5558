# Sourced by the set-up scripts: install_from_trixie [APT OPTIONS] PACKAGE... installs packages
# from Debian trixie with `apt-get install -t trixie`. Where apt knows no trixie release (a
# bookworm machine), a trixie source is added first, pinned low (priority 100) so that nothing is
# taken from trixie unless asked for: the packages named, and what they need that bookworm's
# versions cannot give (docker.io, for one, brings trixie's libc6). The source uses the mirror this
# machine already uses: never name one here. The release apt knows decides, not /etc/os-release
# (which says trixie once trixie's base-files came in as such a dependency).
install_from_trixie() {
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-cache policy 2>/dev/null | grep -q 'n=trixie'; then
    local uri
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [ -n "$uri" ] || uri=$(awk '/^deb / && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    if [ -z "$uri" ]; then
      echo "setup: cannot find this machine's Debian mirror in the apt configuration" >&2
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
  fi
  apt-get update -qq
  apt-get install -y -qq -t trixie "$@" >/dev/null
}
