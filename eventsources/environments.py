"""EventSource `environments`: every Environment created or changed in a project namespace
(flows F5, F6).

A resource EventSource (Argo Events' informer on `environments.argo-delivery.io`), one event
per project, each watching only that project's namespace. Its ServiceAccount may get, list and
watch Environments in project namespaces and nothing else. The on-environment Sensor filters
on what changed (sensors/on_environment.py).
"""

from __future__ import annotations

from typing import Any

from argo_delivery.config import PlatformConfig, Project
from argo_delivery.naming import GROUP
from argo_delivery.rbac import Account, Role, Rule

from ._resource import resource_event_source

__all__ = ["ACCOUNT", "NAME", "environments", "event_name"]

NAME = "environments"
_ROLE = Role("argo-delivery-environment-watcher",
             "The environments EventSource: watch Environments, nothing else.",
             (Rule(GROUP, ("environments",), ("get", "list", "watch")),))
ACCOUNT = Account("argo-delivery-eventsource-environments",
                  "The environments EventSource: watches Environments in project namespaces.",
                  _ROLE, home="orchestrator")


def event_name(project: Project) -> str:
    return f"environments-{project.name}"


def environments(config: PlatformConfig) -> list[dict[str, Any]]:
    """The EventSource, in the orchestrator namespace (none when no project has environments)."""
    projects = [p for p in config.projects if p.environments]
    if not projects:
        return []
    return [resource_event_source(config, NAME, "environments", ACCOUNT,
                                  "Environments created or changed, per project namespace.",
                                  projects, event_name)]
