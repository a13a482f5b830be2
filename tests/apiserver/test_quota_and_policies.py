"""NetworkPolicies, ResourceQuota and LimitRange on a real API server.

The server stores and validates NetworkPolicies; nothing here (nor the end-to-end cluster's
bridge CNI) enforces them on traffic. The ResourceQuota and LimitRange admission plugins do
run in the API server, so what they admit and refuse is tested here for real.
"""

from __future__ import annotations

import time

import pytest

from argo_delivery.bundle import build_bundle
from argo_delivery.config import parse_config
from tests.kube_server import ApiError

pytestmark = pytest.mark.apiserver

CONFIG = """
bundle: {name: isolation-probe, version: 1.0.0}
orchestrator: {namespace: isolation-orchestrator}
components:
  - {name: api, repo: https://github.com/acme/api.git, branch: main}
projects:
  - name: quota-probe
    type: internal
    components: [api]
    quota: {pods: 3, limits.cpu: "2"}
isolation:
  webhookFrom:
    - {namespace: ingress-nginx, podLabels: {app.kubernetes.io/name: ingress-nginx}}
    - {cidr: 203.0.113.0/24}
  egressTo: [10.0.0.0/8, 2001:db8::/32]
images: {git: python:3.12}
gitProvider:
  type: github
  webhookSecret: {name: hook, key: secret}
"""
NAMESPACE = "quota-probe"
KINDS = ("Namespace", "NetworkPolicy", "LimitRange", "ResourceQuota")


def _container(name: str, resources: dict | None = None) -> dict:
    container = {"name": name, "image": "registry.invalid/none:1", "securityContext": {
        "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}}
    if resources:
        container["resources"] = resources
    return container


def _pod(name: str, namespace: str, containers: list[dict], init: tuple[dict, ...] = ()) -> dict:
    """A pod shaped like Argo's: its own step with resources, Argo's containers without."""
    spec = {"containers": containers, "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65532,
                                "seccompProfile": {"type": "RuntimeDefault"}}}
    if init:
        spec["initContainers"] = list(init)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": spec}


MAIN = _container("main", {"requests": {"cpu": "200m", "memory": "128Mi"},
                           "limits": {"cpu": "1", "memory": "512Mi"}})


def _start_quota(kube, namespace: str, name: str) -> None:
    """What the controller manager's quota controller would do (none runs here): publish the
    quota's status, without which the quota admission plugin refuses every pod."""
    path = kube.path_for("v1", "ResourceQuota", name, namespace)
    hard = kube.request("GET", path)["spec"]["hard"]
    kube.request("PATCH", path + "/status", {"status": {"hard": hard, "used": dict.fromkeys(hard, "0")}},
                 content_type="application/merge-patch+json")


def _create_pod(kube, pod: dict, dry_run: bool = False) -> dict:
    # the quota plugin reads the quota from an informer, which sees its status a moment later
    deadline = time.monotonic() + 20
    while True:
        try:
            return kube.create(pod, dry_run=dry_run)
        except ApiError as exc:
            if "status unknown for quota" not in str(exc.body) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture(scope="module")
def isolated(kube):
    resources = [r for r in build_bundle(parse_config(CONFIG)).resources if r["kind"] in KINDS]
    kube.apply(resources)
    _start_quota(kube, NAMESPACE, "argo-delivery-quota")
    return resources


def test_the_server_accepts_every_policy_shape(kube, isolated):
    policies = [r for r in isolated if r["kind"] == "NetworkPolicy"]
    assert {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in policies} == {
        ("isolation-orchestrator", "argo-delivery-default-deny"),
        ("isolation-orchestrator", "argo-delivery-webhooks"),
        ("isolation-orchestrator", "argo-delivery-eventbus"),
        (NAMESPACE, "argo-delivery-default-deny")}
    for policy in policies:
        meta = policy["metadata"]
        stored = kube.request("GET", kube.path_for("networking.k8s.io/v1", "NetworkPolicy",
                                                   meta["name"], meta["namespace"]))
        assert stored["spec"] == policy["spec"]
    # applying the same objects again changes nothing
    again = kube.apply(isolated)
    assert all(o["metadata"]["generation"] == 1 for o in again if o["kind"] == "NetworkPolicy")


def test_argo_shaped_pod_without_resources_is_admitted_with_the_defaults(kube, isolated):
    pod = _pod("argo-shaped", NAMESPACE, [MAIN, _container("wait")], init=(_container("init"),))
    _create_pod(kube, pod)
    path = kube.path_for("v1", "Pod", "argo-shaped", NAMESPACE)
    try:
        stored = kube.request("GET", path)["spec"]
    finally:
        kube.request("DELETE", path)
    defaulted = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}
    assert stored["initContainers"][0]["resources"] == defaulted
    assert stored["containers"][1]["resources"] == defaulted
    assert stored["containers"][0]["resources"] == MAIN["resources"]  # its own are kept


def test_a_pod_over_the_quota_is_refused_with_the_servers_message(kube, isolated):
    big = _container("main", {"requests": {"cpu": "1", "memory": "128Mi"},
                              "limits": {"cpu": "3", "memory": "512Mi"}})
    with pytest.raises(ApiError) as refused:
        _create_pod(kube, _pod("too-big", NAMESPACE, [big]), dry_run=True)
    assert refused.value.status == 403
    message = refused.value.body["message"]
    assert "exceeded quota: argo-delivery-quota" in message
    assert "limited: limits.cpu=2" in message


def test_without_the_limit_range_the_quota_refuses_argos_containers(kube, isolated):
    # Why the LimitRange is there: the same quota alone refuses a container without resources.
    namespace = "quota-without-defaults"
    [quota] = [r for r in isolated if r["kind"] == "ResourceQuota"]
    kube.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
                {**quota, "metadata": {**quota["metadata"], "namespace": namespace}}])
    _start_quota(kube, namespace, "argo-delivery-quota")
    with pytest.raises(ApiError) as refused:
        _create_pod(kube, _pod("argo-shaped", namespace, [MAIN, _container("wait")]), dry_run=True)
    assert refused.value.status == 403
    assert "must specify limits.cpu for: wait" in refused.value.body["message"]
