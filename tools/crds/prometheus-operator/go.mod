// The prometheus-operator's CRDs (example/prometheus-operator-crd/*.yaml of its module), for the
// API-server tests of our PrometheusRule and PodMonitors (tests/kube_server.py
// upstream_crd_files). Nothing is built from it: `make tools` downloads the module.
// v0.85.0 is the newest version of the root module the Go module proxy serves here.
module argo-delivery/tools/crds/prometheus-operator

go 1.26.6

require github.com/prometheus-operator/prometheus-operator v0.85.0
