"""Argo Workflows custom metrics: the one place every metric of ours is declared.

The workflow controller emits a Workflow's `spec.metrics` when the Workflow completes and a
template's `metrics` when that step completes, as Prometheus series named `argo_workflows_` +
the name below (its exporter adds no `_total` or unit suffix, so the names carry their own).
Every WorkflowTemplate and CronWorkflow we render carries `workflow_metrics(...)` (through
templates/_steps.py `template_metadata`); a few steps carry their own (`suite_metrics`,
`step_metrics`, `version_metrics`, `reaper_metrics`).

Labels are few and bounded: the project, the flow (our WorkflowTemplate's name), Argo's
status (Succeeded, Failed, Error), the stream (alpha, nightly), a suite's name (from the
config), a reaper action or an Environment phase (fixed lists). Never a commit, a Version, an
Environment or a user name. A metric name always comes with the same help text and type
(Argo refuses a second help text for one name), which is why every spec is built from the
`METRICS` table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hera.workflows import models as m

from argo_delivery.envmodel import PHASES

__all__ = ["ENVIRONMENT_PHASES", "METRICS", "PREFIX", "REAPER_ACTIONS", "Metric", "exposed",
           "reaper_metrics", "step_metrics", "suite_metrics", "version_metrics",
           "workflow_metrics"]

# What the workflow controller's Prometheus exporter puts before a custom metric's name.
PREFIX = "argo_workflows_"
# Seconds: from a few seconds (generate-version) to hours (a vend with a slow cloud).
DURATION_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0)
REAPER_ACTIONS = ("deleted", "warned", "retried_destroy", "retried_vend")
# The phases the reaper counts; the age of the oldest Environment in each is reported too.
ENVIRONMENT_PHASES = PHASES


@dataclass(frozen=True)
class Metric:
    """One custom metric: its name (without PREFIX), type, labels, and what it means."""

    name: str
    kind: str            # counter | gauge | histogram
    labels: tuple[str, ...]
    help: str
    emitted_by: str      # where it is declared, for the README's table


METRICS = {metric.name: metric for metric in (
    Metric("delivery_workflow_runs_total", "counter", ("project", "flow", "status"),
           "Finished Workflows of an argo-delivery flow, by outcome.",
           "every WorkflowTemplate and CronWorkflow"),
    Metric("delivery_workflow_duration_seconds", "histogram", ("project", "flow", "status"),
           "Duration of finished Workflows of an argo-delivery flow, in seconds.",
           "every WorkflowTemplate and CronWorkflow"),
    Metric("delivery_workflow_last_run_timestamp_seconds", "gauge", ("project", "flow", "status"),
           "Creation time (Unix seconds) of the Workflow of a flow that last finished with this "
           "outcome (an older Workflow that finishes later sets it back).",
           "every WorkflowTemplate and CronWorkflow"),
    Metric("delivery_versions_total", "counter", ("project", "result"),
           "Pushes resolved into a Version by generate-version: result created (a new Version) "
           "or exists (these exact commits already had one).",
           "generate-version (its step)"),
    Metric("delivery_stream_runs_total", "counter", ("project", "stream", "status"),
           "Finished run-stream Workflows, by stream and outcome.",
           "run-stream, nightly"),
    Metric("delivery_suite_runs_total", "counter", ("project", "stream", "suite", "status"),
           "Finished test suite containers, by stream, suite and outcome.",
           "run-stream (each suite)"),
    Metric("delivery_suite_duration_seconds", "histogram", ("project", "stream", "suite"),
           "Duration of test suite containers, in seconds.",
           "run-stream (each suite)"),
    Metric("delivery_leak_sweeps_total", "counter", ("project", "status"),
           "Finished leak sweeps after an Environment's destroy, by outcome.",
           "destroy-environment (leak-sweep step)"),
    Metric("delivery_airgap_exports_total", "counter", ("project", "status"),
           "Finished air-gap packs of a released Version, by outcome.",
           "export-release (pack step)"),
    Metric("delivery_reaper_actions_total", "counter", ("project", "action"),
           "Environments the reaper acted on: deleted (expired), warned (expiring soon), "
           "retried_destroy (a failed destroy asked again), retried_vend (never picked up).",
           "reap-environments (reap step)"),
    Metric("delivery_environments", "gauge", ("project", "phase"),
           "Environments per phase at the reaper's last run (phase none: not yet picked up).",
           "reap-environments (reap step)"),
    Metric("delivery_environment_oldest_phase_age_seconds", "gauge", ("project", "phase"),
           "Seconds the project's longest-waiting Environment has been in this phase, at the "
           "reaper's last run (0: none in it).",
           "reap-environments (reap step)"),
    Metric("delivery_environment_overdue_seconds", "gauge", ("project",),
           "Seconds past its expiry of the project's most overdue Environment that still "
           "exists, at the reaper's last run (0: none).",
           "reap-environments (reap step)"),
)}


def exposed(name: str) -> str:
    """The series name Prometheus scrapes for one of ours."""
    return PREFIX + name


def _spec(name: str, labels: dict[str, str], value: str, *,
          when: str | None = None) -> m.Prometheus:
    metric = METRICS[name]
    if set(labels) != set(metric.labels):
        raise ValueError(f"metric {name}: labels {sorted(labels)}, declared {list(metric.labels)}")
    kind = {"counter": {"counter": m.Counter(value=value)},
            "gauge": {"gauge": m.Gauge(value=value, realtime=False)},
            "histogram": {"histogram": m.Histogram(buckets=list(DURATION_BUCKETS), value=value)},
            }[metric.kind]
    return m.Prometheus(name=name, help=metric.help, when=when,
                        labels=[m.MetricLabel(key=key, value=labels[key]) for key in metric.labels],
                        **kind)


def _metrics(specs: Iterable[m.Prometheus]) -> m.Metrics:
    return m.Metrics(prometheus=list(specs))


def workflow_metrics(project: str, flow: str) -> m.Metrics:
    """`spec.metrics` of a flow's WorkflowTemplate (and of a CronWorkflow that runs it: the same
    specs, so a scheduled run is measured like any other)."""
    status = "{{workflow.status}}"
    labels = {"project": project, "flow": flow, "status": status}
    specs = [
        _spec("delivery_workflow_runs_total", labels, "1"),
        _spec("delivery_workflow_duration_seconds", labels, "{{workflow.duration}}"),
        _spec("delivery_workflow_last_run_timestamp_seconds", labels,
              "{{workflow.creationTimestamp.s}}"),
    ]
    if flow == "run-stream":
        specs.append(_spec("delivery_stream_runs_total",
                           {"project": project, "stream": "{{workflow.parameters.stream}}",
                            "status": status}, "1"))
    return _metrics(specs)


def suite_metrics(project: str, stream: str, suite: str) -> m.Metrics:
    """`metrics` of one suite's container template."""
    labels = {"project": project, "stream": stream, "suite": suite}
    return _metrics([
        _spec("delivery_suite_runs_total", {**labels, "status": "{{status}}"}, "1"),
        _spec("delivery_suite_duration_seconds", labels, "{{duration}}"),
    ])


def step_metrics(name: str, project: str) -> m.Metrics:
    """`metrics` of a step counted by outcome (the leak sweep, the air-gap pack)."""
    return _metrics([_spec(name, {"project": project, "status": "{{status}}"}, "1")])


# generate-version writes "created" or "exists" here; an output with a default so that a
# failed step (no file) has a value too, which the `when` below leaves uncounted.
VERSION_RESULT_OUTPUT = "result"
VERSION_RESULT_FILE = "/tmp/version-result"


def version_metrics(project: str) -> m.Metrics:
    """`metrics` of generate-version's step: one count per push resolved into a Version."""
    return _metrics([_spec(
        "delivery_versions_total",
        {"project": project, "result": f"{{{{outputs.parameters.{VERSION_RESULT_OUTPUT}}}}}"},
        "1", when="{{status}} == Succeeded")])


def reaper_output(key: str) -> str:
    """The reap step's output parameter (and file under /tmp/metrics/) for one number."""
    return key.replace("_", "-")


def reaper_keys() -> list[str]:
    """Every number the reap step writes (each an output parameter, default 0)."""
    return [*(f"action_{a}" for a in REAPER_ACTIONS),
            *(f"phase_{p.lower()}" for p in (*ENVIRONMENT_PHASES, "none")),
            *(f"age_{p.lower()}" for p in ENVIRONMENT_PHASES),
            "overdue"]


def reaper_metrics(project: str) -> m.Metrics:
    """`metrics` of the reap step: its actions and the state of the project's Environments."""
    def out(key: str) -> str:
        return f"{{{{outputs.parameters.{reaper_output(key)}}}}}"
    ok = "{{status}} == Succeeded"
    specs = [_spec("delivery_reaper_actions_total", {"project": project, "action": action},
                   out(f"action_{action}"), when=ok) for action in REAPER_ACTIONS]
    specs += [_spec("delivery_environments", {"project": project, "phase": phase},
                    out(f"phase_{phase.lower()}"), when=ok)
              for phase in (*ENVIRONMENT_PHASES, "none")]
    specs += [_spec("delivery_environment_oldest_phase_age_seconds",
                    {"project": project, "phase": phase}, out(f"age_{phase.lower()}"), when=ok)
              for phase in ENVIRONMENT_PHASES]
    specs.append(_spec("delivery_environment_overdue_seconds", {"project": project},
                       out("overdue"), when=ok))
    return _metrics(specs)
