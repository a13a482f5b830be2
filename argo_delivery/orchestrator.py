"""The orchestrator namespace: where the EventBus, EventSources and Sensors live."""

from __future__ import annotations

from typing import Any

from argo_delivery.capability import Capability
from argo_delivery.config import PlatformConfig
from argo_delivery.eventbus import ACCOUNT as EVENTBUS_ACCOUNT
from argo_delivery.eventbus import eventbus
from argo_delivery.naming import POD_SECURITY_LABELS

__all__ = ["CAPABILITY", "namespace_resources", "orchestrator_resources"]


def namespace_resources(config: PlatformConfig, name: str,
                        labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The Namespace `name` with our labels and the site's extra ones (the config refuses a
    site label that is one of ours), or nothing when the site creates namespaces itself."""
    if not config.namespaces.manage:
        return []
    metadata: dict[str, Any] = {
        "name": name, "labels": {**config.namespaces.labels, **(labels or {}), **POD_SECURITY_LABELS}}
    if config.namespaces.annotations:
        metadata["annotations"] = dict(config.namespaces.annotations)
    return [{"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}]


def orchestrator_resources(config: PlatformConfig) -> list[dict[str, Any]]:
    """The orchestrator's Namespace and its EventBus."""
    return [*namespace_resources(config, config.orchestrator_namespace), eventbus(config)]


CAPABILITY = Capability(
    "orchestrator", "The orchestrator namespace and the EventBus every EventSource and Sensor uses.",
    per_platform=orchestrator_resources, accounts=(EVENTBUS_ACCOUNT,))
