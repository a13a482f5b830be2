# argo-delivery: `make render` and `make test` work on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := .cache/bin
STAMPS := .cache/stamps

# Every tools/NAME/ with a go.mod is a Go program built into .cache/bin/NAME, except the
# OpenTofu ones (see `tofu` below), which have explicit rules.
TOFU_TOOL_NAMES := tofu terraform-provider-fakecloud
TOOL_NAMES := $(filter-out $(TOFU_TOOL_NAMES),$(patsubst tools/%/go.mod,%,$(wildcard tools/*/go.mod)))
TOOL_BINS := $(addprefix $(BIN)/,$(TOOL_NAMES))

.PHONY: render test test-fast tools tofu bench lint install debs clean

$(STAMPS)/venv: pyproject.toml
	@mkdir -p $(STAMPS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

install: $(STAMPS)/venv

# The embedded example platform, explicitly; `make render RENDER_ARGS="--config site.yaml"`
# renders another config.
RENDER_ARGS ?= --example
render: install
	$(PY) render.py $(RENDER_ARGS)

# Debian packages the test suite needs: etcd for the API server, git (with `git daemon`) for
# the flow tests; containerd, runc, the CNI plugins, iptables and conntrack for the node of the
# end-to-end cluster (tests/e2e), mmdebstrap and busybox-static for its images; skopeo,
# docker-registry, openssh-client (ssh-keygen) and iproute2 (ip netns, nstat) for air-gap.
debs:
	@missing=""; \
	command -v etcd >/dev/null || missing="$$missing etcd-server"; \
	command -v git >/dev/null || missing="$$missing git"; \
	command -v containerd >/dev/null || missing="$$missing containerd"; \
	command -v runc >/dev/null || missing="$$missing runc"; \
	test -x /usr/lib/cni/bridge || missing="$$missing containernetworking-plugins"; \
	command -v iptables >/dev/null || missing="$$missing iptables"; \
	command -v conntrack >/dev/null || missing="$$missing conntrack"; \
	command -v mmdebstrap >/dev/null || missing="$$missing mmdebstrap"; \
	test -x /bin/busybox || missing="$$missing busybox-static"; \
	command -v skopeo >/dev/null || missing="$$missing skopeo"; \
	command -v docker-registry >/dev/null || missing="$$missing docker-registry"; \
	command -v ssh-keygen >/dev/null || missing="$$missing openssh-client"; \
	command -v nstat >/dev/null || missing="$$missing iproute2"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

# CRDs from Go modules (tools/crds/*/go.mod): downloaded into the module cache, not built.
# Only the modules each go.mod requires, at the versions it names (checked against its go.sum),
# not `all`: for Velero that is its whole module graph (263 MB of zips, 1.3 GB unpacked, and
# a version of k8s.io/cli-runtime the proxy here refuses), for the prometheus-operator 98 MB.
CRD_MODULES := $(wildcard tools/crds/*/go.mod)
CRD_STAMPS := $(patsubst tools/crds/%/go.mod,$(STAMPS)/crds-%,$(CRD_MODULES))
CRD_REQUIRES := import json, sys; print(" ".join(r["Path"] + "@" + r["Version"] for r in json.load(sys.stdin)["Require"]))

tools: $(TOOL_BINS) $(BIN)/promtool $(CRD_STAMPS)

$(STAMPS)/crds-%: tools/crds/%/go.mod tools/crds/%/go.sum
	@mkdir -p $(STAMPS)
	cd tools/crds/$* && go mod download $$(go mod edit -json | $(PYTHON) -c '$(CRD_REQUIRES)')
	@touch $@

.SECONDEXPANSION:
$(BIN)/%: tools/%/go.mod tools/%/go.sum $$(wildcard tools/%/*.go)
	@mkdir -p $(BIN)
	cd tools/$* && go build -buildvcs=false -trimpath -o ../../$(BIN)/$* .

# kubectl (static) goes into the end-to-end image of the environment steps: the deploy step
# applies a Version's manifests with it (`-k` for a kustomization: kustomize is built in).
$(BIN)/kubectl: tools/kubectl/go.mod tools/kubectl/go.sum tools/kubectl/main.go
	@mkdir -p $(BIN)
	cd tools/kubectl && CGO_ENABLED=0 go build -buildvcs=false -trimpath -o ../../$@ .

# helm, for the image finder's Helm chart input (`helm template`). tools/helm is a wrapper
# module like tools/tofu (below): a `tool` line, the build names the main package. Helm's own
# build stamps its version with -X (else `helm version` says v4.3): the one go.mod requires.
$(BIN)/helm: tools/helm/go.mod tools/helm/go.sum
	@mkdir -p $(BIN)
	cd tools/helm && version=$$(go list -m -f '{{.Version}}' helm.sh/helm/v4) && \
	  CGO_ENABLED=0 go build -buildvcs=false -trimpath \
	  -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$$version" \
	  -o ../../$@ helm.sh/helm/v4/cmd/helm

# Prometheus and promtool, from one wrapper module like tools/helm: promtool for the rules'
# and dashboard's tests (`promtool test rules`, tests/monitoring), the server for the live proof
# on the end-to-end cluster (tests/e2e/test_z_monitoring.py). One `go build` of both, with the
# release's netgo tag and `remove_all_sd` (Prometheus's own build tag that leaves out the
# cloud service discoveries: static targets are all we scrape), the version stamped; the UI's
# assets are not built in (the HTTP API is what the tests use). About 4 minutes cold.
$(BIN)/prometheus: tools/prometheus/go.mod tools/prometheus/go.sum
	@mkdir -p $(BIN)
	cd tools/prometheus && version=$$(go list -m -f '{{.Version}}' github.com/prometheus/prometheus) && \
	  CGO_ENABLED=0 go build -buildvcs=false -trimpath -tags netgo,remove_all_sd \
	  -ldflags "-s -w -X github.com/prometheus/common/version.Version=$$version" \
	  -o ../../$(BIN)/ github.com/prometheus/prometheus/cmd/prometheus \
	  github.com/prometheus/prometheus/cmd/promtool
	@touch $(BIN)/promtool

$(BIN)/promtool: $(BIN)/prometheus

# ---- OpenTofu, offline (tests/tofu.py): the CLI and the project's fake cloud provider, laid out
# as a filesystem mirror, so that no registry is ever asked. tools/tofu is a wrapper module
# (`tool` directive; the godebug block and the replace are copied from OpenTofu's go.mod, which
# only apply in the main module): its main package lives in OpenTofu's module, so the build
# names it instead of `.`. version.dev=no makes it say v1.12.6, not v1.12.6-dev.
TOFU_MIRROR := .cache/tofu-mirror
FAKECLOUD_VERSION := 0.1.0
FAKECLOUD_MIRRORED := $(TOFU_MIRROR)/example.invalid/test/fakecloud/$(FAKECLOUD_VERSION)/linux_amd64/terraform-provider-fakecloud_v$(FAKECLOUD_VERSION)

$(BIN)/tofu: tools/tofu/go.mod tools/tofu/go.sum
	@mkdir -p $(BIN)
	cd tools/tofu && CGO_ENABLED=0 go build -buildvcs=false -trimpath \
	  -ldflags "-s -w -X github.com/opentofu/opentofu/version.dev=no" \
	  -o ../../$@ github.com/opentofu/opentofu/cmd/tofu

$(BIN)/terraform-provider-fakecloud: tools/terraform-provider-fakecloud/go.mod \
		tools/terraform-provider-fakecloud/go.sum $(wildcard tools/terraform-provider-fakecloud/*.go)
	@mkdir -p $(BIN)
	cd tools/terraform-provider-fakecloud && CGO_ENABLED=0 go build -buildvcs=false -trimpath \
	  -ldflags "-s -w -X main.version=$(FAKECLOUD_VERSION)" -o ../../$@ .

$(FAKECLOUD_MIRRORED): $(BIN)/terraform-provider-fakecloud
	@mkdir -p $(@D)
	cp $< $@

tofu: $(BIN)/tofu $(FAKECLOUD_MIRRORED)

# ---- end-to-end cluster (tests/e2e, see tests/e2e/README.md): not part of `make tools`.
# Go modules under tools/e2e/ hold several commands each, so the `tools/*/go.mod` wildcard
# above does not see them; each binary has its explicit rule here.
KUBE_NODE := tools/e2e/kube-node
KUBE_NODE_BINS := kubelet kube-controller-manager kube-scheduler kube-proxy
KUBE_NODE_DEPS := $(KUBE_NODE)/go.mod $(KUBE_NODE)/go.sum $(wildcard $(KUBE_NODE)/internal/*/*.go)

$(addprefix $(BIN)/,$(KUBE_NODE_BINS)): $(BIN)/%: $(KUBE_NODE)/%/main.go $(KUBE_NODE_DEPS)
	@mkdir -p $(BIN)
	cd $(KUBE_NODE) && go build -buildvcs=false -trimpath -o ../../../$(BIN)/$* ./$*

# Everything that goes into an image is static (CGO_ENABLED=0): the images have no libc.
$(BIN)/e2e-pause: tools/e2e/pause/go.mod tools/e2e/pause/main.go
	@mkdir -p $(BIN)
	cd tools/e2e/pause && CGO_ENABLED=0 go build -buildvcs=false -trimpath -o ../../../$@ .

# Argo Workflows: both binaries from one patched copy of the module (see prepare-src.py).
ARGO_WF := tools/e2e/argo-workflows
$(BIN)/workflow-controller $(BIN)/argoexec &: $(ARGO_WF)/go.mod $(ARGO_WF)/go.sum $(ARGO_WF)/prepare-src.py
	@mkdir -p $(BIN)
	modfile=$$($(PYTHON) $(ARGO_WF)/prepare-src.py) && cd $(ARGO_WF) && \
	  CGO_ENABLED=0 go build -buildvcs=false -trimpath -modfile=$$modfile -o ../../../$(BIN)/ \
	    github.com/argoproj/argo-workflows/v4/cmd/workflow-controller \
	    github.com/argoproj/argo-workflows/v4/cmd/argoexec
	@touch $(BIN)/workflow-controller $(BIN)/argoexec

# Cluster DNS: CoreDNS with a few plugins and no `forward` (tools/e2e/coredns/main.go).
$(BIN)/coredns: tools/e2e/coredns/go.mod tools/e2e/coredns/go.sum tools/e2e/coredns/main.go
	@mkdir -p $(BIN)
	cd tools/e2e/coredns && CGO_ENABLED=0 go build -buildvcs=false -trimpath -o ../../../$@ .

# The JetStream EventBus server, at the version Argo Events' controller config pins.
$(BIN)/nats-server: tools/e2e/nats-server/go.mod tools/e2e/nats-server/go.sum
	@mkdir -p $(BIN)
	cd tools/e2e/nats-server && CGO_ENABLED=0 go build -buildvcs=false -trimpath -o ../../../$@ \
	  github.com/nats-io/nats-server/v2

# Argo Events: one binary for the controller, EventSource and Sensor pods.
$(BIN)/argo-events: tools/e2e/argo-events/go.mod tools/e2e/argo-events/go.sum
	@mkdir -p $(BIN)
	cd tools/e2e/argo-events && CGO_ENABLED=0 go build -buildvcs=false -trimpath -o ../../../$@ \
	  github.com/argoproj/argo-events/cmd

# S3-compatible artifact repository (Apache-2.0, posix backend).
$(BIN)/versitygw: tools/e2e/versitygw/go.mod tools/e2e/versitygw/go.sum
	@mkdir -p $(BIN)
	cd tools/e2e/versitygw && go build -buildvcs=false -trimpath -o ../../../$@ \
	  github.com/versity/versitygw/cmd/versitygw

E2E_BINS := $(BIN)/kube-apiserver $(addprefix $(BIN)/,$(KUBE_NODE_BINS)) $(BIN)/e2e-pause \
	$(BIN)/workflow-controller $(BIN)/argoexec $(BIN)/coredns $(BIN)/nats-server $(BIN)/argo-events \
	$(BIN)/versitygw $(BIN)/kubectl
# The air-gap image (tests/e2e/images.py airgap_image) carries kustomize, and helm once
# tools/helm exists.
E2E_BINS += $(BIN)/kustomize $(filter $(BIN)/helm,$(TOOL_BINS))
# The session's Prometheus scrapes the workflow controller (tests/e2e/test_z_monitoring.py).
E2E_BINS += $(BIN)/prometheus

.PHONY: e2e-tools e2e cluster-up cluster-down
# tofu: the e2e cluster's tofu image carries OpenTofu and the provider mirror.
e2e-tools: $(E2E_BINS) tofu

# The end-to-end tests on the real single-node cluster (root; see tests/e2e/README.md).
e2e: install e2e-tools debs
	$(PY) -m pytest -m e2e tests/e2e

# A cluster to poke at by hand: prints the kubeconfig to export; `make cluster-down` stops it.
cluster-up: install e2e-tools debs
	$(PY) -m tests.e2e.cluster up

cluster-down:
	$(PY) -m tests.e2e.cluster down

# Everything: the unit, golden, conformance, API-server, security and flow tests, then the
# end-to-end tests on a real single-node cluster (started and stopped by the test session).
test: install tools tofu e2e-tools debs
	$(PY) -m pytest
	$(PY) -m pytest -m e2e tests/e2e

# The edit loop: unit and golden tests only (no Go tools, no API server).
test-fast: install
	$(PY) -m pytest -q tests/unit

bench: install tools e2e-tools debs
	$(PY) bench/run.py
	$(PY) bench/heads.py
	$(PY) bench/reaper.py
	$(PY) bench/streams.py
	$(PY) bench/vend.py
	$(PY) bench/airgap.py
	$(PY) bench/state.py
	$(PY) bench/load.py

# The code (ruff) and the example bundle (argo-delivery lint, Argo's validators included).
lint: install tools
	$(VENV)/bin/ruff check .
	$(PY) -m argo_delivery.cli lint --example

clean:
	rm -rf dist .cache
