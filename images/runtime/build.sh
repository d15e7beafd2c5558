#!/usr/bin/env bash
# Build the node's container runtime from Go modules: containerd (with ctr and
# the runc shim), runc, crictl and the registry that mirrors loaded images to
# the node's containerd, each stamped the way its own Makefile does.
#
#   images/runtime/build.sh OUTDIR
#
# Writes to OUTDIR:
#   containerd, containerd-shim-runc-v2, ctr   containerd CONTAINERD_VERSION
#   runc                                       runc RUNC_VERSION (cgo, static, libseccomp)
#   crictl                                     cri-tools CRICTL_VERSION
#   registry                                   distribution REGISTRY_VERSION
#   containerd.service                         containerd's own systemd unit
#   runtime.json                               versions, libseccomp, Go version
#
# Each project is built in a copy of its own module tree (its go.mod and
# go.sum, as its release builds use them), under ${MINILAB_GO_WORK:-OUTDIR/.src}.
#
# Environment:
#   MINILAB_GO_WORK              work dir for the module copies and logs
#   MINILAB_CONTAINERD_REVISION  commit stamped as containerd's revision, and
#   MINILAB_RUNC_COMMIT          runc's "commit:" line (the module proxy does
#                                not say which commit a version is; default empty)
set -euo pipefail

# containerd 2.3 is the long-term-support line (supported until 2028; its
# release notes list it for Kubernetes 1.36 and keep cgroup v1 support, which
# hosts like the one this was written on need). 2.4 is newer, not LTS.
CONTAINERD_VERSION=v2.3.7
# runc 1.4: what kind's node image ships. 1.5's Makefile builds with the
# libpathrs tag, a Rust library no Go module provides.
RUNC_VERSION=v1.4.4
# cri-tools follows Kubernetes' minor versions; v1.37.0 is the newest on the proxy.
CRICTL_VERSION=v1.37.0
# distribution (the CNCF registry) 3.1, the newest line on the proxy: the
# node's pull-through mirror of loaded images (and the registry add-on's).
REGISTRY_VERSION=v3.1.2

CONTAINERD_MODULE=github.com/containerd/containerd/v2
RUNC_MODULE=github.com/opencontainers/runc
CRICTL_MODULE=sigs.k8s.io/cri-tools
REGISTRY_MODULE=github.com/distribution/distribution/v3

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../components/go-build-lib.sh
source "$here/../components/go-build-lib.sh"
LIB_NAME=runtime

outdir_script "$@"

timings=()

# containerd: as its Makefile's release build, plus CGO_ENABLED=0 so the
# binaries are static (the btrfs snapshotter, which needs cgo, is left out; a
# node uses overlayfs). The shim gets the Makefile's no_grpc tag.
step="building containerd"
t=$SECONDS
module_tree "$CONTAINERD_MODULE" "$CONTAINERD_VERSION" containerd
pkg=$CONTAINERD_MODULE
stamp="-X $pkg/version.Version=$CONTAINERD_VERSION -X $pkg/version.Revision=${MINILAB_CONTAINERD_REVISION:-} -X $pkg/version.Package=$pkg"
for cmd in containerd ctr; do
  run containerd "$src" go build -mod=readonly -trimpath -buildvcs=false -tags "urfave_cli_no_docs" \
    -ldflags "$stamp -s -w" -o "$OUTDIR/$cmd" "./cmd/$cmd"
done
run containerd "$src" go build -mod=readonly -trimpath -buildvcs=false -tags "urfave_cli_no_docs no_grpc" \
  -ldflags "$stamp -s -w" -o "$OUTDIR/containerd-shim-runc-v2" ./cmd/containerd-shim-runc-v2
cp "$src/containerd.service" "$OUTDIR/containerd.service"
got=$("$OUTDIR/containerd" --version)
[[ $got == "containerd $pkg $CONTAINERD_VERSION"* ]] || die "containerd --version says '$got'"
got=$("$OUTDIR/ctr" --version)
[ "$got" = "ctr $pkg $CONTAINERD_VERSION" ] || die "ctr --version says '$got'"
got=$("$OUTDIR/containerd-shim-runc-v2" -v)
grep -qx "  Version:  $CONTAINERD_VERSION" <<<"$got" || die "containerd-shim-runc-v2 -v says '$got'"
say "containerd $CONTAINERD_VERSION"
timings+=("containerd: $((SECONDS - t))s")

# runc: as its Makefile's `static` target (cgo for nsenter and libseccomp,
# static PIE on amd64 and arm64, tags seccomp urfave_cli_no_docs netgo osusergo).
step="building runc"
t=$SECONDS
command -v "$(go env CC)" >/dev/null || die "runc needs a C compiler (apt-get install gcc libc6-dev)"
pkg-config --exists libseccomp 2>/dev/null && [ -n "$(find /usr/lib /usr/local/lib -name libseccomp.a 2>/dev/null | head -n1)" ] ||
  die "runc needs libseccomp's static library (apt-get install libseccomp-dev pkg-config)"
module_tree "$RUNC_MODULE" "$RUNC_VERSION" runc
mode=() link=(-extldflags -static)
case $(go env GOARCH) in
  amd64 | arm64) mode=(-buildmode=pie) link=(-linkmode external -extldflags -static-pie) ;;
esac
commit=${MINILAB_RUNC_COMMIT:-}
CGO_ENABLED=1 run runc "$src" go build -mod=readonly -trimpath -buildvcs=false "${mode[@]}" \
  -tags "seccomp urfave_cli_no_docs netgo osusergo" \
  -ldflags "${commit:+-X main.gitCommit=$commit} ${link[*]} -s -w" -o "$OUTDIR/runc" .
got=$("$OUTDIR/runc" --version)
[ "$(head -n1 <<<"$got")" = "runc version ${RUNC_VERSION#v}" ] || die "runc --version says '$got'"
libseccomp=$(sed -n 's/^libseccomp: //p' <<<"$got")
[ -n "$libseccomp" ] || die "runc was built without libseccomp: '$got'"
# static: no program interpreter, no shared libraries needed (readelf failing stops the script)
headers=$(readelf -lW "$OUTDIR/runc")
dynamic=$(readelf -dW "$OUTDIR/runc")
if grep -q INTERP <<<"$headers" || grep -q NEEDED <<<"$dynamic"; then
  die "runc is dynamically linked: $(grep NEEDED <<<"$dynamic" | tr '\n' ' ')"
fi
say "runc $RUNC_VERSION (libseccomp $libseccomp)"
timings+=("runc: $((SECONDS - t))s")

# crictl: as cri-tools' Makefile (CGO_ENABLED=0, -trimpath, version without the v).
step="building crictl"
t=$SECONDS
module_tree "$CRICTL_MODULE" "$CRICTL_VERSION" cri-tools
run crictl "$src" go build -mod=readonly -trimpath -buildvcs=false \
  -ldflags "-X $CRICTL_MODULE/pkg/version.Version=${CRICTL_VERSION#v} -s -w" -o "$OUTDIR/crictl" ./cmd/crictl
got=$("$OUTDIR/crictl" --version)
[ "$got" = "crictl version ${CRICTL_VERSION#v}" ] || die "crictl --version says '$got'"
say "crictl $CRICTL_VERSION"
timings+=("crictl: $((SECONDS - t))s")

# registry: as distribution's Dockerfile (CGO_ENABLED=0, -trimpath, -s -w, the
# Makefile's version stamps; its revision is left empty like the others'), with
# registry/main.go as the command: upstream's main with the filesystem and
# in-memory storage drivers only (25 MB where upstream's, with the cloud
# drivers, is 56 MB).
step="building registry"
t=$SECONDS
module_tree "$REGISTRY_MODULE" "$REGISTRY_VERSION" distribution
mkdir -p "$src/cmd/minilab-registry"
cp "$here/registry/main.go" "$src/cmd/minilab-registry/main.go"
run registry "$src" go build -mod=readonly -trimpath -buildvcs=false \
  -ldflags "-X $REGISTRY_MODULE/version.version=$REGISTRY_VERSION -X $REGISTRY_MODULE/version.mainpkg=$REGISTRY_MODULE -s -w" \
  -o "$OUTDIR/registry" ./cmd/minilab-registry
got=$("$OUTDIR/registry" --version)
[ "$got" = "$OUTDIR/registry $REGISTRY_MODULE $REGISTRY_VERSION" ] || die "registry --version says '$got'"
say "registry $REGISTRY_VERSION"
timings+=("registry: $((SECONDS - t))s")

step="writing runtime.json"
cat >"$OUTDIR/runtime.json" <<EOF
{
  "containerd": "$CONTAINERD_VERSION",
  "runc": "$RUNC_VERSION",
  "crictl": "$CRICTL_VERSION",
  "registry": "$REGISTRY_VERSION",
  "libseccomp": "$libseccomp",
  "goVersion": "$(go version "$OUTDIR/containerd" | awk '{ print $2 }')"
}
EOF
for f in containerd containerd-shim-runc-v2 ctr runc crictl registry; do say "$f $(size_mb "$OUTDIR/$f")"; done
say "times: ${timings[*]}"
