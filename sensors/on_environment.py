"""Sensor `on-environment-<project>` (flows F5, F6): Environment events -> vend and destroy.

Its dependencies, all on the project's event of the `environments` EventSource, filter on
what changed, never on the object alone (an informer sends every existing Environment again
as ADD when the EventSource restarts, and every status write as UPDATE):

- `requested`: an ADD of an Environment with no phase yet, not being deleted and not restored
  (annotation `argo-delivery.io/restored`: `argo-delivery state import` writes its status
  after creating it, and its infrastructure already exists, with its Terraform state) -> vend;
- `retry-vend`: an UPDATE that gives `argo-delivery.io/retry-vend` a new value on one with
  no phase yet (the reaper does, for an Environment no vend took: its ADD was lost, e.g.
  published before the Sensor subscribed) -> vend;
- `version-changed`: an UPDATE that changes a demo Environment's `spec.version` (the release
  flow moves demo environments to the new release) -> vend, which redeploys it;
- `deleting`: an UPDATE that sets `metadata.deletionTimestamp` (only an Environment with a
  finalizer, i.e. one whose vend began, is not removed at once) -> destroy;
- `retry-destroy`: an UPDATE that gives `argo-delivery.io/retry-destroy` a new value on an
  Environment being deleted (the reaper does, for a failed destroy) -> destroy.

Filter fields keep their JSON type (Argo Events hands gjson's value to govaluate): `demo`
is compared with the boolean `true`, not the string.

The steps are idempotent (a vend of a Ready environment re-applies no change; a destroy
without state destroys nothing), and both templates hold the Environment's mutex.
"""

from __future__ import annotations

from typing import Any

from argo_delivery.capability import SensorTrigger
from argo_delivery.config import PlatformConfig, Project
from argo_delivery.envmodel import RETRY_DESTROY_ANNOTATION, RETRY_VEND_ANNOTATION
from argo_delivery.eventsources import environments as environments_source
from argo_delivery.naming import ANNOTATION_RESTORED, LABEL_PROJECT
from argo_delivery.rbac import WORKFLOW_SUBMITTER, Account
from argo_delivery.security import events_pod_template

from ._triggers import workflow_trigger
from .on_version import _gjson_key, _or_empty

__all__ = ["ACCOUNT", "NAME", "dependencies", "on_environment"]

NAME = "on-environment"
ACCOUNT = Account("argo-delivery-sensor-on-environment",
                  "A project's on-environment Sensor: may create Workflows in its project's "
                  "namespace (only vend-environment and destroy-environment, the admission "
                  "policy says), nothing else.",
                  WORKFLOW_SUBMITTER, home="orchestrator", per_project=True)


def _dependency(name: str, project: Project, expr: str, fields: dict[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "eventSourceName": environments_source.NAME,
        "eventName": environments_source.event_name(project),
        "filters": {"exprs": [{"expr": expr, "fields": [
            {"name": key, "path": path} for key, path in fields.items()]}]},
    }


def dependencies(project: Project) -> list[dict[str, Any]]:
    retry = _gjson_key(RETRY_DESTROY_ANNOTATION)
    retry_vend = _gjson_key(RETRY_VEND_ANNOTATION)
    return [
        _dependency("requested", project,
                    'type == "ADD" && phase == "" && deleting == "" && restored == ""', {
                        "type": "type", "phase": _or_empty("body.status.phase"),
                        "deleting": _or_empty("body.metadata.deletionTimestamp"),
                        "restored": _or_empty(
                            f"body.metadata.annotations.{_gjson_key(ANNOTATION_RESTORED)}")}),
        _dependency("retry-vend", project,
                    'type == "UPDATE" && phase == "" && deleting == "" && new != "" && new != old', {
                        "type": "type", "phase": _or_empty("body.status.phase"),
                        "deleting": _or_empty("body.metadata.deletionTimestamp"),
                        "new": _or_empty(f"body.metadata.annotations.{retry_vend}"),
                        "old": _or_empty(f"oldBody.metadata.annotations.{retry_vend}")}),
        _dependency("version-changed", project,
                    'type == "UPDATE" && demo == true && new != old && new != "" && '
                    'deleting == ""', {
                        "type": "type", "demo": _or_empty("body.spec.demo"),
                        "new": _or_empty("body.spec.version"),
                        "old": _or_empty("oldBody.spec.version"),
                        "deleting": _or_empty("body.metadata.deletionTimestamp")}),
        _dependency("deleting", project, 'type == "UPDATE" && new != "" && old == ""', {
            "type": "type", "new": _or_empty("body.metadata.deletionTimestamp"),
            "old": _or_empty("oldBody.metadata.deletionTimestamp")}),
        _dependency("retry-destroy", project,
                    'type == "UPDATE" && deleting != "" && new != "" && new != old', {
                        "type": "type",
                        "deleting": _or_empty("body.metadata.deletionTimestamp"),
                        "new": _or_empty(f"body.metadata.annotations.{retry}"),
                        "old": _or_empty(f"oldBody.metadata.annotations.{retry}")}),
    ]


def on_environment(project: Project, config: PlatformConfig, vend: SensorTrigger,
                   destroy: SensorTrigger) -> list[dict[str, Any]]:
    """The Sensor of one project with environments, in the orchestrator namespace."""
    if project.environments is None:
        return []
    name = {"dataKey": "body.metadata.name"}
    triggers = [
        workflow_trigger(f"vend-{project.name}", "requested", project.namespace, project.name,
                         vend.template, {"environment": name}),
        workflow_trigger(f"retry-vend-{project.name}", "retry-vend", project.namespace,
                         project.name, vend.template, {"environment": name}),
        workflow_trigger(f"redeploy-{project.name}", "version-changed", project.namespace,
                         project.name, vend.template, {"environment": name}),
        workflow_trigger(f"destroy-{project.name}", "deleting", project.namespace, project.name,
                         destroy.template, {"environment": name}),
        workflow_trigger(f"retry-destroy-{project.name}", "retry-destroy", project.namespace,
                         project.name, destroy.template, {"environment": name}),
    ]
    return [{
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Sensor",
        "metadata": {"name": f"{NAME}-{project.name}", "namespace": config.orchestrator_namespace,
                     "labels": {LABEL_PROJECT: project.name},
                     "annotations": {"argo-delivery.io/description":
                                     f"Environments of {project.name}: a new one is vended, a "
                                     "demo one redeployed on a new release, a deleted one "
                                     "destroyed."}},
        "spec": {
            "template": events_pod_template(ACCOUNT.for_project(project.name), api_access=True),
            "dependencies": dependencies(project),
            "triggers": triggers,
        },
    }]
