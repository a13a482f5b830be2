"""`argo-delivery state export` and `state import` on real API servers: a populated cluster
(Versions at every stream stage, an approval, Environments Ready with their Terraform state)
-> export -> a second, fresh API server -> import -> the same objects; importing again
changes nothing; a changed object is refused without --overwrite. The imported objects'
ADD events, as the resource EventSource would send them, fire no trigger of the rendered
Sensors (Argo Events' own filter code, tools/sensor-sim)."""

from __future__ import annotations

import json
import stat
import subprocess

import pytest
from click.testing import CliRunner

from argo_delivery import envmodel
from argo_delivery.bundle import build_bundle, write_bundle
from argo_delivery.cli import main
from argo_delivery.config import default_config_text, parse_config
from argo_delivery.crds import crd_manifests
from argo_delivery.naming import ANNOTATION_RESTORED, GROUP_VERSION
from argo_delivery.state import comparable
from argo_delivery.tenancy import project_resources
from tests.kube_server import KubeServer
from tests.support import require_binary

pytestmark = pytest.mark.apiserver

NS = "st-core"
T0, T1 = "2026-11-29T08:00:00Z", "2026-11-29T08:10:00Z"


def run(prefix: str, suites: tuple[str, ...] = ("unit",), phase: str = "Succeeded") -> dict:
    return {"phase": phase, "reason": "AllSuitesPassed" if phase == "Succeeded" else "Running",
            "startedAt": T0, "workflow": f"{prefix}-run", "request": "created",
            **({"finishedAt": T1} if phase != "Running" else {}),
            "results": [{"suite": s, "phase": phase, "startedAt": T0} for s in suites]}


STAGES = {   # Version hash digit -> status (None: no stream has touched it yet)
    "1": None,
    "2": {"stream": "alpha", "streams": {"alpha": run("a", phase="Running")}},
    "3": {"stream": "nightly", "streams": {"alpha": run("a")}},
    "4": {"stream": "candidate", "streams": {"alpha": run("a"), "nightly": run("n")}},
    "5": {"stream": "released", "releasedAt": T1,
          "streams": {"alpha": run("a"), "nightly": run("n")},
          "conditions": [{"type": "Released", "status": "True", "reason": "Approved",
                          "message": "released", "lastTransitionTime": T1}]},
    "6": {"stream": "failed", "streams": {"alpha": {**run("a"), "phase": "Failed",
                                                    "reason": "SuitesFailed"}}},
}


def version(digit: str) -> dict:
    hash_ = "sha256:" + digit * 64
    spec = {"project": "core-team", "hash": hash_, "trigger": {"type": "push", "branch": "main"},
            "components": [{"name": "api", "repo": "https://github.com/acme-platform/api",
                            "ref": "main", "commit": digit * 40}]}
    if digit == "5":
        spec["approval"] = {"approvedBy": "po", "approvedAt": T0, "comment": "ok"}
    return {"apiVersion": GROUP_VERSION, "kind": "Version",
            "metadata": {"name": f"core-team-{hash_[7:23]}", "namespace": NS,
                         "labels": {"argo-delivery.io/project": "core-team"}}, "spec": spec}


def environment(name: str, **spec) -> dict:
    return {"apiVersion": GROUP_VERSION, "kind": "Environment",
            "metadata": {"name": name, "namespace": NS, "annotations": {"argo-delivery.io/ttl": "8h"},
                         "finalizers": [envmodel.FINALIZER]},
            "spec": {"project": "core-team", "owner": "bob", **spec}}


def create_with_status(kube, doc: dict, status: dict | None) -> dict:
    path = kube.path_for(doc["apiVersion"], doc["kind"], namespace=NS)
    created = kube.request("POST", path, doc)
    if status:
        created = kube.request("PUT", f"{path}/{doc['metadata']['name']}/status",
                               {**created, "status": status})
    return created


@pytest.fixture(scope="module")
def populated(kube):
    config = parse_config(default_config_text())
    [core] = [p for p in config.projects if p.name == "core-team"]
    [project] = [r for r in project_resources(core, config) if r["kind"] == "Project"]
    project["metadata"]["namespace"] = NS
    kube.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                "metadata": {"name": NS}})
    create_with_status(kube, project, None)
    for digit, status in STAGES.items():
        create_with_status(kube, version(digit), status)
    ready = {"phase": "Ready", "expiresAt": "2026-11-29T16:00:00Z", "outputsSecret": "dev-1-outputs",
             "outputs": {"url": "https://dev-1.example.com"},
             "conditions": [{"type": "Ready", "status": "True", "reason": "Deployed",
                             "message": "ready", "lastTransitionTime": T1}]}
    env = create_with_status(kube, environment("dev-1", version=version("4")["metadata"]["name"]),
                             ready)
    create_with_status(kube, environment("demo", demo=True), {"phase": "Pending"})
    secrets = f"/api/v1/namespaces/{NS}/secrets"
    kube.request("POST", secrets, {"apiVersion": "v1", "kind": "Secret",
                                   "metadata": {"name": envmodel.state_secret("dev-1"),
                                                "labels": {"tfstate": "true"}},
                                   "data": {"tfstate": "H4sIAAAAAAAA/6uuBQBDv6ajAgAAAA=="}})
    outputs = envmodel.outputs_secret_manifest(env, {"kubeconfig": {"value": "apiVersion: v1",
                                                                    "sensitive": True}})
    kube.request("POST", secrets, outputs)
    kube.request("POST", secrets, {"apiVersion": "v1", "kind": "Secret",
                                   "metadata": {"name": "unrelated"}, "stringData": {"k": "v"}})
    return kube


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    server = KubeServer(tmp_path_factory.mktemp("kube-restore")).start(crds=False)
    try:
        crds = crd_manifests()
        server.apply(crds)
        server.wait_for_crds([c["metadata"]["name"] for c in crds])
        yield server
    finally:
        server.stop()


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def ours(kube) -> dict[str, dict]:
    """Every object the state holds, in NS, as `comparable` sees it (no uid, resourceVersion,
    managedFields, creationTimestamp, generation; the restore marker aside)."""
    found = {}
    for api, kind in [(GROUP_VERSION, k) for k in ("Project", "Version", "Environment")] + [
            ("v1", "Secret")]:
        for item in kube.request("GET", kube.path_for(api, kind, namespace=NS))["items"]:
            item.update(apiVersion=api, kind=kind)
            if kind == "Secret" and item["metadata"]["name"] == "unrelated":
                continue
            found[f"{kind}/{item['metadata']['name']}"] = comparable(item)
    return found


def test_export_import_round_trip(populated, fresh, tmp_path):
    source, target = tmp_path / "source.kubeconfig", tmp_path / "target.kubeconfig"
    populated.write_kubeconfig(source, "admin", populated.admin_token)
    fresh.write_kubeconfig(target, "admin", fresh.admin_token)
    backup = tmp_path / "backup.json"
    code, out = cli("state", "export", str(backup), "--include-terraform-state",
                    "--kubeconfig", str(source))
    assert code == 0, out
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert "holds Terraform state" in out
    document = json.loads(backup.read_text())
    assert document["apiVersion"] == "state.argo-delivery.io/v1" and document["kind"] == "State"
    assert document["metadata"]["sensitive"] is True
    names = {(i["kind"], i["metadata"]["name"]) for i in document["items"]
             if i["metadata"].get("namespace") == NS}
    assert ("Secret", "tfstate-default-dev-1") in names and ("Secret", "unrelated") not in names
    # without the flag: no Secret, not sensitive
    plain = tmp_path / "plain.json"
    assert cli("state", "export", str(plain), "--kubeconfig", str(source))[0] == 0
    assert not [i for i in json.loads(plain.read_text())["items"] if i["kind"] == "Secret"]

    code, out = cli("state", "import", str(backup), "--dry-run", "--kubeconfig", str(target))
    assert code == 0 and "would create" in out, out
    assert fresh.request("GET", f"/api/v1/namespaces/{NS}", ok=(404,))["kind"] == "Status"
    code, out = cli("state", "import", str(backup), "--kubeconfig", str(target))
    assert code == 0, out
    assert ours(fresh) == ours(populated)
    # restored objects carry the marker; the outputs Secret is owned by the new Environment
    env = fresh.request("GET", fresh.path_for(GROUP_VERSION, "Environment", "dev-1", namespace=NS))
    assert env["metadata"]["annotations"][ANNOTATION_RESTORED] == document["metadata"]["exportedAt"]
    secret = fresh.request("GET", f"/api/v1/namespaces/{NS}/secrets/dev-1-outputs")
    assert secret["metadata"]["ownerReferences"][0]["uid"] == env["metadata"]["uid"]

    # again: nothing changes
    before = {k: v["metadata"].get("resourceVersion") for k, v in raw(fresh).items()}
    code, out = cli("state", "import", str(backup), "--kubeconfig", str(target))
    assert code == 0 and "created 0" in out and "unchanged" in out, out
    assert {k: v["metadata"].get("resourceVersion") for k, v in raw(fresh).items()} == before

    # a changed object is refused by name, nothing written; --overwrite puts it back
    path = fresh.path_for(GROUP_VERSION, "Environment", "dev-1", namespace=NS)
    fresh.request("PATCH", path, {"metadata": {"labels": {"edited": "yes"}}},
                  content_type="application/merge-patch+json")
    code, out = cli("state", "import", str(backup), "--kubeconfig", str(target))
    assert code == 1 and f"Environment {NS}/dev-1 (metadata.labels)" in out, out
    code, out = cli("state", "import", str(backup), "--overwrite", "--kubeconfig", str(target))
    assert code == 0 and "overwritten 1" in out, out
    assert ours(fresh) == ours(populated)


def raw(kube) -> dict[str, dict]:
    found = {}
    for api, kind in [(GROUP_VERSION, k) for k in ("Project", "Version", "Environment")] + [
            ("v1", "Secret")]:
        for item in kube.request("GET", kube.path_for(api, kind, namespace=NS))["items"]:
            found[f"{kind}/{item['metadata']['name']}"] = item
    return found


def test_the_imported_objects_fire_no_sensor(populated, fresh, tmp_path):
    """Each restored Version and Environment as its ADD event had it (created without status)
    through the rendered Sensors: no trigger."""
    if "Version/" + version("1")["metadata"]["name"] not in raw(fresh):
        pytest.skip("runs after the round trip")
    sim = require_binary("sensor-sim")
    bundle = write_bundle(build_bundle(parse_config(default_config_text())), tmp_path).path
    sensors = {"Version": ("on-version-core-team", "versions"),
               "Environment": ("on-environment-core-team", "environments")}
    for key, item in raw(fresh).items():
        kind = key.split("/")[0]
        if kind not in sensors:
            continue
        item.pop("status", None)   # the CREATE's event: no status yet
        event = tmp_path / "event.json"
        event.write_text(json.dumps({"type": "ADD", "body": item}))
        sensor, source = sensors[kind]
        proc = subprocess.run([str(sim), "--sensor",
                               str(bundle / f"namespaces/argo-delivery/sensor/{sensor}.yaml"),
                               "--eventsource", source, "--event", f"{source}-core-team",
                               "--type", "resource", "--payload", str(event)],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 3 and not proc.stdout.strip(), (key, proc.stdout, proc.stderr)
