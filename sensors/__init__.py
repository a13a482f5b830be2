"""Sensors, one module per wiring; each function takes the validated config and the trigger
target the template's capability declares."""

from . import on_push, on_version

__all__ = ["on_push", "on_version"]
