// Command kustomize is upstream kustomize, built from its Go module so the test suite
// can check that `kubectl apply -k` (which embeds the same code) builds a bundle.
package main

import (
	"os"

	"sigs.k8s.io/kustomize/kustomize/v5/commands"
)

func main() {
	if err := commands.NewDefaultCommand().Execute(); err != nil {
		os.Exit(1)
	}
}
