"""WorkflowTemplate `run-stream` (flows F2 and F3): a Version's test suites, in parallel.

One Workflow runs every suite of a stream (alpha or nightly) on one Version (or, on the
nightly schedule, on the Versions it picks), each suite as its own container from the
suite's image with its command, args and timeout, the Version's facts in its environment,
no API token and nothing of the other suites. Three small steps around the suites, all
running as the stream recorder (the only account that writes a Version's status):

- `start` takes the Version (or picks the nightly ones) and claims the run in its status;
  a duplicate trigger finds the run claimed and does nothing;
- `watch` follows this run's suite nodes in the Workflow and writes each suite's result
  (phase, start, end, exit code or the reason: timeout, image pull, OOM) and the stream's
  outcome, which moves `status.stream` (argo_delivery/promotion.py has the rules);
- `finish`, the exit handler, records a run the watcher could not finish as an error.
"""

from __future__ import annotations

import json

from hera.workflows import DAG, Env, Parameter, Task, WorkflowTemplate
from hera.workflows import models as m

from argo_delivery.config import PlatformConfig, Project, TestSuite
from argo_delivery.durations import parse_duration
from argo_delivery.metrics import suite_metrics
from argo_delivery.naming import GROUP
from argo_delivery.promotion import STREAMS
from argo_delivery.rbac import Account, Role, Rule
from argo_delivery.security import container_step, script_step, step_resources, workflow_defaults
from argo_delivery.tenancy import EXECUTOR

from ._steps import step_source, template_metadata

__all__ = ["NAME", "RECORDER", "SUITE_ACCOUNT", "TRIGGERS", "run_stream", "step_image",
           "suite_environment"]

NAME = "run-stream"
TRIGGERS = ("created", "rerun", "schedule", "manual")
# Margin on top of the longest suite for the steps around the suites.
DEADLINE_MARGIN_SECONDS = 900

_RECORDER_ROLE = Role(
    "argo-delivery-stream-recorder",
    "Test streams and release: read Versions, write their status (the only account that does), "
    "read the stream's own Workflow to see its suites' results; on a release, move the "
    "project's demo Environments to it (patch, and the custom verb manage the environment "
    "lifecycle policy asks for).",
    (Rule(GROUP, ("versions",), ("get", "list")),
     Rule(GROUP, ("versions/status",), ("get", "update")),
     Rule(GROUP, ("environments",), ("list", "patch", "manage")),
     Rule("argoproj.io", ("workflows",), ("get",))))
RECORDER = Account(_RECORDER_ROLE.name, _RECORDER_ROLE.description, _RECORDER_ROLE)
# The suites run as this account: no role, no token.
SUITE_ACCOUNT = Account("argo-delivery-test-suite",
                        "Test suites: no rights in the cluster and no token mounted.")


def step_image(config: PlatformConfig) -> str:
    """The image of the standard-library script steps: `images.python`, else `images.git`."""
    return config.images.python or config.images.git


def _env_name(component: str) -> str:
    return component.upper().replace("-", "_")


def suite_environment(project: Project, stream: str) -> list[Env]:
    """What a suite knows of the Version it tests (each value an input of its template)."""
    env = [Env(name="AD_PROJECT", value=project.name), Env(name="AD_STREAM", value=stream),
           Env(name="AD_VERSION", value="{{inputs.parameters.version}}"),
           Env(name="AD_VERSION_HASH", value="{{inputs.parameters.hash}}"),
           Env(name="AD_COMPONENTS", value="{{inputs.parameters.components}}")]
    for component in project.components:
        upper = _env_name(component.name)
        for kind in ("repo", "commit"):
            env.append(Env(name=f"AD_COMPONENT_{upper}_{kind.upper()}",
                           value=f"{{{{inputs.parameters.{kind}-{component.name}}}}}"))
    return env


def _fact_names(project: Project) -> list[str]:
    return ["version", "hash", "components",
            *(f"{kind}-{c.name}" for c in project.components for kind in ("repo", "commit"))]


def _suites(project: Project, stream: str) -> tuple[TestSuite, ...]:
    return project.alpha if stream == "alpha" else project.nightly


def _suite_facts(project: Project, stream: str) -> list[dict[str, str]]:
    return [{"name": s.name, "timeout": s.timeout} for s in _suites(project, stream)]


def _deadline(project: Project) -> int:
    longest = max((parse_duration(s.timeout).total_seconds()
                   for stream in STREAMS for s in _suites(project, stream)), default=0)
    return int(longest) + DEADLINE_MARGIN_SECONDS


def _recorder_step(name: str, config: PlatformConfig, project: Project, mode: str,
                   env: list[Env], **kwargs) -> object:
    return script_step(
        name=name, image=step_image(config), command=["python3"],
        source=step_source("run_stream", shared=("steplib", "promotion")),
        env=[Env(name="AD_MODE", value=mode), Env(name="AD_PROJECT", value=project.name),
             Env(name="AD_NAMESPACE", value="{{workflow.namespace}}"),
             Env(name="AD_WORKFLOW", value="{{workflow.name}}"), *env],
        resources=step_resources(cpu="50m", memory="64Mi", cpu_limit="500m", memory_limit="256Mi"),
        api_access=True, service_account_name=RECORDER.name, **kwargs)


def run_stream(project: Project, config: PlatformConfig) -> WorkflowTemplate:
    """The `run-stream` WorkflowTemplate of one project, in the project's namespace."""
    facts = _fact_names(project)
    components = json.dumps([c.name for c in project.components])
    with WorkflowTemplate(
        **template_metadata(NAME, project,
                            description="Run a stream's test suites on a Version, in parallel, "
                                        "and record the results in its status.",
                            flow="F2, F3", summary="Version -> suites -> Version status."),
        entrypoint="main",
        on_exit="finish",
        arguments=[
            Parameter(name="stream", value="alpha", enum=list(STREAMS),
                      description="the stream to run"),
            Parameter(name="version", value="",
                      description="the Version; empty on the nightly schedule (it picks)"),
            Parameter(name="trigger", value="manual", enum=list(TRIGGERS),
                      description="what asked for the run (a duplicate 'created' or 'rerun' "
                                  "is recognised and does nothing)"),
        ],
        **workflow_defaults(SUITE_ACCOUNT, EXECUTOR, deadline_seconds=_deadline(project)),
    ) as template:
        start = _recorder_step(
            "start", config, project, "start",
            [Env(name="AD_STREAM", value="{{workflow.parameters.stream}}"),
             Env(name="AD_VERSION", value="{{workflow.parameters.version}}"),
             Env(name="AD_TRIGGER", value="{{workflow.parameters.trigger}}"),
             Env(name="AD_COUNT", value=str(config.schedules.nightly_versions
                                            if config.schedules else 1)),
             Env(name="AD_COMPONENT_NAMES", value=components),
             Env(name="AD_STREAM_SUITES", value=json.dumps(
                 {stream: _suite_facts(project, stream) for stream in STREAMS}, sort_keys=True)),
             Env(name="AD_OUTPUT", value="/tmp/runs.json"),
             Env(name="AD_STREAM_OUTPUT", value="/tmp/stream"),
             Env(name="HOME", value="/tmp")],
            active_deadline_seconds=300,
            outputs=[Parameter(name="runs", value_from=m.ValueFrom(path="/tmp/runs.json")),
                     Parameter(name="stream", value_from=m.ValueFrom(path="/tmp/stream"))],
        )
        _recorder_step(
            "finish", config, project, "finish",
            [Env(name="AD_WORKFLOW_STATUS", value="{{workflow.status}}"),
             Env(name="AD_FAILURES", value="{{workflow.failures}}"),
             Env(name="HOME", value="/tmp")],
            active_deadline_seconds=300)
        per_version = {}
        for stream in STREAMS:
            suites = _suites(project, stream)
            suite_templates = [
                container_step(
                    name=f"{stream}-suite-{suite.name}", image=suite.image,
                    command=list(suite.command) or None, args=list(suite.args) or None,
                    env=suite_environment(project, stream),
                    inputs=[Parameter(name=name) for name in facts],
                    resources=step_resources(cpu=suite.requests["cpu"],
                                             memory=suite.requests["memory"],
                                             cpu_limit=suite.limits["cpu"],
                                             memory_limit=suite.limits["memory"]),
                    timeout=f"{int(parse_duration(suite.timeout).total_seconds())}s",
                    metrics=suite_metrics(project.name, stream, suite.name))
                for suite in suites]
            watch = _recorder_step(
                f"{stream}-watch", config, project, "watch",
                [Env(name="AD_STREAM", value=stream),
                 Env(name="AD_VERSION", value="{{inputs.parameters.version}}"),
                 Env(name="AD_NODE", value="{{node.name}}"),
                 Env(name="AD_SUITES", value=json.dumps(_suite_facts(project, stream))),
                 Env(name="HOME", value="/tmp")],
                inputs=[Parameter(name="version")])
            with DAG(name=f"{stream}-version", inputs=[Parameter(name=name) for name in facts]) as dag:
                arguments = {name: f"{{{{inputs.parameters.{name}}}}}" for name in facts}
                for suite, suite_template in zip(suites, suite_templates, strict=True):
                    Task(name=f"suite-{suite.name}", template=suite_template, arguments=arguments)
                Task(name="watch", template=watch,
                     arguments={"version": "{{inputs.parameters.version}}"})
            per_version[stream] = dag
        with DAG(name="main"):
            first = Task(name="start", template=start)
            for stream in STREAMS:
                run = Task(name=stream, template=per_version[stream],
                           with_param="{{tasks.start.outputs.parameters.runs}}",
                           when=f"{{{{tasks.start.outputs.parameters.stream}}}} == {stream}",
                           arguments={name: f"{{{{item.{name}}}}}" for name in facts})
                first >> run
    return template
