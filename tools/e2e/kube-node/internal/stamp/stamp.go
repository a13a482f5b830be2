// Package stamp sets the version that release builds of Kubernetes get from -ldflags
// (k8s.io/component-base/version), taken from the module's build info, so the node
// components report v1.X.Y like tools/kube-apiserver does. Import it for its side effect.
package stamp

import (
	"runtime/debug"
	_ "unsafe" // for go:linkname

	"k8s.io/component-base/version"
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
