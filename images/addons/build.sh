#!/usr/bin/env bash
# Build the programs of minilab's add-ons from Go modules, each stamped the way
# its own Makefile does.
#
#   images/addons/build.sh OUTDIR
#
# Writes to OUTDIR:
#   metrics-server     sigs.k8s.io/metrics-server METRICS_SERVER_VERSION
#   addons.json        versions, Go version
#
# Each project is built in a copy of its own module tree (its go.mod and
# go.sum, as its release builds use them), under ${MINILAB_GO_WORK:-OUTDIR/.src}.
# A module that asks for a newer Go than the installed one gets it from the
# module proxy (GOTOOLCHAIN=auto).
#
# Environment:
#   MINILAB_GO_WORK    work dir for the module copies and logs
set -euo pipefail

# metrics-server 0.9, the newest release on the proxy (its client libraries
# are Kubernetes 0.36's).
METRICS_SERVER_VERSION=v0.9.1
METRICS_SERVER_MODULE=sigs.k8s.io/metrics-server

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../components/go-build-lib.sh
source "$here/../components/go-build-lib.sh"
LIB_NAME=addons

outdir_script "$@"

timings=()

# metrics-server: as its Makefile's build (-mod=readonly -trimpath, version
# stamped into client-go's version package). The proxy does not say which commit a
# version is, and the build date is the release's time on the proxy, so two
# builds are the same.
step="building metrics-server"
t=$SECONDS
module_tree "$METRICS_SERVER_MODULE" "$METRICS_SERVER_VERSION" metrics-server
released=$(sed -n 's/^\t"Time": "\(.*\)",$/\1/p' "$WORK/logs/download-metrics-server.json")
if [ -z "$released" ]; then
  released=$(cd "$WORK" && go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' "$METRICS_SERVER_MODULE@$METRICS_SERVER_VERSION")
fi
pkg=k8s.io/client-go/pkg/version
run metrics-server "$src" go build -mod=readonly -trimpath -buildvcs=false \
  -ldflags "-X $pkg.gitVersion=$METRICS_SERVER_VERSION -X $pkg.buildDate=$released -s -w" \
  -o "$OUTDIR/metrics-server" ./cmd/metrics-server
got=$("$OUTDIR/metrics-server" --version 2>&1) || die "metrics-server --version failed: $got"
grep -q "$METRICS_SERVER_VERSION" <<<"$got" || die "metrics-server --version says '$got'"
say "metrics-server $METRICS_SERVER_VERSION ($(size_mb "$OUTDIR/metrics-server"))"
timings+=("metrics-server: $((SECONDS - t))s")

step="writing addons.json"
cat >"$OUTDIR/addons.json" <<EOF
{
  "metricsServer": "$METRICS_SERVER_VERSION",
  "goVersion": "$(go env GOVERSION)"
}
EOF
say "done: ${timings[*]}"
