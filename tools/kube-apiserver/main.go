// Command kube-apiserver is the upstream Kubernetes API server, built from the
// k8s.io/kubernetes module pinned in go.mod for the test suite (see tests/kube_server.py).
// main mirrors cmd/kube-apiserver/apiserver.go of that release; init only stamps the
// version that release builds get from -ldflags, taken from the module's build info.
package main

import (
	"os"
	"runtime/debug"
	_ "time/tzdata" // for timeZone support in CronJob
	_ "unsafe"      // for go:linkname

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // for JSON log format registration
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // load all the prometheus client-go plugins
	_ "k8s.io/component-base/metrics/prometheus/version"  // for version metric registration
	"k8s.io/component-base/version"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

//go:linkname gitVersion k8s.io/component-base/version.gitVersion
var gitVersion string

//go:linkname gitTreeState k8s.io/component-base/version.gitTreeState
var gitTreeState string

func init() {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	for _, dep := range info.Deps {
		if dep.Path == "k8s.io/kubernetes" {
			gitVersion, gitTreeState = dep.Version, "clean"
			_ = version.SetDynamicVersion(dep.Version)
		}
	}
}

func main() {
	command := app.NewAPIServerCommand()
	code := cli.Run(command)
	os.Exit(code)
}
