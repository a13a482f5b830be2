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
    quota's status, without which the quota admission plugin refuses every pod. Then wait until
    the plugin enforces it: it reads quotas from an informer, and a quota it sees without
    `status.hard` limits nothing, so a pod created a moment too early would be admitted and
    never counted (seen here: 12 pods created, 11 counted)."""
    path = kube.path_for("v1", "ResourceQuota", name, namespace)
    hard = kube.request("GET", path)["spec"]["hard"]
    kube.request("PATCH", path + "/status", {"status": {"hard": hard, "used": dict.fromkeys(hard, "0")}},
                 content_type="application/merge-patch+json")
    huge = {"cpu": "1000", "memory": "1000Gi"}
    probe = _pod("quota-probe", namespace, [_container("main", {"requests": huge, "limits": huge})])
    deadline = time.monotonic() + 20
    while True:
        try:
            kube.create(probe, dry_run=True)
        except ApiError as exc:
            if "exceeded quota" in str(exc.body):
                return
            if "status unknown for quota" not in str(exc.body):
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"ResourceQuota {namespace}/{name} is not enforced after 20 s")
        time.sleep(0.1)


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
    [quota] = [r for r in isolated
               if r["kind"] == "ResourceQuota" and r["metadata"]["namespace"] == NAMESPACE]
    kube.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
                {**quota, "metadata": {**quota["metadata"], "namespace": namespace}}])
    _start_quota(kube, namespace, "argo-delivery-quota")
    with pytest.raises(ApiError) as refused:
        _create_pod(kube, _pod("argo-shaped", namespace, [MAIN, _container("wait")]), dry_run=True)
    assert refused.value.status == 403
    assert "must specify limits.cpu for: wait" in refused.value.body["message"]


# --- the orchestrator namespace: the bundle's own EventBus, EventSource and Sensor pods --------

ORCHESTRATOR = "quota-orchestrator"
JETSTREAM_CONTAINERS = {"main": "containerTemplate", "reloader": "reloaderContainerTemplate",
                        "metrics": "metricsContainerTemplate"}


def _event_pods(resources: list[dict]) -> list[tuple[str, dict]]:
    """(name, pod) for every pod Argo Events v1.9.11's controller builds for the resources in
    the orchestrator namespace, with the containers, resources and security contexts it copies
    from them (pkg/reconciler/eventbus/installer/jetstream.go: a StatefulSet of `replicas` pods
    with main, reloader and metrics; pkg/reconciler/{eventsource,sensor}/resource.go: a
    Deployment of one pod with `main` from spec.template.container)."""
    pods = []
    for r in resources:
        if r["metadata"].get("namespace") != ORCHESTRATOR:
            continue
        name = f"{r['kind'].lower()}-{r['metadata']['name']}"
        if r["kind"] == "EventBus":
            js = r["spec"]["jetstream"]
            containers = [{**_container(c), "resources": js[key]["resources"],
                           "securityContext": js[key]["securityContext"]}
                          for c, key in JETSTREAM_CONTAINERS.items()]
            pods += [(f"{name}-js-{i}", containers, js["securityContext"]) for i in range(js["replicas"])]
        elif r["kind"] in ("EventSource", "Sensor"):
            template = r["spec"]["template"]
            main = {**_container("main"), "resources": template["container"]["resources"],
                    "securityContext": template["container"]["securityContext"]}
            pods.append((name, [main], template["securityContext"]))
    result = []
    for name, containers, security in pods:
        pod = _pod(name, ORCHESTRATOR, containers)
        pod["spec"]["securityContext"] = security
        result.append((name, pod))
    return result


def test_the_default_bundles_own_orchestrator_pods_fit_its_quota_twice_over(kube):
    """The default platform (under another orchestrator namespace, so that no other test's
    pods count): its EventBus (3 pods), EventSources and Sensors, each pod created twice (a
    rollout of everything at once, and more), are admitted by the bundle's own quota under Pod
    Security restricted; one pod more is refused with the server's message."""
    from argo_delivery.config import default_config_text

    text = default_config_text()
    assert "orchestrator:\n  namespace: argo-delivery\n" in text
    config = parse_config(text.replace("orchestrator:\n  namespace: argo-delivery\n",
                                       f"orchestrator:\n  namespace: {ORCHESTRATOR}\n"))
    resources = build_bundle(config).resources
    kube.apply([r for r in resources if r["kind"] in ("Namespace", "LimitRange", "ResourceQuota")
                and ORCHESTRATOR in (r["metadata"]["name"], r["metadata"].get("namespace"))])
    _start_quota(kube, ORCHESTRATOR, "argo-delivery-quota")
    pods = _event_pods(resources)
    assert sorted(name for name, _ in pods) == [
        "eventbus-default-js-0", "eventbus-default-js-1", "eventbus-default-js-2",
        "eventsource-environments", "eventsource-git-push", "eventsource-versions",
        "sensor-on-environment-core-team", "sensor-on-environment-northwind",
        "sensor-on-push-core-team", "sensor-on-push-northwind", "sensor-on-version-core-team",
        "sensor-on-version-northwind"]
    created = []
    try:
        for copy in ("a", "b"):
            for name, pod in pods:
                pod = {**pod, "metadata": {**pod["metadata"], "name": f"{name}-{copy}"}}
                created.append(_create_pod(kube, pod)["metadata"]["name"])
        used = kube.request("GET", kube.path_for("v1", "ResourceQuota", "argo-delivery-quota",
                                                 ORCHESTRATOR))["status"]["used"]
        # the API server counts exactly what the bundle sized the quota from, twice
        [quota] = [r for r in resources if r["kind"] == "ResourceQuota"
                   and r["metadata"]["namespace"] == ORCHESTRATOR]
        assert used == quota["spec"]["hard"] == {
            "pods": "24", "requests.cpu": "1620m", "requests.memory": "3Gi",
            "limits.cpu": "16200m", "limits.memory": "11520Mi"}
        name, one_more = pods[-1]
        with pytest.raises(ApiError) as refused:
            _create_pod(kube, {**one_more, "metadata": {**one_more["metadata"], "name": f"{name}-c"}})
        assert refused.value.status == 403
        message = refused.value.body["message"]
        assert "exceeded quota: argo-delivery-quota" in message
        assert "pods=24" in message.split("used: ")[1] and "pods=24" in message.split("limited: ")[1]
    finally:
        for name in created:
            kube.request("DELETE", kube.path_for("v1", "Pod", name, ORCHESTRATOR),
                         query={"gracePeriodSeconds": 0})
