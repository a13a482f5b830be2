// Command pause is the sandbox ("pause") container of the end-to-end test cluster: it holds
// a pod's namespaces, reaps zombies and exits on SIGINT/SIGTERM, like Kubernetes'
// build/pause/linux/pause.c. Built statically (CGO_ENABLED=0) into a one-file image by
// tests/e2e/images.py, so no registry is needed.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		os.Stdout.WriteString("pause (argo-delivery e2e)\n")
		return
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
