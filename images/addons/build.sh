#!/usr/bin/env bash
# Build the programs of minilab's add-ons from Go modules, each stamped the way
# its own Makefile does.
#
#   images/addons/build.sh OUTDIR
#
# Writes to OUTDIR:
#   metrics-server            sigs.k8s.io/metrics-server METRICS_SERVER_VERSION
#   ingress-controller        minilab's own, from images/addons/ingress (INGRESS_VERSION)
#   gateway-api-standard.yaml the standard channel of sigs.k8s.io/gateway-api
#                             GATEWAY_API_VERSION (config/crd/standard/*.yaml)
#   addons.json               versions, Go version
#
# Each project is built in a copy of its own module tree (its go.mod and
# go.sum, as its release builds use them), under ${MINILAB_GO_WORK:-OUTDIR/.src};
# the ingress controller in its own source directory, from its committed
# go.mod and go.sum.
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

# minilab's ingress controller (images/addons/ingress), and the Gateway API
# release whose CRDs go with it: its go.mod must require the same
# sigs.k8s.io/gateway-api (v1.7 needs a newer Go than the build machine's).
INGRESS_VERSION=v0.1.1
# The digest of its source (its .go files but the tests, go.mod, go.sum), as
# test/unit/ingress-controller-go.test.ts computes it: the image is named by
# the version, and a node keeps an image whose name it has, so a change to the
# source raises INGRESS_VERSION and sets this again.
INGRESS_SOURCE_SHA256=4132cf96d887e3af141e1eb2bc382e64c5e0ee711a7cdfb47345144b001c9634
GATEWAY_API_VERSION=v1.6.3
GATEWAY_API_MODULE=sigs.k8s.io/gateway-api

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

# The ingress controller: built from its own module (go.mod and go.sum are
# committed and complete, so -mod=readonly, over the lib's GOFLAGS).
step="building ingress-controller"
t=$SECONDS
ingress_src="$here/ingress"
[ -f "$ingress_src/go.mod" ] && [ -f "$ingress_src/go.sum" ] || die "$ingress_src has no go.mod and go.sum"
required=$(cd "$ingress_src" && go list -mod=readonly -m -f '{{.Version}}' "$GATEWAY_API_MODULE") ||
  die "could not read the $GATEWAY_API_MODULE version of $ingress_src/go.mod"
[ "$required" = "$GATEWAY_API_VERSION" ] ||
  die "$ingress_src/go.mod requires $GATEWAY_API_MODULE $required, not GATEWAY_API_VERSION=$GATEWAY_API_VERSION"
run ingress-controller "$ingress_src" go build -mod=readonly -trimpath -buildvcs=false \
  -ldflags "-s -w -X main.version=$INGRESS_VERSION" \
  -o "$OUTDIR/ingress-controller" .
got=$("$OUTDIR/ingress-controller" --version 2>&1) || die "ingress-controller --version failed: $got"
[ "$got" = "minilab ingress-controller $INGRESS_VERSION" ] || die "ingress-controller --version says '$got'"
say "ingress-controller $INGRESS_VERSION ($(size_mb "$OUTDIR/ingress-controller"))"
timings+=("ingress-controller: $((SECONDS - t))s")

# The Gateway API standard channel, as the release's CRD files are in the
# module: each file verbatim, joined by "---" into one YAML stream.
step="writing gateway-api-standard.yaml"
t=$SECONDS
json="$WORK/logs/download-gateway-api.json"
(cd "$WORK" && go mod download -json "$GATEWAY_API_MODULE@$GATEWAY_API_VERSION") >"$json" 2>&1 ||
  die "could not download $GATEWAY_API_MODULE@$GATEWAY_API_VERSION: $(cat "$json")"
crds=$(sed -n 's/^\t"Dir": "\(.*\)",$/\1/p' "$json")/config/crd/standard
for kind in gatewayclasses gateways httproutes referencegrants; do
  [ -f "$crds/gateway.networking.k8s.io_$kind.yaml" ] || die "$crds has no gateway.networking.k8s.io_$kind.yaml"
done
tmp="$OUTDIR/gateway-api-standard.yaml.tmp"
first=1
for f in "$crds"/*.yaml; do
  [ "$first" = 1 ] || echo "---"
  first=0
  cat "$f"
done >"$tmp"
mv "$tmp" "$OUTDIR/gateway-api-standard.yaml"
say "gateway-api-standard.yaml: $GATEWAY_API_VERSION, $(find "$crds" -maxdepth 1 -name '*.yaml' | wc -l) files, $(grep -c '^kind: CustomResourceDefinition$' "$OUTDIR/gateway-api-standard.yaml") CRDs"
timings+=("gateway-api: $((SECONDS - t))s")

step="writing addons.json"
cat >"$OUTDIR/addons.json" <<EOF
{
  "metricsServer": "$METRICS_SERVER_VERSION",
  "ingress": "$INGRESS_VERSION",
  "gatewayApi": "$GATEWAY_API_VERSION",
  "goVersion": "$(go env GOVERSION)"
}
EOF
say "done: ${timings[*]}"
