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


def test_python_git_image_runs_as_65532(cluster, namespace):
    """The Debian python3 + git image (mmdebstrap) knows uid 65532 (git and ssh need a passwd entry)."""
    from tests.e2e.images import python_git_image

    pod = _pod("pygit", namespace, "id; python3 -c 'import pwd, sys; print(pwd.getpwuid(65532).pw_name, "
               "sys.version.split()[0])'; git --version; git init -q /tmp/r && echo git-ok")
    pod["spec"]["containers"][0]["image"] = python_git_image().name
    cluster.kube.apply([pod])
    cluster.wait_pod(namespace, "pygit")
    logs = cluster.pod_logs(namespace, "pygit")
    assert "uid=65532(nonroot)" in logs
    assert "nonroot 3." in logs
    assert "git-ok" in logs


def test_a_missing_image_is_never_pulled_from_outside(cluster, namespace):
    """containerd's pulls go to a closed loopback proxy: no registry, no DNS lookup."""
    pod = _pod("nopull", namespace, "true")
    pod["spec"]["containers"][0]["image"] = "e2e.local/not-imported:1"
    pod["spec"]["containers"][0]["imagePullPolicy"] = "IfNotPresent"
    cluster.kube.apply([pod])

    def pull_failed():
        events = cluster.kube.request("GET", f"/api/v1/namespaces/{namespace}/events")["items"]
        return [e["message"] for e in events if e.get("reason") == "Failed" and
                "not-imported" in e.get("message", "")]
    messages = cluster.wait_for("the pull to fail", pull_failed, 60)
    assert any("proxyconnect tcp: dial tcp 127.0.0.1:9" in m for m in messages), messages


def test_namespace_enforces_restricted(cluster, namespace):
    """The per-test namespace rejects a pod that does not meet Pod Security `restricted`."""
    from tests.kube_server import ApiError

    pod = _pod("lax", namespace, "true")
    del pod["spec"]["containers"][0]["securityContext"]
    with pytest.raises(ApiError) as err:
        cluster.kube.create(pod)
    assert err.value.status == 403
    assert 'violates PodSecurity "restricted' in err.value.message


def test_pods_clone_from_the_git_daemon_on_the_node(cluster, namespace, tmp_path):
    """A git server on the host, reachable from pods (for push -> Version flows)."""
    from tests.e2e.images import python_git_image
    from tests.gitrepos import make_repo

    repo = make_repo(tmp_path / "repos", "component", {"main": 2})
    prefix = cluster.start_git_daemon(tmp_path / "repos")
    pod = _pod("clone", namespace, f"git clone -q {prefix}/{repo.path.name} /tmp/c && "
               "git -C /tmp/c rev-parse HEAD")
    pod["spec"]["containers"][0]["image"] = python_git_image().name
    cluster.kube.apply([pod])
    cluster.wait_pod(namespace, "clone")
    assert repo.heads["main"] in cluster.pod_logs(namespace, "clone")
