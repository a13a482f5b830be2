// Velero's CRDs (config/crd/v1/bases/velero.io_*.yaml of its module), for the API-server tests
// of our Schedule (tests/kube_server.py upstream_crd_files). Nothing is built from it: `make
// tools` downloads the module. v1.18.3 is the newest version the Go module proxy serves here.
module argo-delivery/tools/crds/velero

go 1.26.6

require github.com/vmware-tanzu/velero v1.18.3
