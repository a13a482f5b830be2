// Command kube-controller-manager is the upstream Kubernetes kube-controller-manager built from the k8s.io/kubernetes module
// pinned in ../go.mod for the end-to-end test cluster (tests/e2e/cluster.py). main mirrors
// cmd/kube-controller-manager/controller-manager.go of that release.
package main

import (
	"os"
	_ "time/tzdata" // for CronJob Time Zone support

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // for JSON log format registration
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // for client metric registration
	_ "k8s.io/component-base/metrics/prometheus/version"  // for version metric registration
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"

	_ "argo-delivery/tools/e2e/kube-node/internal/stamp" // reports v1.X.Y
)

func main() {
	command := app.NewControllerManagerCommand()
	code := cli.Run(command)
	os.Exit(code)
}
