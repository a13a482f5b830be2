"""`argo-delivery versions`: a developer's view of Versions on the cluster, and the two things a
person does to one (approve it, run a stream again), with the user's own kubeconfig.

The API server is the authority: RBAC says who may read and patch Versions, admission policies
who may approve which Version. This module reads what the server answers and turns a refusal
into a sentence (`refusal`). The pure functions (rows, details, durations, patches, the wait
condition) take plain dicts, so they are tested without a server; `VersionsClient` is the few
calls made through `argo_delivery.apply.Cluster`'s dynamic client.

Namespaces: `-n NS` names one. Without it, `--project P` looks for the namespace labelled
`argo-delivery.io/project=P` (the bundle labels every project namespace so, and the Version
policy requires it); when the user may not list namespaces, or without `--project`, the
kubeconfig context's namespace is used.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argo_delivery import promotion
from argo_delivery.durations import format_duration
from argo_delivery.naming import GROUP_VERSION, LABEL_PROJECT

__all__ = [
    "DEVELOPER_ROLE",
    "PRODUCT_OWNER_ROLE",
    "Outcome",
    "VersionsClient",
    "VersionsError",
    "WaitFor",
    "WatchExpired",
    "age",
    "approval_patch",
    "approve",
    "check_project",
    "conditions_renderables",
    "detail",
    "evaluate",
    "list_table",
    "parse_wait_for",
    "refusal",
    "rerun",
    "rerun_patch",
    "run_duration",
    "select",
    "show_renderables",
    "shown_stream",
    "summary",
    "wait",
    "watch_until",
]

KIND = "Version"
# The Roles a project's member groups are bound to (argo_delivery.tenancy; a unit test keeps
# these in step without importing the renderers here).
DEVELOPER_ROLE = "argo-delivery-developer"
PRODUCT_OWNER_ROLE = "argo-delivery-product-owner"
# What each action needs, as the sentence of a refusal says it.
NEEDS = {
    "approve": (PRODUCT_OWNER_ROLE, "product owners hold it"),
    "rerun": (DEVELOPER_ROLE, "developers hold it"),
    "read": (f"{DEVELOPER_ROLE} or {PRODUCT_OWNER_ROLE}", "the project's members hold them"),
}
_DOING = {"approve": "approve", "rerun": "run a stream of", "read": "read"}
_RBAC_DENIED = re.compile(r'User "(?P<user>[^"]*)" cannot (?P<verb>\S+) resource "(?P<resource>[^"]+)"')
_ORDER = ("alpha", "nightly", "candidate", "released")


class VersionsError(Exception):
    """A failure a person can act on; `usage` marks bad arguments or an unreadable kubeconfig."""

    def __init__(self, message: str, usage: bool = False):
        super().__init__(message)
        self.usage = usage


# --- time -------------------------------------------------------------------------------------

def now() -> datetime:
    return datetime.now(UTC)


def parse_time(text: Any) -> datetime | None:
    """An RFC 3339 instant (any number of fraction digits), or None when it is not one."""
    if not isinstance(text, str) or not text:
        return None
    match = re.fullmatch(r"(.{19})(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text.strip())
    if not match:
        return None
    fraction = (match.group(2) or "")[:6].ljust(6, "0")
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    try:
        return datetime.fromisoformat(f"{match.group(1)}.{fraction}{zone}").astimezone(UTC)
    except ValueError:
        return None


def rfc3339(moment: datetime) -> str:
    """`2026-01-02T03:04:05Z`: UTC, whole seconds (what `approvedAt` holds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_nanos(ns: int | None = None) -> str:
    """`2026-01-02T03:04:05.123456789Z`: UTC with nanoseconds, a fresh value for each call."""
    ns = time.time_ns() if ns is None else ns
    seconds, nanos = divmod(ns, 1_000_000_000)
    return f"{datetime.fromtimestamp(seconds, UTC).strftime('%Y-%m-%dT%H:%M:%S')}.{nanos:09d}Z"


def age(created: Any, at: datetime) -> str:
    """How long ago, in its two largest units: `45s`, `5m12s`, `3h4m`, `2d5h`."""
    start = parse_time(created)
    if start is None:
        return "<unknown>"
    seconds = max(0, int((at - start).total_seconds()))
    parts = re.findall(r"\d+[dhms]", format_duration_seconds(seconds))
    return "".join(parts[:2])


def format_duration_seconds(seconds: float) -> str:
    """`1h1m50s` for a number of seconds (whole seconds; never negative)."""
    return format_duration(timedelta(seconds=max(0, int(seconds))))


def run_duration(run: dict[str, Any], at: datetime | None = None) -> str:
    """How long a stream or suite run took (`4m2s`); a running one counts up to `at` and is
    marked `+`; empty when it never started."""
    start, end = parse_time(run.get("startedAt")), parse_time(run.get("finishedAt"))
    if start is None:
        return ""
    if end is None:
        return f"{format_duration_seconds((at - start).total_seconds())}+" if at else ""
    return format_duration_seconds((end - start).total_seconds())


# --- what a Version shows -------------------------------------------------------------------

def _status(version: dict[str, Any]) -> dict[str, Any]:
    return version.get("status") or {}


def _spec(version: dict[str, Any]) -> dict[str, Any]:
    return version.get("spec") or {}


def _where(version: dict[str, Any]) -> str:
    meta = version.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def shown_stream(version: dict[str, Any]) -> str:
    """`status.stream`, or where the status says it stands (`alpha` for a new Version)."""
    status = _status(version)
    return status.get("stream") or promotion.stream_of(status)


def summary(version: dict[str, Any], at: datetime) -> dict[str, Any]:
    """One row of `versions list`."""
    meta, approval = version.get("metadata") or {}, _spec(version).get("approval") or {}
    return {"name": meta.get("name", ""), "namespace": meta.get("namespace", ""),
            "project": _spec(version).get("project", ""), "stream": shown_stream(version),
            "approvedBy": approval.get("approvedBy", ""), "approvedAt": approval.get("approvedAt", ""),
            "created": meta.get("creationTimestamp", ""),
            "age": age(meta.get("creationTimestamp"), at)}


def newest_first(versions: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    def key(version: dict[str, Any]) -> tuple[str, str]:
        meta = version.get("metadata") or {}
        created = parse_time(meta.get("creationTimestamp"))
        return (created.isoformat() if created else "", meta.get("name", ""))

    return sorted(versions, key=key, reverse=True)


def select(versions: Iterable[dict[str, Any]], project: str | None = None,
           stream: str | None = None) -> list[dict[str, Any]]:
    """The Versions of `project` at `stream` (either may be None), newest first."""
    return newest_first(v for v in versions
                        if (project is None or _spec(v).get("project") == project)
                        and (stream is None or shown_stream(v) == stream))


def _suite(result: dict[str, Any]) -> dict[str, Any]:
    return {"suite": result.get("suite", ""), "phase": result.get("phase", ""),
            "reason": result.get("reason", ""), "message": result.get("message", ""),
            "exitCode": result.get("exitCode"), "startedAt": result.get("startedAt", ""),
            "finishedAt": result.get("finishedAt", ""), "duration": run_duration(result)}


def _run(run: dict[str, Any] | None, at: datetime) -> dict[str, Any] | None:
    if not run:
        return None
    return {"phase": run.get("phase", ""), "reason": run.get("reason", ""),
            "message": run.get("message", ""), "startedAt": run.get("startedAt", ""),
            "finishedAt": run.get("finishedAt", ""), "duration": run_duration(run, at),
            "workflow": run.get("workflow", ""),
            "results": [_suite(r) for r in run.get("results") or []],
            "historyCount": len(run.get("history") or [])}


def detail(version: dict[str, Any], at: datetime) -> dict[str, Any]:
    """Everything `versions show` prints, as data (its `-o json` and `-o yaml`)."""
    meta, spec, status = version.get("metadata") or {}, _spec(version), _status(version)
    streams = status.get("streams") or {}
    return {
        "name": meta.get("name", ""), "namespace": meta.get("namespace", ""),
        "created": meta.get("creationTimestamp", ""), "age": age(meta.get("creationTimestamp"), at),
        "project": spec.get("project", ""), "hash": spec.get("hash", ""),
        "components": [{"name": c.get("name", ""), "repo": c.get("repo", ""),
                        "ref": c.get("ref", ""), "commit": c.get("commit", "")}
                       for c in spec.get("components") or []],
        "trigger": dict(spec.get("trigger") or {}),
        "stream": shown_stream(version),
        "streams": {name: _run(streams.get(name), at) for name in promotion.STREAMS},
        "approval": dict(spec["approval"]) if spec.get("approval") else None,
        "releasedAt": status.get("releasedAt", ""),
        "conditions": [{"type": c.get("type", ""), "status": c.get("status", ""),
                        "reason": c.get("reason", ""), "message": c.get("message", ""),
                        "lastTransitionTime": c.get("lastTransitionTime", "")}
                       for c in status.get("conditions") or []],
        "rerunsRequested": {stream: value for stream in promotion.STREAMS
                            if (value := (meta.get("annotations") or {}).get(
                                promotion.RERUN_ANNOTATION.format(stream=stream)))},
    }


def trigger_text(trigger: dict[str, Any]) -> str:
    """`push to main of https://... at 0123abc by alice`; `manual` etc. as they are."""
    if not trigger:
        return "-"
    kind = trigger.get("type") or "unknown"
    parts = [kind]
    if trigger.get("branch"):
        parts.append(f"to {trigger['branch']}")
    if trigger.get("repo"):
        parts.append(f"of {trigger['repo']}")
    if trigger.get("commit"):
        parts.append(f"at {trigger['commit'][:12]}")
    if trigger.get("sender"):
        parts.append(f"by {trigger['sender']}")
    return " ".join(parts)


def approval_text(approval: dict[str, Any] | None) -> str:
    if not approval:
        return "not approved"
    text = f"approved by {approval.get('approvedBy', '?')} at {approval.get('approvedAt', '?')}"
    return text + (f": {approval['comment']}" if approval.get("comment") else "")


# --- as text ------------------------------------------------------------------------------------

def _table(*columns: str) -> Any:
    from rich.table import Table

    table = Table(box=None, show_edge=False, pad_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column)
    return table


def _cells(*values: Any) -> list[Any]:
    from rich.text import Text

    return [Text("" if value is None else str(value)) for value in values]


def list_table(rows: list[dict[str, Any]], all_namespaces: bool = False) -> Any:
    """`versions list` as a table: NAME PROJECT STREAM APPROVED-BY AGE (NAMESPACE first with -A)."""
    columns = ("NAMESPACE",) * all_namespaces + ("NAME", "PROJECT", "STREAM", "APPROVED-BY", "AGE")
    table = _table(*columns)
    for row in rows:
        values = (row["name"], row["project"], row["stream"], row["approvedBy"] or "-", row["age"])
        table.add_row(*_cells(*((row["namespace"],) * all_namespaces + values)))
    return table


def conditions_renderables(conditions: list[dict[str, Any]]) -> list[Any]:
    """The "Conditions" block of `show` (Versions and Environments): a table, or "none yet"."""
    from rich.text import Text

    out: list[Any] = [Text(""), Text("Conditions", style="bold")]
    if not conditions:
        return out + [Text("  none yet")]
    table = _table("TYPE", "STATUS", "REASON", "SINCE", "MESSAGE")
    for c in conditions:
        table.add_row(*_cells(c["type"], c["status"], c["reason"] or "-",
                              c["lastTransitionTime"] or "-", c["message"] or "-"))
    return out + [table]


def show_renderables(version: dict[str, Any]) -> list[Any]:
    """`versions show` as text: the Version's identity, its stream runs and suites, conditions."""
    from rich.text import Text

    d = version
    out: list[Any] = []
    facts = _table("", "")
    facts.show_header = False
    for label, value in (
        ("Version", d["name"]), ("Namespace", d["namespace"]), ("Project", d["project"]),
        ("Hash", d["hash"]), ("Created", f"{d['created']} ({d['age']} ago)"),
        ("Trigger", trigger_text(d["trigger"])), ("Stream", d["stream"]),
        ("Approval", approval_text(d["approval"])), ("Released", d["releasedAt"] or "no"),
        *((f"Rerun {s}", f"requested {v}") for s, v in d["rerunsRequested"].items()),
    ):
        facts.add_row(*_cells(label, value))
    out += [facts, Text(""), Text("Components", style="bold")]
    components = _table("NAME", "REPO", "REF", "COMMIT")
    for c in d["components"]:
        components.add_row(*_cells(c["name"], c["repo"], c["ref"], c["commit"]))
    out.append(components)
    for stream, run in d["streams"].items():
        out.append(Text(""))
        if run is None:
            out.append(Text(f"Stream {stream}: not run", style="bold"))
            continue
        head = f"Stream {stream}: {run['phase'] or '?'}" + (f" ({run['reason']})" if run["reason"] else "")
        out.append(Text(head + (f": {run['message']}" if run["message"] else ""), style="bold"))
        when = [f"workflow {run['workflow'] or '-'}", f"started {run['startedAt'] or '-'}"]
        if run["finishedAt"]:
            when.append(f"finished {run['finishedAt']}")
        if run["duration"]:
            when.append(f"took {run['duration']}")
        history = run["historyCount"]
        when.append(f"{history} earlier run{'s' * (history != 1)}")
        out.append(Text("  " + ", ".join(when)))
        if run["results"]:
            suites = _table("SUITE", "PHASE", "REASON", "EXIT", "DURATION", "MESSAGE")
            for r in run["results"]:
                suites.add_row(*_cells(r["suite"], r["phase"], r["reason"] or "-",
                                       "-" if r["exitCode"] is None else r["exitCode"],
                                       r["duration"] or "-", r["message"] or "-"))
            out.append(suites)
    out += conditions_renderables(d["conditions"])
    return out


# --- approve and rerun ------------------------------------------------------------------------

def approval_patch(user: str, at: datetime, comment: str | None = None) -> dict[str, Any]:
    """The JSON merge patch that signs a Version off (on the main resource, not status)."""
    approval: dict[str, Any] = {"approvedBy": user, "approvedAt": rfc3339(at)}
    if comment:
        approval["comment"] = comment
    return {"spec": {"approval": approval}}


def rerun_patch(stream: str, value: str | None = None) -> dict[str, Any]:
    """The JSON merge patch that asks for `stream` to run again: a fresh annotation value."""
    if stream not in promotion.STREAMS:
        raise VersionsError(f"--stream {stream!r}: expected one of {', '.join(promotion.STREAMS)}",
                            usage=True)
    return {"metadata": {"annotations": {promotion.RERUN_ANNOTATION.format(stream=stream):
                                         value or rfc3339_nanos()}}}


def check_project(version: dict[str, Any], project: str | None) -> None:
    """Refuse a Version of another project than `--project` names."""
    if project and _spec(version).get("project") != project:
        raise VersionsError(f"Version {_where(version)} belongs to project "
                            f"{_spec(version).get('project')!r}, not {project!r}")


def refuse_approval(version: dict[str, Any]) -> None:
    """Refuse locally what the server would refuse anyway: an approval is given once."""
    approval = _spec(version).get("approval")
    if approval:
        raise VersionsError(f"Version {_where(version)} is already {approval_text(approval)}; an "
                            "approval is never changed or withdrawn")


def refuse_rerun(version: dict[str, Any]) -> None:
    if _status(version).get("releasedAt") or shown_stream(version) == "released":
        raise VersionsError(f"Version {_where(version)} was released at "
                            f"{_status(version).get('releasedAt') or '?'}: nothing runs a released "
                            "Version again")


# --- refusals ----------------------------------------------------------------------------------

def status_message(body: Any) -> str:
    """The `message` of a Kubernetes Status answer (JSON text or a dict), else the body as text."""
    if isinstance(body, (bytes, bytearray)):
        body = body.decode(errors="replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return body.strip()
    if isinstance(body, dict):
        return str(body.get("message") or json.dumps(body))
    return str(body or "")


def refusal(status: int, body: Any, *, action: str, target: str, namespace: str) -> str:
    """The API server's refusal of `action` (approve, rerun, read) on `target` as a sentence.

    A 403 from RBAC (`User "x" cannot patch resource "versions" ...`) names the Role the user
    lacks; anything else the server refused (an admission policy, a schema rule) is shown with
    the server's own message, verbatim.
    """
    message = status_message(body)
    denied = _RBAC_DENIED.search(message) if status == 403 else None
    if denied:
        role, holders = NEEDS[action]
        user = denied.group("user")
        return (f"{user} may not {_DOING[action]} {target}: that needs the Role {role} in namespace "
                f"{namespace} ({holders}). The API server said: {message}")
    if status == 401:
        return (f"the API server did not accept your credentials (HTTP 401): {message}; log in "
                "again or check --kubeconfig and --context")
    if status == 404:
        return f"{target} does not exist (HTTP 404): {message}"
    verb = {"approve": "the approval of", "rerun": "the rerun of", "read": "reading"}[action]
    return f"the API server refused {verb} {target} (HTTP {status}): {message}"


# --- wait --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class WaitFor:
    """What `versions wait --for` waits for: a stream (`stream=candidate`) or a condition's
    status (`condition=AlphaPassed`, `condition=AlphaPassed=False`)."""

    kind: str          # stream | condition
    name: str          # the stream, or the condition type
    status: str = ""   # for a condition: True, False or Unknown

    def __str__(self) -> str:
        return f"stream={self.name}" if self.kind == "stream" else \
            f"condition={self.name}={self.status}"


def parse_wait_for(text: str) -> WaitFor:
    kind, _, rest = text.partition("=")
    if kind == "stream" and rest:
        if rest not in promotion.JOURNEY:
            raise VersionsError(f"--for {text!r}: the streams are {', '.join(promotion.JOURNEY)}",
                                usage=True)
        return WaitFor("stream", rest)
    if kind == "condition" and rest:
        name, _, value = rest.partition("=")
        if name not in promotion.CONDITION_TYPES:
            raise VersionsError(f"--for {text!r}: a Version's conditions are "
                                f"{', '.join(promotion.CONDITION_TYPES)}", usage=True)
        value = value or "True"
        if value.lower() not in ("true", "false", "unknown"):
            raise VersionsError(f"--for {text!r}: a condition's status is True, False or Unknown",
                                usage=True)
        return WaitFor("condition", name, value.capitalize())
    raise VersionsError(f"--for {text!r}: expected stream=STREAM or condition=TYPE[=STATUS], e.g. "
                        "stream=candidate or condition=AlphaPassed", usage=True)


@dataclass(frozen=True)
class Outcome:
    done: bool
    ok: bool
    message: str


def state_text(version: dict[str, Any]) -> str:
    """`stream nightly; AlphaPassed=True (AllSuitesPassed), NightlyPassed=Unknown (Running)`."""
    conditions = ", ".join(f"{c.get('type')}={c.get('status')}"
                           + (f" ({c['reason']})" if c.get("reason") else "")
                           for c in _status(version).get("conditions") or [])
    return f"stream {shown_stream(version)}" + (f"; {conditions}" if conditions else "")


def failing_suites(version: dict[str, Any]) -> list[str]:
    """`alpha/e2e: Failed (ExitCode, exit code 3): the suite exited with code 3` per failed suite
    (or the failed stream itself when it has no suite results)."""
    lines = []
    runs = _status(version).get("streams") or {}
    for stream in promotion.STREAMS:
        run = runs.get(stream) or {}
        if run.get("phase") not in ("Failed", "Error"):
            continue
        failed = [r for r in run.get("results") or [] if r.get("phase") != "Succeeded"]
        for result in failed:
            why = ", ".join(x for x in (result.get("reason"), None if result.get("exitCode") is None
                                         else f"exit code {result['exitCode']}") if x)
            lines.append(f"{stream}/{result.get('suite')}: {result.get('phase')}"
                         + (f" ({why})" if why else "") + f": {result.get('message') or '-'}")
        if not failed:
            lines.append(f"{stream}: {run.get('phase')} ({run.get('reason') or '-'}): "
                         f"{run.get('message') or '-'}")
    return lines


def rerun_pending(version: dict[str, Any], stream: str) -> bool:
    """True when a rerun of `stream` was asked for after its latest run started."""
    value = ((version.get("metadata") or {}).get("annotations") or {}).get(
        promotion.RERUN_ANNOTATION.format(stream=stream))
    asked = parse_time(value)
    if asked is None:
        return False
    run = (_status(version).get("streams") or {}).get(stream) or {}
    started = parse_time(run.get("startedAt"))
    return started is None or asked > started


def evaluate(version: dict[str, Any], want: WaitFor) -> Outcome:
    """Whether `want` holds for `version`, cannot hold any more (a failed Version: exit at once),
    or is still to come.

    `stream=S` holds once the Version is at S or past it on the journey (alpha, nightly,
    candidate, released); `condition=T=S` when status.conditions says so (as `kubectl wait`
    reads them). A failed Version ends every other wait at once, unless a rerun of its failed
    stream was asked for after that run started (`versions rerun`)."""
    stream = shown_stream(version)
    where = f"Version {_where(version)}"
    if want.kind == "stream":
        if stream == want.name or (stream in _ORDER and want.name in _ORDER
                                   and _ORDER.index(stream) > _ORDER.index(want.name)):
            return Outcome(True, True, f"{where} is at stream {stream}")
    else:
        condition = next((c for c in _status(version).get("conditions") or []
                          if c.get("type") == want.name), None)
        if condition and condition.get("status") == want.status:
            return Outcome(True, True, f"{where}: {want.name}={want.status}"
                           + (f" ({condition['message']})" if condition.get("message") else ""))
    if stream == "failed" and not (want.kind == "condition" and want.status != "True"):
        runs = _status(version).get("streams") or {}
        failed = [s for s in promotion.STREAMS if (runs.get(s) or {}).get("phase") in ("Failed", "Error")]
        if not any(rerun_pending(version, s) for s in failed):
            return Outcome(True, False, f"{where} failed while waiting for {want}:\n  "
                           + "\n  ".join(failing_suites(version) or ["(no suite results)"]))
    return Outcome(False, False, f"{where}: {state_text(version)}")


class WatchExpired(Exception):
    """The watch's resourceVersion is too old (HTTP 410 Gone): list again."""


def watch_until(client: Any, name: str, namespace: str, resource_version: str,
                check: Callable[[dict[str, Any] | None], Outcome | None], deadline: float,
                error: Callable[[str], Exception], clock: Callable[[], float],
                first: dict[str, Any] | None = None) -> Outcome | None:
    """Feed `check` the object (`first`, then each watched change; None once deleted) until it
    returns an Outcome, or `deadline` passes (None). A watch that ends is resumed from the last
    resourceVersion seen; an expired one (HTTP 410 Gone) starts again from a fresh list. The
    Versions and the Environments CLI wait through it."""
    if (result := check(first)) is not None:
        return result
    while (remaining := deadline - clock()) > 0:
        try:
            for event in client.watch(name, namespace, resource_version, max(1, math.ceil(remaining))):
                kind, obj = event.get("type"), event.get("raw_object") or {}
                meta = obj.get("metadata") or {}
                if meta.get("resourceVersion"):
                    resource_version = meta["resourceVersion"]
                if kind == "BOOKMARK":
                    continue
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise WatchExpired()
                    raise error(status_message(obj))
                if (result := check(None if kind == "DELETED" else obj)) is not None:
                    return result
                if clock() >= deadline:
                    break
        except WatchExpired:
            current, resource_version = client.listed(name, namespace)
            if (result := check(current)) is not None:
                return result
    return None


def wait(client: Any, name: str, namespace: str, want: WaitFor, timeout: float, *,
         progress: Callable[[str], None] = lambda _: None,
         clock: Callable[[], float] = time.monotonic) -> Outcome:
    """Watch Version `name` until `want` holds (ok), cannot hold (not ok), or `timeout` seconds
    pass (not ok, with the last observed state). A watch that ends is resumed from the last
    resourceVersion seen; an expired one (HTTP 410 Gone) starts again from a fresh list."""
    deadline = clock() + timeout
    version, resource_version = client.listed(name, namespace)
    last_state = ""   # empty until the Version was seen once

    def check(current: dict[str, Any] | None) -> Outcome | None:
        nonlocal last_state
        if current is None:
            return Outcome(True, False, f"Version {namespace}/{name} was deleted while waiting for "
                                        f"{want}" if last_state else
                                        f"no Version {name} in namespace {namespace}")
        outcome = evaluate(current, want)
        state = state_text(current)
        if state != last_state:
            progress(state)
            last_state = state
        return outcome if outcome.done else None

    last_seen: dict[str, Any] = {"object": version}

    def checked(current: dict[str, Any] | None) -> Outcome | None:
        last_seen["object"] = current
        return check(current)
    result = watch_until(client, name, namespace, resource_version, checked, deadline,
                         lambda message: VersionsError(f"watching Version {namespace}/{name}: "
                                                       f"{message}"), clock,
                         first=version)
    if result is not None:
        return result
    version = last_seen["object"]
    return Outcome(True, False, f"timed out after {format_duration_seconds(timeout)} "
                                f"waiting for {want} on Version {namespace}/{name}; last observed: "
                                f"{last_state or state_text(version or {})}")


# --- the cluster -------------------------------------------------------------------------------

class VersionsClient:
    """Versions through the user's kubeconfig: `Cluster`'s dynamic client, errors as sentences."""

    def __init__(self, cluster: Any, default_namespace: str):
        self.cluster = cluster
        self.default_namespace = default_namespace

    @classmethod
    def connect(cls, kubeconfig: str | None, context: str | None) -> VersionsClient:
        from argo_delivery.apply import ApplyError, Cluster, context_namespace

        try:
            return cls(Cluster.from_kubeconfig(kubeconfig, context),
                       context_namespace(kubeconfig, context))
        except ApplyError as exc:
            raise VersionsError(str(exc), usage=True) from None

    def _call(self, call: Callable[[], Any], *, action: str, target: str, namespace: str) -> Any:
        """Run one API call; a refusal or an unreachable server becomes a VersionsError."""
        try:
            return call()
        except Exception as exc:
            raise self._error(exc, action=action, target=target, namespace=namespace) from None

    def _error(self, exc: Exception, *, action: str, target: str, namespace: str) -> Exception:
        """`exc` as a VersionsError when it is the server's answer or an unreachable server."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        from argo_delivery.apply import ApplyError

        if isinstance(exc, ApiException):
            return VersionsError(refusal(exc.status or 0, exc.body or exc.reason, action=action,
                                         target=target, namespace=namespace))
        if isinstance(exc, ApplyError):   # the cluster serves no Versions: no CRD installed
            return VersionsError(str(exc))
        if isinstance(exc, (HTTPError, OSError)):
            host = self.cluster.api_client.configuration.host
            return VersionsError(f"cannot reach the API server at {host}: {exc}")
        return exc

    def _versions(self) -> Any:
        return self.cluster.resource(GROUP_VERSION, KIND)

    def namespace_for(self, namespace: str | None, project: str | None) -> tuple[str, str]:
        """(namespace, why): `-n`, else the namespace labelled with the project, else the
        context's (see the module docstring)."""
        if namespace:
            return namespace, "-n"
        if not project:
            return self.default_namespace, "the kubeconfig context's namespace"
        from kubernetes.client.exceptions import ApiException

        selector = f"{LABEL_PROJECT}={project}"
        try:
            listed = self.cluster.resource("v1", "Namespace").get(label_selector=selector).to_dict()
        except ApiException as exc:
            if exc.status != 403:
                raise VersionsError(refusal(exc.status or 0, exc.body, action="read",
                                            target=f"namespaces labelled {selector}",
                                            namespace="(cluster)")) from None
            return self.default_namespace, (f"the kubeconfig context's namespace: you may not list "
                                            f"namespaces to find the one labelled {selector}")
        names = sorted(item["metadata"]["name"] for item in listed.get("items") or [])
        if len(names) == 1:
            return names[0], f"labelled {selector}"
        if not names:
            raise VersionsError(f"no namespace is labelled {selector} (is {project} a project of this "
                                "cluster?); pass -n NAMESPACE")
        raise VersionsError(f"several namespaces are labelled {selector}: {', '.join(names)}; pass "
                            "-n NAMESPACE")

    def list(self, namespace: str | None) -> list[dict[str, Any]]:
        """The Versions of `namespace` (every namespace when None)."""
        where = f"Versions in namespace {namespace}" if namespace else "Versions in all namespaces"
        listed = self._call(lambda: self._versions().get(namespace=namespace).to_dict(),
                            action="read", target=where, namespace=namespace or "(all)")
        return listed.get("items") or []

    def get(self, name: str, namespace: str) -> dict[str, Any]:
        return self._call(lambda: self._versions().get(name=name, namespace=namespace).to_dict(),
                          action="read", target=f"Version {namespace}/{name}", namespace=namespace)

    def listed(self, name: str, namespace: str) -> tuple[dict[str, Any] | None, str]:
        """(the Version or None, the list's resourceVersion): where a watch starts."""
        listed = self._call(lambda: self._versions().get(
            namespace=namespace, field_selector=f"metadata.name={name}").to_dict(),
            action="read", target=f"Version {namespace}/{name}", namespace=namespace)
        items = listed.get("items") or []
        return (items[0] if items else None), listed["metadata"]["resourceVersion"]

    def watch(self, name: str, namespace: str, resource_version: str,
              timeout: int) -> Iterator[dict[str, Any]]:
        """Events of Version `name` after `resource_version`, for at most `timeout` seconds
        (the server ends the watch); raises WatchExpired when that resourceVersion is gone."""
        from kubernetes.client.exceptions import ApiException

        target = f"Version {namespace}/{name}"
        try:
            for event in self._versions().watch(namespace=namespace, name=name, timeout=timeout,
                                                resource_version=resource_version,
                                                allow_watch_bookmarks=True):
                raw = event.get("raw_object")
                yield {"type": event.get("type"),
                       "raw_object": raw if isinstance(raw, dict) else event["object"].to_dict()}
        except ApiException as exc:
            if exc.status == 410:
                raise WatchExpired() from None
            raise self._error(exc, action="read", target=target, namespace=namespace) from None
        except Exception as exc:
            raise self._error(exc, action="read", target=target, namespace=namespace) from None

    def patch(self, name: str, namespace: str, body: dict[str, Any], *, action: str) -> dict[str, Any]:
        """A JSON merge patch of the Version (the main resource)."""
        return self._call(lambda: self._versions().patch(
            name=name, namespace=namespace, body=body,
            content_type="application/merge-patch+json").to_dict(),
            action=action, target=f"Version {namespace}/{name}", namespace=namespace)

    def username(self) -> str:
        """Who the API server says the caller is (a SelfSubjectReview), never the local config."""
        review = self._call(lambda: self.cluster.resource(
            "authentication.k8s.io/v1", "SelfSubjectReview").create(body={
                "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}).to_dict(),
            action="read", target="your identity (SelfSubjectReview)", namespace="(cluster)")
        user = ((review.get("status") or {}).get("userInfo") or {}).get("username")
        if not user:
            raise VersionsError("the API server's SelfSubjectReview names no user: cannot say who "
                                "approves")
        return user


# --- the commands' work --------------------------------------------------------------------------

def approve(client: VersionsClient, name: str, namespace: str, comment: str | None = None, *,
            project: str | None = None, at: datetime | None = None) -> tuple[dict[str, Any], str]:
    """Sign Version `name` off as the caller; (the Version as stored, the caller's username)."""
    version = client.get(name, namespace)
    check_project(version, project)
    refuse_approval(version)
    user = client.username()
    patched = client.patch(name, namespace, approval_patch(user, at or now(), comment),
                           action="approve")
    return patched, user


def rerun(client: VersionsClient, name: str, namespace: str, stream: str, *,
          project: str | None = None) -> tuple[dict[str, Any], str]:
    """Ask for `stream` of Version `name` to run again; (the Version as stored, the value set)."""
    body = rerun_patch(stream)
    version = client.get(name, namespace)
    check_project(version, project)
    refuse_rerun(version)
    patched = client.patch(name, namespace, body, action="rerun")
    return patched, body["metadata"]["annotations"][promotion.RERUN_ANNOTATION.format(stream=stream)]
