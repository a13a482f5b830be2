"""Backup and restore of the platform's data store: `argo-delivery state export FILE` and
`argo-delivery state import FILE`.

The orchestrator keeps its history only in etcd: every Project, Version (with its runs and
approval) and Environment (with its phase, expiry and outputs). `export` writes them, with
their status, into one JSON file of a versioned format (`apiVersion: state.argo-delivery.io/v1`,
`kind: State`); with `include_terraform_state` also each Environment's Terraform state Secret,
outputs Secret and the owner's reader Role and RoleBinding (the file then says
`sensitive: true`: it holds cloud credentials).

`import` restores them onto a cluster with the bundle's CRDs: each object is created, then its
status written through the status subresource (a CREATE cannot set status). Versions and
Environments are created with the annotation `argo-delivery.io/restored` (the value: when the
file was exported), which the Sensors' ADD filters skip: no alpha run for an imported Version,
no vend for an imported Environment (their flows ran where they came from). Only a user the
authorizer allows the custom verb `restore` may set it (the bundle's admission policies).
An object that exists and equals the file's is left alone (importing twice changes nothing);
one that differs is refused, by name, before anything is written, unless `overwrite`.

The kubernetes client is the one `apply` and `versions` use (`apply.Cluster`), called with raw
JSON (10,000 Versions would spend most of the time in the client's model classes otherwise).
"""

from __future__ import annotations

import datetime
import json
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from argo_delivery import envmodel
from argo_delivery.naming import ANNOTATION_RESTORED, GROUP_VERSION, LABEL_PROJECT

__all__ = ["FILE_API_VERSION", "FILE_KIND", "ImportPlan", "StateError", "StateClient",
           "comparable", "export_state", "import_state", "plan_import", "read_state_file",
           "write_state_file"]

FILE_API_VERSION = "state.argo-delivery.io/v1"
FILE_KIND = "State"
# Our kinds, in the order an import creates them (an Environment's policy reads its Project).
KINDS = (("Project", "projects"), ("Version", "versions"), ("Environment", "environments"))
MARKED = {"Version", "Environment"}   # what the Sensors watch: created with the restore marker
PAGE = 500
WORKERS = 16
NO_PARAMS = "no params found"          # a policy whose parameter informer lags: try again
PARAM_WAIT_SECONDS = 30
# Metadata the API server owns, never exported or compared.
_SERVER_FIELDS = ("uid", "resourceVersion", "managedFields", "creationTimestamp", "generation",
                  "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds")
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# What an object is, per kind, besides metadata (Secrets, Roles, RoleBindings have no spec).
_BODY = {"Secret": ("type", "data", "immutable"), "Role": ("rules",),
         "RoleBinding": ("roleRef", "subjects")}
_CORE = {"Secret": ("v1", "secrets"), "Role": ("rbac.authorization.k8s.io/v1", "roles"),
         "RoleBinding": ("rbac.authorization.k8s.io/v1", "rolebindings")}


class StateError(Exception):
    """A refusal or failure, as a sentence; `usage` for a file or flag that is wrong."""

    def __init__(self, message: str, usage: bool = False):
        super().__init__(message)
        self.usage = usage


# --- the file -------------------------------------------------------------------------------

def _clean(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` without what the API server owns: what a restore recreates."""
    meta = obj.get("metadata") or {}
    kept = {key: value for key, value in meta.items()
            if key not in _SERVER_FIELDS and key != "generateName"}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if k not in (_LAST_APPLIED, ANNOTATION_RESTORED)}
    if annotations:
        kept["annotations"] = annotations
    else:
        kept.pop("annotations", None)
    if kept.get("ownerReferences"):
        kept["ownerReferences"] = [{k: v for k, v in ref.items() if k != "uid"}
                                   for ref in kept["ownerReferences"]]
    result = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": kept}
    for key in _BODY.get(obj["kind"], ("spec", "status")):
        if key in obj and obj[key] is not None:
            result[key] = obj[key]
    return result


def comparable(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    """What decides whether a live object is the file's: `_clean` without the restore marker
    and the uid of owner references (a restore makes new ones)."""
    return None if obj is None else _clean(obj)


def state_document(items: list[dict[str, Any]], *, exported_at: str, server: str,
                   sensitive: bool) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item["kind"]] = counts.get(item["kind"], 0) + 1
    meta: dict[str, Any] = {"exportedAt": exported_at, "server": server, "counts": counts,
                            "sensitive": sensitive}
    if sensitive:
        meta["warning"] = ("this file holds the Terraform state and outputs of Environments "
                           "(cloud credentials, kubeconfigs): keep it as you keep those secrets")
    return {"apiVersion": FILE_API_VERSION, "kind": FILE_KIND, "metadata": meta, "items": items}


def write_state_file(path: str, document: dict[str, Any]) -> None:
    """One JSON document (valid YAML too); mode 0600 when the file is sensitive, whatever the
    umask, set before a byte is written."""
    sensitive = bool(document["metadata"].get("sensitive"))
    text = json.dumps(document, indent=1, sort_keys=False) + "\n"
    mode = 0o600 if sensitive else 0o644
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_state_file(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise StateError(f"cannot read {path}: {exc.strerror}", usage=True) from None
    try:
        document = json.loads(text)
    except ValueError:
        import yaml

        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise StateError(f"{path} is neither JSON nor YAML: {exc}", usage=True) from None
    if not isinstance(document, dict) or document.get("kind") != FILE_KIND:
        raise StateError(f"{path} is no argo-delivery state file (kind {FILE_KIND}, apiVersion "
                         f"{FILE_API_VERSION}, as `argo-delivery state export` writes)", usage=True)
    if document.get("apiVersion") != FILE_API_VERSION:
        raise StateError(f"{path} has apiVersion {document.get('apiVersion')!r}; this "
                         f"argo-delivery reads {FILE_API_VERSION}", usage=True)
    items = document.get("items")
    if not isinstance(items, list) or not all(
            isinstance(i, dict) and i.get("kind") and (i.get("metadata") or {}).get("name")
            for i in items):
        raise StateError(f"{path}: items must be a list of objects with a kind and a name",
                         usage=True)
    return document


# --- the cluster ----------------------------------------------------------------------------

def _path(kind: str, namespace: str | None, name: str | None = None) -> str:
    if kind in _CORE:
        api, plural = _CORE[kind]
        base = "/api/v1" if api == "v1" else f"/apis/{api}"
    else:
        plural = dict(KINDS)[kind]
        base = f"/apis/{GROUP_VERSION}"
    path = f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"
    return f"{path}/{name}" if name else path


class StateClient:
    """Raw JSON calls through the kubernetes client's ApiClient (thread-safe: its urllib3 pool
    is shared by the import's workers)."""

    def __init__(self, api_client: Any):
        self.api = api_client
        pool = WORKERS + 4
        if getattr(api_client.configuration, "connection_pool_maxsize", pool) < pool:
            from kubernetes.client import rest

            api_client.configuration.connection_pool_maxsize = pool
            api_client.rest_client = rest.RESTClientObject(api_client.configuration)

    @classmethod
    def connect(cls, kubeconfig: str | None, context: str | None) -> StateClient:
        from argo_delivery.apply import ApplyError, api_client

        try:
            return cls(api_client(kubeconfig, context))
        except ApplyError as exc:
            raise StateError(str(exc), usage=True) from None

    @property
    def host(self) -> str:
        return str(self.api.configuration.host)

    def request(self, method: str, path: str, body: Any = None,
                query: list[tuple[str, str]] | None = None, *, missing_ok: bool = False) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            method_, url, headers, payload, _ = self.api.param_serialize(
                method, path, query_params=query or [], body=body,
                header_params={"Accept": "application/json", "Content-Type": "application/json"},
                auth_settings=["BearerToken"])
            response = self.api.call_api(method_, url, headers, payload)
            data = response.read()
        except ApiException as exc:
            if missing_ok and exc.status == 404:
                return None
            raise StateError(_refusal(method, path, exc.status, exc.body, exc.reason)) from None
        except (HTTPError, OSError) as exc:
            raise StateError(f"cannot reach the API server at {self.host}: {exc}") from None
        if response.status == 404 and missing_ok:
            return None
        if not 200 <= response.status < 300:
            raise StateError(_refusal(method, path, response.status, data, response.reason))
        return json.loads(data) if data else None

    def list(self, path: str, query: list[tuple[str, str]] | None = None) -> list[dict[str, Any]]:
        """Every item, page by page; each with its apiVersion and kind (a list leaves them out)."""
        items: list[dict[str, Any]] = []
        token = ""
        while True:
            page = self.request("GET", path, query=[*(query or []), ("limit", str(PAGE)),
                                                    *([("continue", token)] if token else [])])
            kind = page.get("kind", "").removesuffix("List")
            for item in page.get("items") or []:
                item.setdefault("apiVersion", page.get("apiVersion"))
                item.setdefault("kind", kind)
                items.append(item)
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                return items

    def check_served(self) -> None:
        if self.request("GET", f"/apis/{GROUP_VERSION}", missing_ok=True) is None:
            raise StateError(f"the cluster at {self.host} serves no {GROUP_VERSION}: apply the "
                             "bundle (its crds/) first")


def _refusal(method: str, path: str, status: int, body: Any, reason: Any) -> str:
    message = reason
    try:
        message = json.loads(body).get("message") or message
    except (TypeError, ValueError, AttributeError):
        pass
    return f"the API server refused {method} {path} (HTTP {status}): {message}"


def _name(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return f"{obj['kind']} {meta.get('namespace', '')}/{meta['name']}".replace(" /", " ")


# --- export ---------------------------------------------------------------------------------

def _terraform_objects(client: StateClient, environments: list[dict[str, Any]],
                       progress: Callable[[int], None]) -> list[dict[str, Any]]:
    """Each Environment's state Secret, outputs Secret and reader Role and RoleBinding (the
    Lease is a lock: the backend makes a free one again)."""
    wanted: dict[str, dict[str, set[str]]] = {}
    for env in environments:
        name, namespace = env["metadata"]["name"], env["metadata"]["namespace"]
        names = wanted.setdefault(namespace, {"Secret": set(), "Role": set(), "RoleBinding": set()})
        names["Secret"] |= {envmodel.state_secret(name), envmodel.outputs_secret(name)}
        names["Role"].add(envmodel.reader_name(name))
        names["RoleBinding"].add(envmodel.reader_name(name))
    found: list[dict[str, Any]] = []
    for namespace in sorted(wanted):
        for kind in ("Secret", "Role", "RoleBinding"):
            for item in client.list(_path(kind, namespace)):
                if item["metadata"]["name"] in wanted[namespace][kind]:
                    found.append(_clean(item))
                    progress(1)
    return found


def export_state(client: StateClient, *, include_terraform_state: bool = False,
                 progress: Callable[[str, int], None] | None = None,
                 now: datetime.datetime | None = None) -> dict[str, Any]:
    """The state document: every Project, Version and Environment of every namespace."""
    def advance(kind: str) -> Callable[[int], None]:
        return lambda n: progress(kind, n) if progress else None

    client.check_served()
    items: list[dict[str, Any]] = []
    environments: list[dict[str, Any]] = []
    for kind, _ in KINDS:
        listed = client.list(_path(kind, None))
        listed.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        if kind == "Environment":
            environments = listed
        items.extend(_clean(item) for item in listed)
        advance(kind)(len(listed))
    if include_terraform_state:
        items.extend(_terraform_objects(client, environments, advance("Secret")))
    moment = (now or datetime.datetime.now(datetime.timezone.utc)).astimezone(datetime.timezone.utc)
    return state_document(items, exported_at=moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                          server=client.host, sensitive=include_terraform_state)


# --- import ---------------------------------------------------------------------------------

@dataclass
class ImportPlan:
    """What an import does with each object of the file."""

    create: list[dict[str, Any]] = field(default_factory=list)
    complete: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    overwrite: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    unchanged: list[dict[str, Any]] = field(default_factory=list)
    differs: list[tuple[dict[str, Any], list[str]]] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)   # to create

    @property
    def writes(self) -> int:
        return len(self.create) + len(self.complete) + len(self.overwrite)


def _desired(item: dict[str, Any], marker: str) -> dict[str, Any]:
    obj = json.loads(json.dumps(item))
    meta = obj["metadata"]
    for key in _SERVER_FIELDS:
        meta.pop(key, None)
    if obj["kind"] in MARKED:
        meta.setdefault("annotations", {})[ANNOTATION_RESTORED] = marker
    return obj


def _differences(live: dict[str, Any], want: dict[str, Any]) -> list[str]:
    a, b = comparable(live) or {}, comparable(want) or {}
    fields = []
    for key in sorted(set(a) | set(b)):
        if key == "metadata":
            fields += [f"metadata.{k}" for k in sorted(set(a[key]) | set(b[key]))
                       if a[key].get(k) != b[key].get(k)]
        elif a.get(key) != b.get(key):
            fields.append(key)
    return fields


def plan_import(client: StateClient, document: dict[str, Any], *,
                overwrite: bool = False) -> ImportPlan:
    """Compare the file with the cluster (one LIST per kind and namespace, no write)."""
    client.check_served()
    marker = str(document.get("metadata", {}).get("exportedAt") or "unknown")
    plan = ImportPlan()
    live: dict[tuple[str, str, str], dict[str, Any]] = {}
    namespaces = sorted({i["metadata"].get("namespace", "") for i in document["items"]} - {""})
    existing = {n["metadata"]["name"] for n in client.list("/api/v1/namespaces")}
    plan.namespaces = [n for n in namespaces if n not in existing]
    kinds = {i["kind"] for i in document["items"]}
    for kind in kinds:
        if kind in dict(KINDS):
            listed = client.list(_path(kind, None))
        elif kind in _CORE:
            listed = [o for n in namespaces if n in existing for o in client.list(_path(kind, n))]
        else:
            raise StateError(f"the state file holds a {kind}, which argo-delivery does not "
                             "restore", usage=True)
        for obj in listed:
            live[(kind, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])] = obj
    for item in document["items"]:
        want = _desired(item, marker)
        key = (item["kind"], item["metadata"].get("namespace", ""), item["metadata"]["name"])
        current = live.get(key)
        if current is None:
            plan.create.append(want)
            continue
        differences = _differences(current, want)
        if not differences:
            plan.unchanged.append(want)
        elif differences == ["status"] and not current.get("status") and \
                ANNOTATION_RESTORED in (current["metadata"].get("annotations") or {}):
            plan.complete.append((want, current))    # an earlier import stopped before its status
        elif overwrite:
            plan.overwrite.append((want, current))
        else:
            plan.differs.append((want, differences))
    return plan


def _retry_params(call: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + PARAM_WAIT_SECONDS
    while True:
        try:
            return call()
        except StateError as exc:
            if NO_PARAMS not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _owner_uids(obj: dict[str, Any], uids: dict[tuple[str, str, str], str]) -> None:
    namespace = obj["metadata"].get("namespace", "")
    refs = obj["metadata"].get("ownerReferences") or []
    kept = []
    for ref in refs:
        uid = uids.get((ref.get("kind", ""), namespace, ref.get("name", "")))
        if uid:
            kept.append({**ref, "uid": uid})
    if kept:
        obj["metadata"]["ownerReferences"] = kept
    else:
        obj["metadata"].pop("ownerReferences", None)


def import_state(client: StateClient, document: dict[str, Any], plan: ImportPlan, *,
                 dry_run: bool = False, progress: Callable[[int], None] | None = None,
                 workers: int = WORKERS) -> dict[str, int]:
    """Carry the plan out: namespaces, then our kinds in order (Projects, Versions,
    Environments), then the Environments' Secrets and RBAC with their owner's new uid.
    `dry_run`: the API server checks every create (admission included), nothing is stored."""
    if plan.differs:
        raise StateError(_differs_text(plan))
    query = [("dryRun", "All")] if dry_run else []
    for namespace in plan.namespaces:
        project = next((i["metadata"]["name"] for i in document["items"]
                        if i["kind"] == "Project" and i["metadata"].get("namespace") == namespace),
                       None)
        labels = {LABEL_PROJECT: project} if project else {}
        client.request("POST", "/api/v1/namespaces", {
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": namespace, "labels": labels}}, query)
    uids: dict[tuple[str, str, str], str] = {}

    completing = {id(current) for _, current in plan.complete}
    new_namespaces = set(plan.namespaces)

    def write(obj: dict[str, Any], current: dict[str, Any] | None) -> None:
        kind, meta = obj["kind"], obj["metadata"]
        namespace = meta.get("namespace")
        if dry_run and namespace in new_namespaces:
            if progress:      # a dry run creates no namespace: nothing in it can be checked
                progress(1)
            return
        if kind in _CORE:
            _owner_uids(obj, uids)
        status = obj.get("status")
        body = {k: v for k, v in obj.items() if k != "status"}
        if current is None:
            saved = _retry_params(lambda: client.request(
                "POST", _path(kind, namespace), body, query))
        elif id(current) in completing:
            saved = current
        else:
            body["metadata"] = {**meta, "resourceVersion": current["metadata"]["resourceVersion"]}
            saved = _retry_params(lambda: client.request(
                "PUT", _path(kind, namespace, meta["name"]), body, query))
        if status is not None and kind not in _CORE and not dry_run:
            client.request("PUT", _path(kind, namespace, meta["name"]) + "/status",
                           {**saved, "status": status}, query)
        if saved and (saved.get("metadata") or {}).get("uid"):
            uids[(kind, namespace or "", meta["name"])] = saved["metadata"]["uid"]
        if progress:
            progress(1)

    work: list[tuple[dict[str, Any], dict[str, Any] | None]] = [
        *((obj, None) for obj in plan.create), *plan.complete, *plan.overwrite]
    if any(obj["kind"] in _CORE for obj, _ in work):
        _fill_owner_uids(client, work, uids)
    order = [kind for kind, _ in KINDS] + list(_CORE)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for kind in order:
            batch = [(obj, current) for obj, current in work if obj["kind"] == kind]
            for future in [pool.submit(write, obj, current) for obj, current in batch]:
                future.result()
    return {"created": len(plan.create), "completed": len(plan.complete),
            "overwritten": len(plan.overwrite), "unchanged": len(plan.unchanged),
            "namespaces": len(plan.namespaces)}


def _fill_owner_uids(client: StateClient, work: Iterable[tuple[dict[str, Any], Any]],
                     uids: dict[tuple[str, str, str], str]) -> None:
    """The live uid of each existing Environment a Secret or Role of the file is owned by (the
    new ones get theirs when created)."""
    namespaces = {obj["metadata"].get("namespace", "") for obj, _ in work if obj["kind"] in _CORE}
    for namespace in namespaces:
        if not namespace:
            continue
        listed = client.request("GET", _path("Environment", namespace), missing_ok=True) or {}
        for env in listed.get("items") or []:
            uids[("Environment", namespace, env["metadata"]["name"])] = env["metadata"]["uid"]


def _differs_text(plan: ImportPlan) -> str:
    shown = [f"{_name(obj)} ({', '.join(fields)})" for obj, fields in plan.differs[:20]]
    more = len(plan.differs) - len(shown)
    return (f"{len(plan.differs)} object(s) exist and differ from the state file; nothing was "
            "written (--overwrite replaces them): " + "; ".join(shown)
            + (f"; and {more} more" if more > 0 else ""))


def in_flight(document: dict[str, Any]) -> list[str]:
    """Objects whose flow was running at export: restored as they were, nothing runs them on
    (`versions rerun`, the reaper's retry-vend, or a delete does)."""
    found = []
    for item in document["items"]:
        status = item.get("status") or {}
        if item["kind"] == "Version":
            streams = status.get("streams") or {}
            if not status.get("stream") or any((s or {}).get("phase") == "Running"
                                               for s in streams.values()):
                found.append(_name(item))
        elif item["kind"] == "Environment" and status.get("phase") in (
                None, "Pending", "Provisioning", "Deploying", "Destroying"):
            found.append(_name(item))
    return found
