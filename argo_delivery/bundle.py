"""Render a platform into a versioned bundle, and write it to disk atomically.

Data flows one way: validated config -> hera objects and dicts -> ordered, labelled dicts
-> YAML bytes at stable paths -> index files (kustomization, images.txt, bundle.json,
SHA256SUMS) -> one atomic rename into `<out>/<version>/`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources as package_files
from pathlib import Path
from typing import Any

import jinja2

from argo_delivery import prerequisites
from argo_delivery.admission import sensor_workflow_policy
from argo_delivery.capabilities import CAPABILITIES
from argo_delivery.capability import Capability, Registry
from argo_delivery.config import PlatformConfig
from argo_delivery.eventbus import eventbus_images
from argo_delivery.images import collect_images
from argo_delivery.isolation import orchestrator_quota
from argo_delivery.naming import bundle_labels
from argo_delivery.serialize import dump_yaml
from argo_delivery.tenancy import access_resources

__all__ = [
    "APPLY_ORDER",
    "Bundle",
    "BundleError",
    "BundleExistsError",
    "Difference",
    "WriteResult",
    "applied_marker",
    "build_bundle",
    "bundle_differences",
    "check_bundle",
    "render_resources",
    "resource_path",
    "to_manifest",
    "verify_bundle",
    "write_bundle",
]

# The order in which kinds are applied (and listed): what others depend on comes first.
APPLY_ORDER = (
    "CustomResourceDefinition",
    "Namespace",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "NetworkPolicy",
    "LimitRange",
    "ResourceQuota",
    "ServiceAccount",
    "ClusterRole",
    "Role",
    "ClusterRoleBinding",
    "RoleBinding",
    "ConfigMap",
    "Secret",
    "Project",
    "EventBus",
    "ClusterWorkflowTemplate",
    "WorkflowTemplate",
    "CronWorkflow",
    "EventSource",
    "Sensor",
    "PodMonitor",
    "PrometheusRule",
    "Schedule",
)
CLUSTER_SCOPED = frozenset({"CustomResourceDefinition", "Namespace", "ClusterRole",
                            "ClusterRoleBinding", "ClusterWorkflowTemplate",
                            "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"})
INDEX_FILES = ("kustomization.yaml", "crds/kustomization.yaml", "images.txt", "README.md",
               "bundle.json", "SHA256SUMS")
# Files the content digest does not cover: they describe the content (and the tool's version).
NOT_DIGESTED = frozenset({"README.md", "bundle.json", "SHA256SUMS"})


class BundleError(Exception):
    """A bundle that cannot be rendered or written."""


class BundleExistsError(BundleError):
    """The version exists on disk with other content; versions are immutable."""


def to_manifest(obj: Any) -> dict[str, Any]:
    """A plain dict from a hera object, a hera/pydantic model, or a dict."""
    if isinstance(obj, dict):
        return obj
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if hasattr(obj, "model_dump"):
        return obj.model_dump(exclude_none=True, by_alias=True)
    raise BundleError(f"cannot render {type(obj).__name__}: expected a hera object, a model or a dict")


def _registry(extra: Iterable[Any]) -> tuple[Registry, list[Any]]:
    """Our capabilities plus the user's, and the user's plain resources."""
    extra = list(extra)
    capabilities = CAPABILITIES.extended(e for e in extra if isinstance(e, Capability))
    return capabilities, [e for e in extra if not isinstance(e, Capability)]


def _sort_key(resource: dict[str, Any]) -> tuple[int, str, str]:
    kind = resource["kind"]
    rank = APPLY_ORDER.index(kind) if kind in APPLY_ORDER else len(APPLY_ORDER)
    meta = resource["metadata"]
    return rank, meta.get("namespace", ""), meta["name"]


def render_resources(config: PlatformConfig, extra: Iterable[Any] = ()) -> list[dict[str, Any]]:
    """Every resource of the bundle as plain dicts, labelled, in apply order.

    `extra` adds the user's own: `Capability` objects (rendered and given ServiceAccounts,
    Roles and RoleBindings like ours) and plain resources (hera objects, models or dicts).
    """
    capabilities, resources = _registry(extra)
    labels = bundle_labels(config.bundle_name, config.bundle_version)
    seen: set[tuple[str, str, str]] = set()
    rendered: list[dict[str, Any]] = []

    def add(obj: Any) -> None:
        manifest = to_manifest(obj)
        meta = manifest.setdefault("metadata", {})
        meta["labels"] = {**meta.get("labels", {}), **labels}
        key = (manifest["kind"], meta.get("namespace", ""), meta["name"])
        if key in seen:
            raise BundleError(f"two resources are both {key[0]} {key[1]}/{key[2]}")
        seen.add(key)
        rendered.append(manifest)

    for obj in itertools.chain((r for c in capabilities for r in c.resources(config)),
                               access_resources(capabilities, config),
                               sensor_workflow_policy(capabilities, config), resources):
        add(obj)
    # sized from what runs in the orchestrator namespace, so once everything else is rendered
    add(orchestrator_quota(rendered, config))
    return sorted(rendered, key=_sort_key)


def resource_path(resource: dict[str, Any]) -> str:
    """The stable path of a resource's file inside the bundle."""
    kind, meta = resource["kind"], resource["metadata"]
    if kind == "CustomResourceDefinition":
        return f"crds/{meta['name']}.yaml"
    if kind in CLUSTER_SCOPED:
        return f"cluster/{kind.lower()}/{meta['name']}.yaml"
    return f"namespaces/{meta['namespace']}/{kind.lower()}/{meta['name']}.yaml"


@dataclass
class Bundle:
    """A rendered bundle in memory: its files (path -> bytes) and what they hold."""

    name: str
    version: str
    digest: str
    resources: list[dict[str, Any]]
    images: list[str]
    files: dict[str, bytes] = field(repr=False)

    def kinds(self) -> list[tuple[str, int]]:
        """(kind, count) in apply order."""
        counts = Counter(r["kind"] for r in self.resources)
        return sorted(counts.items(), key=lambda kv: (APPLY_ORDER.index(kv[0])
                                                     if kv[0] in APPLY_ORDER else 99, kv[0]))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sums(files: dict[str, bytes]) -> bytes:
    return "".join(f"{_sha256(files[path])}  {path}\n" for path in sorted(files)).encode()


def content_digest(files: dict[str, bytes]) -> str:
    """`sha256:` over the SHA256SUMS-format listing of every file but README, bundle.json, SHA256SUMS."""
    return "sha256:" + _sha256(_sums({p: d for p, d in files.items() if p not in NOT_DIGESTED}))


def build_bundle(config: PlatformConfig, use_c_yaml: bool = True, extra: Iterable[Any] = ()) -> Bundle:
    """Render `config` (plus `extra`, see `render_resources`) into the bytes of every file."""
    resources = render_resources(config, extra)
    files: dict[str, bytes] = {}
    index = []
    for resource in resources:
        path = resource_path(resource)
        if path in files:
            raise BundleError(f"two resources would both be written to {path}")
        files[path] = dump_yaml(resource, use_c=use_c_yaml).encode()
        meta = resource["metadata"]
        index.append({"apiVersion": resource["apiVersion"], "kind": resource["kind"],
                      "namespace": meta.get("namespace"), "name": meta["name"], "path": path})
    crd_paths = [p for p in files if p.startswith("crds/")]
    other_paths = [p for p in files if not p.startswith("crds/")]
    kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}
    files["crds/kustomization.yaml"] = dump_yaml(
        {**kustomization, "resources": [p.removeprefix("crds/") for p in crd_paths]}).encode()
    files["kustomization.yaml"] = dump_yaml({**kustomization,
                                             "resources": ["crds", *other_paths]}).encode()
    # what the bundle makes run: its containers, the EventBus's JetStream images, Argo's
    # executor and the Argo Events image (the controllers run those for our pods)
    images = sorted(set(collect_images(resources)) | set(eventbus_images(resources, config))
                    | {config.images.argo_exec, config.images.argo_events})
    files["images.txt"] = "".join(f"{image}\n" for image in images).encode()
    digest = content_digest(files)
    bundle = Bundle(config.bundle_name, config.bundle_version, digest, resources, images, files)
    files["README.md"] = _bundle_readme(bundle, config).encode()
    files["bundle.json"] = (json.dumps({
        "name": bundle.name, "version": bundle.version, "digest": digest,
        "orchestratorNamespace": config.orchestrator_namespace,
        "resources": index, "images": images,
    }, indent=2, sort_keys=True) + "\n").encode()
    files["SHA256SUMS"] = _sums(files)
    return bundle


def _bundle_readme(bundle: Bundle, config: PlatformConfig) -> str:
    template_text = package_files.files("argo_delivery").joinpath(
        "data/bundle-README.md.j2").read_text()
    template = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                                  autoescape=False).from_string(template_text)
    settings = prerequisites.controller_settings(config)
    return template.render(
        name=bundle.name, version=bundle.version, digest=bundle.digest,
        resources=bundle.resources, kinds=bundle.kinds(),
        secrets=prerequisites.referenced_secrets(config),
        webhooks=prerequisites.webhook_routes(config),
        executor=settings["workflow-controller-configmap: executor"],
        restrictions=settings["workflow-controller-configmap: workflowRestrictions"],
        eventbus=settings["argo-events-controller-config: controller-config.yaml"],
        jetstream_version=prerequisites.JETSTREAM_VERSION,
        events_image=config.images.argo_events,
        webhook_from=" and ".join(
            f"`{peer.cidr}`" if peer.cidr else f"namespace `{peer.namespace}`"
            + (" (pods labelled " + ", ".join(f"`{k}={v}`" for k, v in peer.pod_labels.items()) + ")"
               if peer.pod_labels else "")
            for peer in config.isolation.webhook_from) or "any source",
        egress_limited=config.isolation.egress_to is not None,
        orchestrator_quota=", ".join(
            f"{key} {value}" for r in bundle.resources if r["kind"] == "ResourceQuota"
            and r["metadata"]["namespace"] == config.orchestrator_namespace
            for key, value in r["spec"]["hard"].items()),
        unmanaged_namespaces=[] if config.namespaces.manage else
        [config.orchestrator_namespace, *(project.namespace for project in config.projects)],
    )


def _read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


@dataclass(frozen=True)
class Difference:
    """One way a folder differs from what it should hold: `change` is what happened to `path`.

    Changes: `absent` (the whole folder), `missing`, `unexpected`, `differs` (from a fresh
    render); `verify_bundle` adds `unlisted`, `unreadable`, `malformed` and `digest`.
    """

    change: str
    path: str
    detail: str = ""

    def __str__(self) -> str:
        if self.change == "absent":
            return f"{self.path} does not exist"
        return f"{self.change}: {self.path}" + (f" ({self.detail})" if self.detail else "")

    def to_dict(self) -> dict[str, str]:
        return {"change": self.change, "path": self.path, "detail": self.detail}


def bundle_differences(bundle: Bundle, out_dir: str | Path) -> list[Difference]:
    """How `<out_dir>/<version>/` differs from `bundle` (empty when it is identical)."""
    target = Path(out_dir) / bundle.version
    if not target.is_dir():
        return [Difference("absent", str(target))]
    on_disk = _read_tree(target)
    differences = [Difference("missing", p) for p in sorted(set(bundle.files) - set(on_disk))]
    differences += [Difference("unexpected", p) for p in sorted(set(on_disk) - set(bundle.files))]
    differences += [Difference("differs", p) for p in sorted(set(on_disk) & set(bundle.files))
                    if on_disk[p] != bundle.files[p]]
    return differences


def check_bundle(bundle: Bundle, out_dir: str | Path) -> list[str]:
    """How `<out_dir>/<version>/` differs from `bundle`, one line each (empty when identical)."""
    return [str(d) for d in bundle_differences(bundle, out_dir)]


def verify_bundle(root: str | Path) -> list[Difference]:
    """Check a bundle folder on its own: SHA256SUMS against every file, and bundle.json's digest.

    Raises BundleError when `root` is not a bundle folder at all (no SHA256SUMS).
    """
    root = Path(root)
    if not root.is_dir():
        raise BundleError(f"{root} is not a folder")
    if not (root / "SHA256SUMS").is_file():
        raise BundleError(f"{root} holds no SHA256SUMS: not an argo-delivery bundle")
    files = _read_tree(root)
    listed: dict[str, str] = {}
    problems: list[Difference] = []
    for number, line in enumerate(files["SHA256SUMS"].decode(errors="replace").splitlines(), 1):
        digest, sep, path = line.partition("  ")
        if not sep or len(digest) != 64 or not path:
            problems.append(Difference("malformed", "SHA256SUMS", f"line {number}: {line!r}"))
            continue
        listed[path] = digest.lower()
    for path, expected in sorted(listed.items()):
        if path not in files:
            problems.append(Difference("missing", path, "listed in SHA256SUMS"))
        elif _sha256(files[path]) != expected:
            problems.append(Difference("differs", path, "its sha256 is not the one in SHA256SUMS"))
    problems += [Difference("unlisted", p, "not in SHA256SUMS")
                 for p in sorted(set(files) - set(listed) - {"SHA256SUMS"})]
    try:
        recorded = json.loads(files["bundle.json"])["digest"] if "bundle.json" in files else None
    except (ValueError, TypeError, KeyError) as exc:
        recorded = f"(unreadable: {type(exc).__name__} {exc})"
    if recorded is None:
        problems.append(Difference("missing", "bundle.json", "it records the digest"))
    elif not str(recorded).startswith("sha256:"):
        problems.append(Difference("unreadable", "bundle.json", f"no digest: {recorded}"))
    else:
        actual = content_digest({p: d for p, d in files.items() if p != "SHA256SUMS"})
        if recorded != actual:
            problems.append(Difference("digest", "bundle.json",
                                       f"records {recorded}, the files give {actual}"))
    return problems


@dataclass(frozen=True)
class WriteResult:
    path: Path
    created: bool


def applied_marker(bundle_dir: str | Path) -> Path:
    """The file `argo-delivery apply` writes beside a bundle folder it applied."""
    path = Path(bundle_dir)
    return path.parent / f"{path.name}.applied"


def write_bundle(bundle: Bundle, out_dir: str | Path, force: bool = False) -> WriteResult:
    """Write `bundle` to `<out_dir>/<version>/` atomically; identical content is a no-op.

    Raises BundleExistsError when that version exists with other content: a rendered
    version is immutable, so the fix is to bump `bundle.version`. During setup, `force`
    replaces a version that was never applied from this folder (no `<version>.applied`).
    """
    out = Path(out_dir)
    target = out / bundle.version
    replaced = None
    if target.exists():
        differences = check_bundle(bundle, out)
        if not differences:
            return WriteResult(target, created=False)
        shown = "\n  ".join(differences[:10])
        more = f"\n  ... and {len(differences) - 10} more" if len(differences) > 10 else ""
        if force and applied_marker(target).exists():
            raise BundleExistsError(
                f"bundle version {bundle.version} at {target} was applied to a cluster "
                f"({applied_marker(target)}); --force only replaces a version never applied: "
                "bump bundle.version in the config")
        if not force:
            raise BundleExistsError(
                f"bundle version {bundle.version} already exists at {target} with different "
                f"content; a rendered version is immutable, so bump bundle.version in the config "
                f"(or, while it was never applied, render --force) (differences:\n  {shown}{more})")
        replaced = target
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{bundle.version}.", suffix=".partial", dir=out))
    try:
        for path, data in bundle.files.items():
            file_path = staging / path
            file_path.parent.mkdir(parents=True, exist_ok=True)
            file_path.write_bytes(data)
        staging.chmod(0o755)
        if replaced is not None:   # the old folder moves aside only once the new one is complete
            old = Path(tempfile.mkdtemp(prefix=f".{bundle.version}.", suffix=".old", dir=out))
            os.rename(replaced, old / "bundle")
            os.rename(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return WriteResult(target, created=True)
