"""NetworkPolicies, ResourceQuotas and LimitRanges: what may connect to what, and how much runs.

Ingress is denied by default in every namespace the bundle uses; what is allowed is what our
flows receive:

- Project namespaces: nothing. Workflow pods only connect out (git, the API server). Argo
  Workflows v4.1.4 opens no connection into a workflow pod: the controller reads pod status
  and signals containers through the API server's `pods/exec` (workflow/signal/signal.go,
  workflow/common/util.go ExecPodContainer), the agent reaches executor plugins at
  `http://localhost:<port>` in its own pod (workflow/controller/agent.go), artifact plugins
  use a unix socket (workflow/artifacts/plugin/plugin.go). Only a `daemon` step is reached by
  other steps at its pod IP (`{{steps.<name>.ip}}`), and no flow of ours runs one.
- The orchestrator namespace: the EventSource pods' webhook port, from `isolation.webhookFrom`
  (anywhere by default); the JetStream EventBus from EventSource and Sensor pods (client port;
  leader election of replicated EventSources and Sensors goes through it too) and between its
  own pods (cluster routes).

Egress is not restricted unless `isolation.egressTo` lists where project pods may connect.

Every namespace gets a LimitRange (`isolation.containerDefaults`) and a ResourceQuota: a
project's from `isolation.quota` and `projects[].quota`; the orchestrator's is sized from the
pods Argo Events runs for the bundle's EventBus, EventSources and Sensors there
(argo_delivery/eventpods.py), twice over, with `isolation.orchestratorQuota` over it key by key.
It depends on what the other capabilities render, so the bundle adds it once everything else is
rendered (`orchestrator_quota`).
"""

from __future__ import annotations

from typing import Any

from argo_delivery.capability import Capability
from argo_delivery.config import NetworkPeer, PlatformConfig, Project
from argo_delivery.eventbus import EVENTBUS_NAME
from argo_delivery.eventpods import QUOTA_KEYS, events_pods, pods_usage
from argo_delivery.eventsources.git_push import WEBHOOK_PORT
from argo_delivery.naming import LABEL_PROJECT
from argo_delivery.quantities import format_quantity

__all__ = ["CAPABILITY", "JETSTREAM_CLIENT_PORT", "JETSTREAM_CLUSTER_PORT", "QUOTA", "orchestrator_policies",
           "orchestrator_quota", "project_isolation"]

# Pod labels the Argo Events v1.9.11 controller sets: `controller` and `<kind>-name` in
# pkg/reconciler/eventsource/controller.go and pkg/reconciler/sensor/controller.go (Reconcile's
# AdaptorArgs.Labels, copied onto the pod template), pkg/reconciler/eventbus/installer/installer.go
# getLabels (the JetStream StatefulSet's pod template, installer/jetstream.go).
EVENTSOURCE_PODS = {"controller": "eventsource-controller"}
SENSOR_CONTROLLER = "sensor-controller"
EVENTBUS_PODS = {"controller": "eventbus-controller", "eventbus-name": EVENTBUS_NAME}
# pkg/reconciler/eventbus/installer/jetstream.go: jsClientPort, jsClusterPort (the monitor port
# 8222 serves the kubelet's probes and the in-pod metrics exporter; 7777 is metrics, which a
# site's Prometheus gets with a policy of its own: policies add up).
JETSTREAM_CLIENT_PORT = 4222
JETSTREAM_CLUSTER_PORT = 6222
DNS_PORT = 53

DEFAULT_DENY = "argo-delivery-default-deny"
QUOTA = "argo-delivery-quota"
CONTAINER_DEFAULTS = "argo-delivery-container-defaults"
# The orchestrator's default quota holds its pods this many times over: a rollout of every
# Deployment at once (one pod beside each old one) fits, with room to spare.
ORCHESTRATOR_HEADROOM = 2


def _policy(name: str, namespace: str, pod_selector: dict[str, Any], labels: dict[str, str],
            ingress: list[dict[str, Any]], egress: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": pod_selector,
                            "policyTypes": ["Ingress"] + (["Egress"] if egress is not None else [])}
    if ingress:  # none: every connection in is denied
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace, "labels": labels}, "spec": spec}


def _ports(*ports: int, protocols: tuple[str, ...] = ("TCP",)) -> list[dict[str, Any]]:
    return [{"protocol": protocol, "port": port} for port in ports for protocol in protocols]


def _peer(peer: NetworkPeer) -> dict[str, Any]:
    if peer.cidr:
        return {"ipBlock": {"cidr": peer.cidr}}
    selected: dict[str, Any] = {"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": peer.namespace}}}
    if peer.pod_labels:
        selected["podSelector"] = {"matchLabels": dict(peer.pod_labels)}
    return selected


def orchestrator_policies(config: PlatformConfig) -> list[dict[str, Any]]:
    namespace = config.orchestrator_namespace
    webhook: dict[str, Any] = {"ports": _ports(WEBHOOK_PORT)}
    if config.isolation.webhook_from:  # no `from`: any source, this port only
        webhook["from"] = [_peer(p) for p in config.isolation.webhook_from]
    clients = {"podSelector": {"matchExpressions": [{
        "key": "controller", "operator": "In",
        "values": [EVENTSOURCE_PODS["controller"], SENSOR_CONTROLLER]}]}}
    return [
        _policy(DEFAULT_DENY, namespace, {}, {}, []),
        _container_defaults(namespace, {}, config),
        _policy("argo-delivery-webhooks", namespace, {"matchLabels": EVENTSOURCE_PODS}, {}, [webhook]),
        _policy("argo-delivery-eventbus", namespace, {"matchLabels": EVENTBUS_PODS}, {}, [
            {"from": [clients], "ports": _ports(JETSTREAM_CLIENT_PORT)},
            {"from": [{"podSelector": {"matchLabels": EVENTBUS_PODS}}],
             "ports": _ports(JETSTREAM_CLUSTER_PORT)},
        ]),
    ]


def project_isolation(project: Project, config: PlatformConfig) -> list[dict[str, Any]]:
    namespace, labels = project.namespace, {LABEL_PROJECT: project.name}
    egress = None
    if config.isolation.egress_to is not None:
        egress = [{"to": [{"ipBlock": {"cidr": cidr}} for cidr in config.isolation.egress_to]},
                  {"ports": _ports(DNS_PORT, protocols=("UDP", "TCP"))}]
    return [
        _policy(DEFAULT_DENY, namespace, {}, labels, [], egress),
        _container_defaults(namespace, labels, config),
        _quota(namespace, labels, dict(project.quota)),
    ]


def _container_defaults(namespace: str, labels: dict[str, str], config: PlatformConfig) -> dict[str, Any]:
    """A ResourceQuota on requests and limits refuses a pod with a container that sets none;
    Argo's init and wait containers set none unless the workflow controller's executor does
    (config.go GetExecutor), so the LimitRange gives them the defaults (and any pod an operator
    starts in the orchestrator namespace without resources)."""
    return {"apiVersion": "v1", "kind": "LimitRange",
            "metadata": {"name": CONTAINER_DEFAULTS, "namespace": namespace, "labels": labels},
            "spec": {"limits": [{"type": "Container",
                                 "defaultRequest": dict(config.isolation.container_requests),
                                 "default": dict(config.isolation.container_limits)}]}}


def _quota(namespace: str, labels: dict[str, str], hard: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {"name": QUOTA, "namespace": namespace, "labels": labels},
            "spec": {"hard": hard}}


def orchestrator_quota(resources: list[dict[str, Any]], config: PlatformConfig) -> dict[str, Any]:
    """The orchestrator namespace's ResourceQuota, sized from the EventBus, EventSource and Sensor
    pods that `resources` (the rest of the bundle) make Argo Events run there: every replica,
    ORCHESTRATOR_HEADROOM times over; `isolation.orchestratorQuota` keys replace those."""
    defaults = {"requests": config.isolation.container_requests,
                "limits": config.isolation.container_limits}
    used, _ = pods_usage(events_pods(resources, config.orchestrator_namespace), defaults,
                         rollout=False)
    hard = {key: str(int(used[key]) * ORCHESTRATOR_HEADROOM) if key == "pods" else
            format_quantity(used[key] * ORCHESTRATOR_HEADROOM, memory=key.endswith("memory"))
            for key in QUOTA_KEYS}
    return _quota(config.orchestrator_namespace, {}, {**hard, **config.isolation.orchestrator_quota})


CAPABILITY = Capability(
    "isolation", "Default-deny ingress with the allowances our flows need; in every namespace a "
    "LimitRange that lets Argo's own containers in under the quota; per project a ResourceQuota "
    "(the orchestrator's is added by the bundle: orchestrator_quota).",
    per_platform=orchestrator_policies, per_project=project_isolation)
