"""EventSources (and the EventBus they publish to); each function takes the validated config."""

from __future__ import annotations

from typing import Any

from argo_delivery.config import PlatformConfig

__all__ = ["render_eventsources"]


def render_eventsources(config: PlatformConfig) -> list[Any]:
    """Every EventSource of the platform."""
    return []
