"""The node runs pods: host network and the CNI bridge, from locally built images."""

from __future__ import annotations

import pytest

from tests.e2e.images import busybox_image

pytestmark = pytest.mark.e2e

RESTRICTED = {"runAsNonRoot": True, "runAsUser": 65532, "allowPrivilegeEscalation": False,
              "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}


def _pod(name: str, namespace: str, script: str, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": {"restartPolicy": "Never", "automountServiceAccountToken": False,
                     "containers": [{"name": "main", "image": busybox_image().name,
                                     "imagePullPolicy": "Never", "command": ["sh", "-c", script],
                                     "securityContext": RESTRICTED}], **spec}}


def test_node_is_ready(cluster):
    node = cluster.get("v1", "Node", "e2e-node")
    assert node["status"]["nodeInfo"]["kubeletVersion"].startswith("v1.")
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
    assert ready == "True"


def test_bridged_pod_runs_and_logs(cluster, namespace):
    cluster.kube.apply([_pod("bridged", namespace, "echo hello from $(hostname); ip -4 addr")])
    pod = cluster.wait_pod(namespace, "bridged")
    assert pod["status"]["podIP"].startswith(cluster.node_ip.rsplit(".", 1)[0] + ".")
    assert pod["status"]["podIP"] != cluster.node_ip
    logs = cluster.pod_logs(namespace, "bridged")
    assert "hello from bridged" in logs


def test_host_network_pod_runs(cluster):
    ns = cluster.new_namespace("hostnet", pod_security="privileged")
    try:
        cluster.kube.apply([_pod("hostnet", ns, "echo on the host network", hostNetwork=True)])
        pod = cluster.wait_pod(ns, "hostnet")
        assert pod["status"]["podIP"] == cluster.node_ip
        assert "on the host network" in cluster.pod_logs(ns, "hostnet")
    finally:
        cluster.delete_namespace(ns)
