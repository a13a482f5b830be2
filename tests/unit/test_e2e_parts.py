"""The e2e cluster's parts (tests/e2e) stay on the project's pins; the image writer works."""

from __future__ import annotations

import hashlib
import json
import re
import sys
import tarfile
from pathlib import Path

from tests.support import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "tools" / "images"))
import mkimage  # noqa: E402


def _pin(gomod: str, module: str) -> str:
    text = (REPO_ROOT / gomod).read_text()
    m = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", text, re.M)
    assert m, f"{gomod} does not require {module}"
    return m.group(1)


def test_node_components_are_the_api_server_release():
    assert _pin("tools/e2e/kube-node/go.mod", "k8s.io/kubernetes") == \
        _pin("tools/kube-apiserver/go.mod", "k8s.io/kubernetes")


def test_argo_binaries_are_the_validated_versions():
    assert _pin("tools/e2e/argo-workflows/go.mod", "github.com/argoproj/argo-workflows/v4") == \
        _pin("tools/argo-workflows-lint/go.mod", "github.com/argoproj/argo-workflows/v4")
    assert _pin("tools/e2e/argo-events/go.mod", "github.com/argoproj/argo-events") == \
        _pin("tools/argo-events-lint/go.mod", "github.com/argoproj/argo-events")


def test_mkimage_writes_an_importable_layout(tmp_path: Path):
    root = tmp_path / "rootfs"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "hello").write_text("#!/bin/sh\necho hi\n")
    (root / "bin" / "hello").chmod(0o755)
    (root / "bin" / "hi").symlink_to("hello")
    (root / "dev").mkdir()
    (root / "dev" / "junk").write_text("left out")
    out = tmp_path / "img.tar"
    digest = mkimage.build(root, out, "e2e.local/hello:1", entrypoint=["/bin/hello"], user="65532")
    with tarfile.open(out) as tar:
        index = json.load(tar.extractfile("index.json"))
        desc = index["manifests"][0]
        assert desc["digest"] == digest
        assert desc["annotations"]["io.containerd.image.name"] == "e2e.local/hello:1"
        manifest_bytes = tar.extractfile(f"blobs/sha256/{digest.split(':')[1]}").read()
        assert "sha256:" + hashlib.sha256(manifest_bytes).hexdigest() == digest
        manifest = json.loads(manifest_bytes)
        layer = tar.extractfile(f"blobs/sha256/{manifest['layers'][0]['digest'].split(':')[1]}")
        with tarfile.open(fileobj=layer) as inner:
            names = inner.getnames()
        config = json.load(tar.extractfile(f"blobs/sha256/{manifest['config']['digest'][7:]}"))
    assert {"bin", "bin/hello", "bin/hi", "dev"} <= set(names)
    assert "dev/junk" not in names
    assert config["config"]["Entrypoint"] == ["/bin/hello"]
    assert config["config"]["User"] == "65532"
    # Same inputs, same image.
    again = mkimage.build(root, tmp_path / "again.tar", "e2e.local/hello:1",
                          entrypoint=["/bin/hello"], user="65532")
    assert again == digest


def test_the_airgap_images_key_follows_the_package_sources(tmp_path: Path):
    """Every file a build of the package reads is in the airgap image's key (pyproject.toml
    and the package-dir folders, caches left out), so an edit rebuilds the image."""
    from tests.e2e.images import _package_sources, _sources_digest

    files, readme = _package_sources()
    rel = {str(f.relative_to(REPO_ROOT)) for f in files}
    assert {"pyproject.toml", "argo_delivery/cli.py", "argo_delivery/__main__.py",
            "argo_delivery/skopeo.py"} <= rel
    assert any(r.startswith("templates/") for r in rel)
    assert any(r.startswith("sensors/") for r in rel)
    assert any(r.startswith("eventsources/") for r in rel)
    assert not any("__pycache__" in r or r.endswith(".pyc") for r in rel)
    assert readme == REPO_ROOT / "README.md" and readme not in files

    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("x = 1\n")
    b.write_text("y = 2\n")
    before = _sources_digest([a, b])
    assert _sources_digest([a, b]) == before
    a.write_text("x = 2\n")
    assert _sources_digest([a, b]) != before


def test_the_airgap_image_pins_the_dependencies_the_tests_run_with():
    from importlib.metadata import version

    from tests.e2e.images import _host_pins

    pins = dict(line.split("==") for line in _host_pins().splitlines())
    assert pins["click"] == version("click") and pins["pyyaml"] == version("pyyaml")
    assert not {"argo-delivery", "pip", "setuptools", "wheel"} & set(pins)
