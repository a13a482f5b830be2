"""The orchestrator namespace: where the EventBus, EventSources and Sensors live."""

from __future__ import annotations

from typing import Any

from argo_delivery.capability import Capability
from argo_delivery.config import PlatformConfig
from argo_delivery.eventbus import eventbus
from argo_delivery.naming import POD_SECURITY_LABELS

__all__ = ["CAPABILITY", "orchestrator_resources"]


def orchestrator_resources(config: PlatformConfig) -> list[dict[str, Any]]:
    """The orchestrator's Namespace and its EventBus."""
    return [{
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": config.orchestrator_namespace, "labels": {**POD_SECURITY_LABELS}},
    }, eventbus(config)]


CAPABILITY = Capability(
    "orchestrator", "The orchestrator namespace and the EventBus every EventSource and Sensor uses.",
    per_platform=orchestrator_resources)
