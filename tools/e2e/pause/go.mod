module argo-delivery/tools/e2e/pause

go 1.26.0
