"""Script steps: standard-library Python files under `steps/`, loaded as script sources."""

from __future__ import annotations

import inspect
import types
from collections.abc import Sequence
from importlib import resources
from typing import Any

from argo_delivery import envmodel, expiry, promotion, steplib, versionhash
from argo_delivery.config import Project
from argo_delivery.metrics import workflow_metrics
from argo_delivery.naming import GROUP, LABEL_PROJECT

__all__ = ["step_module", "step_source", "template_metadata"]

# Shared standard-library modules a step may have prepended, by name.
SHARED = {"steplib": steplib, "versionhash": versionhash, "promotion": promotion,
          "envmodel": envmodel, "expiry": expiry}


def step_source(name: str, with_versionhash: bool = False,
                shared: Sequence[str] = ("steplib",)) -> str:
    """The source of `steps/<name>.py` after the `shared` modules (and versionhash)."""
    body = resources.files("argo_delivery.templates").joinpath(f"steps/{name}.py").read_text()
    names = [*shared, *(["versionhash"] if with_versionhash else [])]
    parts = [_without_future(inspect.getsource(SHARED[n])) for n in names]
    return "\n\n".join([*parts, body])


def template_metadata(name: str, project: Project, *, description: str, flow: str,
                      summary: str, cron_of: str | None = None) -> dict[str, Any]:
    """name, namespace, labels and annotations of a project's WorkflowTemplate or CronWorkflow
    (`description` says what it does, `flow` which of DESIGN's flows it implements, `summary`
    is the line Argo's UI shows), and a WorkflowTemplate's custom metrics
    (argo_delivery/metrics.py, labelled flow=`name`).

    A CronWorkflow names the WorkflowTemplate it runs (`cron_of`) and gets no metrics of its
    own: its Workflows run that template's spec, metrics included, and a CronWorkflow sets
    nothing but the reference and the arguments (lint AD019), so a scheduled run is measured
    exactly like a triggered one."""
    metrics = {} if cron_of else {"metrics": workflow_metrics(project.name, name)}
    return {
        **metrics,
        "name": name,
        "namespace": project.namespace,
        "labels": {LABEL_PROJECT: project.name},
        "annotations": {
            f"{GROUP}/description": description,
            f"{GROUP}/flow": flow,
            "workflows.argoproj.io/description": summary,
            "workflows.argoproj.io/version": ">= 4.0.0",
        },
    }


def _without_future(source: str) -> str:
    # `from __future__` must open a file; in a concatenation only the first may keep it.
    return source.replace("from __future__ import annotations\n", "")


def step_module(name: str, shared: Sequence[str] = ("steplib",)) -> types.ModuleType:
    """`steps/<name>.py` after its shared modules and versionhash, as a module: the very code
    the rendered step runs.

    The CLI calls its functions (`argo-delivery hash --config` resolves heads with the
    generate-version step's `resolve_component_heads`); its `__main__` block does not run.
    """
    module = types.ModuleType(f"argo_delivery_step_{name}")
    source = step_source(name, with_versionhash=True, shared=shared)
    exec(compile(source, f"<argo-delivery step {name}>", "exec"), module.__dict__)  # noqa: S102
    return module
