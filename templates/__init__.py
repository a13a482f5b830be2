"""WorkflowTemplates and CronWorkflows, one module per capability.

Each module exposes plain functions that take the validated platform config (or one
project of it) and return hera objects; nothing is built at import time.
"""

from __future__ import annotations

from typing import Any

from argo_delivery.config import PlatformConfig

from .generate_version import TRIGGER_PARAMETERS, generate_version

__all__ = ["TRIGGER_PARAMETERS", "generate_version", "render_templates"]


def render_templates(config: PlatformConfig) -> list[Any]:
    """Every WorkflowTemplate and CronWorkflow of the platform."""
    return [generate_version(project, config) for project in config.projects]
