"""NetworkPolicies, ResourceQuotas and LimitRanges: what the bundle renders and what config changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from argo_delivery.bundle import build_bundle
from argo_delivery.config import load_config, parse_config
from argo_delivery.quantities import parse_quantity

HERE = Path(__file__).parent
MINIMAL = (HERE / "minimal-platform.yaml").read_text()


def _of(resources, kind, namespace=None, name=None):
    return [r for r in resources if r["kind"] == kind
            and (namespace is None or r["metadata"].get("namespace") == namespace)
            and (name is None or r["metadata"]["name"] == name)]


def _render(extra: str = "", project_extra: str = ""):
    text = MINIMAL.replace("    components: [api, web]\n", "    components: [api, web]\n" + project_extra)
    config = parse_config(text + extra)
    return config, build_bundle(config).resources


def test_every_namespace_denies_ingress_by_default(default_config, default_bundle):
    namespaces = [default_config.orchestrator_namespace, *(p.namespace for p in default_config.projects)]
    for namespace in namespaces:
        [deny] = _of(default_bundle.resources, "NetworkPolicy", namespace, "argo-delivery-default-deny")
        assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}


def test_project_namespaces_allow_no_ingress_at_all(default_config, default_bundle):
    for project in default_config.projects:
        policies = _of(default_bundle.resources, "NetworkPolicy", project.namespace)
        assert [p["metadata"]["name"] for p in policies] == ["argo-delivery-default-deny"]


def test_orchestrator_opens_the_webhook_port_only_and_the_eventbus_to_our_pods(default_bundle):
    policies = {p["metadata"]["name"]: p["spec"]
                for p in _of(default_bundle.resources, "NetworkPolicy", "argo-delivery")}
    assert policies["argo-delivery-webhooks"] == {
        "podSelector": {"matchLabels": {"controller": "eventsource-controller"}},
        "policyTypes": ["Ingress"],
        "ingress": [{"ports": [{"protocol": "TCP", "port": 12000}]}]}  # from anywhere
    eventbus = policies["argo-delivery-eventbus"]
    assert eventbus["podSelector"] == {"matchLabels": {"controller": "eventbus-controller",
                                                       "eventbus-name": "default"}}
    clients, peers = eventbus["ingress"]
    assert clients["from"][0]["podSelector"]["matchExpressions"][0]["values"] == \
        ["eventsource-controller", "sensor-controller"]
    assert clients["ports"] == [{"protocol": "TCP", "port": 4222}]
    assert peers == {"from": [{"podSelector": eventbus["podSelector"]}],
                     "ports": [{"protocol": "TCP", "port": 6222}]}


def test_webhook_sources_and_egress_come_from_config():
    config, resources = _render("isolation:\n"
                                "  webhookFrom:\n"
                                "    - {namespace: ingress-nginx, podLabels: {app: controller}}\n"
                                "    - {cidr: 203.0.113.0/24}\n"
                                "  egressTo: [10.0.0.0/8]\n")
    [webhooks] = _of(resources, "NetworkPolicy", "delivery", "argo-delivery-webhooks")
    assert webhooks["spec"]["ingress"][0]["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}},
         "podSelector": {"matchLabels": {"app": "controller"}}},
        {"ipBlock": {"cidr": "203.0.113.0/24"}}]
    [deny] = _of(resources, "NetworkPolicy", "team-a", "argo-delivery-default-deny")
    assert deny["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert deny["spec"]["egress"] == [
        {"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]},
        {"ports": [{"protocol": p, "port": 53} for p in ("UDP", "TCP")]}]
    # the orchestrator's egress stays open: its pods talk to the provider, the API and each other
    [orchestrator_deny] = _of(resources, "NetworkPolicy", "delivery", "argo-delivery-default-deny")
    assert orchestrator_deny["spec"]["policyTypes"] == ["Ingress"]


def test_quota_defaults_and_overrides_key_by_key():
    config, resources = _render("isolation:\n  quota: {pods: 5, limits.cpu: 6}\n"
                                "  containerDefaults: {limits: {memory: 1Gi}}\n",
                                "    quota: {limits.cpu: \"3\", requests.memory: 2Gi}\n")
    [quota] = _of(resources, "ResourceQuota", "team-a")
    assert quota["spec"]["hard"] == {"pods": "5", "requests.cpu": "4", "requests.memory": "2Gi",
                                     "limits.cpu": "3", "limits.memory": "16Gi"}
    [limits] = _of(resources, "LimitRange", "team-a")
    assert limits["spec"]["limits"] == [{"type": "Container",
                                         "defaultRequest": {"cpu": "50m", "memory": "64Mi"},
                                         "default": {"cpu": "500m", "memory": "1Gi"}}]


def _pod_total(template: dict, kind: str, name: str, defaults: dict) -> float:
    containers = [template.get("script") or template.get("container"), {}, {}]  # main, init, wait
    return sum(float(parse_quantity(((c or {}).get("resources") or {}).get(kind, {}).get(name)
                                    or defaults[name])) for c in containers)


def test_the_default_quota_admits_every_workflow_pod_we_render(default_config, default_bundle):
    # Argo's init and wait containers take the LimitRange's defaults (no executor resources).
    isolation = default_config.isolation
    checked = 0
    for project in default_config.projects:
        quota = {k: float(parse_quantity(v)) for k, v in project.quota.items()}
        for template in _of(default_bundle.resources, "WorkflowTemplate", project.namespace):
            for step in template["spec"]["templates"]:
                if "script" not in step and "container" not in step:
                    continue
                for kind, defaults in (("requests", isolation.container_requests),
                                       ("limits", isolation.container_limits)):
                    for name in ("cpu", "memory"):
                        assert _pod_total(step, kind, name, defaults) <= quota[f"{kind}.{name}"]
                checked += 1
    assert checked >= len(default_config.projects)


def test_namespaces_the_site_creates_still_get_policies_and_quotas():
    _, resources = _render("namespaces: {manage: false}\n")
    assert not _of(resources, "Namespace")
    assert _of(resources, "NetworkPolicy", "team-a") and _of(resources, "ResourceQuota", "team-a")


@pytest.mark.parametrize("text, value", [("500m", 0.5), ("2", 2), ("256Mi", 256 * 2**20),
                                         ("1e3", 1000), ("1.5Gi", 1.5 * 2**30), (4, 4)])
def test_quantities(text, value):
    assert float(parse_quantity(text)) == value


@pytest.mark.parametrize("text", ["", "two", "-1", "1MB", "1e-3", ".5"])
def test_quantities_refused(text):
    with pytest.raises(ValueError, match="expected a quantity"):
        parse_quantity(text)


def test_default_config_renders_the_documented_defaults():
    config = load_config(None)
    assert config.isolation.webhook_from == () and config.isolation.egress_to is None
    assert config.projects[0].quota == {"pods": "20", "requests.cpu": "4", "requests.memory": "8Gi",
                                        "limits.cpu": "8", "limits.memory": "16Gi"}


def test_the_default_configs_commented_example_is_valid_and_shows_the_defaults():
    from argo_delivery.config import default_config_text
    text = default_config_text()
    uncommented = text.replace("# isolation:", "isolation:").replace("#   ", "  ")
    config = parse_config(uncommented)
    default = load_config(None)
    assert config.projects[0].quota == default.projects[0].quota
    assert config.isolation.container_requests == default.isolation.container_requests
    assert config.isolation.container_limits == default.isolation.container_limits
    assert config.isolation.egress_to == ("10.0.0.0/8",)
    # the orchestrator's quota it shows is the one the default platform is sized to
    assert build_bundle(config).files["namespaces/argo-delivery/resourcequota/argo-delivery-quota.yaml"] \
        == build_bundle(default).files["namespaces/argo-delivery/resourcequota/argo-delivery-quota.yaml"]


def _orchestrator_hard(resources, namespace="delivery"):
    [quota] = _of(resources, "ResourceQuota", namespace)
    return quota["spec"]["hard"]


def test_the_orchestrator_quota_is_sized_from_its_event_pods(default_bundle):
    """EventBus: 3 pods of main (100m/256Mi, 1/1Gi), reloader and metrics (10m/32Mi,
    100m/64Mi each); the 3 EventSources (git-push, versions, environments) and each project's
    3 Sensors (on-push, on-version, on-environment): 1 pod of 50m/64Mi, 500m/256Mi each. The
    default holds all of it twice over."""
    assert _orchestrator_hard(default_bundle.resources, "argo-delivery") == {
        "pods": "24",                                  # 2 x (3 + 3 + 6)
        "requests.cpu": "1620m",                       # 2 x (3 x 120m + 9 x 50m)
        "requests.memory": "3Gi",                      # 2 x (3 x 320Mi + 9 x 64Mi)
        "limits.cpu": "16200m",                        # 2 x (3 x 1.2 + 9 x 500m)
        "limits.memory": "11520Mi"}                    # 2 x (3 x 1152Mi + 9 x 256Mi)
    [limits] = _of(default_bundle.resources, "LimitRange", "argo-delivery")
    assert limits["spec"]["limits"][0]["default"] == {"cpu": "500m", "memory": "256Mi"}


def test_the_orchestrator_quota_grows_with_the_projects_and_takes_configured_keys():
    _, one = _render()
    text = MINIMAL.replace("projects:\n",
                           "projects:\n  - {name: team-b, type: external, components: [web]}\n")
    two = build_bundle(parse_config(text)).resources
    # two Sensors (on-push, on-version), twice over
    assert int(_orchestrator_hard(two)["pods"]) == int(_orchestrator_hard(one)["pods"]) + 4
    _, configured = _render("isolation:\n  orchestratorQuota: {pods: 40, limits.cpu: \"16\"}\n")
    hard = _orchestrator_hard(configured)
    assert (hard["pods"], hard["limits.cpu"]) == ("40", "16")
    assert hard["requests.memory"] == _orchestrator_hard(one)["requests.memory"]   # the rest as sized


def test_the_orchestrator_quota_counts_sensors_added_from_your_own_code():
    from argo_delivery.bundle import render_resources

    config, resources = _render()
    sensor = next(s for s in _of(resources, "Sensor") if s["metadata"]["name"].startswith("on-push-"))
    mine = {**sensor, "metadata": {**sensor["metadata"], "name": "my-sensor"},
            "spec": {**sensor["spec"], "replicas": 2}}
    with_mine = render_resources(config, extra=[mine])
    assert int(_orchestrator_hard(with_mine)["pods"]) == int(_orchestrator_hard(resources)["pods"]) + 4


def test_event_pods_as_the_argo_events_controller_builds_them():
    from argo_delivery.eventpods import events_pods, pods_usage

    sized = {"requests": {"cpu": "100m"}, "limits": {"cpu": "1", "memory": "1Gi"}}
    resources = [
        {"kind": "EventBus", "metadata": {"name": "default", "namespace": "o"},
         "spec": {"jetstream": {"containerTemplate": {"resources": sized}}}},        # 3 replicas
        {"kind": "Sensor", "metadata": {"name": "s", "namespace": "o"},
         "spec": {"replicas": 5, "template": {"container": {"resources": sized}}}},
        {"kind": "EventSource", "metadata": {"name": "e", "namespace": "o"}, "spec": {}},
        {"kind": "Sensor", "metadata": {"name": "elsewhere", "namespace": "x"}, "spec": {}},
    ]
    groups = events_pods(resources, "o")
    assert [(g.owner, g.replicas, g.surge, [n for n, _ in g.containers]) for g in groups] == [
        ("EventBus default", 3, 0, ["main", "reloader", "metrics"]),   # a StatefulSet: no surge
        ("Sensor s", 5, 2, ["main"]),                                 # maxSurge 25%, rounded up
        ("EventSource e", 1, 1, ["main"])]
    defaults = {"requests": {"cpu": "10m", "memory": "10Mi"}, "limits": {"cpu": "20m", "memory": "20Mi"}}
    used, unset = pods_usage(groups, defaults, rollout=False)
    assert unset == {}
    assert used["pods"] == 9
    # main sets a cpu request; its memory request is its memory limit (API defaulting); the
    # sidecars and the EventSource take the LimitRange's defaults
    assert used["requests.cpu"] == parse_quantity("800m") + 7 * parse_quantity("10m")
    assert used["requests.memory"] == 8 * parse_quantity("1Gi") + 7 * parse_quantity("10Mi")
    assert pods_usage(groups, defaults, rollout=True)[0]["pods"] == 12
    _, unset = pods_usage(groups, {}, rollout=False)
    assert unset["requests.memory"] == ["EventBus default container reloader",
                                        "EventBus default container metrics", "EventSource e container main"]
