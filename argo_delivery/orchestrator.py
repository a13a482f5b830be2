"""The orchestrator namespace: where the EventBus, EventSources and Sensors live."""

from __future__ import annotations

from typing import Any

from argo_delivery.config import PlatformConfig
from argo_delivery.eventbus import eventbus
from argo_delivery.naming import POD_SECURITY_LABELS
from argo_delivery.rbac import service_account
from argo_delivery.tenancy import SENSOR_ACCOUNTS

__all__ = ["orchestrator_resources"]


def orchestrator_resources(config: PlatformConfig) -> list[dict[str, Any]]:
    """The orchestrator's Namespace, its EventBus, and the ServiceAccounts its Sensors run as."""
    resources: list[dict[str, Any]] = [{
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": config.orchestrator_namespace, "labels": {
            **POD_SECURITY_LABELS}},
    }, eventbus(config)]
    for account in SENSOR_ACCOUNTS:
        resources.append(service_account(
            account, config.orchestrator_namespace, {},
            "A Sensor: may create Workflows in project namespaces, nothing else."))
    return resources
