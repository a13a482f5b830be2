"""`argo-delivery envs`: a developer's Environments on the cluster, with the user's own
kubeconfig: ask for one, list and show them, fetch an Environment's kubeconfig, extend it,
delete it (and, for a product owner, give up one whose destroy cannot finish).

As in `argo_delivery.versions` (whose client, time helpers and tables this module reuses), the
API server is the authority: RBAC says who may read, create, patch and delete Environments,
the admission policies of templates/environments.py whose Environment it is, how long it may
live and who may drop its finalizer. This module reads what the server answers and turns a
refusal into a sentence (`refusal`). The pure functions (rows, details, the expiry, the
patches, what a forced deletion may leave behind, the wait conditions) take plain dicts, so
they are tested without a server; `EnvironmentsClient` is the few calls made through
`argo_delivery.apply.Cluster`'s dynamic client.

The names of what a vend makes for an Environment (its outputs Secret, the Role that lets its
owner read it, its Terraform state) come from `argo_delivery.envmodel`; when it expires, from
`argo_delivery.expiry` (the reaper's own rule).
"""

from __future__ import annotations

import base64
import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from argo_delivery import envmodel, expiry
from argo_delivery.durations import go_duration
from argo_delivery.naming import ANNOTATION_EXPIRES, ANNOTATION_TTL, GROUP_VERSION
from argo_delivery.versions import (
    DEVELOPER_ROLE,
    PRODUCT_OWNER_ROLE,
    Outcome,
    VersionsClient,
    VersionsError,
    WatchExpired,
    _cells,
    _table,
    age,
    conditions_renderables,
    format_duration_seconds,
    now,
    parse_time,
    rfc3339,
    status_message,
    watch_until,
)

__all__ = [
    "EnvironmentsClient",
    "EnvironmentsError",
    "create_body",
    "destroy_failed",
    "detail",
    "expiry_of",
    "extension",
    "finalizer_patch",
    "force_listing",
    "gone_outcome",
    "kubeconfig_bytes",
    "last_error",
    "list_table",
    "parse_variables",
    "parse_ttl",
    "ready_outcome",
    "refusal",
    "show_renderables",
    "summary",
    "until",
    "wait",
    "write_private",
]

KIND = "Environment"
# What each action needs, as the sentence of an RBAC refusal says it.
_MEMBERS = (f"the Role {DEVELOPER_ROLE} or {PRODUCT_OWNER_ROLE}", "the project's members hold them")
NEEDS = {
    "create": _MEMBERS, "read": _MEMBERS, "extend": _MEMBERS, "delete": _MEMBERS,
    "finalize": (f"the Role {PRODUCT_OWNER_ROLE} (patch and the custom verb finalize on "
                 "environments)", "product owners hold it"),
}
_DOING = {"create": "create", "read": "read", "extend": "change the expiry of",
          "delete": "delete", "finalize": "remove the finalizer of", "read-outputs": "read"}
_REFUSED = {"create": "the creation of", "read": "reading", "extend": "the extension of",
            "delete": "the deletion of", "finalize": "the removal of the finalizer of",
            "read-outputs": "reading"}
_RBAC_DENIED = re.compile(r'User "(?P<user>[^"]*)" cannot (?P<verb>\S+) resource "(?P<resource>[^"]+)"')
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_POLICY_DENIED = "denied request"
# What the API server answers (HTTP 422, no details) when a `test` of a JSON patch fails.
_PATCH_TEST_FAILED = "the server rejected our request due to an error in our request"


class EnvironmentsError(VersionsError):
    """A failure a person can act on; `usage` marks bad arguments or an unreadable kubeconfig.
    (A VersionsError: the command line ends both the same way.)"""


# --- what an Environment shows ----------------------------------------------------------------

def _meta(environment: dict[str, Any]) -> dict[str, Any]:
    return environment.get("metadata") or {}


def _spec(environment: dict[str, Any]) -> dict[str, Any]:
    return environment.get("spec") or {}


def _status(environment: dict[str, Any]) -> dict[str, Any]:
    return environment.get("status") or {}


def _annotations(environment: dict[str, Any]) -> dict[str, str]:
    return _meta(environment).get("annotations") or {}


def where(environment: dict[str, Any]) -> str:
    meta = _meta(environment)
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def until(moment: datetime | None, at: datetime) -> str:
    """`in 3h4m`, `5m ago`, `now`: how far `moment` is from `at`, in its two largest units."""
    if moment is None:
        return ""
    seconds = int((moment - at).total_seconds())
    if seconds == 0:
        return "now"
    text = "".join(re.findall(r"\d+[dhms]", format_duration_seconds(abs(seconds)))[:2])
    return f"in {text}" if seconds > 0 else f"{text} ago"


def expiry_of(environment: dict[str, Any], default_ttl: timedelta | None = None
              ) -> tuple[datetime | None, str]:
    """(when the Environment expires, where that comes from).

    The reaper's rule (`expiry.expires_at`) decides: a demo one never expires (None,
    `never (demo)`); the annotations argo-delivery.io/expires or argo-delivery.io/ttl are
    read as the reaper reads them, so an `envs extend` shows at once. Without them,
    status.expiresAt (the vend writes it from its project's defaultTTL), else the project's
    `default_ttl` when known; else (None, `unknown`)."""
    if _spec(environment).get("demo"):
        return None, "never (demo)"
    annotations = _annotations(environment)
    for key in (ANNOTATION_EXPIRES, ANNOTATION_TTL):
        if annotations.get(key):
            try:
                return expiry.expires_at(environment, None), f"annotation {key}"
            except (KeyError, ValueError):
                return None, f"unknown (annotation {key} is {annotations[key]!r})"
    written = parse_time(_status(environment).get("expiresAt"))
    if written is not None:
        return written, "status.expiresAt"
    if default_ttl is not None and parse_time(_meta(environment).get("creationTimestamp")):
        return expiry.expires_at(environment, default_ttl), "the project's defaultTTL"
    return None, "unknown"


def _expires_text(moment: datetime | None, source: str, at: datetime) -> str:
    if moment is None:
        return "never" if source.startswith("never") else "-"
    return until(moment, at) if moment > at else f"expired {until(moment, at)}"


def shown_phase(environment: dict[str, Any]) -> str:
    """status.phase (`-` before anything wrote one), `(deleting)` added once it is deleted."""
    phase = _status(environment).get("phase") or "-"
    return f"{phase} (deleting)" if envmodel.is_deleting(environment) else phase


def last_error(environment: dict[str, Any]) -> str:
    """The Failed condition's message (with its reason) while it holds, or status.message when
    the phase is Failed; empty otherwise."""
    failed = envmodel.condition(environment, envmodel.FAILED)
    if failed and failed.get("status") == "True":
        reason = failed.get("reason")
        return (f"{reason}: " if reason else "") + (failed.get("message") or "(no message)")
    if _status(environment).get("phase") == "Failed":
        return _status(environment).get("message") or "(no message)"
    return ""


def summary(environment: dict[str, Any], at: datetime, default_ttl: timedelta | None = None
            ) -> dict[str, Any]:
    """One row of `envs list`."""
    meta, spec = _meta(environment), _spec(environment)
    moment, source = expiry_of(environment, default_ttl)
    return {"name": meta.get("name", ""), "namespace": meta.get("namespace", ""),
            "project": spec.get("project", ""), "version": spec.get("version", ""),
            "owner": spec.get("owner", ""), "demo": bool(spec.get("demo")),
            "phase": _status(environment).get("phase", ""),
            "deleting": envmodel.is_deleting(environment),
            "expiresAt": rfc3339(moment) if moment else "",
            "expires": _expires_text(moment, source, at),
            "created": meta.get("creationTimestamp", ""),
            "age": age(meta.get("creationTimestamp"), at)}


def newest_first(environments: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    def key(environment: dict[str, Any]) -> tuple[str, str]:
        created = parse_time(_meta(environment).get("creationTimestamp"))
        return (created.isoformat() if created else "", _meta(environment).get("name", ""))

    return sorted(environments, key=key, reverse=True)


def select(environments: Iterable[dict[str, Any]], project: str | None = None) -> list[dict[str, Any]]:
    """The Environments of `project` (all when None), newest first."""
    return newest_first(e for e in environments
                        if project is None or _spec(e).get("project") == project)


def detail(environment: dict[str, Any], at: datetime, default_ttl: timedelta | None = None
           ) -> dict[str, Any]:
    """Everything `envs show` prints, as data (its `-o json` and `-o yaml`)."""
    meta, spec, status = _meta(environment), _spec(environment), _status(environment)
    moment, source = expiry_of(environment, default_ttl)
    annotations = _annotations(environment)
    return {
        "name": meta.get("name", ""), "namespace": meta.get("namespace", ""),
        "project": spec.get("project", ""), "owner": spec.get("owner", ""),
        "demo": bool(spec.get("demo")), "version": spec.get("version", ""),
        "deployedVersion": status.get("deployedVersion", ""),
        "phase": status.get("phase", ""), "message": status.get("message", ""),
        "created": meta.get("creationTimestamp", ""), "age": age(meta.get("creationTimestamp"), at),
        "deletionTimestamp": meta.get("deletionTimestamp", ""),
        "finalizers": list(meta.get("finalizers") or []),
        "ttl": annotations.get(ANNOTATION_TTL, ""), "expiresAnnotation":
            annotations.get(ANNOTATION_EXPIRES, ""),
        "expiresAt": rfc3339(moment) if moment else "",
        "expires": _expires_text(moment, source, at), "expirySource": source,
        "statusExpiresAt": status.get("expiresAt", ""),
        "variables": dict((spec.get("infrastructure") or {}).get("variables") or {}),
        "outputs": dict(sorted((status.get("outputs") or {}).items())),
        "outputsSecret": status.get("outputsSecret") or "",
        "workflow": status.get("workflow", ""),
        "lastError": last_error(environment),
        "conditions": [{"type": c.get("type", ""), "status": c.get("status", ""),
                        "reason": c.get("reason", ""), "message": c.get("message", ""),
                        "lastTransitionTime": c.get("lastTransitionTime", "")}
                       for c in status.get("conditions") or []],
    }


# --- as text ------------------------------------------------------------------------------------

def list_table(rows: list[dict[str, Any]], all_namespaces: bool = False) -> Any:
    """`envs list` as a table: NAME PROJECT VERSION OWNER PHASE EXPIRES AGE (NAMESPACE first
    with -A)."""
    columns = ("NAMESPACE",) * all_namespaces + ("NAME", "PROJECT", "VERSION", "OWNER", "PHASE",
                                                 "EXPIRES", "AGE")
    table = _table(*columns)
    for row in rows:
        phase = (row["phase"] or "-") + (" (deleting)" if row["deleting"] else "")
        values = (row["name"], row["project"], row["version"] or "-", row["owner"], phase,
                  row["expires"], row["age"])
        table.add_row(*_cells(*((row["namespace"],) * all_namespaces + values)))
    return table


def show_renderables(d: dict[str, Any]) -> list[Any]:
    """`envs show` as text: identity, phase and expiry, outputs, conditions."""
    from rich.text import Text

    facts = _table("", "")
    facts.show_header = False
    version = d["version"] or "- (a demo environment follows its project's releases)"
    if d["deployedVersion"] and d["deployedVersion"] != d["version"]:
        version += f" (deployed: {d['deployedVersion']})"
    elif d["deployedVersion"]:
        version += " (deployed)"
    expires = d["expires"] if not d["expiresAt"] else f"{d['expiresAt']} ({d['expires']})"
    expires += f"; from {d['expirySource']}" if d["expirySource"] else ""
    if d["statusExpiresAt"] and d["statusExpiresAt"] != d["expiresAt"] and d["expiresAt"]:
        expires += f"; status.expiresAt still says {d['statusExpiresAt']}"
    rows = [
        ("Environment", d["name"]), ("Namespace", d["namespace"]), ("Project", d["project"]),
        ("Owner", d["owner"] + (" (demo)" if d["demo"] else "")), ("Version", version),
        ("Phase", (d["phase"] or "- (nothing has reported yet)")
         + (f": {d['message']}" if d["message"] else "")),
        ("Created", f"{d['created']} ({d['age']} ago)"), ("Expires", expires),
    ]
    if d["deletionTimestamp"]:
        rows.append(("Deleting", f"since {d['deletionTimestamp']}; finalizers: "
                                 f"{', '.join(d['finalizers']) or 'none'}"))
    rows += [("Outputs Secret", d["outputsSecret"] or "- (none yet)"),
             ("Workflow", d["workflow"] or "-"), ("Last error", d["lastError"] or "none")]
    for label, value in rows:
        facts.add_row(*_cells(label, value))
    out: list[Any] = [facts, Text(""), Text("Outputs (not sensitive)", style="bold")]
    if d["outputs"]:
        outputs = _table("NAME", "VALUE")
        for key, value in d["outputs"].items():
            outputs.add_row(*_cells(key, value))
        out.append(outputs)
    else:
        out.append(Text("  none yet"))
    if d["variables"]:
        out += [Text(""), Text("Variables", style="bold")]
        variables = _table("NAME", "VALUE")
        for key, value in sorted(d["variables"].items()):
            variables.add_row(*_cells(key, value))
        out.append(variables)
    out += conditions_renderables(d["conditions"])
    return out


# --- create -----------------------------------------------------------------------------------

def parse_ttl(text: str, option: str = "--ttl") -> timedelta:
    """A Go duration (`8h`, `90m`, `1h30m`): what the annotation argo-delivery.io/ttl holds and
    the admission policy accepts (no days: Go has none)."""
    try:
        value = expiry.parse_go_duration(text)
    except ValueError:
        raise EnvironmentsError(f"{option} {text!r}: expected a Go duration such as 8h, 90m or "
                                "1h30m (hours at most: no d)", usage=True) from None
    if value <= timedelta(0):
        raise EnvironmentsError(f"{option} {text!r}: expected a duration above zero", usage=True)
    return value


def parse_variables(pairs: Iterable[str]) -> dict[str, str]:
    """`--var k=v` (repeated) as spec.infrastructure.variables: strings, each name once."""
    variables: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise EnvironmentsError(f"--var {pair!r}: expected NAME=VALUE, e.g. --var size=small",
                                    usage=True)
        if not _VARIABLE.fullmatch(name):
            raise EnvironmentsError(f"--var {pair!r}: {name!r} is not a Terraform variable name "
                                    "(a letter or _, then letters, digits, _ or -)", usage=True)
        if name in variables:
            raise EnvironmentsError(f"--var {name}: given twice ({variables[name]!r} and "
                                    f"{value!r})", usage=True)
        variables[name] = value
    return variables


def create_body(*, namespace: str, project: str, version: str, owner: str,
                name: str | None = None, ttl: str | None = None,
                variables: dict[str, str] | None = None) -> dict[str, Any]:
    """The Environment a developer asks for: owned by `owner` (the caller, as the API server
    knows them), named `name` or `<project>-<random>` by the server."""
    meta: dict[str, Any] = {"namespace": namespace}
    if name:
        meta["name"] = name
    else:
        meta["generateName"] = f"{project}-"
    if ttl:
        meta["annotations"] = {ANNOTATION_TTL: ttl}
    spec: dict[str, Any] = {"project": project, "version": version, "owner": owner}
    if variables:
        spec["infrastructure"] = {"variables": dict(variables)}
    return {"apiVersion": GROUP_VERSION, "kind": KIND, "metadata": meta, "spec": spec}


# --- extend -----------------------------------------------------------------------------------

def max_ttl_of(project: dict[str, Any] | None) -> timedelta | None:
    text = (((project or {}).get("spec") or {}).get("environments") or {}).get("maxTTL")
    try:
        return expiry.parse_go_duration(text) if text else None
    except ValueError:
        return None


def default_ttl_of(project: dict[str, Any] | None) -> timedelta | None:
    text = (((project or {}).get("spec") or {}).get("environments") or {}).get("defaultTTL")
    try:
        return expiry.parse_go_duration(text) if text else None
    except ValueError:
        return None


def extension(environment: dict[str, Any], ttl: timedelta, at: datetime,
              max_ttl: timedelta | None) -> tuple[dict[str, Any], datetime, str]:
    """(the merge patch, the new expiry, the new TTL) that makes `environment` expire `ttl`
    after `at`: the annotation argo-delivery.io/ttl becomes the Go duration from its creation
    to that instant, rounded up to whole minutes, and argo-delivery.io/expires goes (it would
    win over the TTL). Refused here for a demo Environment (it never expires) and beyond its
    project's `max_ttl` (None: unknown, admission decides), naming the latest possible
    expiry."""
    name = where(environment)
    if _spec(environment).get("demo"):
        raise EnvironmentsError(f"Environment {name} is a demo environment: it never expires, "
                                "there is nothing to extend")
    created = parse_time(_meta(environment).get("creationTimestamp"))
    if created is None:
        raise EnvironmentsError(f"Environment {name} has no creationTimestamp to count a TTL from")
    target = at + ttl
    span = target - created
    if max_ttl is not None and span > max_ttl:
        latest = created + max_ttl
        project = _spec(environment).get("project", "?")
        raise EnvironmentsError(
            f"Environment {name} cannot live until {rfc3339(target)}: project {project} allows "
            f"a TTL of at most {go_duration(max_ttl)} from its creation at {rfc3339(created)}, so "
            f"the latest possible expiry is {rfc3339(latest)} ({until(latest, at)}); nothing was "
            "changed")
    new = timedelta(minutes=math.ceil(span.total_seconds() / 60))
    if max_ttl is not None:
        new = min(new, max_ttl)
    text = go_duration(new)
    patch = {"metadata": {"annotations": {ANNOTATION_TTL: text, ANNOTATION_EXPIRES: None}}}
    return patch, created + new, text


# --- kubeconfig -------------------------------------------------------------------------------

def outputs_secret_name(environment: dict[str, Any]) -> str:
    return _status(environment).get("outputsSecret") or \
        envmodel.outputs_secret(_meta(environment).get("name", ""))


def kubeconfig_bytes(secret: dict[str, Any], environment: dict[str, Any]) -> bytes:
    """The key `kubeconfig` of the outputs Secret, decoded."""
    data = secret.get("data") or {}
    value = data.get(envmodel.KUBECONFIG_KEY)
    secret_name = f"{_meta(environment).get('namespace', '')}/{_meta(secret).get('name', '')}"
    if not value:
        keys = ", ".join(sorted(data)) or "none"
        raise EnvironmentsError(f"Secret {secret_name} of Environment {where(environment)} has no "
                                f"key {envmodel.KUBECONFIG_KEY} (its keys: {keys}): the "
                                "Terraform module has no output called kubeconfig")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise EnvironmentsError(f"Secret {secret_name}: key {envmodel.KUBECONFIG_KEY} is not "
                                "base64") from None


def write_private(path: Path, content: bytes) -> bool:
    """Write `content` to `path` readable by its owner only (0600, also when the file existed:
    a fresh file replaces it); True when a file was replaced."""
    path = Path(path)
    replaced = path.exists()
    if path.is_dir():
        raise EnvironmentsError(f"{path} is a folder: give a file name with -f", usage=True)
    try:
        descriptor, temporary = tempfile.mkstemp(dir=path.parent or Path("."),
                                                 prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise EnvironmentsError(f"cannot write {path}: {exc.strerror or exc}", usage=True) from None
    try:
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(content)
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise EnvironmentsError(f"cannot write {path}: {exc.strerror or exc}", usage=True) from None
    return replaced


# --- delete --force -----------------------------------------------------------------------------

def finalizer_patch(environment: dict[str, Any]) -> list[dict[str, Any]]:
    """The JSON patch that removes the finalizer argo-delivery.io/environment, and only it:
    `test` operations on metadata.resourceVersion and on that finalizer's place make the API
    server refuse it when the Environment changed since it was read (nothing is overwritten)."""
    meta = _meta(environment)
    finalizers = list(meta.get("finalizers") or [])
    if envmodel.FINALIZER not in finalizers:
        raise EnvironmentsError(f"Environment {where(environment)} has no finalizer "
                                f"{envmodel.FINALIZER}")
    index = finalizers.index(envmodel.FINALIZER)
    return [{"op": "test", "path": "/metadata/resourceVersion", "value": meta["resourceVersion"]},
            {"op": "test", "path": f"/metadata/finalizers/{index}", "value": envmodel.FINALIZER},
            {"op": "remove", "path": f"/metadata/finalizers/{index}"}]


def _found(value: bool | None, what: str, namespace: str) -> str:
    if value is None:
        return f"unknown (you may not read {what} in namespace {namespace})"
    return "exists" if value else "not found"


def force_listing(environment: dict[str, Any], state_secret: bool | None,
                  state_lease: bool | None) -> list[str]:
    """What may be left behind when the finalizer goes before the destroy finished: one line
    each. `state_secret` and `state_lease` say whether the Terraform state Secret and its lock
    Lease exist (None: the caller may not read them)."""
    meta, status = _meta(environment), _status(environment)
    name, namespace = meta.get("name", ""), meta.get("namespace", "")
    lines = [
        f"Terraform state: Secret {envmodel.state_secret(name)}: "
        f"{_found(state_secret, 'Secrets', namespace)}; its lock, Lease "
        f"{envmodel.state_lease(name)}: {_found(state_lease, 'Leases', namespace)}. Neither is "
        "removed by this.",
        "Whether the state still lists cloud resources is unknown to this command: nothing here "
        "reads the state or the cloud account. Check them before you assume nothing is left.",
    ]
    outputs = status.get("outputs") or {}
    if outputs:
        lines.append("What the vend reported (status.outputs): "
                     + ", ".join(f"{k}={v}" for k, v in sorted(outputs.items())))
    else:
        lines.append("The vend reported no outputs (status.outputs is empty).")
    lines.append(f"Outputs Secret {outputs_secret_name(environment)}: removed with the "
                 "Environment by the garbage collector (an owner reference).")
    error = last_error(environment)
    lines.append(f"Last error: {error}" if error else "Last error: none reported.")
    phase = status.get("phase") or "-"
    lines.append(f"Phase {phase}" + (f", last workflow {status['workflow']}"
                                     if status.get("workflow") else "")
                 + (f", being deleted since {meta['deletionTimestamp']}"
                    if meta.get("deletionTimestamp") else ""))
    others = [f for f in meta.get("finalizers") or [] if f != envmodel.FINALIZER]
    if others:
        lines.append(f"Other finalizers stay: {', '.join(others)}.")
    return lines


# --- refusals ----------------------------------------------------------------------------------

def refusal(status: int, body: Any, *, action: str, target: str, namespace: str,
            owner: str = "", reader: str = "", phase: str = "") -> str:
    """The API server's refusal of `action` (create, read, extend, delete, finalize,
    read-outputs) on `target` as a sentence.

    An RBAC 403 names the Role the user lacks (for the outputs Secret: only the Environment's
    owner reads it, through the Role `reader` the vend makes); an admission policy's refusal
    is shown with the server's own message, verbatim, after a sentence when it is the
    finalizer's (product owners hold the verb finalize)."""
    message = status_message(body)
    denied = _RBAC_DENIED.search(message) if status == 403 else None
    if denied and action == "read-outputs":
        user = denied.group("user")
        whose = f"its owner, {owner}," if owner else "its owner"
        return (f"{user} may not read Secret {target}"
                + (" (yet)" if user == owner else f": only {whose} may read it")
                + f": the owner reads the outputs of the Environment through the Role {reader} "
                "and its RoleBinding, which the vend makes once it has written the outputs"
                + (f" (the Environment is in phase {phase or '-'})" if phase != "Ready" else "")
                + f". The API server said: {message}")
    if status == 404 and action == "read-outputs":
        return (f"Secret {target} does not exist: the vend writes it once Terraform has applied "
                f"the module (the Environment is in phase {phase or '-'}). The API server said: "
                f"{message}")
    if denied:
        role, holders = NEEDS.get(action, _MEMBERS)
        return (f"{denied.group('user')} may not {_DOING.get(action, action)} {target}: that needs "
                f"{role} in namespace {namespace} ({holders}). The API server said: {message}")
    if status == 401:
        return (f"the API server did not accept your credentials (HTTP 401): {message}; log in "
                "again or check --kubeconfig and --context")
    if status == 404:
        return f"{target} does not exist (HTTP 404): {message}"
    if action == "finalize" and _POLICY_DENIED in message and "finalizer" in message:
        return (f"you may not remove the finalizer {envmodel.FINALIZER} of {target}: that needs "
                f"the custom verb finalize on environments, which product owners hold (Role "
                f"{PRODUCT_OWNER_ROLE}). The API server said (HTTP {status}): {message}")
    if action == "finalize" and status == 422 and _PATCH_TEST_FAILED in message:
        return (f"{target} changed since it was read, so nothing was removed (the patch tests "
                f"its resourceVersion); look at it again and retry. The API server said (HTTP "
                f"{status}): {message}")
    return f"the API server refused {_REFUSED.get(action, action)} {target} (HTTP {status}): {message}"


# --- wait --------------------------------------------------------------------------------------

def state_text(environment: dict[str, Any] | None) -> str:
    """`phase Provisioning: applying the module`, `deleting; phase Destroying`."""
    if environment is None:
        return "gone"
    status = _status(environment)
    text = f"phase {status.get('phase') or '- (nothing reported yet)'}"
    if status.get("message"):
        text += f": {status['message']}"
    if not envmodel.is_deleting(environment):
        return text
    others = [f for f in _meta(environment).get("finalizers") or [] if f != envmodel.FINALIZER]
    if others and not envmodel.has_finalizer(environment):
        return f"deleting, waiting for finalizer {', '.join(others)}; {text}"
    return f"deleting; {text}"


def ready_outcome(environment: dict[str, Any] | None, *, namespace: str, name: str) -> Outcome:
    """What `create --wait` waits for: phase Ready (ok) or Failed (not ok, with the error)."""
    target = f"Environment {namespace}/{name}"
    if environment is None:
        return Outcome(True, False, f"{target} was deleted while waiting for it to be Ready")
    phase = _status(environment).get("phase")
    if envmodel.is_deleting(environment):
        return Outcome(True, False, f"{target} is being deleted: it will never be Ready")
    if phase == "Ready":
        outputs = _status(environment).get("outputs") or {}
        return Outcome(True, True, f"{target} is Ready" + (
            f" ({', '.join(f'{k}={v}' for k, v in sorted(outputs.items()))})" if outputs else ""))
    if phase == "Failed":
        return Outcome(True, False, f"{target} failed: {last_error(environment)}")
    return Outcome(False, False, f"{target}: {state_text(environment)}")


def destroy_failed(environment: dict[str, Any], saw_progress: bool = False) -> bool:
    """True when the destroy of a deleted Environment failed: it is being deleted, still holds
    our finalizer (without it the destroy is over or was given up), its phase is Failed, and
    that failure is the destroy's (the Failed condition turned True at or after the deletion,
    or the phase moved during this wait). A vend that failed before the deletion is not the
    destroy's failure: its destroy is still to run."""
    if not (envmodel.is_deleting(environment) and envmodel.has_finalizer(environment)) or \
            _status(environment).get("phase") != "Failed":
        return False
    if saw_progress:
        return True
    failed = envmodel.condition(environment, envmodel.FAILED)
    since = parse_time((failed or {}).get("lastTransitionTime"))
    deleted = parse_time(_meta(environment).get("deletionTimestamp"))
    return bool(failed and failed.get("status") == "True" and since and deleted and since >= deleted)


def gone_outcome(environment: dict[str, Any] | None, *, namespace: str, name: str,
                 saw_progress: bool = False) -> Outcome:
    """What `delete --wait` waits for: the Environment gone (ok) or its destroy failed (not ok,
    with the error and what to do)."""
    target = f"Environment {namespace}/{name}"
    if environment is None:
        return Outcome(True, True, f"{target} is gone")
    if destroy_failed(environment, saw_progress):
        return Outcome(True, False, f"the destroy of {target} failed: {last_error(environment)}. "
                                    "It stays until a destroy succeeds; when it cannot, a product "
                                    f"owner may run `argo-delivery envs delete {name} --force`")
    return Outcome(False, False, f"{target}: {state_text(environment)}")


def wait(client: Any, name: str, namespace: str, goal: str, timeout: float, *,
         progress: Callable[[str], None] = lambda _: None,
         clock: Callable[[], float] = time.monotonic) -> Outcome:
    """Watch Environment `name` until `goal` (`ready`: `ready_outcome`; `gone`:
    `gone_outcome`) is decided, or `timeout` seconds pass (not ok, with the phase it was in).
    A watch that ends is resumed from the last resourceVersion seen; an expired one (HTTP 410)
    starts again from a fresh list."""
    deadline = clock() + timeout
    environment, resource_version = client.listed(name, namespace)
    last_state, first_phase, saw_progress = "", None, False
    seen = environment is not None

    def check(current: dict[str, Any] | None) -> Outcome | None:
        nonlocal last_state, first_phase, saw_progress
        if current is None and not seen and goal == "ready":
            return Outcome(True, False, f"no Environment {name} in namespace {namespace}")
        if current is not None:
            phase = _status(current).get("phase")
            if first_phase is None:
                first_phase = phase or ""
            elif (phase or "") != first_phase:
                saw_progress = True
        if goal == "ready":
            outcome = ready_outcome(current, namespace=namespace, name=name)
        else:
            outcome = gone_outcome(current, namespace=namespace, name=name,
                                   saw_progress=saw_progress)
        state = state_text(current)
        if state != last_state:
            progress(state)
            last_state = state
        return outcome if outcome.done else None

    calls = 0

    def checked(current: dict[str, Any] | None) -> Outcome | None:
        nonlocal seen, calls
        calls += 1
        if calls > 1:   # a watched change (or a fresh list after an expired watch)
            seen = True
        return check(current)
    result = watch_until(client, name, namespace, resource_version, checked, deadline,
                         lambda message: EnvironmentsError(
                             f"watching Environment {namespace}/{name}: {message}"), clock,
                         first=environment)
    if result is not None:
        return result
    wanted = "to be Ready" if goal == "ready" else "to be gone"
    return Outcome(True, False, f"timed out after {format_duration_seconds(timeout)} waiting for "
                                f"Environment {namespace}/{name} {wanted}; last observed: "
                                f"{last_state or '-'}")


# --- the cluster -------------------------------------------------------------------------------

class EnvironmentsClient(VersionsClient):
    """Environments through the user's kubeconfig: `Cluster`'s dynamic client, errors as
    sentences. Connecting, finding the project's namespace and asking who the caller is are
    the Versions client's own."""

    def _call(self, call: Callable[[], Any], *, action: str, target: str, namespace: str,
              **extra: str) -> Any:
        try:
            return call()
        except Exception as exc:
            raise self._error(exc, action=action, target=target, namespace=namespace,
                              **extra) from None

    def _error(self, exc: Exception, *, action: str, target: str, namespace: str,
               **extra: str) -> Exception:
        from kubernetes.client.exceptions import ApiException

        if isinstance(exc, ApiException):
            return EnvironmentsError(refusal(exc.status or 0, exc.body or exc.reason, action=action,
                                             target=target, namespace=namespace, **extra))
        error = super()._error(exc, action="read", target=target, namespace=namespace)
        return EnvironmentsError(str(error)) if isinstance(error, VersionsError) else error

    def _environments(self) -> Any:
        return self.cluster.resource(GROUP_VERSION, KIND)

    def list(self, namespace: str | None) -> list[dict[str, Any]]:
        where_ = f"Environments in namespace {namespace}" if namespace else \
            "Environments in all namespaces"
        listed = self._call(lambda: self._environments().get(namespace=namespace).to_dict(),
                            action="read", target=where_, namespace=namespace or "(all)")
        return listed.get("items") or []

    def get(self, name: str, namespace: str) -> dict[str, Any]:
        return self._call(lambda: self._environments().get(name=name, namespace=namespace).to_dict(),
                          action="read", target=f"Environment {namespace}/{name}",
                          namespace=namespace)

    def listed(self, name: str, namespace: str) -> tuple[dict[str, Any] | None, str]:
        listed = self._call(lambda: self._environments().get(
            namespace=namespace, field_selector=f"metadata.name={name}").to_dict(),
            action="read", target=f"Environment {namespace}/{name}", namespace=namespace)
        items = listed.get("items") or []
        return (items[0] if items else None), listed["metadata"]["resourceVersion"]

    def watch(self, name: str, namespace: str, resource_version: str,
              timeout: int) -> Iterator[dict[str, Any]]:
        from kubernetes.client.exceptions import ApiException

        target = f"Environment {namespace}/{name}"
        try:
            for event in self._environments().watch(namespace=namespace, name=name,
                                                    timeout=timeout,
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

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        meta = body["metadata"]
        namespace = meta["namespace"]
        target = (f"Environment {namespace}/{meta['name']}" if meta.get("name") else
                  f"an Environment of project {body['spec']['project']} in namespace {namespace}")
        return self._call(lambda: self._environments().create(body=body, namespace=namespace)
                          .to_dict(), action="create", target=target, namespace=namespace)

    def patch(self, name: str, namespace: str, body: Any, *, action: str,
              content_type: str = "application/merge-patch+json") -> dict[str, Any]:
        return self._call(lambda: self._environments().patch(
            name=name, namespace=namespace, body=body, content_type=content_type).to_dict(),
            action=action, target=f"Environment {namespace}/{name}", namespace=namespace)

    def delete(self, name: str, namespace: str) -> dict[str, Any]:
        return self._call(lambda: self._environments().delete(name=name, namespace=namespace)
                          .to_dict(), action="delete", target=f"Environment {namespace}/{name}",
                          namespace=namespace)

    def outputs_secret(self, environment: dict[str, Any]) -> dict[str, Any]:
        """The Environment's outputs Secret, as its owner reads it (RBAC: the reader Role)."""
        meta = _meta(environment)
        namespace, secret = meta["namespace"], outputs_secret_name(environment)
        return self._call(lambda: self.cluster.resource("v1", "Secret").get(
            name=secret, namespace=namespace).to_dict(), action="read-outputs",
            target=f"{namespace}/{secret}", namespace=namespace,
            owner=_spec(environment).get("owner", ""), reader=envmodel.reader_name(meta["name"]),
            phase=_status(environment).get("phase", ""))

    def exists(self, api_version: str, kind: str, name: str, namespace: str) -> bool | None:
        """Whether the object exists; None when the caller may not read it."""
        from kubernetes.client.exceptions import ApiException

        try:
            self.cluster.resource(api_version, kind).get(name=name, namespace=namespace)
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            if exc.status == 403:
                return None
            raise self._error(exc, action="read", target=f"{kind} {namespace}/{name}",
                              namespace=namespace) from None

    def project(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Project `name` in `namespace`; None when it is not there or the caller may not
        read it (admission decides then)."""
        from kubernetes.client.exceptions import ApiException

        try:
            return self.cluster.resource(GROUP_VERSION, "Project").get(
                name=name, namespace=namespace).to_dict()
        except ApiException as exc:
            if exc.status in (403, 404):
                return None
            raise self._error(exc, action="read", target=f"Project {namespace}/{name}",
                              namespace=namespace) from None

    def default_ttls(self, environments: Iterable[dict[str, Any]]) -> dict[tuple[str, str],
                                                                           timedelta | None]:
        """(namespace, project) -> the project's defaultTTL, for the Projects the caller may
        read."""
        found: dict[tuple[str, str], timedelta | None] = {}
        for environment in environments:
            key = (_meta(environment).get("namespace", ""), _spec(environment).get("project", ""))
            if key not in found:
                found[key] = default_ttl_of(self.project(*key)) if all(key) else None
        return found

    def username(self) -> str:
        try:
            return super().username()
        except VersionsError as exc:
            raise EnvironmentsError(str(exc).replace("who approves", "who owns it")) from None


# --- the commands' work ------------------------------------------------------------------------

def check_project(environment: dict[str, Any], project: str | None) -> None:
    """Refuse an Environment of another project than `--project` names."""
    if project and _spec(environment).get("project") != project:
        raise EnvironmentsError(f"Environment {where(environment)} belongs to project "
                                f"{_spec(environment).get('project')!r}, not {project!r}")


def create(client: EnvironmentsClient, *, namespace: str, project: str, version: str,
           name: str | None, ttl: str | None, variables: dict[str, str]) -> dict[str, Any]:
    """Ask for an Environment, owned by the caller as the API server knows them."""
    owner = client.username()
    return client.create(create_body(namespace=namespace, project=project, version=version,
                                     owner=owner, name=name, ttl=ttl, variables=variables))


def extend(client: EnvironmentsClient, name: str, namespace: str, ttl: timedelta, *,
           project: str | None = None, at: datetime | None = None
           ) -> tuple[dict[str, Any], datetime, str]:
    """Make Environment `name` expire `ttl` from now; (as stored, new expiry, new TTL)."""
    environment = client.get(name, namespace)
    check_project(environment, project)
    max_ttl = max_ttl_of(client.project(namespace, _spec(environment).get("project", "")))
    patch, expires, text = extension(environment, ttl, at or now(), max_ttl)
    return client.patch(name, namespace, patch, action="extend"), expires, text


def force_facts(client: EnvironmentsClient, environment: dict[str, Any]) -> list[str]:
    meta = _meta(environment)
    name, namespace = meta["name"], meta["namespace"]
    secret = client.exists("v1", "Secret", envmodel.state_secret(name), namespace)
    lease = client.exists("coordination.k8s.io/v1", "Lease", envmodel.state_lease(name), namespace)
    return force_listing(environment, secret, lease)


def refuse_force(environment: dict[str, Any]) -> None:
    """--force only gives up a destroy that is running or failed: the Environment is being
    deleted and still holds our finalizer."""
    if not envmodel.is_deleting(environment):
        raise EnvironmentsError(
            f"Environment {where(environment)} is not being deleted: delete it without --force "
            "first and let its destroy run; --force is for a destroy that failed or is stuck")
    if not envmodel.has_finalizer(environment):
        others = ", ".join(_meta(environment).get("finalizers") or []) or "none"
        raise EnvironmentsError(
            f"Environment {where(environment)} no longer has the finalizer {envmodel.FINALIZER} "
            f"(its destroy finished or was given up); what keeps it: finalizers {others}")


def force(client: EnvironmentsClient, environment: dict[str, Any]) -> dict[str, Any]:
    meta = _meta(environment)
    return client.patch(meta["name"], meta["namespace"], finalizer_patch(environment),
                        action="finalize", content_type="application/json-patch+json")
