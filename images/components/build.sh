#!/usr/bin/env bash
# Build every Go program a minilab node image needs, from the Go module proxy.
#
#   images/components/build.sh VERSION OUTDIR      e.g. build.sh v1.36.5 /tmp/out
#
# Writes to OUTDIR:
#   kube                    multi-call binary: kubeadm, kubelet, kubectl,
#                           kube-apiserver, kube-controller-manager,
#                           kube-scheduler, kube-proxy (argv[0] or first arg)
#   etcd                    etcd server at the tag kubeadm VERSION expects
#   coredns                 CoreDNS (cluster-DNS plugins only) at kubeadm's tag
#   pause                   minilab's own pod sandbox process
#   local-path-provisioner  rancher/local-path-provisioner
#   flanneld, install-conf  flannel's daemon and its CNI config installer
#   flannel                 flannel's CNI plugin
#   components.json         versions, kubeadm's exact image list, Go version
#
# Wrapper Go modules are generated in ${MINILAB_GO_WORK:-OUTDIR/.src}; their
# go.mod files are derived from the upstream modules' own go.mod files (the
# replace lines for k8s.io/kubernetes' staging modules included). Builds are
# incremental through Go's build and module caches.
#
# Environment:
#   MINILAB_GO_WORK          work dir for the wrapper modules and logs
#   MINILAB_LPP_VERSION      local-path-provisioner version (default below;
#                            "latest" asks the module proxy)
#   MINILAB_KUBE_GIT_COMMIT  commit stamped as gitCommit (the module proxy does
#                            not say which commit a version is; default empty)
set -euo pipefail

# Newest local-path-provisioner on the module proxy that builds (checked when
# this script was written). Pinned so a node image build is repeatable.
DEFAULT_LPP_VERSION=v0.0.30
# flannel, the pod network of clusters with several nodes (pinned release).
FLANNEL_VERSION=v0.28.10
# flannel's CNI plugin lives in github.com/flannel-io/cni-plugin, which the
# module proxy does not serve; the same plugin is plugins/meta/flannel in
# containernetworking/plugins up to v0.9.1 (it reads /run/flannel/subnet.env
# and delegates to bridge + host-local, unchanged since).
FLANNEL_CNI_MODULE_VERSION=v0.9.1

# The commands inside the multi-call kube binary (see kube/main.go).
KUBE_COMMANDS=(kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

say() { echo "components: $*"; }
die() {
  echo "components: error: $*" >&2
  exit 1
}

if [ $# -ne 2 ]; then
  echo "usage: $0 VERSION OUTDIR   (e.g. $0 v1.36.5 /tmp/out)" >&2
  exit 2
fi
VERSION=$1
OUTDIR=$2
# Same parse as upstream's hack/lib/version.sh: a pre-release gets minor "N+".
if [[ ! $VERSION =~ ^v([0-9]+)\.([0-9]+)\.([0-9]+)(-[0-9A-Za-z.-]+)?$ ]]; then
  die "VERSION must look like v1.36.5, got '$VERSION'"
fi
GIT_MAJOR=${BASH_REMATCH[1]}
GIT_MINOR=${BASH_REMATCH[2]}
[ -n "${BASH_REMATCH[4]}" ] && GIT_MINOR+="+"

[ "$(uname -s)" = Linux ] || die "build on Linux (the binaries are run to check them)"
command -v go >/dev/null || die "go is not installed"

mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
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
on_exit() {
  local rc=$?
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ]; then
    echo "components: FAILED while $step (exit $rc); logs in $WORK/logs" >&2
  fi
}
trap on_exit EXIT

# run LOG DIR CMD... : run a command in DIR with its output in WORK/logs/LOG.log;
# on failure show the end of that log.
run() {
  local log="$WORK/logs/$1.log" dir=$2
  shift 2
  echo "+ (cd $dir && $*)" >>"$log"
  if ! (cd "$dir" && "$@") >>"$log" 2>&1; then
    echo "components: command failed: $*" >&2
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

# prepare_module DIR SOURCE_DIR : DIR/go.mod.seed holds the generated go.mod;
# copy SOURCE_DIR's Go files in and tidy, unless nothing changed since the
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

# go_get_module NAME VERSION_KEY MODULE@VERSION GOMOD [EXTRA_GOMOD_LINES] : a
# wrapper module whose main packages are built straight from the dependency
# (no Go file of ours), so `go get` (not tidy) records what those packages
# need. EXTRA_GOMOD_LINES (replace directives) go into its go.mod as they are.
go_get_module() {
  local name=$1 key_extra=$2 modver=$3 gomod=$4 extra=${5:-}
  local dir="$WORK/$name"
  mkdir -p "$dir"
  {
    echo "// Generated by images/components/build.sh."
    echo "module minilab.local/components/$name"
    echo
    gomod_header "$gomod"
    [ -z "$extra" ] || printf '\n%s\n' "$extra"
  } >"$dir/go.mod.seed"
  local key
  key=$( (cat "$dir/go.mod.seed" && echo "$key_extra") | sha256sum | cut -d' ' -f1)
  if [ ! -f "$dir/go.sum" ] || [ "$(cat "$dir/.seed-key" 2>/dev/null)" != "$key" ]; then
    step="resolving $name's dependencies (go get)"
    rm -f "$dir/go.sum" "$dir/.seed-key"
    cp "$dir/go.mod.seed" "$dir/go.mod"
    run "$name" "$dir" go get "$modver"
    echo "$key" >"$dir/.seed-key"
  fi
}

size_mb() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.1f MB", b / 1000000 }'; }

T0=$SECONDS
timings=()

# ---------------------------------------------------------------- kube
step="resolving k8s.io/kubernetes@$VERSION"
k8s_info=$(modinfo "k8s.io/kubernetes@$VERSION" '{{.GoMod}} {{.Time.UTC.Format "2006-01-02T15:04:05Z"}}') ||
  die "k8s.io/kubernetes@$VERSION is not available from the Go module proxy"
k8s_gomod=${k8s_info% *}
BUILD_DATE=${k8s_info#* } # the release's time, not now: repeatable builds
staging_version="v0.${VERSION#v1.}"

step="generating the kube wrapper module"
dir="$WORK/kube"
mkdir -p "$dir"
{
  echo "// Generated by images/components/build.sh from k8s.io/kubernetes@$VERSION's go.mod."
  echo "module minilab.local/components/kube"
  echo
  gomod_header "$k8s_gomod"
  echo
  echo "require k8s.io/kubernetes $VERSION"
  echo
  echo "// k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces"
  echo "// them with ./staging/src/...; a dependent module must pin them itself."
  echo "replace ("
  sed -n 's#^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\)[[:space:]]*=>[[:space:]]*\./staging/src/\(k8s\.io/[A-Za-z0-9._-]*\)[[:space:]]*$#\t\1 => \2 '"$staging_version"'#p' "$k8s_gomod"
  echo ")"
} >"$dir/go.mod.seed"
nrepl=$(grep -c ' => k8s.io/' "$dir/go.mod.seed" || true)
[ "$nrepl" -ge 20 ] || die "found only $nrepl staging replace lines in $k8s_gomod"

kube_list=$(printf '%s, ' "${KUBE_COMMANDS[@]}")
say "building kube (${kube_list%, }) $VERSION"
t=$SECONDS
step="resolving kube's dependencies (go mod tidy)"
prepare_module "$dir" "$here/kube"
t_prep=$((SECONDS - t))
step="building kube"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$VERSION -X $pkg.gitMajor=$GIT_MAJOR -X $pkg.gitMinor=$GIT_MINOR"
  ldflags+=" -X $pkg.gitCommit=${MINILAB_KUBE_GIT_COMMIT:-} -X $pkg.gitTreeState=clean -X $pkg.buildDate=$BUILD_DATE"
done
run kube "$dir" go build -tags providerless -trimpath -buildvcs=false -ldflags "$ldflags" -o "$OUTDIR/kube" .
timings+=("kube: $((SECONDS - t))s (modules ${t_prep}s)")

step="checking kube"
verify="$WORK/verify"
rm -rf "$verify"
mkdir -p "$verify"
for c in "${KUBE_COMMANDS[@]}"; do ln -s "$OUTDIR/kube" "$verify/$c"; done
got=$("$OUTDIR/kube" kubeadm version -o short) || die "kube kubeadm version failed"
[ "$got" = "$VERSION" ] || die "kubeadm version -o short says '$got', want $VERSION"
got=$("$verify/kubelet" --version) || die "kubelet --version failed"
[ "$got" = "Kubernetes $VERSION" ] || die "kubelet --version says '$got', want 'Kubernetes $VERSION'"
for c in kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
  got=$("$verify/$c" --version) || die "$c --version failed"
  [ "$got" = "Kubernetes $VERSION" ] || die "$c --version says '$got', want 'Kubernetes $VERSION'"
done
got=$("$verify/kubectl" version --client -o yaml) || die "kubectl version --client failed"
grep -q "gitVersion: $VERSION" <<<"$got" || die "kubectl version --client does not say $VERSION"

step="asking kubeadm for its image list"
images=$("$OUTDIR/kube" kubeadm config images list --kubernetes-version "$VERSION" 2>>"$WORK/logs/kubeadm.log") ||
  die "kubeadm config images list failed (see $WORK/logs/kubeadm.log)"
image_tag() { grep -E "/$1:" <<<"$images" | head -n1 | sed 's/.*://'; }
ETCD_TAG=$(image_tag etcd)
COREDNS_TAG=$(image_tag coredns)
PAUSE_TAG=$(image_tag pause)
[ -n "$ETCD_TAG" ] && [ -n "$COREDNS_TAG" ] && [ -n "$PAUSE_TAG" ] ||
  die "could not find etcd, coredns and pause in kubeadm's image list: $images"
[[ $ETCD_TAG =~ ^([0-9]+\.[0-9]+\.[0-9]+)(-[0-9]+)?$ ]] || die "unexpected etcd tag $ETCD_TAG"
ETCD_VERSION=v${BASH_REMATCH[1]}
[[ $COREDNS_TAG =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "unexpected coredns tag $COREDNS_TAG"

# ---------------------------------------------------------------- etcd
say "building etcd $ETCD_VERSION (image tag $ETCD_TAG)"
t=$SECONDS
step="generating the etcd wrapper module"
etcd_gomod=$(modinfo "go.etcd.io/etcd/server/v3@$ETCD_VERSION" '{{.GoMod}}') ||
  die "go.etcd.io/etcd/server/v3@$ETCD_VERSION is not available from the Go module proxy"
dir="$WORK/etcd"
mkdir -p "$dir"
{
  echo "// Generated by images/components/build.sh."
  echo "module minilab.local/components/etcd"
  echo
  gomod_header "$etcd_gomod"
  echo
  echo "require go.etcd.io/etcd/server/v3 $ETCD_VERSION"
} >"$dir/go.mod.seed"
step="resolving etcd's dependencies (go mod tidy)"
prepare_module "$dir" "$here/etcd"
step="building etcd"
run etcd "$dir" go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$OUTDIR/etcd" .
got=$("$OUTDIR/etcd" --version) || die "etcd --version failed"
grep -q "^etcd Version: ${ETCD_VERSION#v}\$" <<<"$got" || die "etcd --version does not say ${ETCD_VERSION#v}: $got"
timings+=("etcd: $((SECONDS - t))s")

# ---------------------------------------------------------------- coredns
say "building coredns $COREDNS_TAG"
t=$SECONDS
step="generating the coredns wrapper module"
coredns_gomod=$(modinfo "github.com/coredns/coredns@$COREDNS_TAG" '{{.GoMod}}') ||
  die "github.com/coredns/coredns@$COREDNS_TAG is not available from the Go module proxy"
dir="$WORK/coredns"
mkdir -p "$dir"
{
  echo "// Generated by images/components/build.sh."
  echo "module minilab.local/components/coredns"
  echo
  gomod_header "$coredns_gomod"
  echo
  echo "require github.com/coredns/coredns $COREDNS_TAG"
} >"$dir/go.mod.seed"
step="resolving coredns's dependencies (go mod tidy)"
prepare_module "$dir" "$here/coredns"
step="building coredns"
run coredns "$dir" go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$OUTDIR/coredns" .
got=$("$OUTDIR/coredns" -version) || die "coredns -version failed"
grep -q "^CoreDNS-${COREDNS_TAG#v}\$" <<<"$got" || die "coredns -version does not say ${COREDNS_TAG#v}: $got"
got=$("$OUTDIR/coredns" -plugins) || die "coredns -plugins failed"
for p in errors health ready kubernetes prometheus forward cache loop reload loadbalance; do
  grep -Eq "^[[:space:]]*(dns\.)?$p\$" <<<"$got" || die "coredns lacks the $p plugin"
done
timings+=("coredns: $((SECONDS - t))s")

# ---------------------------------------------------------------- pause
say "building pause $PAUSE_TAG"
t=$SECONDS
step="building pause"
dir="$WORK/pause"
mkdir -p "$dir"
{
  echo "// Generated by images/components/build.sh."
  echo "module minilab.local/components/pause"
  echo
  echo "go 1.24"
} >"$dir/go.mod.seed"
prepare_module "$dir" "$here/pause"
run pause "$dir" go build -trimpath -buildvcs=false -ldflags "-s -w -X main.version=$PAUSE_TAG" -o "$OUTDIR/pause" .
got=$("$OUTDIR/pause" -v) || die "pause -v failed"
[ "$got" = "pause (minilab) $PAUSE_TAG" ] || die "pause -v says '$got'"
timings+=("pause: $((SECONDS - t))s")

# ---------------------------------------------------------------- local-path-provisioner
LPP_VERSION=${MINILAB_LPP_VERSION:-$DEFAULT_LPP_VERSION}
step="resolving local-path-provisioner@$LPP_VERSION"
lpp_info=$(modinfo "github.com/rancher/local-path-provisioner@$LPP_VERSION" '{{.Version}} {{.GoMod}}') ||
  die "github.com/rancher/local-path-provisioner@$LPP_VERSION is not available from the Go module proxy"
LPP_VERSION=${lpp_info%% *}
lpp_gomod=${lpp_info#* }
say "building local-path-provisioner $LPP_VERSION"
t=$SECONDS
go_get_module local-path-provisioner "$LPP_VERSION" "github.com/rancher/local-path-provisioner@$LPP_VERSION" "$lpp_gomod"
step="building local-path-provisioner"
run local-path-provisioner "$WORK/local-path-provisioner" go build -trimpath -buildvcs=false -ldflags "-s -w -X main.VERSION=$LPP_VERSION" -o "$OUTDIR/local-path-provisioner" github.com/rancher/local-path-provisioner
got=$("$OUTDIR/local-path-provisioner" --version) || die "local-path-provisioner --version failed"
grep -q "$LPP_VERSION" <<<"$got" || die "local-path-provisioner --version says '$got'"
timings+=("local-path-provisioner: $((SECONDS - t))s")

# ---------------------------------------------------------------- flannel
say "building flannel $FLANNEL_VERSION"
t=$SECONDS
step="resolving github.com/flannel-io/flannel@$FLANNEL_VERSION"
flannel_gomod=$(modinfo "github.com/flannel-io/flannel@$FLANNEL_VERSION" '{{.GoMod}}') ||
  die "github.com/flannel-io/flannel@$FLANNEL_VERSION is not available from the Go module proxy"
# The Tencent Cloud VPC SDK that flanneld links is not on the module proxy at
# any version: a stand-in module (flannel/tencentcloud-vpc-stub) replaces it;
# only that cloud backend is affected (it fails at run time).
rm -rf "$WORK/flannel/tencentcloud-vpc-stub"
mkdir -p "$WORK/flannel"
cp -r "$here/flannel/tencentcloud-vpc-stub" "$WORK/flannel/"
stub_key=$(cat "$here"/flannel/tencentcloud-vpc-stub/go.mod "$here"/flannel/tencentcloud-vpc-stub/*/*.go | sha256sum | cut -d' ' -f1)
go_get_module flannel "$FLANNEL_VERSION $stub_key" "github.com/flannel-io/flannel@$FLANNEL_VERSION" "$flannel_gomod" \
  "replace github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc => ./tencentcloud-vpc-stub"
step="building flanneld"
# As flannel's own Makefile does: on amd64 its UDP backend is cgo, so flanneld
# is built with cgo there and linked statically; elsewhere without.
flannel_cgo=0
flannel_ext=""
if [ "$(go env GOARCH)" = amd64 ]; then
  command -v cc >/dev/null || die "flanneld needs a C compiler on amd64 (apt-get install gcc libc6-dev)"
  flannel_cgo=1
  flannel_ext='-extldflags "-static"'
fi
CGO_ENABLED=$flannel_cgo run flannel "$WORK/flannel" go build -trimpath -buildvcs=false \
  -ldflags "-s -w -X github.com/flannel-io/flannel/pkg/version.Version=$FLANNEL_VERSION $flannel_ext" \
  -o "$OUTDIR/flanneld" github.com/flannel-io/flannel
run flannel "$WORK/flannel" go build -trimpath -buildvcs=false -ldflags "-s -w" \
  -o "$OUTDIR/install-conf" github.com/flannel-io/flannel/cmd/install_conf
got=$("$OUTDIR/flanneld" --version 2>&1) || die "flanneld --version failed: $got"
[ "$got" = "$FLANNEL_VERSION" ] || die "flanneld --version says '$got', want $FLANNEL_VERSION"
got=$("$OUTDIR/install-conf" 2>&1 || true)
grep -q "usage: .* <src> <dest>" <<<"$got" || die "install-conf does not print its usage: $got"
timings+=("flanneld, install-conf: $((SECONDS - t))s")

say "building the flannel CNI plugin (containernetworking/plugins $FLANNEL_CNI_MODULE_VERSION)"
t=$SECONDS
step="resolving github.com/containernetworking/plugins@$FLANNEL_CNI_MODULE_VERSION"
cni_gomod=$(modinfo "github.com/containernetworking/plugins@$FLANNEL_CNI_MODULE_VERSION" '{{.GoMod}}') ||
  die "github.com/containernetworking/plugins@$FLANNEL_CNI_MODULE_VERSION is not available from the Go module proxy"
go_get_module flannel-cni "$FLANNEL_CNI_MODULE_VERSION" \
  "github.com/containernetworking/plugins@$FLANNEL_CNI_MODULE_VERSION" "$cni_gomod"
cni_pkg=github.com/containernetworking/plugins/plugins/meta/flannel
step="checking that containernetworking/plugins@$FLANNEL_CNI_MODULE_VERSION has $cni_pkg"
got=$(cd "$WORK/flannel-cni" && go list -f '{{.Name}}' "$cni_pkg" 2>&1) ||
  die "containernetworking/plugins@$FLANNEL_CNI_MODULE_VERSION has no $cni_pkg: $got"
[ "$got" = main ] || die "$cni_pkg is package '$got', not a command"
step="building the flannel CNI plugin"
# Version stamped as the plugins' own build_linux.sh does.
run flannel-cni "$WORK/flannel-cni" go build -trimpath -buildvcs=false \
  -ldflags "-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$FLANNEL_CNI_MODULE_VERSION" \
  -o "$OUTDIR/flannel" "$cni_pkg"
# A CNI plugin run without CNI_COMMAND prints its name, version and CNI versions.
got=$("$OUTDIR/flannel" 2>&1 || true)
grep -q "^CNI flannel plugin $FLANNEL_CNI_MODULE_VERSION\$" <<<"$got" ||
  die "the flannel CNI plugin does not say 'CNI flannel plugin $FLANNEL_CNI_MODULE_VERSION': $got"
timings+=("flannel CNI plugin: $((SECONDS - t))s")

# ---------------------------------------------------------------- components.json
step="writing components.json"
GO_VERSION=$(go version "$OUTDIR/kube" | awk '{print $2}')
{
  echo "{"
  echo "  \"kubernetes\": \"$VERSION\","
  echo "  \"etcd\": \"$ETCD_TAG\","
  echo "  \"coredns\": \"$COREDNS_TAG\","
  echo "  \"pause\": \"$PAUSE_TAG\","
  echo "  \"localPathProvisioner\": \"$LPP_VERSION\","
  echo "  \"flannel\": \"$FLANNEL_VERSION\","
  echo "  \"flannelCniPlugin\": \"containernetworking/plugins $FLANNEL_CNI_MODULE_VERSION\","
  echo "  \"images\": ["
  sed 's/.*/    "&"/; $!s/$/,/' <<<"$images"
  echo "  ],"
  echo "  \"kubeCommands\": [$(printf '"%s", ' "${KUBE_COMMANDS[@]}" | sed 's/, $//')],"
  echo "  \"goVersion\": \"$GO_VERSION\""
  echo "}"
} >"$OUTDIR/components.json.tmp"
mv "$OUTDIR/components.json.tmp" "$OUTDIR/components.json"

step="done"
say "built in $((SECONDS - T0))s"
for t in "${timings[@]}"; do say "  $t"; done
for f in kube etcd coredns pause local-path-provisioner flanneld install-conf flannel; do
  printf 'components:   %-24s %s\n' "$f" "$(size_mb "$OUTDIR/$f")"
done
say "wrote $OUTDIR/components.json"
