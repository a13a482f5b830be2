"""The environment reaper (flow F7): WorkflowTemplate `reap-environments` and its CronWorkflow
`reaper`, per project.

At `schedules.reaper` one step takes one LIST of the project namespace's Environments and
decides with argo_delivery/expiry.py: an expired one (not demo) is deleted, so its destroy
runs through the same finalizer path as any delete; one inside `environments.expiryWarning`
gets the condition `ExpiringSoon` and a Kubernetes Event (once per expiry); one whose destroy
failed is asked to run it again (annotation `argo-delivery.io/retry-destroy`). With the
parameter `dry-run=true` it only reports (`argo submit --from workflowtemplate/reap-environments
-p dry-run=true`). Its account may list, delete and annotate Environments (the custom verb
manage: anyone's), write their status, and create Events; nothing else.
"""

from __future__ import annotations

from hera.workflows import CronWorkflow, Env, Parameter, WorkflowTemplate
from hera.workflows import models as m

from argo_delivery.config import PlatformConfig, Project
from argo_delivery.durations import go_duration, parse_duration
from argo_delivery.metrics import reaper_keys, reaper_metrics, reaper_output
from argo_delivery.naming import GROUP
from argo_delivery.rbac import Account, Role, Rule
from argo_delivery.security import script_step, step_resources, workflow_defaults
from argo_delivery.tenancy import EXECUTOR

from ._steps import step_source, template_metadata
from .run_stream import step_image

__all__ = ["CRON", "NAME", "REAPER", "reaper"]

NAME = "reap-environments"
CRON = "reaper"
_ROLE = Role(
    "argo-delivery-environment-reaper",
    "The reaper: list Environments, delete expired ones (anyone's: the custom verb manage), "
    "ask a failed destroy to run again (patch), mark expiring ones (status) and say so in an "
    "Event. Nothing else.",
    (Rule(GROUP, ("environments",), ("list", "get", "delete", "patch", "manage")),
     Rule(GROUP, ("environments/status",), ("get", "update")),
     Rule("", ("events",), ("create",))))
REAPER = Account(_ROLE.name, _ROLE.description, _ROLE)


def reaper(project: Project, config: PlatformConfig) -> list[object]:
    """The project's reap-environments template and reaper CronWorkflow (none without
    `environments` or `schedules`)."""
    if project.environments is None:
        return []
    with WorkflowTemplate(
        **template_metadata(NAME, project,
                            description="Delete expired Environments, warn about expiring ones, "
                                        "retry failed destroys.",
                            flow="F7", summary="Environments -> reaped."),
        entrypoint="reap",
        arguments=[Parameter(name="dry-run", value="false", enum=["false", "true"],
                             description="true: only report what it would do")],
        **workflow_defaults(REAPER, EXECUTOR, deadline_seconds=900),
    ) as template:
        script_step(
            name="reap", image=step_image(config), command=["python3"],
            source=step_source("environment", shared=("steplib", "envmodel", "expiry")),
            env=[Env(name="AD_MODE", value="reap"), Env(name="AD_PROJECT", value=project.name),
                 Env(name="AD_NAMESPACE", value="{{workflow.namespace}}"),
                 Env(name="AD_WORKFLOW", value="{{workflow.name}}"),
                 Env(name="AD_DRY_RUN", value="{{workflow.parameters.dry-run}}"),
                 Env(name="AD_DEFAULT_TTL", value=go_duration(parse_duration(
                     project.environments.default_ttl))),
                 Env(name="AD_EXPIRY_WARNING", value=go_duration(parse_duration(
                     config.environments.expiry_warning))),
                 Env(name="HOME", value="/tmp")],
            resources=step_resources(cpu="50m", memory="64Mi", cpu_limit="500m",
                                     memory_limit="256Mi"),
            api_access=True, active_deadline_seconds=600,
            outputs=[Parameter(name="report", value_from=m.ValueFrom(path="/tmp/report.json")),
                     *(Parameter(name=reaper_output(key), value_from=m.ValueFrom(
                         path=f"/tmp/metric-{reaper_output(key)}", default="0"))
                       for key in reaper_keys())],
            metrics=reaper_metrics(project.name))
    resources: list[object] = [template]
    if config.schedules is not None:
        resources.append(CronWorkflow(
            **template_metadata(CRON, project, description="The environment reaper, on schedule.",
                                flow="F7", summary="Environment reaper.", cron_of=NAME),
            schedules=[config.schedules.reaper],
            timezone=config.schedules.time_zone,
            concurrency_policy="Forbid",
            starting_deadline_seconds=600,
            successful_jobs_history_limit=3,
            failed_jobs_history_limit=3,
            workflow_template_ref=m.WorkflowTemplateRef(name=NAME),
            arguments=[Parameter(name="dry-run", value="false")]))
    return resources
