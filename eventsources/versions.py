"""EventSource `versions`: every Version created or changed in a project namespace (F2, F4).

A resource EventSource (Argo Events' informer on `versions.argo-delivery.io`), one event
per project, each watching only that project's namespace. Its ServiceAccount may get, list
and watch Versions in project namespaces and nothing else. The Sensors filter on what
changed (sensors/on_version.py): an informer also sends every existing Version as ADD when
the EventSource restarts, and every status write as UPDATE.
"""

from __future__ import annotations

from typing import Any

from argo_delivery.config import PlatformConfig, Project
from argo_delivery.naming import GROUP
from argo_delivery.rbac import Account, Role, Rule

from ._resource import resource_event_source

__all__ = ["ACCOUNT", "NAME", "event_name", "versions"]

NAME = "versions"
_ROLE = Role("argo-delivery-version-watcher",
             "The versions EventSource: watch Versions, nothing else.",
             (Rule(GROUP, ("versions",), ("get", "list", "watch")),))
ACCOUNT = Account("argo-delivery-eventsource-versions",
                  "The versions EventSource: watches Versions in project namespaces.",
                  _ROLE, home="orchestrator")


def event_name(project: Project) -> str:
    return f"versions-{project.name}"


def versions(config: PlatformConfig) -> dict[str, Any]:
    """The EventSource, in the orchestrator namespace."""
    return resource_event_source(config, NAME, "versions", ACCOUNT,
                                 "Versions created or changed, per project namespace.",
                                 config.projects, event_name)
