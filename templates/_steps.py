"""Script steps: standard-library Python files under `steps/`, loaded as script sources."""

from __future__ import annotations

import inspect
import types
from importlib import resources

from argo_delivery import versionhash

__all__ = ["step_module", "step_source"]


def step_source(name: str, with_versionhash: bool = False) -> str:
    """The source of `steps/<name>.py`, optionally after argo_delivery/versionhash.py."""
    body = resources.files("argo_delivery.templates").joinpath(f"steps/{name}.py").read_text()
    if not with_versionhash:
        return body
    return inspect.getsource(versionhash) + "\n\n" + body


def step_module(name: str) -> types.ModuleType:
    """`steps/<name>.py` after versionhash, as a module: the very code the rendered step runs.

    The CLI calls its functions (`argo-delivery hash --config` resolves heads with the
    generate-version step's `resolve_component_heads`); its `__main__` block does not run.
    """
    module = types.ModuleType(f"argo_delivery_step_{name}")
    source = step_source(name, with_versionhash=True)
    exec(compile(source, f"<argo-delivery step {name}>", "exec"), module.__dict__)  # noqa: S102
    return module
