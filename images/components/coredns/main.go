// Command coredns is CoreDNS with only the plugins a cluster DNS needs.
//
// kubeadm's default Corefile uses errors, health, ready, kubernetes,
// prometheus, forward, cache, loop, reload and loadbalance; log, debug,
// hosts, rewrite, template, bind and whoami are cheap and often added by
// hand. Dropping the cloud DNS back ends (route53, azure, clouddns), etcd,
// dnstap, geoip, sign and the rest makes the binary much smaller.
//
// images/components/build.sh copies this file into a generated wrapper module
// that requires github.com/coredns/coredns at the version kubeadm asks for.
package main

import (
	"fmt"
	"os"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/debug"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics" // directive "prometheus"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
	_ "github.com/coredns/coredns/plugin/rewrite"
	_ "github.com/coredns/coredns/plugin/template"
	_ "github.com/coredns/coredns/plugin/whoami"
)

// plugins are the directives kept, by Corefile name.
var plugins = []string{
	"bind", "cache", "debug", "errors", "forward", "health", "hosts",
	"kubernetes", "loadbalance", "log", "loop", "prometheus", "ready",
	"reload", "rewrite", "template", "whoami",
}

func init() {
	// Keep upstream's order (it is the order plugins run in for a query),
	// dropping the directives whose plugins are not compiled in.
	keep := map[string]bool{}
	for _, p := range plugins {
		keep[p] = true
	}
	var directives []string
	for _, d := range dnsserver.Directives {
		if keep[d] {
			directives = append(directives, d)
			delete(keep, d)
		}
	}
	if len(keep) > 0 {
		fmt.Fprintf(os.Stderr, "coredns: directives unknown to this CoreDNS version: %v\n", keep)
		os.Exit(1)
	}
	dnsserver.Directives = directives
}

func main() {
	coremain.Run()
}
