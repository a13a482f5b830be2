"""A Version's QA journey as pure functions: where it stands, its conditions, its history.

Standard library only: the stream steps run this very file (prepended to their source, like
versionhash.py), and the CLI imports it, so both read a Version's status the same way.

The journey (DESIGN.md, flows F2-F4):

    alpha --(alpha suites pass)--> nightly --(nightly suites pass)--> candidate
      |                               |                                  |
      +--(a suite fails)--> failed <--+              (product owner approves)
                                                                         v
                                                                      released

`status.stream` is always derived from the latest run of each stream and the release
(`stream_of`): a re-run that passes moves a failed Version on again; nothing moves a released
Version. Each stream keeps its latest run in `status.streams.<stream>` and up to
`HISTORY_LIMIT` earlier runs in its `history`.
"""

from __future__ import annotations

import re

STREAMS = ("alpha", "nightly")
JOURNEY = ("alpha", "nightly", "candidate", "released", "failed")
HISTORY_LIMIT = 5
# Annotation a developer sets (any new value) to run a stream again: `versions rerun`.
RERUN_ANNOTATION = "argo-delivery.io/rerun-{stream}"
# Condition per stream outcome, plus the sign-off and the release.
CONDITION = {"alpha": "AlphaPassed", "nightly": "NightlyPassed"}
APPROVED = "Approved"
RELEASED = "Released"
CONDITION_TYPES = ("AlphaPassed", "NightlyPassed", APPROVED, RELEASED)

# Run phases (a stream's and a suite's), and why a suite ended as it did.
FINISHED = ("Succeeded", "Failed", "Error")
REASON_NO_SUITES = "NoSuites"
REASON_PASSED = "AllSuitesPassed"
REASON_SUITES_FAILED = "SuitesFailed"
REASON_WORKFLOW_FAILED = "WorkflowFailed"
SUITE_REASONS = ("Completed", "ExitCode", "Timeout", "ImageError", "OOMKilled", "Error",
                 "Pending", "Running")

_IMAGE_ERRORS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
                 "ImageInspectError", "RegistryUnavailable")
_TIMEOUT = re.compile(r"active on the node longer than the specified deadline|"
                      r"^timeout$|deadline exceeded|DeadlineExceeded", re.IGNORECASE)
_EXIT = re.compile(r"\(exit code (-?[0-9]+)\)")


def image_error(pending_message):
    """True when a Pending pod's message (Argo's `Reason: message`) is an image error."""
    return bool(pending_message) and pending_message.split(":", 1)[0].strip() in _IMAGE_ERRORS


def classify_suite(phase, message, exit_code, pending_message, timeout):
    """(phase, reason, message) of a finished suite from what Argo recorded of its node.

    `pending_message` is the last reason the node was Pending for (Argo overwrites it when
    the suite times out, so the stream's watcher remembers it), `timeout` the suite's own.
    """
    message = (message or "").strip()
    if phase == "Succeeded":
        return "Succeeded", "Completed", "passed"
    if image_error(pending_message):
        return "Failed", "ImageError", f"the suite's image could not be pulled: {pending_message}"
    if "OOMKilled" in message:
        return "Failed", "OOMKilled", (f"the suite ran out of memory (OOMKilled, exit code "
                                       f"{exit_code or 137})")
    if _TIMEOUT.search(message):
        return "Failed", "Timeout", f"the suite did not finish within its timeout of {timeout}"
    code = exit_code if exit_code not in (None, "") else None
    if code is None:
        found = _EXIT.search(message)
        code = found.group(1) if found else None
    if code is not None and str(code) not in ("0", "-1"):
        return "Failed", "ExitCode", f"the suite exited with code {code}" + (
            f" ({message})" if message and "exit code" not in message else "")
    return ("Error" if phase == "Error" else "Failed"), "Error", message or f"the suite ended {phase}"


def stream_outcome(results):
    """(phase, reason, message) of a stream run from its suites' results."""
    if not results:
        return "Succeeded", REASON_NO_SUITES, "the stream has no suites"
    failed = [r["suite"] for r in results if r.get("phase") != "Succeeded"]
    if failed:
        return "Failed", REASON_SUITES_FAILED, f"{len(failed)} of {len(results)} suites failed: " \
                                               + ", ".join(sorted(failed))
    return "Succeeded", REASON_PASSED, f"all {len(results)} suites passed"


def stream_of(status, approved=False):
    """Where a Version stands, from its latest stream runs (see the module docstring)."""
    status = status or {}
    if status.get("releasedAt"):
        return "released"
    runs = status.get("streams") or {}
    phases = {name: (runs.get(name) or {}).get("phase") for name in STREAMS}
    if any(phase in ("Failed", "Error") for phase in phases.values()):
        return "failed"
    if phases["alpha"] == "Succeeded" and phases["nightly"] == "Succeeded":
        return "candidate"
    if phases["alpha"] == "Succeeded":
        return "nightly"
    return "alpha"


def _condition(kind, status, reason, message, now, previous):
    old = previous.get(kind)
    since = old["lastTransitionTime"] if old and old.get("status") == status and \
        old.get("lastTransitionTime") else now
    return {"type": kind, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": since}


def conditions(status, approval, now):
    """The Version's conditions (`kubectl wait --for=condition=AlphaPassed`), keeping each
    one's lastTransitionTime while its status does not change."""
    status = status or {}
    previous = {c.get("type"): c for c in status.get("conditions") or []}
    runs = status.get("streams") or {}
    result = []
    for stream in STREAMS:
        run = runs.get(stream) or {}
        phase = run.get("phase")
        if phase == "Succeeded":
            value = "True"
        elif phase in ("Failed", "Error"):
            value = "False"
        else:
            value = "Unknown"
        reason = run.get("reason") or ("Running" if phase == "Running" else "NotRun")
        message = run.get("message") or (f"the {stream} stream is running" if phase == "Running"
                                         else f"the {stream} stream has not run")
        result.append(_condition(CONDITION[stream], value, reason, message, now, previous))
    if approval:
        result.append(_condition(APPROVED, "True", "ProductOwnerApproved",
                                 f"approved by {approval.get('approvedBy')}", now, previous))
    else:
        result.append(_condition(APPROVED, "False", "NotApproved", "no product owner has "
                                 "signed off", now, previous))
    if status.get("releasedAt"):
        result.append(_condition(RELEASED, "True", "Released",
                                 f"released at {status['releasedAt']}", now, previous))
    else:
        result.append(_condition(RELEASED, "False", "NotReleased", "not released", now, previous))
    return result


def with_run(status, stream, run):
    """`status` with `run` as the latest run of `stream`; the run it replaces (by another
    Workflow) goes to the front of the history, which keeps at most HISTORY_LIMIT runs."""
    status = dict(status or {})
    runs = dict(status.get("streams") or {})
    old = dict(runs.get(stream) or {})
    history = list(old.pop("history", []) or [])
    if old and old.get("workflow") and old.get("workflow") != run.get("workflow"):
        history.insert(0, old)
    new = dict(run)
    if history:
        new["history"] = history[:HISTORY_LIMIT]
    runs[stream] = new
    status["streams"] = runs
    return status


def settled(status, approval, now):
    """`status` with `stream` and `conditions` derived again."""
    status = dict(status or {})
    status["stream"] = stream_of(status)
    status["conditions"] = conditions(status, approval, now)
    return status


def nightly_due(version):
    """True when a Version waits for its nightly run: alpha passed, no nightly result."""
    status = version.get("status") or {}
    runs = status.get("streams") or {}
    return (stream_of(status) == "nightly" and (runs.get("alpha") or {}).get("phase") == "Succeeded"
            and not runs.get("nightly"))


def pick_nightly(versions, count):
    """The Versions the nightly run takes: due ones, newest first, at most `count`."""
    due = [v for v in versions if nightly_due(v)]
    due.sort(key=lambda v: (v["metadata"].get("creationTimestamp", ""), v["metadata"]["name"]),
             reverse=True)
    return due[:max(0, count)]
