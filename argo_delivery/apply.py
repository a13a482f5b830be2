"""`argo-delivery apply` and `diff`: install a bundle folder on a cluster, and show what would change.

Apply is server-side apply with a field manager of its own, in phases: CRDs (then wait until
they are Established), Namespaces, everything else, then prune. What a bundle installs is
an ApplySet (the kubectl `--applyset` convention, KEP-3659): a parent Secret in the
orchestrator namespace carries `applyset.kubernetes.io/id`, the group-kinds and namespaces of
its members, and every member carries `applyset.kubernetes.io/part-of: <id>`. So a member
that the previous version had and this one lacks is found by label and deleted; kubectl
users list the set with the same label. Namespaces and CRDs hold data (Versions,
Environments, Secrets): they are never pruned unless asked.

The version label (`app.kubernetes.io/version`) changes on every object with every bundle
version; diff ignores it, so only real changes show.
"""

from __future__ import annotations

import base64
import copy
import difflib
import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from argo_delivery import __version__
from argo_delivery.naming import LABEL_VERSION

__all__ = [
    "APPLYSET_ID_LABEL",
    "APPLYSET_PART_OF",
    "ApplyError",
    "ApplyReport",
    "BundleDir",
    "Cluster",
    "ResourceDiff",
    "apply_bundle",
    "applyset_id",
    "diff_bundles",
    "diff_cluster",
    "read_bundle",
]

FIELD_MANAGER = "argo-delivery"
APPLYSET_ID_LABEL = "applyset.kubernetes.io/id"
APPLYSET_PART_OF = "applyset.kubernetes.io/part-of"
APPLYSET_TOOLING = "applyset.kubernetes.io/tooling"
APPLYSET_KINDS = "applyset.kubernetes.io/contains-group-kinds"
APPLYSET_NAMESPACES = "applyset.kubernetes.io/additional-namespaces"
TOOLING_NAME = "argo-delivery"
KEEP_UNLESS_ASKED = {"Namespace": "--prune-namespaces", "CustomResourceDefinition": "--prune-crds"}
CRD_TIMEOUT = 60.0
# Fields the server owns: never part of a difference.
_SERVER_FIELDS = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation")


class ApplyError(Exception):
    """A bundle that cannot be applied or diffed; the message names the object."""


# --- the bundle folder --------------------------------------------------------------------

@dataclass
class BundleDir:
    path: Path
    name: str
    version: str
    orchestrator_namespace: str
    resources: list[dict[str, Any]]   # in apply order (bundle.json's order)


def read_bundle(path: str | Path) -> BundleDir:
    """A rendered bundle folder, its checksums verified first."""
    root = Path(path)
    index_file = root / "bundle.json"
    if not index_file.is_file():
        raise ApplyError(f"{root} is not a bundle folder: it has no bundle.json "
                         "(render one with `argo-delivery render`)")
    _verify_sums(root)
    index = json.loads(index_file.read_text())
    resources = []
    for entry in index["resources"]:
        docs = [d for d in yaml.safe_load_all((root / entry["path"]).read_text()) if d]
        if len(docs) != 1:
            raise ApplyError(f"{root / entry['path']}: expected one resource, found {len(docs)}")
        resources.append(docs[0])
    namespace = index.get("orchestratorNamespace")
    if not namespace:
        raise ApplyError(f"{index_file} names no orchestratorNamespace: re-render the bundle with "
                         f"this version of argo-delivery ({__version__})")
    return BundleDir(root, index["name"], index["version"], namespace, resources)


def _verify_sums(root: Path) -> None:
    sums = root / "SHA256SUMS"
    if not sums.is_file():
        raise ApplyError(f"{root} has no SHA256SUMS")
    for line in sums.read_text().splitlines():
        digest, _, name = line.partition("  ")
        file = root / name
        if not file.is_file():
            raise ApplyError(f"{file} is listed in SHA256SUMS but missing")
        if hashlib.sha256(file.read_bytes()).hexdigest() != digest:
            raise ApplyError(f"{file} does not match SHA256SUMS: the bundle was changed after it "
                             "was rendered")


# --- identity ------------------------------------------------------------------------------

def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def group_kind(resource: dict[str, Any]) -> str:
    """`Kind.group` as ApplySet annotations write it (`Kind` for the core group)."""
    group = _group(resource["apiVersion"])
    return f"{resource['kind']}.{group}" if group else resource["kind"]


def _key(resource: dict[str, Any]) -> tuple[str, str, str]:
    meta = resource["metadata"]
    return group_kind(resource), meta.get("namespace") or "", meta["name"]


def _show(key: tuple[str, str, str]) -> str:
    kind, namespace, name = key
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def applyset_id(name: str, namespace: str, kind: str = "Secret", group: str = "") -> str:
    """The ApplySet id of a parent object, exactly as kubectl computes it (applyset.go ID())."""
    digest = hashlib.sha256(".".join((name, namespace, kind, group)).encode()).digest()
    return "applyset-" + base64.urlsafe_b64encode(digest).decode().rstrip("=") + "-v1"


def parent_name(bundle_name: str) -> str:
    return f"{bundle_name}-applyset"


# --- the cluster ---------------------------------------------------------------------------

def api_client(kubeconfig: str | None = None, context: str | None = None) -> Any:
    """A kubernetes ApiClient from a kubeconfig (default: $KUBECONFIG, then ~/.kube/config)."""
    from kubernetes import config
    from kubernetes.config.config_exception import ConfigException

    try:
        return config.new_client_from_config(config_file=kubeconfig, context=context)
    except (ConfigException, OSError) as exc:
        raise ApplyError(f"cannot load the kubeconfig ({kubeconfig or 'KUBECONFIG or ~/.kube/config'}"
                         f"): {exc}") from None


def context_namespace(kubeconfig: str | None = None, context: str | None = None) -> str:
    """The namespace the kubeconfig's context names (the current one unless `context`), or
    `default` when it names none, as kubectl reads it."""
    from kubernetes import config
    from kubernetes.config.config_exception import ConfigException

    where = kubeconfig or "KUBECONFIG or ~/.kube/config"
    try:
        contexts, current = config.list_kube_config_contexts(config_file=kubeconfig)
    except (ConfigException, OSError) as exc:
        raise ApplyError(f"cannot load the kubeconfig ({where}): {exc}") from None
    chosen = current if context is None else next(
        (c for c in contexts or [] if c.get("name") == context), None)
    if chosen is None:
        raise ApplyError(f"the kubeconfig ({where}) has no context {context!r}" if context else
                         f"the kubeconfig ({where}) has no current context: pass --context")
    return (chosen.get("context") or {}).get("namespace") or "default"


# What the API server answers while a policy's parameter informer lags behind a new object.
NO_PARAMS = "no params found"
PARAM_WAIT_SECONDS = 30


class Cluster:
    """The few API calls apply and diff make, through the kubernetes client's dynamic client
    (`resource` gives any served kind to other commands, such as `versions`)."""

    def __init__(self, api_client: Any):
        from kubernetes import dynamic

        self.api_client = api_client
        self._dynamic = dynamic.DynamicClient(api_client)

    @classmethod
    def from_kubeconfig(cls, kubeconfig: str | None = None, context: str | None = None) -> Cluster:
        return cls(api_client(kubeconfig, context))

    def resource(self, api_version: str, kind: str) -> Any:
        """The dynamic client's resource for `kind` in `api_version` (discovery refreshed once
        when the kind is not known yet)."""
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        try:
            return self._dynamic.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            self._dynamic.resources.invalidate_cache()
            try:
                return self._dynamic.resources.get(api_version=api_version, kind=kind)
            except ResourceNotFoundError:
                raise ApplyError(f"the cluster serves no {kind} in {api_version}: install its "
                                 "CustomResourceDefinition first (Argo Workflows, Argo Events, "
                                 "or the bundle's crds/)") from None

    def apply(self, resource: dict[str, Any], dry_run: bool = False,
              force_conflicts: bool = False) -> dict[str, Any]:
        api = self.resource(resource["apiVersion"], resource["kind"])
        meta = resource["metadata"]
        kwargs: dict[str, Any] = {"field_manager": FIELD_MANAGER, "force_conflicts": force_conflicts}
        if dry_run:
            kwargs["dry_run"] = "All"
        deadline = time.monotonic() + PARAM_WAIT_SECONDS
        while True:
            try:
                return self._call(resource, lambda: api.server_side_apply(
                    body=resource, name=meta["name"], namespace=meta.get("namespace"), **kwargs))
            except ApplyError as exc:
                # An admission policy whose parameter (the namespace's Project) was created a
                # moment ago: its informer has not seen it yet, and refuses with "no params
                # found". The bundle creates both; wait for the informer, then try again.
                if dry_run or NO_PARAMS not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def get(self, api_version: str, kind: str, name: str, namespace: str | None) -> dict[str, Any] | None:
        from kubernetes.dynamic.exceptions import NotFoundError

        api = self.resource(api_version, kind)
        try:
            return api.get(name=name, namespace=namespace if api.namespaced else None).to_dict()
        except NotFoundError:
            return None

    def members(self, api_version: str, kind: str, selector: str,
                namespaces: Iterable[str]) -> list[dict[str, Any]]:
        api = self.resource(api_version, kind)
        scopes = sorted(set(namespaces)) if api.namespaced else [None]
        found = []
        for namespace in scopes:
            listed = api.get(namespace=namespace, label_selector=selector).to_dict()
            for item in listed.get("items", []):
                item.setdefault("apiVersion", api.group_version)
                item.setdefault("kind", kind)
                found.append(item)
        return found

    def delete(self, resource: dict[str, Any]) -> None:
        from kubernetes.dynamic.exceptions import NotFoundError

        api = self.resource(resource["apiVersion"], resource["kind"])
        meta = resource["metadata"]
        try:
            api.delete(name=meta["name"], namespace=meta.get("namespace"),
                       body={"propagationPolicy": "Background"})
        except NotFoundError:
            pass

    def preferred_version(self, group_kind_text: str) -> str:
        kind, _, group = group_kind_text.partition(".")
        served = [api for api in self._dynamic.resources.search(kind=kind, group=group)
                  if not api.name.count("/")]  # not a subresource
        for api in sorted(served, key=lambda api: not getattr(api, "preferred", False)):
            return api.group_version
        raise ApplyError(f"the cluster serves no {group_kind_text} any more; its members cannot be "
                         "listed for pruning")

    @staticmethod
    def _call(resource: dict[str, Any], call: Callable[[], Any]) -> dict[str, Any]:
        from kubernetes.dynamic.exceptions import DynamicApiError

        try:
            return call().to_dict()
        except DynamicApiError as exc:
            try:
                message = json.loads(exc.body).get("message", exc.body)
            except (TypeError, ValueError):
                message = exc.body or str(exc)
            raise ApplyError(f"{_show(_key(resource))}: HTTP {exc.status}: {message}") from None


# --- apply -----------------------------------------------------------------------------------

@dataclass
class ApplyReport:
    applied: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)       # prune candidates that hold data
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"dryRun": self.dry_run, "applied": self.applied, "changed": self.changed,
                "pruned": self.pruned, "kept": self.kept}


def _member(resource: dict[str, Any], set_id: str) -> dict[str, Any]:
    member = copy.deepcopy(resource)
    labels = member["metadata"].setdefault("labels", {})
    labels[APPLYSET_PART_OF] = set_id
    return member


def _parent(bundle: BundleDir, set_id: str, kinds: set[str], namespaces: set[str]) -> dict[str, Any]:
    others = sorted(namespaces - {bundle.orchestrator_namespace})
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {
            "name": parent_name(bundle.name), "namespace": bundle.orchestrator_namespace,
            "labels": {APPLYSET_ID_LABEL: set_id},
            "annotations": {APPLYSET_TOOLING: f"{TOOLING_NAME}/{__version__}",
                            APPLYSET_KINDS: ",".join(sorted(kinds)),
                            APPLYSET_NAMESPACES: ",".join(others)},
        },
    }


def _recorded(parent: dict[str, Any] | None, set_id: str) -> tuple[set[str], set[str]]:
    """Group-kinds and namespaces a previous apply recorded on the parent."""
    if parent is None:
        return set(), set()
    meta = parent["metadata"]
    annotations = meta.get("annotations") or {}
    tooling = annotations.get(APPLYSET_TOOLING, "")
    parent_id = (meta.get("labels") or {}).get(APPLYSET_ID_LABEL)
    if tooling.partition("/")[0] != TOOLING_NAME or parent_id != set_id:
        raise ApplyError(f"Secret {meta['namespace']}/{meta['name']} exists but is not the ApplySet "
                         f"parent argo-delivery writes (tooling {tooling!r}); refusing to take it over")
    return _listed(annotations.get(APPLYSET_KINDS, "")), \
        _listed(annotations.get(APPLYSET_NAMESPACES, "")) | {meta["namespace"]}


def _listed(text: str) -> set[str]:
    """The entries of a comma-separated ApplySet annotation."""
    return {entry for entry in text.split(",") if entry}


def _wait_established(cluster: Cluster, crds: list[dict[str, Any]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = [crd["metadata"]["name"] for crd in crds]
    while pending:
        pending = [name for name in pending if not any(
            c.get("type") == "Established" and c.get("status") == "True"
            for c in ((cluster.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", name, None)
                       or {}).get("status") or {}).get("conditions") or [])]
        if pending and time.monotonic() > deadline:
            raise ApplyError(f"CustomResourceDefinitions not Established after {timeout:.0f} s: "
                             f"{', '.join(pending)}")
        if pending:
            time.sleep(0.5)


def apply_bundle(bundle: BundleDir, cluster: Cluster, *, dry_run: bool = False,
                 prune: bool = True, prune_namespaces: bool = False, prune_crds: bool = False,
                 force_conflicts: bool = False, progress: Callable[[str], None] = lambda _: None,
                 crd_timeout: float = CRD_TIMEOUT) -> ApplyReport:
    """Apply `bundle` in phases and prune what the previous apply had and this one lacks."""
    report = ApplyReport(dry_run=dry_run)
    set_id = applyset_id(parent_name(bundle.name), bundle.orchestrator_namespace)
    members = [_member(r, set_id) for r in bundle.resources]
    kinds = {group_kind(r) for r in members}
    namespaces = {r["metadata"]["namespace"] for r in members if r["metadata"].get("namespace")}
    namespaces.add(bundle.orchestrator_namespace)
    live_parent = cluster.get("v1", "Secret", parent_name(bundle.name), bundle.orchestrator_namespace)
    old_kinds, old_namespaces = _recorded(live_parent, set_id)

    def run(phase: str, resources: list[dict[str, Any]], dry: bool) -> None:
        progress(f"{phase}: {len(resources)} resource(s){' (dry run)' if dry else ''}")
        unchecked = 0
        for resource in resources:
            before = None if dry else _live(cluster, resource)
            try:
                after = cluster.apply(resource, dry_run=dry, force_conflicts=force_conflicts)
            except ApplyError as exc:
                # a dry run cannot create the parameter (a Project) a policy reads for it
                if not (dry and NO_PARAMS in str(exc)):
                    raise
                unchecked += 1
                continue
            report.applied.append(_show(_key(resource)))
            if before is None or before.get("metadata", {}).get("resourceVersion") != \
                    after.get("metadata", {}).get("resourceVersion"):
                report.changed.append(_show(_key(resource)))
        if unchecked:
            progress(f"{phase}: {unchecked} not checked: an admission policy's parameter (the "
                     "namespace's Project) is created by this apply")

    crds = [r for r in members if r["kind"] == "CustomResourceDefinition"]
    namespace_objects = [r for r in members if r["kind"] == "Namespace"]
    rest = [r for r in members if r["kind"] not in ("CustomResourceDefinition", "Namespace")]
    # CRDs and Namespaces for real even in a dry run would change the cluster: dry-run them too,
    # and then objects that need them cannot be checked by the server (said in the plan).
    run("crds", crds, dry_run)
    if not dry_run:
        _wait_established(cluster, crds, crd_timeout)
    run("namespaces", namespace_objects, dry_run)
    if not dry_run:
        # The parent first records the union, so a failure half-way leaves nothing untracked.
        cluster.apply(_parent(bundle, set_id, kinds | old_kinds, namespaces | old_namespaces))
    missing = {n["metadata"]["name"] for n in namespace_objects
               if cluster.get("v1", "Namespace", n["metadata"]["name"], None) is None}
    checkable = [r for r in rest if r["metadata"].get("namespace") not in missing]
    run("resources", checkable, dry_run)
    if len(checkable) < len(rest):
        progress(f"resources: {len(rest) - len(checkable)} not checked: their namespace does not "
                 "exist yet")
    kept_kinds: set[str] = set()
    if prune:
        wanted = {_key(r) for r in members}
        candidates = _prune_candidates(cluster, set_id, kinds | old_kinds,
                                       namespaces | old_namespaces, wanted)
        progress(f"prune: {len(candidates)} resource(s) no longer in the bundle"
                 f"{' (dry run)' if dry_run else ''}")
        asked = {"Namespace": prune_namespaces, "CustomResourceDefinition": prune_crds}
        for resource in candidates:
            shown = _show(_key(resource))
            if not asked.get(resource["kind"], True):
                kept_kinds.add(group_kind(resource))
                report.kept.append(f"{shown} (kept: pass {KEEP_UNLESS_ASKED[resource['kind']]} to "
                                   "delete it and everything in it)")
                continue
            if not dry_run:
                cluster.delete(resource)
            report.pruned.append(shown)
    if not dry_run and prune:
        # Kept objects stay members, so a later apply still offers to prune them.
        cluster.apply(_parent(bundle, set_id, kinds | kept_kinds, namespaces))
    if not dry_run:
        _mark_applied(bundle)
    return report


def _mark_applied(bundle: BundleDir) -> None:
    """Record beside the folder that it was applied: `render --force` no longer replaces it."""
    from argo_delivery.bundle import applied_marker

    try:
        applied_marker(bundle.path).write_text(json.dumps(
            {"name": bundle.name, "version": bundle.version,
             "appliedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}) + "\n")
    except OSError:
        pass  # a read-only copy of the bundle: nothing to protect from re-rendering here


def _live(cluster: Cluster, resource: dict[str, Any]) -> dict[str, Any] | None:
    meta = resource["metadata"]
    return cluster.get(resource["apiVersion"], resource["kind"], meta["name"], meta.get("namespace"))


def _prune_candidates(cluster: Cluster, set_id: str, kinds: set[str], namespaces: set[str],
                      wanted: set[tuple[str, str, str]]) -> list[dict[str, Any]]:
    found = []
    # Delete in reverse apply order: what depends on others first, Namespaces and CRDs last.
    for kind_text in sorted(kinds, key=_reverse_rank):
        api_version = cluster.preferred_version(kind_text)
        kind = kind_text.partition(".")[0]
        for item in cluster.members(api_version, kind, f"{APPLYSET_PART_OF}={set_id}", namespaces):
            if _key(item) not in wanted:
                found.append(item)
    return found


def _reverse_rank(kind_text: str) -> tuple[int, str]:
    from argo_delivery.bundle import APPLY_ORDER

    kind = kind_text.partition(".")[0]
    rank = APPLY_ORDER.index(kind) if kind in APPLY_ORDER else len(APPLY_ORDER)
    return -rank, kind_text


# --- diff -----------------------------------------------------------------------------------

@dataclass
class ResourceDiff:
    resource: str
    change: str          # added | removed | changed
    diff: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"resource": self.resource, "change": self.change, "diff": self.diff}


def _comparable(resource: dict[str, Any] | None) -> dict[str, Any] | None:
    """`resource` without what is not ours to compare: server fields, status, the version and
    ApplySet labels."""
    if resource is None:
        return None
    clean = copy.deepcopy(resource)
    clean.pop("status", None)
    meta = clean.get("metadata", {})
    for key in _SERVER_FIELDS:
        meta.pop(key, None)
    labels = meta.get("labels") or {}
    for key in (LABEL_VERSION, APPLYSET_PART_OF):
        labels.pop(key, None)
    if not labels:
        meta.pop("labels", None)
    if not meta.get("annotations"):
        meta.pop("annotations", None)
    return clean


def _unified(old: dict[str, Any] | None, new: dict[str, Any] | None, label: str) -> str:
    def lines(doc: dict[str, Any] | None) -> list[str]:
        return [] if doc is None else yaml.safe_dump(doc, sort_keys=True).splitlines(keepends=True)

    return "".join(difflib.unified_diff(lines(old), lines(new), f"a/{label}", f"b/{label}"))


def diff_bundles(old: BundleDir, new: BundleDir) -> list[ResourceDiff]:
    """What changes from bundle `old` to bundle `new`, ignoring the version label."""
    before = {_key(r): _comparable(r) for r in old.resources}
    after = {_key(r): _comparable(r) for r in new.resources}
    return _differences(before, after)


def _differences(before: dict[tuple[str, str, str], Any],
                 after: dict[tuple[str, str, str], Any]) -> list[ResourceDiff]:
    found = []
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        change = "added" if old is None else "removed" if new is None else "changed"
        found.append(ResourceDiff(_show(key), change, _unified(old, new, _show(key))))
    return found


def diff_cluster(bundle: BundleDir, cluster: Cluster) -> list[ResourceDiff]:
    """What `apply` would change on the cluster: each object as the server would store it
    (a server-side dry run) against the live one, and what apply would prune."""
    set_id = applyset_id(parent_name(bundle.name), bundle.orchestrator_namespace)
    before, after = {}, {}
    for resource in bundle.resources:
        member = _member(resource, set_id)
        key = _key(member)
        live = _live(cluster, member)
        before[key] = _comparable(live)
        namespace = member["metadata"].get("namespace")
        if namespace and cluster.get("v1", "Namespace", namespace, None) is None:
            after[key] = _comparable(member)   # the server cannot dry-run into a missing namespace
        else:
            after[key] = _comparable(cluster.apply(member, dry_run=True))
    live_parent = cluster.get("v1", "Secret", parent_name(bundle.name), bundle.orchestrator_namespace)
    old_kinds, old_namespaces = _recorded(live_parent, set_id)
    kinds = {group_kind(r) for r in bundle.resources} | old_kinds
    namespaces = {r["metadata"].get("namespace") for r in bundle.resources} - {None}
    for item in _prune_candidates(cluster, set_id, kinds, namespaces | old_namespaces, set(after)):
        before[_key(item)] = _comparable(item)
    return _differences(before, after)
