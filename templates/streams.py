"""The test streams and sign-off capability (flows F2, F3, F4).

A new Version runs its project's alpha suites at once (the `versions` EventSource and the
project's on-version Sensor -> `run-stream`); each night the nightly suites run on the
Versions that passed alpha (CronWorkflow `nightly` -> `run-stream`); a product owner's
approval of a candidate releases it (on-version Sensor -> `release`). The stream recorder is
the only account that writes a Version's status; the suites run with no rights at all.
"""

from __future__ import annotations

from argo_delivery.capability import Capability, SensorTrigger
from argo_delivery.eventsources import versions as versions_source
from argo_delivery.promotion import STREAMS
from argo_delivery.sensors import on_version

from . import nightly, release, run_stream

__all__ = ["CAPABILITY", "RELEASE_TRIGGER", "RUN_STREAM_TRIGGER"]

RUN_STREAM_TRIGGER = SensorTrigger(
    run_stream.NAME, ("stream", "version", "trigger"), on_version.ACCOUNT,
    values=(("stream", STREAMS), ("trigger", ("created", "rerun"))))
RELEASE_TRIGGER = SensorTrigger(release.NAME, ("version",), on_version.ACCOUNT)

CAPABILITY = Capability(
    "streams", "F2-F4: alpha on every new Version, nightly on those that passed, a product "
    "owner's sign-off releases a candidate.",
    per_platform=lambda config: [versions_source.versions(config),
                                 *release.approval_policy(config)],
    per_project=lambda project, config: [
        run_stream.run_stream(project, config),
        release.release(project, config),
        *nightly.nightly(project, config),
        on_version.on_version(project, config, RUN_STREAM_TRIGGER, RELEASE_TRIGGER),
    ],
    accounts=(run_stream.RECORDER, run_stream.SUITE_ACCOUNT, versions_source.ACCOUNT,
              on_version.ACCOUNT),
    triggers=(RUN_STREAM_TRIGGER, RELEASE_TRIGGER),
)
