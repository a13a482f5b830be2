"""EventSources; each function takes the validated config and returns manifests."""

from __future__ import annotations

from typing import Any

from argo_delivery.config import PlatformConfig
from argo_delivery.events_common import EVENTSOURCE_SA
from argo_delivery.rbac import service_account

from .git_push import EVENT_NAMES, git_push, repository_path
from .git_push import NAME as EVENTSOURCE_NAME

__all__ = ["EVENTSOURCE_NAME", "EVENT_NAMES", "git_push", "render_eventsources", "repository_path"]


def render_eventsources(config: PlatformConfig) -> list[Any]:
    """Every EventSource of the platform, and the ServiceAccount their pods run as."""
    return [
        service_account(EVENTSOURCE_SA, config.orchestrator_namespace, {},
                        "EventSource pods: receive webhooks; no API access."),
        git_push(config),
    ]
