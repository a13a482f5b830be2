// Command kubectl is the upstream kubectl, built from the k8s.io/kubectl module pinned in
// go.mod: the deploy step of vend-environment applies a Version's manifests with it
// (`apply --server-side`, `-k` for a kustomization) and the end-to-end image carries it.
// main mirrors cmd/kubectl/kubectl.go of the same Kubernetes release; init only stamps the
// version release builds get from -ldflags (k8s.io/kubectl v0.X.Y is Kubernetes v1.X.Y).
package main

import (
	"runtime/debug"
	"strings"
	_ "unsafe" // for go:linkname

	"k8s.io/component-base/cli"
	"k8s.io/component-base/version"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
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
		if dep.Path == "k8s.io/kubectl" && strings.HasPrefix(dep.Version, "v0.") {
			gitVersion, gitTreeState = "v1."+strings.TrimPrefix(dep.Version, "v0."), "clean"
			_ = version.SetDynamicVersion(gitVersion)
		}
	}
}

func main() {
	command := cmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		util.CheckErr(err)
	}
}
