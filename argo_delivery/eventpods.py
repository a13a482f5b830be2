"""The pods Argo Events' controller runs for a bundle's EventBus, EventSources and Sensors.

No pod of theirs is in the bundle: the controller builds them from these resources. Argo
Events v1.9.11 builds, for a JetStream EventBus, a StatefulSet of `replicas` pods (default 3,
`JetStreamBus.GetReplicas`) with the containers `main`, `reloader` and `metrics`, each given
the resources of its container template (pkg/reconciler/eventbus/installer/jetstream.go); for
an EventSource or a Sensor, a Deployment of `replicas` pods (default and at least 1,
`GetReplicas`) with one container `main` built from `spec.template.container`
(pkg/reconciler/{eventsource,sensor}/resource.go). Neither sets an update strategy, so a
Deployment rolls out with Kubernetes' default (maxSurge 25%, rounded up: one pod beside the
old ones for up to four replicas), and a StatefulSet replaces its pods one at a time.

The orchestrator namespace's ResourceQuota is sized from these pods (argo_delivery/isolation.py)
and `argo-delivery lint` checks that a namespace's quota holds them (AD023).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from argo_delivery.quantities import parse_quantity

__all__ = ["QUOTA_KEYS", "PodGroup", "events_pods", "pods_usage"]

QUOTA_KEYS = ("pods", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory")
JETSTREAM_REPLICAS = 3
JETSTREAM_CONTAINERS = (("main", "containerTemplate"), ("reloader", "reloaderContainerTemplate"),
                        ("metrics", "metricsContainerTemplate"))


@dataclass(frozen=True)
class PodGroup:
    """The pods of one EventBus, EventSource or Sensor."""

    owner: str                                  # e.g. "EventBus default"
    replicas: int
    surge: int                                  # pods a rollout runs beside them, at most
    containers: tuple[tuple[str, dict[str, Any]], ...]  # (name, securityContext and resources)
    pod_security: dict[str, Any]                # the pod's securityContext


def _template(spec: dict[str, Any]) -> dict[str, Any]:
    return spec.get("template") or {}


def events_pods(resources: Iterable[dict[str, Any]], namespace: str) -> list[PodGroup]:
    """The pod groups Argo Events runs for the resources in `namespace`."""
    groups = []
    for resource in resources:
        meta, spec = resource.get("metadata") or {}, resource.get("spec") or {}
        if meta.get("namespace") != namespace:
            continue
        kind, owner = resource.get("kind"), f"{resource.get('kind')} {meta.get('name')}"
        if kind == "EventBus" and isinstance(spec.get("jetstream"), dict):
            jetstream = spec["jetstream"]
            replicas = jetstream.get("replicas")
            containers = tuple((name, {"resources": (jetstream.get(key) or {}).get("resources") or {},
                                       "securityContext": (jetstream.get(key) or {}).get("securityContext")
                                       or {}})
                               for name, key in JETSTREAM_CONTAINERS)
            groups.append(PodGroup(owner, JETSTREAM_REPLICAS if replicas is None else int(replicas), 0,
                                   containers, jetstream.get("securityContext") or {}))
        elif kind in ("EventSource", "Sensor"):
            replicas = max(1, int(spec.get("replicas") or 1))
            container = _template(spec).get("container") or {}
            groups.append(PodGroup(owner, replicas, math.ceil(replicas / 4),
                                   (("main", container),), _template(spec).get("securityContext") or {}))
    return groups


def _values(container: dict[str, Any], defaults: dict[str, dict[str, str]]) -> Iterator[tuple[str, Any]]:
    """(quota key, value) of a container as the API server stores it: a request it does not set
    is its limit (API defaulting), else the LimitRange's default request; a limit it does not
    set is the LimitRange's default; None where neither gives one."""
    resources = container.get("resources") or {}
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    for name in ("cpu", "memory"):
        yield f"requests.{name}", requests.get(name) or limits.get(name) or \
            defaults.get("requests", {}).get(name)
        yield f"limits.{name}", limits.get(name) or defaults.get("limits", {}).get(name)


def pods_usage(groups: Iterable[PodGroup], defaults: dict[str, dict[str, str]], *,
               rollout: bool) -> tuple[dict[str, Decimal], dict[str, list[str]]]:
    """What the groups' pods count against a ResourceQuota: every replica, plus with `rollout`
    the pods a rolling update runs beside them. Also, per quota key, the containers that set no
    value and get no default (a quota on that key refuses their pods)."""
    used = dict.fromkeys(QUOTA_KEYS, Decimal(0))
    unset: dict[str, list[str]] = {}
    for group in groups:
        count = group.replicas + (group.surge if rollout else 0)
        used["pods"] += count
        for name, container in group.containers:
            for key, value in _values(container, defaults):
                if value is None:
                    unset.setdefault(key, []).append(f"{group.owner} container {name}")
                else:
                    used[key] += count * parse_quantity(value)
    return used, unset
