// terraform-provider-fakecloud: the project's own OpenTofu provider, a "fake cloud" whose
// resources are real objects in a Kubernetes cluster (see README.md beside this file).
// It talks to the API server with net/http + encoding/json only, to keep the build small.
package main

import (
	"context"
	"flag"
	"log"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
)

// version is set by the Makefile (-X main.version=...), which also names the mirror folder.
var version = "dev"

func main() {
	debug := flag.Bool("debug", false, "run with support for debuggers (TF_REATTACH_PROVIDERS)")
	flag.Parse()
	err := providerserver.Serve(context.Background(), newProvider, providerserver.ServeOpts{
		Address:         "example.invalid/test/fakecloud",
		Debug:           *debug,
		ProtocolVersion: 6,
	})
	if err != nil {
		log.Fatal(err)
	}
}
