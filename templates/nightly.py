"""CronWorkflow `nightly` (flow F3): each night, the nightly suites on the newest Versions that
passed alpha and have no nightly result yet.

A CronWorkflow per project at `schedules.nightly` in `schedules.timeZone`, never two at once
(`concurrencyPolicy: Forbid`), skipped when it could not start within the starting deadline.
It references `run-stream` (Argo's `templateReferencing: Secure` accepts nothing else) with
an empty Version: the stream's start step picks up to `schedules.nightlyVersions` Versions,
newest first, and claims each one, so a Version is never tested twice in one night.
"""

from __future__ import annotations

from hera.workflows import CronWorkflow, Parameter
from hera.workflows import models as m

from argo_delivery.config import PlatformConfig, Project

from ._steps import template_metadata
from .run_stream import NAME as RUN_STREAM

__all__ = ["NAME", "STARTING_DEADLINE_SECONDS", "nightly"]

NAME = "nightly"
STARTING_DEADLINE_SECONDS = 3600


def nightly(project: Project, config: PlatformConfig) -> list[CronWorkflow]:
    """The project's nightly CronWorkflow (none without `schedules`)."""
    if config.schedules is None:
        return []
    schedules = config.schedules
    return [CronWorkflow(
        **template_metadata(NAME, project,
                            description=f"Nightly suites on up to {schedules.nightly_versions} "
                                        "Version(s) that passed alpha, newest first.",
                            flow="F3", summary="Nightly stream.", cron_of=RUN_STREAM),
        schedules=[schedules.nightly],
        timezone=schedules.time_zone,
        concurrency_policy="Forbid",
        starting_deadline_seconds=STARTING_DEADLINE_SECONDS,
        successful_jobs_history_limit=3,
        failed_jobs_history_limit=3,
        workflow_template_ref=m.WorkflowTemplateRef(name=RUN_STREAM),
        arguments=[Parameter(name="stream", value="nightly"),
                   Parameter(name="version", value=""),
                   Parameter(name="trigger", value="schedule")],
    )]
