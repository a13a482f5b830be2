"""Argo Workflows' controller and executor run workflows under Pod Security `restricted`."""

from __future__ import annotations

import time

import pytest

from tests.e2e.images import busybox_image

pytestmark = pytest.mark.e2e

POD_SECURITY = {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                "seccompProfile": {"type": "RuntimeDefault"}}
CONTAINER_SECURITY = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                      "runAsNonRoot": True}


def _container(script: str) -> dict:
    return {"image": busybox_image().name, "command": ["sh", "-c", script],
            "securityContext": CONTAINER_SECURITY,
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                          "limits": {"cpu": "200m", "memory": "64Mi"}}}


def _workflow(name: str, namespace: str, sa: str, templates: list[dict], entrypoint: str) -> dict:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"entrypoint": entrypoint, "serviceAccountName": sa,
                     "securityContext": POD_SECURITY, "activeDeadlineSeconds": 300,
                     "templates": templates}}


def test_hello_workflow_succeeds(cluster, namespace):
    sa = cluster.workflow_service_account(namespace)
    t0 = time.monotonic()
    cluster.kube.apply([_workflow("hello", namespace, sa, [
        {"name": "main", "container": _container("echo hello from argo")}], "main")])
    wf = cluster.wait_workflow(namespace, "hello", timeout=120)
    elapsed = time.monotonic() - t0
    print(f"hello workflow: create -> Succeeded in {elapsed:.1f} s")
    node = next(n for n in wf["status"]["nodes"].values() if n["type"] == "Pod")
    assert "hello from argo" in cluster.pod_logs(namespace, node["id"], "main") or \
        "hello from argo" in cluster.pod_logs(namespace, wf["metadata"]["name"], "main")


def test_two_steps_pass_a_parameter(cluster, namespace):
    sa = cluster.workflow_service_account(namespace)
    t0 = time.monotonic()
    cluster.kube.apply([_workflow("two-steps", namespace, sa, [
        {"name": "main", "steps": [
            [{"name": "produce", "template": "produce"}],
            [{"name": "consume", "template": "consume", "arguments": {"parameters": [
                {"name": "word", "value": "{{steps.produce.outputs.parameters.word}}"}]}}]]},
        {"name": "produce",
         "container": _container("echo -n passed-along > /tmp/word"),
         "outputs": {"parameters": [{"name": "word", "valueFrom": {"path": "/tmp/word"}}]}},
        {"name": "consume", "inputs": {"parameters": [{"name": "word"}]},
         "container": _container("echo got {{inputs.parameters.word}}")},
    ], "main")])
    wf = cluster.wait_workflow(namespace, "two-steps", timeout=180)
    print(f"two-step workflow: create -> Succeeded in {time.monotonic() - t0:.1f} s")
    consume = next(n for n in wf["status"]["nodes"].values()
                   if n.get("templateName") == "consume" and n["type"] == "Pod")
    assert consume["inputs"]["parameters"][0]["value"] == "passed-along"
    pods = cluster.kube.request("GET", f"/api/v1/namespaces/{namespace}/pods")["items"]
    logs = "".join(cluster.pod_logs(namespace, p["metadata"]["name"], "main") for p in pods)
    assert "got passed-along" in logs


def test_an_artifact_passes_through_the_s3_repository(cluster, namespace):
    """Output artifact -> the controller's default S3 repository (versitygw) -> input artifact."""
    sa = cluster.workflow_service_account(namespace)
    t0 = time.monotonic()
    cluster.kube.apply([_workflow("artifact", namespace, sa, [
        {"name": "main", "steps": [
            [{"name": "produce", "template": "produce"}],
            [{"name": "consume", "template": "consume", "arguments": {"artifacts": [
                {"name": "dir", "from": "{{steps.produce.outputs.artifacts.dir}}"}]}}]]},
        {"name": "produce",
         "container": _container("mkdir -p /tmp/out && echo artifact-content > /tmp/out/file"),
         "outputs": {"artifacts": [{"name": "dir", "path": "/tmp/out"}]}},
        {"name": "consume", "inputs": {"artifacts": [{"name": "dir", "path": "/tmp/in"}]},
         "container": _container("cat /tmp/in/file")},
    ], "main")])
    wf = cluster.wait_workflow(namespace, "artifact", timeout=180)
    print(f"artifact workflow: create -> Succeeded in {time.monotonic() - t0:.1f} s")
    produce = next(n for n in wf["status"]["nodes"].values()
                   if n.get("templateName") == "produce" and n["type"] == "Pod")
    key = produce["outputs"]["artifacts"][0]["s3"]["key"]
    stored = cluster.workdir / "s3" / cluster.S3_BUCKET / key
    assert stored.is_file(), f"{key} is not in the bucket"
    pods = cluster.kube.request("GET", f"/api/v1/namespaces/{namespace}/pods")["items"]
    logs = "".join(cluster.pod_logs(namespace, p["metadata"]["name"], "main") for p in pods)
    assert "artifact-content" in logs
