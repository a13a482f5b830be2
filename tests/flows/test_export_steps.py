"""The air-gap export's read and record steps (export-release), rendered and run as Argo would,
against the real API server, with the stream recorder's token; and what the pack step may do
in the cluster: nothing (its account has no role, and it gets no token).

The end-to-end suite runs the whole export on the real controllers
(tests/e2e/test_airgap_export.py).
"""

from __future__ import annotations

import json

import pytest
import yaml

from argo_delivery.bundle import build_bundle
from argo_delivery.config import default_config_text, parse_config
from tests.flows.test_run_stream_step import NS, RECORDER, VERSIONS, WORKFLOWS, new_version
from tests.stepscripts import run_step, script_template

pytestmark = pytest.mark.apiserver

EXPORTER = "argo-delivery-airgap-exporter"
KEY = f"argo-delivery/airgap/{NS}/{{version}}.airgap.tar"


@pytest.fixture(scope="module")
def bundle():
    data = yaml.safe_load(default_config_text())
    data["airgap"] = {"export": True, "artifactRepositoryRef": {"configMap": "airgap-store"}}
    data["images"]["airgap"] = "registry.example.com/platform/argo-delivery:0.1.0"
    return build_bundle(parse_config(yaml.safe_dump(data), "airgap.yaml"))


@pytest.fixture(scope="module")
def installed(kube, bundle):
    kube.apply(bundle.resources)
    return bundle


@pytest.fixture
def run(kube, installed, tmp_path):
    """run(step, workflow, version, **inputs) -> (result, the read step's output or None)."""
    export = yaml.safe_load(installed.files[f"namespaces/{NS}/workflowtemplate/export-release.yaml"])
    token = tmp_path / "token"
    token.write_text(kube.token_for(NS, RECORDER))

    def run_step_as_argo(step: str, workflow: str, version: str, **inputs: str):
        workdir = tmp_path / f"{step}-{workflow}"
        workdir.mkdir()
        values = {"workflow.namespace": NS, "workflow.name": workflow,
                  "inputs.parameters.version": version,
                  **{f"inputs.parameters.{k}": v for k, v in inputs.items()}}
        # the read step writes the Version where its output parameter is collected
        # (/tmp/version.json in the pod): here, in the step's folder
        out = workdir / "version.json"
        env = {"AD_API_SERVER": kube.server, "AD_TOKEN_FILE": str(token),
               "AD_CA_FILE": str(kube.ca_file), "HOME": str(workdir), "AD_OUTPUT": str(out)}
        result = run_step(script_template(export, step), values, env, workdir)
        return result, (json.loads(out.read_text()) if out.exists() else None)

    return run_step_as_argo


def release(kube, name: str) -> None:
    version = kube.request("GET", f"{VERSIONS}/{name}")
    passed = {"phase": "Succeeded", "reason": "AllSuitesPassed", "workflow": "wf-x"}
    version["status"] = {"stream": "released", "releasedAt": "2026-11-29T12:00:00Z",
                         "streams": {"alpha": passed, "nightly": passed}}
    kube.request("PUT", f"{VERSIONS}/{name}/status", version,
                 token=kube.token_for(NS, RECORDER))


def pack_workflow(kube, name: str, summary: dict | None) -> None:
    """The export's Workflow as the record step reads it: a retried pack node and its pod."""
    outputs = {"parameters": [{"name": "summary", "value": json.dumps(summary)}]} if summary else {}
    phase = "Succeeded" if summary else "Failed"
    kube.request("POST", WORKFLOWS, {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"workflowTemplateRef": {"name": "release"}},
        "status": {"phase": "Running", "nodes": {
            f"{name}-1": {"id": f"{name}-1", "name": f"{name}[1].export[1].pack",
                          "displayName": "pack", "type": "Retry", "phase": phase,
                          "outputs": outputs},
            f"{name}-2": {"id": f"{name}-2", "name": f"{name}[1].export[1].pack(0)",
                          "displayName": "pack(0)", "type": "Pod", "phase": phase,
                          "outputs": outputs}}}})


def test_read_hands_over_only_a_released_version(kube, run):
    name = new_version(kube)
    result, document = run("read", "wf-e0", name)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "not released: only a released Version is exported" in result.stdout
    assert document is None
    release(kube, name)
    result, document = run("read", "wf-e1", name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert document["metadata"] == {"name": name, "namespace": NS}
    assert document["kind"] == "Version" and len(document["spec"]["components"]) == 3
    export = kube.request("GET", f"{VERSIONS}/{name}")["status"]["export"]
    assert export["phase"] == "Packing" and export["workflow"] == "wf-e1"
    # the rest of the status is kept as it was
    assert kube.request("GET", f"{VERSIONS}/{name}")["status"]["stream"] == "released"


def test_record_writes_what_the_pack_step_made(kube, run):
    name = new_version(kube)
    release(kube, name)
    run("read", "wf-e2", name)
    summary = {"sha256": "ab" * 32, "size": 123456, "images": 4, "archive": "/scratch/out/a.tar"}
    pack_workflow(kube, "wf-e2", summary)
    result, _ = run("record", "wf-e2", name, phase="Succeeded")
    assert result.returncode == 0, result.stdout + result.stderr
    export = kube.request("GET", f"{VERSIONS}/{name}")["status"]["export"]
    assert export["phase"] == "Succeeded" and export["workflow"] == "wf-e2"
    assert (export["sha256"], export["size"], export["images"]) == ("ab" * 32, 123456, 4)
    assert export["artifact"] == {"key": KEY.format(version=name),
                                  "repositoryRef": {"configMap": "airgap-store"}}
    assert export["startedAt"] and export["finishedAt"]


def test_record_marks_a_failed_pack_and_fails(kube, run):
    name = new_version(kube)
    release(kube, name)
    run("read", "wf-e3", name)
    pack_workflow(kube, "wf-e3", None)
    result, _ = run("record", "wf-e3", name, phase="Failed")
    assert result.returncode == 2 and "the export of Version" in result.stdout
    export = kube.request("GET", f"{VERSIONS}/{name}")["status"]["export"]
    assert export["phase"] == "Failed" and "wf-e3" in export["message"]
    assert "artifact" not in export and "sha256" not in export


def test_the_pack_step_has_no_rights_and_no_token(kube, installed):
    export = yaml.safe_load(installed.files[f"namespaces/{NS}/workflowtemplate/export-release.yaml"])
    pack = next(t for t in export["spec"]["templates"] if t["name"] == "pack")
    assert pack["serviceAccountName"] == EXPORTER
    assert not any(v.get("projected") for v in pack.get("volumes", [])), pack["volumes"]
    assert export["spec"]["automountServiceAccountToken"] is False
    # even with a token, the account may read nothing: no Version, no Secret, no Workflow
    token = kube.token_for(NS, EXPORTER)
    for path in (VERSIONS, f"/api/v1/namespaces/{NS}/secrets", WORKFLOWS):
        answer = kube.request("GET", path, token=token, ok=(403,))
        assert answer["code"] == 403, (path, answer)
