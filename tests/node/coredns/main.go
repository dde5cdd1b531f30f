// Command coredns is CoreDNS with only the plugins a test cluster's DNS needs. There is no
// forward plugin on purpose: a name outside cluster.local gets no answer from anywhere, so no
// pod can resolve (and then reach) a host outside the machine.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/ready"
)

func init() {
	// CoreDNS runs plugins in this list's order, so it keeps upstream's relative order
	// (core/dnsserver/zdirectives.go); a Corefile naming any other plugin fails to load.
	dnsserver.Directives = []string{"bind", "ready", "health", "errors", "loadbalance", "cache", "kubernetes"}
}

func main() {
	coremain.Run()
}
