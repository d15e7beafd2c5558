# Shared by images/components/build.sh, images/runtime/build.sh,
# images/addons/build.sh and test/conformance/build.sh: logging,
# the Go environment, and running build commands with their output in logs.
# The sourcing script sets LIB_NAME (the prefix of every line it prints) and
# `step` (what it is doing, named if it fails).

say() { echo "${LIB_NAME}: $*"; }
die() {
  echo "${LIB_NAME}: error: $*" >&2
  exit 1
}

# go_build_setup OUTDIR : check the host, make OUTDIR and WORK (absolute),
# export the Go environment, and report the failing step on exit.
go_build_setup() {
  [ "$(uname -s)" = Linux ] || die "build on Linux (the binaries are run to check them)"
  command -v go >/dev/null || die "go is not installed"
  mkdir -p "$1"
  OUTDIR=$(cd "$1" && pwd)
  WORK=${MINILAB_GO_WORK:-$OUTDIR/.src}
  mkdir -p "$WORK/logs"
  WORK=$(cd "$WORK" && pwd)

  export GOTOOLCHAIN=auto # a module may ask for a newer Go than the installed one
  export GOFLAGS=-mod=mod
  export GOWORK=off
  export CGO_ENABLED=0
  export GOOS=linux
  unset GOARCH # built for this machine: the binaries are run to check them

  step="starting"
  trap on_exit EXIT
}

# outdir_script "$@" : a script whose one argument is OUTDIR (usage otherwise,
# exit 2), set up as go_build_setup does.
outdir_script() {
  if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
  fi
  go_build_setup "$1"
}

on_exit() {
  local rc=$?
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ]; then
    echo "${LIB_NAME}: FAILED while $step (exit $rc); logs in $WORK/logs" >&2
  fi
}

# run LOG DIR CMD... : run a command in DIR with its output in WORK/logs/LOG.log;
# on failure show the end of that log.
run() {
  local log="$WORK/logs/$1.log" dir=$2
  shift 2
  echo "+ (cd $dir && $*)" >>"$log"
  if ! (cd "$dir" && "$@") >>"$log" 2>&1; then
    echo "${LIB_NAME}: command failed: $*" >&2
    tail -n 40 "$log" | sed 's/^/  | /' >&2
    return 1
  fi
}

# modinfo MODULE@VERSION FORMAT : go list -m -f FORMAT, run outside any module.
modinfo() {
  (cd "$WORK" && go list -m -f "$2" "$1")
}

# gomod_header GOMODFILE : the go and godebug lines of a go.mod, so a wrapper
# module builds with the same language version and GODEBUG defaults as the
# upstream module's own main.
gomod_header() {
  awk '
    /^go [0-9]/ { print; next }
    /^godebug \(/ { inblock = 1; print; next }
    inblock { print; if ($0 ~ /^\)/) inblock = 0; next }
    /^godebug / { print }
  ' "$1"
}

# staging_replaces GOMODFILE VERSION : the replace block a module that requires
# k8s.io/kubernetes VERSION needs (GOMODFILE is that version's go.mod):
# k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them
# with ./staging/src/...; a dependent module pins them at v0.X.Y itself. Fails
# when the go.mod names too few of them to be Kubernetes'.
staging_replaces() {
  local block
  block=$(sed -n 's#^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\)[[:space:]]*=>[[:space:]]*\./staging/src/\(k8s\.io/[A-Za-z0-9._-]*\)[[:space:]]*$#\t\1 => \2 v0.'"${2#v1.}"'#p' "$1")
  [ "$(grep -c ' => k8s.io/' <<<"$block")" -ge 20 ] || die "found too few staging replace lines in $1"
  printf 'replace (\n%s\n)\n' "$block"
}

# prepare_module DIR SOURCE_DIR : DIR/go.mod.seed holds the generated go.mod;
# copy SOURCE_DIR's Go files in (none when it is DIR) and tidy, unless nothing changed since the
# last successful tidy.
prepare_module() {
  local dir=$1 src=$2 name
  name=$(basename "$dir")
  local f
  for f in "$src"/*.go; do
    cmp -s "$f" "$dir/$(basename "$f")" || cp "$f" "$dir/"
  done
  local key
  key=$(cat "$dir/go.mod.seed" "$dir"/*.go | sha256sum | cut -d' ' -f1)
  if [ -f "$dir/go.sum" ] && [ "$(cat "$dir/.seed-key" 2>/dev/null)" = "$key" ]; then
    return 0
  fi
  rm -f "$dir/go.sum" "$dir/.seed-key"
  cp "$dir/go.mod.seed" "$dir/go.mod"
  run "$name" "$dir" go mod tidy
  echo "$key" >"$dir/.seed-key"
}

size_mb() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.1f MB", b / 1000000 }'; }

# module_tree MODULE VERSION NAME : a writable copy of MODULE@VERSION's tree in
# WORK/src/NAME (downloaded through the module proxy), its path left in $src.
# (Not a $(...) function: errexit does not reach inside one.)
module_tree() {
  local dir json="$WORK/logs/download-$3.json"
  (cd "$WORK" && go mod download -json "$1@$2") >"$json" 2>&1 || die "could not download $1@$2: $(cat "$json")"
  dir=$(sed -n 's/^\t"Dir": "\(.*\)",$/\1/p' "$json")
  [ -d "$dir" ] || die "could not download $1@$2: $(cat "$json")"
  if [ ! -f "$WORK/src/$3/.version" ] || [ "$(cat "$WORK/src/$3/.version")" != "$2" ]; then
    rm -rf "$WORK/src/$3"
    mkdir -p "$WORK/src"
    cp -r "$dir" "$WORK/src/$3"
    chmod -R u+w "$WORK/src/$3"
    echo "$2" >"$WORK/src/$3/.version"
  fi
  src="$WORK/src/$3"
}
