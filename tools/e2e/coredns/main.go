// Command coredns is CoreDNS (github.com/coredns/coredns, version pinned in go.mod) with only
// the plugins the end-to-end cluster's DNS uses: no `forward`, so it cannot send a query to
// any upstream resolver -- it answers for cluster.local from the Kubernetes API and nothing
// else. main mirrors upstream's coredns.go; the directive list keeps plugin.cfg's order.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)

func init() {
	dnsserver.Directives = []string{
		"reload", "ready", "health", "errors", "log", "cache", "kubernetes", "loop",
	}
}

func main() {
	coremain.Run()
}
