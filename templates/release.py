"""Sign-off and release (flow F4).

A product owner approves a candidate by writing `spec.approval` on the Version (the CLI's
`versions approve`, kubectl, any client of the API). The API server decides, not our
templates: RBAC gives the custom verb `approve` on versions to the project's product owners
only, and the admission policy below lets `spec.approval` be set only on a candidate, only by
a user the authorizer allows to `approve` that Version, only with `approvedBy` equal to that
user's name, and never changed once set (the CRD's own rule says so too). The on-version
Sensor sees the approval appear and runs `release`, whose step marks the Version released.
"""

from __future__ import annotations

from hera.workflows import Env, Parameter, Step, Steps, WorkflowTemplate

from argo_delivery.admission import validating_policy
from argo_delivery.config import PlatformConfig, Project
from argo_delivery.durations import parse_duration
from argo_delivery.naming import ANNOTATION_RESTORED, GROUP, VERB_RESTORE
from argo_delivery.security import script_step, step_resources, workflow_defaults
from argo_delivery.tenancy import EXECUTOR

from . import airgap
from ._steps import step_source, template_metadata
from .run_stream import RECORDER, step_image

__all__ = ["NAME", "approval_policy", "release"]

NAME = "release"


def release(project: Project, config: PlatformConfig) -> WorkflowTemplate:
    """The `release` WorkflowTemplate of one project: an approved candidate -> released (and,
    with airgap.export, exported: the export-release template runs after the release step)."""
    export = airgap.export_step(config)
    deadline = 600
    if export:
        deadline += int(parse_duration(config.airgap.timeout).total_seconds()) * 3 + 900
    with WorkflowTemplate(
        **template_metadata(NAME, project,
                            description="Release an approved candidate Version"
                                        + (" and export it for air-gapped sites." if export else "."),
                            flow="F4, F8" if export else "F4",
                            summary="Approved candidate -> released"
                                    + (" -> exported." if export else ".")),
        entrypoint="main" if export else NAME,
        arguments=[Parameter(name="version", value="", description="the approved Version")],
        **workflow_defaults(RECORDER, EXECUTOR, deadline_seconds=deadline),
        **(airgap.artifact_repository_ref(config) if export else {}),
    ) as template:
        step = script_step(
            name=NAME, image=step_image(config), command=["python3"],
            source=step_source("run_stream", shared=("steplib", "promotion")),
            env=[Env(name="AD_MODE", value="release"), Env(name="AD_PROJECT", value=project.name),
                 Env(name="AD_NAMESPACE", value="{{workflow.namespace}}"),
                 Env(name="AD_WORKFLOW", value="{{workflow.name}}"),
                 Env(name="AD_VERSION", value="{{workflow.parameters.version}}"),
                 Env(name="HOME", value="/tmp")],
            resources=step_resources(cpu="50m", memory="64Mi", cpu_limit="500m",
                                     memory_limit="256Mi"),
            api_access=True, active_deadline_seconds=300)
        if export:
            with Steps(name="main"):
                Step(name=NAME, template=step)
                Step(**export)
    return template


def approval_policy(config: PlatformConfig) -> list[dict]:
    """Who may approve a Version, when, and in whose name (see the module docstring)."""
    adding = "!has(oldObject.spec.approval) && has(object.spec.approval)"

    def restored(obj: str) -> str:
        return (f"(has({obj}.metadata.annotations) && '{ANNOTATION_RESTORED}' in "
                f"{obj}.metadata.annotations ? {obj}.metadata.annotations['{ANNOTATION_RESTORED}'] "
                ": '')")
    return validating_policy(
        "argo-delivery-version-approval",
        "A Version's approval: a candidate only, by a user allowed to approve it, in that "
        "user's own name, never changed once given.",
        # every namespace: a Version outside a project namespace is approved by the same rules
        resources=[{"apiGroups": [GROUP], "apiVersions": ["*"], "operations": ["UPDATE"],
                    "resources": ["versions"]}],
        validations=[
            {"expression": "!has(oldObject.spec.approval) || (has(object.spec.approval) && "
                           "object.spec.approval == oldObject.spec.approval)",
             "message": "an approval, once given, is never changed or withdrawn"},
            {"expression": f"!({adding}) || authorizer.group('{GROUP}').resource('versions')"
                           ".namespace(request.namespace).name(object.metadata.name)"
                           ".check('approve').allowed()",
             "messageExpression": "request.userInfo.username + ' may not approve Versions in ' + "
                                  "request.namespace + ': approving needs the verb approve on "
                                  "versions, which the product owners of the project hold "
                                  "(Role argo-delivery-product-owner)'"},
            {"expression": f"!({adding}) || (has(oldObject.status) && has(oldObject.status.stream)"
                           " && oldObject.status.stream == 'candidate')",
             "messageExpression": "'only a candidate Version can be approved; ' + "
                                  "object.metadata.name + ' is ' + (has(oldObject.status) && "
                                  "has(oldObject.status.stream) ? oldObject.status.stream : "
                                  "'not yet tested')"},
            {"expression": f"!({adding}) || object.spec.approval.approvedBy == "
                           "request.userInfo.username",
             "messageExpression": "'spec.approval.approvedBy must be your own user name, ' + "
                                  "request.userInfo.username"},
            # the restore marker (its Sensor runs nothing on it) is set by a restore only
            {"expression": f"{restored('object')} == {restored('oldObject')} || "
                           f"authorizer.group('{GROUP}').resource('versions')"
                           f".namespace(request.namespace).check('{VERB_RESTORE}').allowed()",
             "messageExpression": f"request.userInfo.username + ' may not set or change the "
                                  f"annotation {ANNOTATION_RESTORED}: only a restore does (the "
                                  f"verb {VERB_RESTORE} on versions is needed)'"},
        ])
