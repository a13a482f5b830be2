# argo-delivery: `make render` and `make test` work on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := .cache/bin
STAMPS := .cache/stamps

# Every tools/NAME/ with a go.mod is a Go program built into .cache/bin/NAME.
TOOL_NAMES := $(patsubst tools/%/go.mod,%,$(wildcard tools/*/go.mod))
TOOL_BINS := $(addprefix $(BIN)/,$(TOOL_NAMES))

.PHONY: render test test-fast tools bench lint install debs clean

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
# the flow tests.
debs:
	@missing=""; \
	command -v etcd >/dev/null || missing="$$missing etcd-server"; \
	command -v git >/dev/null || missing="$$missing git"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

tools: $(TOOL_BINS)

.SECONDEXPANSION:
$(BIN)/%: tools/%/go.mod tools/%/go.sum $$(wildcard tools/%/*.go)
	@mkdir -p $(BIN)
	cd tools/$* && go build -buildvcs=false -trimpath -o ../../$(BIN)/$* .

test: install tools debs
	$(PY) -m pytest

# The edit loop: unit and golden tests only (no Go tools, no API server).
test-fast: install
	$(PY) -m pytest -q tests/unit

bench: install
	$(PY) bench/run.py
	$(PY) bench/heads.py

# The code (ruff) and the example bundle (argo-delivery lint, Argo's validators included).
lint: install tools
	$(VENV)/bin/ruff check .
	$(PY) -m argo_delivery.cli lint --example

clean:
	rm -rf dist .cache
