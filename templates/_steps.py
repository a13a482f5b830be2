"""Script steps: standard-library Python files under `steps/`, loaded as script sources."""

from __future__ import annotations

import inspect
from importlib import resources

from argo_delivery import versionhash

__all__ = ["step_source"]


def step_source(name: str, with_versionhash: bool = False) -> str:
    """The source of `steps/<name>.py`, optionally after argo_delivery/versionhash.py."""
    body = resources.files("argo_delivery.templates").joinpath(f"steps/{name}.py").read_text()
    if not with_versionhash:
        return body
    return inspect.getsource(versionhash) + "\n\n" + body
