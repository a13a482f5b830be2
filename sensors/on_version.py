"""Sensor `on-version-<project>` (flows F2 and F4): Version events -> stream runs and release.

Its dependencies, all on the project's event of the `versions` EventSource, filter on what
changed, never on the object alone: an informer sends every existing Version again as ADD
when the EventSource restarts, and every status write as UPDATE (Argo Events issue #760 is
that trap). So:

- `created`: an ADD of a Version with no stream yet and not restored -> `run-stream` alpha
  (`argo-delivery state import` creates a Version with the annotation `argo-delivery.io/restored`
  and writes its status after: its ADD has no stream, and its alpha already ran where it came
  from; only a user allowed the verb `restore` may set that annotation, the admission
  policies say);
- `rerun-<stream>`: an UPDATE that gives the annotation `argo-delivery.io/rerun-<stream>` a
  new value (`argo-delivery versions rerun`) on an unreleased Version -> `run-stream`;
- `approved`: an UPDATE that adds `spec.approval` (set once, by a product owner, admitted
  by the approval policy) -> `release`.

A missing field reads as "" through a gjson multipath with a literal (`[path,!""].0`):
Argo Events rejects an event whose filter names a path that does not exist. The run-stream
and release steps are idempotent too (they claim the run in the Version's status), so a
redelivered event changes nothing.
"""

from __future__ import annotations

from typing import Any

from argo_delivery.capability import SensorTrigger
from argo_delivery.config import PlatformConfig, Project
from argo_delivery.eventsources import versions as versions_source
from argo_delivery.naming import ANNOTATION_RESTORED, LABEL_PROJECT
from argo_delivery.promotion import RERUN_ANNOTATION, STREAMS
from argo_delivery.rbac import WORKFLOW_SUBMITTER, Account
from argo_delivery.security import events_pod_template

from ._triggers import workflow_trigger

__all__ = ["ACCOUNT", "NAME", "dependencies", "on_version"]

NAME = "on-version"
ACCOUNT = Account("argo-delivery-sensor-on-version",
                  "A project's on-version Sensor: may create Workflows in its project's namespace "
                  "(only run-stream and release, the admission policy says), nothing else.",
                  WORKFLOW_SUBMITTER, home="orchestrator", per_project=True)


def _or_empty(path: str) -> str:
    """A gjson path that reads "" where `path` does not exist."""
    return f'[{path},!""].0'


def _gjson_key(key: str) -> str:
    return key.replace(".", "\\.")


def _dependency(name: str, project: Project, expr: str, fields: dict[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "eventSourceName": versions_source.NAME,
        "eventName": versions_source.event_name(project),
        "filters": {"exprs": [{"expr": expr, "fields": [
            {"name": key, "path": path} for key, path in fields.items()]}]},
    }


def dependencies(project: Project) -> list[dict[str, Any]]:
    """The Sensor's dependencies: created, rerun-<stream> per stream, approved."""
    result = [_dependency("created", project, 'type == "ADD" && stream == "" && restored == ""', {
        "type": "type", "stream": _or_empty("body.status.stream"),
        "restored": _or_empty(f"body.metadata.annotations.{_gjson_key(ANNOTATION_RESTORED)}")})]
    for stream in STREAMS:
        key = _gjson_key(RERUN_ANNOTATION.format(stream=stream))
        result.append(_dependency(
            f"rerun-{stream}", project,
            'type == "UPDATE" && new != "" && new != old && released == ""', {
                "type": "type",
                "new": _or_empty(f"body.metadata.annotations.{key}"),
                "old": _or_empty(f"oldBody.metadata.annotations.{key}"),
                "released": _or_empty("body.status.releasedAt")}))
    result.append(_dependency("approved", project, 'type == "UPDATE" && new != "" && old == ""', {
        "type": "type",
        "new": _or_empty("body.spec.approval.approvedBy"),
        "old": _or_empty("oldBody.spec.approval.approvedBy")}))
    return result


def on_version(project: Project, config: PlatformConfig, run_stream: SensorTrigger,
               release: SensorTrigger) -> dict[str, Any]:
    """The Sensor of one project, in the orchestrator namespace, with its own account."""
    name = {"dataKey": "body.metadata.name"}
    triggers = [workflow_trigger(f"alpha-{project.name}", "created", project.namespace,
                                 project.name, run_stream.template,
                                 {"stream": "alpha", "version": name, "trigger": "created"})]
    for stream in STREAMS:
        triggers.append(workflow_trigger(
            f"rerun-{stream}-{project.name}", f"rerun-{stream}", project.namespace, project.name,
            run_stream.template, {"stream": stream, "version": name, "trigger": "rerun"}))
    triggers.append(workflow_trigger(f"release-{project.name}", "approved", project.namespace,
                                     project.name, release.template, {"version": name}))
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Sensor",
        "metadata": {"name": f"{NAME}-{project.name}", "namespace": config.orchestrator_namespace,
                     "labels": {LABEL_PROJECT: project.name},
                     "annotations": {"argo-delivery.io/description":
                                     f"Versions of {project.name}: a new one runs alpha, a re-run "
                                     "request runs its stream again, an approval releases it."}},
        "spec": {
            "template": events_pod_template(ACCOUNT.for_project(project.name), api_access=True),
            "dependencies": dependencies(project),
            "triggers": triggers,
        },
    }
