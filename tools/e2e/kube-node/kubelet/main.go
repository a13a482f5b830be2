// Command kubelet is the upstream Kubernetes kubelet built from the k8s.io/kubernetes module
// pinned in ../go.mod for the end-to-end test cluster (tests/e2e/cluster.py). main mirrors
// cmd/kubelet/kubelet.go of that release.
package main

import (
	"context"
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // for JSON log format registration
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // for client metric registration
	_ "k8s.io/component-base/metrics/prometheus/version"  // for version metric registration
	"k8s.io/kubernetes/cmd/kubelet/app"

	_ "argo-delivery/tools/e2e/kube-node/internal/stamp" // reports v1.X.Y
)

func main() {
	command := app.NewKubeletCommand(context.Background())
	code := cli.Run(command)
	os.Exit(code)
}
