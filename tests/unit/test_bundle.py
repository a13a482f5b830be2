"""The bundle: golden files, determinism, immutability, atomic writes, --check, index files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from argo_delivery import bundle as bundle_module
from argo_delivery.bundle import BundleExistsError, build_bundle, check_bundle, write_bundle
from argo_delivery.cli import main
from argo_delivery.config import default_config_text, parse_config
from argo_delivery.naming import LABEL_BUNDLE, LABEL_PART_OF, LABEL_VERSION
from tests.support import REPO_ROOT

GOLDEN = REPO_ROOT / "tests" / "golden" / "default-bundle"
UPDATE = os.environ.get("ARGO_DELIVERY_UPDATE_GOLDEN") == "1"


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_golden_default_bundle(default_bundle):
    """The rendered default bundle, byte for byte. Regenerate: ARGO_DELIVERY_UPDATE_GOLDEN=1."""
    if UPDATE:
        assert not os.environ.get("CI"), "golden files are never regenerated in CI"
        shutil.rmtree(GOLDEN, ignore_errors=True)
        for path, data in default_bundle.files.items():
            (GOLDEN / path).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / path).write_bytes(data)
    golden = tree(GOLDEN)
    assert sorted(golden) == sorted(default_bundle.files), "files added or removed"
    for path, data in default_bundle.files.items():
        assert golden[path] == data, f"{path} differs from the golden file"


def test_render_is_identical_across_hash_seeds_and_yaml_emitters(tmp_path):
    renders = {}
    for seed in ("0", "1", "4242"):  # at once: each is mostly the import of hera
        out = tmp_path / f"seed-{seed}"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        renders[out] = subprocess.Popen([sys.executable, str(REPO_ROOT / "render.py"), "--example",
                                         "--out", str(out)],
                                        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        cwd=tmp_path)
    for process in renders.values():
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 0, output.decode()
    outputs = [tree(out) for out in renders]
    assert outputs[0] == outputs[1] == outputs[2]
    pure = build_bundle(parse_config((REPO_ROOT / "argo_delivery/data/default-platform.yaml")
                                     .read_text()), use_c_yaml=False)
    assert {f"0.1.0/{p}": d for p, d in pure.files.items()} == outputs[0]


def test_every_resource_is_labelled_and_at_a_stable_path(default_bundle):
    for resource in default_bundle.resources:
        labels = resource["metadata"]["labels"]
        assert labels[LABEL_PART_OF] == "argo-delivery"
        assert labels[LABEL_VERSION] == default_bundle.version
        assert labels[LABEL_BUNDLE] == default_bundle.name
    index = json.loads(default_bundle.files["bundle.json"])
    for entry in index["resources"]:
        on_disk = yaml.safe_load(default_bundle.files[entry["path"]])
        assert (on_disk["kind"], on_disk["metadata"]["name"]) == (entry["kind"], entry["name"])
        assert on_disk["metadata"].get("namespace") == entry["namespace"]
    assert index["images"] == default_bundle.files["images.txt"].decode().split()
    assert index["digest"] == default_bundle.digest


def test_sha256sums_verify_with_coreutils(default_bundle_dir):
    result = subprocess.run(["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=default_bundle_dir,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    listed = {line.split("  ", 1)[1] for line in (default_bundle_dir / "SHA256SUMS").read_text().splitlines()}
    assert listed == set(tree(default_bundle_dir)) - {"SHA256SUMS"}


def changed_config(version: str = "0.1.0", extra_branch: str = "main") -> str:
    text = (REPO_ROOT / "argo_delivery/data/default-platform.yaml").read_text()
    text = text.replace("version: 0.1.0", f"version: {version}")
    return text.replace("branch: release", f"branch: {extra_branch}")


def test_rerender_identical_is_a_noop_and_different_content_must_bump(tmp_path):
    first = write_bundle(build_bundle(parse_config(changed_config())), tmp_path)
    assert first.created
    before = tree(first.path)
    mtimes = {p: p.stat().st_mtime_ns for p in first.path.rglob("*")}
    again = write_bundle(build_bundle(parse_config(changed_config())), tmp_path)
    assert not again.created
    assert {p: p.stat().st_mtime_ns for p in first.path.rglob("*")} == mtimes
    with pytest.raises(BundleExistsError, match="bump bundle.version"):
        write_bundle(build_bundle(parse_config(changed_config(extra_branch="hotfix"))), tmp_path)
    assert tree(first.path) == before
    bumped = write_bundle(build_bundle(parse_config(changed_config("0.1.1", "hotfix"))), tmp_path)
    assert bumped.created and bumped.path.name == "0.1.1"


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    bundle = build_bundle(parse_config(changed_config()))
    real_write = Path.write_bytes
    calls = []

    def failing_write(self, data):
        calls.append(self)
        if len(calls) == 5:
            raise OSError("disk full")
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", failing_write)
    with pytest.raises(OSError, match="disk full"):
        write_bundle(bundle, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_check_reports_drift(tmp_path):
    runner = CliRunner()
    out = tmp_path / "dist"
    assert runner.invoke(main, ["render", "--example", "--out", str(out), "--check"]).exit_code == 1
    assert runner.invoke(main, ["render", "--example", "--out", str(out)]).exit_code == 0
    assert runner.invoke(main, ["render", "--example", "--out", str(out), "--check"]).exit_code == 0
    victim = out / "0.1.0" / "images.txt"
    victim.write_text(victim.read_text() + "evil.example/extra:1\n")
    (out / "0.1.0" / "crds" / "projects.argo-delivery.io.yaml").unlink()
    result = runner.invoke(main, ["render", "--example", "--out", str(out), "--check", "--json"])
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["ok"] is False and summary["exitCode"] == 1 and summary["upToDate"] is False
    assert summary["differences"] == [
        {"change": "missing", "path": "crds/projects.argo-delivery.io.yaml", "detail": ""},
        {"change": "differs", "path": "images.txt", "detail": ""}]
    (out / "0.1.0" / "stray.yaml").write_text("{}")
    bundle = build_bundle(parse_config(changed_config().replace("branch: main", "branch: main", 1)))
    assert "unexpected: stray.yaml" in check_bundle(bundle, out)


def test_render_json_summary(tmp_path):
    result = CliRunner().invoke(main, ["render", "--example", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0
    summary = json.loads(result.stdout)
    assert summary["created"] is True
    assert summary["kinds"]["CustomResourceDefinition"] == 3
    assert summary["path"] == str(tmp_path / "0.1.0")


def test_render_py_is_the_render_command(tmp_path):
    result = subprocess.run([sys.executable, str(REPO_ROOT / "render.py"), "--help"],
                            capture_output=True, text=True, check=True)
    assert "--check" in result.stdout and "Render the platform" in result.stdout


def test_duplicate_resource_is_an_error(default_config):
    from argo_delivery.crds import crd_manifests

    with pytest.raises(bundle_module.BundleError, match="two resources are both CustomResourceDefinition"):
        build_bundle(default_config, extra=[crd_manifests()[0]])


def _secret_names(value) -> set[str]:
    """Every Secret a resource refers to: secret volumes and {name, key} selectors."""
    found = set()
    if isinstance(value, dict):
        if isinstance(value.get("secret"), dict) and "secretName" in value["secret"]:
            found.add(value["secret"]["secretName"])
        if set(value) == {"name", "key"}:
            found.add(value["name"])
        for item in value.values():
            found |= _secret_names(item)
    elif isinstance(value, list):
        for item in value:
            found |= _secret_names(item)
    return found


@pytest.mark.parametrize("provider", ["github", "gitlab"])
def test_bundle_readme_is_the_operators_checklist(provider):
    from tests.providers import provider_config

    bundle = build_bundle(provider_config(provider))
    readme = bundle.files["README.md"].decode()
    referenced = set().union(*(_secret_names(r.get("spec", {})) for r in bundle.resources
                               if r["kind"] != "Secret"))
    assert referenced, "the scan found no Secret references"
    for name in referenced:
        assert f"`{name}`" in readme, f"Secret {name} is referenced but not in the checklist"
    assert "Service `git-push-eventsource-svc`" in readme and "port 12000 (the EventSource" in readme
    assert "at\n   this path:\n\n   - `/push`" in readme   # one webhook: no project has its own
    assert "allowPrivilegeEscalation: false" in readme
    for image in ("nats:2.10.29", "nats-server-config-reloader:0.14.0"):
        assert image in readme


def test_a_new_tool_version_renders_the_same_bundle(monkeypatch, default_config, default_bundle):
    """An upgrade of argo-delivery must not make `render --check` fail on identical manifests."""
    patched = [name for name, module in list(sys.modules.items())
               if name.startswith("argo_delivery") and hasattr(module, "__version__")]
    assert "argo_delivery" in patched
    for name in patched:
        monkeypatch.setattr(sys.modules[name], "__version__", "99.0.0")
    assert build_bundle(default_config).files == default_bundle.files
def _namespaces(bundle) -> dict[str, dict]:
    return {r["metadata"]["name"]: r["metadata"] for r in bundle.resources if r["kind"] == "Namespace"}


def test_site_labels_and_annotations_are_on_every_namespace_and_ours_still_win():
    text = default_config_text().replace("\ncomponents:", "\nnamespaces:\n  labels: {example.com/team: "
                                       "platform, cost-center: cc-42}\n  annotations: "
                                       "{example.com/contact: 'ops@example.com'}\ncomponents:", 1)
    bundle = build_bundle(parse_config(text))
    namespaces = _namespaces(bundle)
    assert sorted(namespaces) == ["argo-delivery", "core-team", "partner-northwind"]
    for meta in namespaces.values():
        assert meta["labels"]["example.com/team"] == "platform"
        assert meta["labels"]["cost-center"] == "cc-42"
        assert meta["labels"]["pod-security.kubernetes.io/warn"] == "restricted"
        assert meta["annotations"] == {"example.com/contact": "ops@example.com"}
    # every namespace enforces restricted, the orchestrator's included (proven in tests/e2e)
    for name in ("core-team", "argo-delivery"):
        assert namespaces[name]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert namespaces["core-team"]["labels"]["argo-delivery.io/project"] == "core-team"


def test_a_site_that_creates_namespaces_gets_no_namespace_object(default_bundle):
    text = default_config_text().replace("\ncomponents:", "\nnamespaces: {manage: false}\ncomponents:", 1)
    bundle = build_bundle(parse_config(text))
    assert _namespaces(bundle) == {}
    # everything else is as before
    assert [r for r in default_bundle.resources if r["kind"] != "Namespace"] == bundle.resources
    # and the bundle's README tells the operator which namespaces must exist
    readme = bundle.files["README.md"].decode()
    assert ("8. Namespaces the bundle uses but does not create (`namespaces.manage: false`):\n"
            "   `argo-delivery`, `core-team`, `partner-northwind`; their Pod\n"
            "   Security `enforce` level must admit their pods") in readme
    assert "8. Namespaces" not in default_bundle.files["README.md"].decode()


def test_force_replaces_a_version_only_while_it_was_never_applied(tmp_path):
    from argo_delivery.bundle import applied_marker

    runner = CliRunner()
    first = tmp_path / "first.yaml"
    first.write_text(changed_config())
    second = tmp_path / "second.yaml"
    second.write_text(changed_config(extra_branch="develop"))
    out = str(tmp_path / "dist")
    assert runner.invoke(main, ["render", "--config", str(first), "--out", out]).exit_code == 0
    refused = runner.invoke(main, ["render", "--config", str(second), "--out", out])
    assert refused.exit_code == 1 and "render --force" in refused.stderr
    forced = runner.invoke(main, ["render", "--config", str(second), "--out", out, "--force"])
    assert forced.exit_code == 0, forced.output
    assert runner.invoke(main, ["render", "--config", str(second), "--out", out, "--check"]).exit_code == 0
    assert not [p for p in (tmp_path / "dist").iterdir() if p.name.startswith(".")]  # nothing left over
    applied_marker(tmp_path / "dist" / "0.1.0").write_text("{}\n")
    again = runner.invoke(main, ["render", "--config", str(first), "--out", out, "--force"])
    assert again.exit_code == 1 and "was applied to a cluster" in again.stderr
