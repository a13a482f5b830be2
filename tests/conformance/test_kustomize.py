"""kustomize (built from its Go module by `make tools`) builds the bundle as `kubectl apply -k` would."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from tests.support import require_binary

pytestmark = pytest.mark.conformance


def test_kustomize_builds_the_bundle(default_bundle_dir, default_bundle):
    kustomize = require_binary("kustomize")
    built = subprocess.run([str(kustomize), "build", str(default_bundle_dir)], capture_output=True,
                           text=True, check=True).stdout
    kinds = sorted(d["kind"] for d in yaml.safe_load_all(built) if d)
    assert kinds == sorted(r["kind"] for r in default_bundle.resources)
    crds = subprocess.run([str(kustomize), "build", str(default_bundle_dir / "crds")],
                          capture_output=True, text=True, check=True).stdout
    assert [d["kind"] for d in yaml.safe_load_all(crds)] == ["CustomResourceDefinition"] * 3
