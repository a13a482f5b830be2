"""Sensors, one module per wiring; each function takes the validated config."""

from __future__ import annotations

from typing import Any

from argo_delivery.config import PlatformConfig

from .on_push import on_push

__all__ = ["on_push", "render_sensors"]


def render_sensors(config: PlatformConfig) -> list[Any]:
    """Every Sensor of the platform."""
    return [on_push(config)]
