"""The one shape of resource EventSource we render: an informer on one of our kinds, one
event per project, each watching only that project's namespace (ADD and UPDATE)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from argo_delivery.config import PlatformConfig, Project
from argo_delivery.naming import API_VERSION, GROUP
from argo_delivery.rbac import Account
from argo_delivery.security import events_pod_template

__all__ = ["resource_event_source"]


def resource_event_source(config: PlatformConfig, name: str, resource: str, account: Account,
                          description: str, projects: Iterable[Project],
                          event_name: Callable[[Project], str]) -> dict[str, Any]:
    """EventSource `name` in the orchestrator namespace, on `resource` of our API group."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "EventSource",
        "metadata": {"name": name, "namespace": config.orchestrator_namespace,
                     "annotations": {"argo-delivery.io/description": description}},
        "spec": {
            "template": events_pod_template(account, api_access=True),
            "resource": {
                event_name(project): {
                    "namespace": project.namespace,
                    "group": GROUP,
                    "version": API_VERSION,
                    "resource": resource,
                    "eventTypes": ["ADD", "UPDATE"],
                }
                for project in projects
            },
        },
    }
