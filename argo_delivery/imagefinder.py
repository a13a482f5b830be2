"""Find every container image in Kubernetes manifests, with where it was found.

Schema-aware, not a regex: each kind is read at the fields its API gives images, and only
there. Every image is reported with its location (file, document, kind/name, field path);
the same image (the same reference once Docker's defaults are made explicit, see
`argo_delivery.images.parse_image`) at several places is one image with all its locations.

What is read:

- Pod-bearing kinds: Pod, PodTemplate, Deployment, StatefulSet, DaemonSet, ReplicaSet,
  ReplicationController, Job, CronJob (its jobTemplate): containers, initContainers,
  ephemeralContainers.
- Argo Workflows (Workflow, WorkflowTemplate, ClusterWorkflowTemplate, CronWorkflow's
  workflowSpec): each template's container, script, containerSet.containers,
  initContainers and sidecars, inline templates of steps and DAG tasks, spec.templateDefaults,
  and the manifest of a resource template; `podSpecPatch` is a string patch and an image
  written as an Argo expression (`{{...}}`) is only known when the workflow runs: both are
  reported as unscannable, never guessed. Argo's executor image (argoexec: the init and wait
  containers the workflow controller adds to every workflow pod) is reported for each of them.
- Argo Events: a Sensor's or an EventSource's pod runs the Argo Events image, chosen by the
  controller (v1.9's `spec.template.container` has no image field and there are no
  initContainers: such fields are reported as problems, the controller ignores them); the
  JetStream EventBus runs the images of the controller's table for its version; the
  resources a Sensor's triggers create (`k8s`/`argoWorkflow` `source.resource` or
  `source.inline`) are scanned like any manifest.
- argo-delivery's own kinds, at the image fields of their CRD schemas.
- Other kinds at the paths the user configures (`parse_paths_spec`); kinds known to hold no
  image (ConfigMap, Role, ...) are passed over; any other kind is listed as "not scanned".

Inputs: files and folders of YAML/JSON (recursively, multi-document; `kind: List` items are
read); a folder holding a kustomization is built with `kustomize build` (the project's
`.cache/bin/kustomize`, `make tools`), so its `images:` transformer is applied; a folder
holding a `Chart.yaml` is rendered with `helm template` (the project's `.cache/bin/helm`,
`make tools`), with the values files and `--set` values given, and each object is located at
the template it came from (helm's `# Source:` comments). Helm runs offline and with its own
empty state: its home folders in a temporary folder, no `HELM_*` variable of the caller and no
kubeconfig (so the release namespace is `default`). A chart whose dependencies are not in its
`charts/` folder is a problem, never fetched.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from argo_delivery.controllers import ARGO_EVENTS_IMAGE, ARGO_EVENTS_VERSION, ARGO_EXEC_IMAGE
from argo_delivery.images import ImageError, parse_image, rewrite_image
from argo_delivery.jetstream import JETSTREAM_IMAGES, JETSTREAM_VERSION

__all__ = ["ControllerImages", "FinderError", "FinderResult", "FoundImage", "Issue", "Location",
           "find_images", "format_path", "load_paths_file", "parse_path", "parse_paths_spec"]

Segment = str | int  # a field name, a list index; "*" every value of a map, -1 every list item
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
HELM_RELEASE = "release-name"  # the name `helm template CHART` gives when none is given
HELM_TIMEOUT = 120  # seconds; rendering a local chart takes well under one
ORIGIN_ANNOTATION = "config.kubernetes.io/origin"

# (group, kind) -> the path of the pod spec
POD_SPEC_PATHS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "Pod"): ("spec",),
    ("", "PodTemplate"): ("template", "spec"),
    ("", "ReplicationController"): ("spec", "template", "spec"),
    ("apps", "Deployment"): ("spec", "template", "spec"),
    ("apps", "StatefulSet"): ("spec", "template", "spec"),
    ("apps", "DaemonSet"): ("spec", "template", "spec"),
    ("apps", "ReplicaSet"): ("spec", "template", "spec"),
    ("batch", "Job"): ("spec", "template", "spec"),
    ("batch", "CronJob"): ("spec", "jobTemplate", "spec", "template", "spec"),
}
POD_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
ARGO = "argoproj.io"
# kind -> the path of its WorkflowSpec
WORKFLOW_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Workflow": ("spec",), "WorkflowTemplate": ("spec",), "ClusterWorkflowTemplate": ("spec",),
    "CronWorkflow": ("spec", "workflowSpec"),
}
# Kinds whose objects never name an image (so they are not listed as "not scanned").
NO_IMAGES: frozenset[tuple[str, str]] = frozenset({
    *(("", kind) for kind in (
        "Namespace", "ServiceAccount", "ConfigMap", "Secret", "Service", "Endpoints",
        "LimitRange", "ResourceQuota", "PersistentVolume", "PersistentVolumeClaim", "Event")),
    *(("rbac.authorization.k8s.io", kind) for kind in (
        "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")),
    *(("admissionregistration.k8s.io", kind) for kind in (
        "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
        "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
        "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding")),
    ("networking.k8s.io", "NetworkPolicy"), ("networking.k8s.io", "Ingress"),
    ("networking.k8s.io", "IngressClass"), ("policy", "PodDisruptionBudget"),
    ("autoscaling", "HorizontalPodAutoscaler"), ("scheduling.k8s.io", "PriorityClass"),
    ("storage.k8s.io", "StorageClass"), ("coordination.k8s.io", "Lease"),
    ("discovery.k8s.io", "EndpointSlice"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    (ARGO, "WorkflowEventBinding"), (ARGO, "WorkflowTaskResult"), (ARGO, "WorkflowArtifactGCTask"),
})


class FinderError(Exception):
    """The finder cannot run as asked (a missing path or tool, a bad paths spec): exit 2."""


@dataclass(frozen=True)
class ControllerImages:
    """The images controllers run for our resources although no manifest names them.

    `jetstream` maps a JetStream version to the images the Argo Events controller runs for an
    EventBus of that version.
    """

    argo_exec: str
    argo_events: str
    jetstream: Mapping[str, tuple[str, ...]]

    @classmethod
    def defaults(cls) -> ControllerImages:
        """The images of the controllers at the versions argo-delivery pins, fully qualified."""
        return cls(rewrite_image(ARGO_EXEC_IMAGE), rewrite_image(ARGO_EVENTS_IMAGE),
                   {JETSTREAM_VERSION: tuple(rewrite_image(i) for i in JETSTREAM_IMAGES)})

    @classmethod
    def from_config(cls, config: Any) -> ControllerImages:
        """The images a platform config resolves (registry mirror and EventBus digests applied)."""
        return cls(config.images.argo_exec, config.images.argo_events,
                   {JETSTREAM_VERSION: tuple(config.eventbus_images)})


@dataclass(frozen=True)
class Location:
    """One place an image was found.

    `document` counts from 1 within `file` (None for a document out of `kustomize build`,
    whose `file` is the one kustomize read it from, or out of `helm template`, whose `file` is
    the template that rendered it); `path` is the field; `reference` the value there as written
    (for a kustomization: after its transformers; for a chart: as rendered). `via` names the
    controller that runs the image when no field names it (`path` is then the field that makes
    it run it, or empty). `kustomization` or `chart` is the folder that was built or rendered.
    """

    file: str
    document: int | None
    kind: str
    name: str
    namespace: str | None
    path: str
    reference: str
    via: str | None = None
    kustomization: str | None = None
    chart: str | None = None


@dataclass
class FoundImage:
    image: str  # fully qualified (docker.io/library/ made explicit)
    locations: list[Location]


@dataclass(frozen=True)
class Issue:
    """A problem (bad manifest, unscannable field) or a note (a kind that was not scanned)."""

    file: str
    document: int | None
    message: str
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None
    path: str = ""

    def __str__(self) -> str:
        where = self.file + (f" (document {self.document})" if self.document else "")
        if self.kind:
            obj = f"{self.namespace}/{self.name}" if self.namespace else str(self.name)
            where += f": {self.kind} {obj}"
        return f"{where}:{f' {self.path}:' if self.path else ''} {self.message}"


@dataclass
class FinderResult:
    images: list[FoundImage]
    problems: list[Issue]
    notes: list[Issue]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok,
                "images": [{"image": i.image, "locations": [asdict(loc) for loc in i.locations]}
                           for i in self.images],
                "problems": [asdict(p) for p in self.problems],
                "notes": [asdict(n) for n in self.notes]}


# --- paths: the user's spec for other kinds, and our own CRDs ----------------------------------

_SEGMENT = re.compile(r"(?P<name>[A-Za-z0-9_$-]+|\*)(?P<index>(\[(\*|[0-9]+)\])*)$")


def parse_path(text: str) -> tuple[Segment, ...]:
    """`spec.workers[*].image` -> ("spec", "workers", -1, "image"). ValueError if malformed."""
    segments: list[Segment] = []
    for part in text.split("."):
        match = _SEGMENT.match(part)
        if not match:
            raise ValueError(f"bad path {text!r}: {part!r} is not NAME, * or NAME[*]/NAME[N]")
        segments.append(match["name"])
        for index in re.findall(r"\[(\*|[0-9]+)\]", match["index"]):
            segments.append(-1 if index == "*" else int(index))
    if segments[-1] in ("*", -1) or isinstance(segments[-1], int):
        raise ValueError(f"bad path {text!r}: it must end at the image field's name")
    return tuple(segments)


def parse_paths_spec(spec: Any, source: str = "paths") -> dict[tuple[str, str], list[tuple[Segment, ...]]]:
    """`{"GROUP/Kind": ["spec.runner.image", ...]}` -> {(group, kind): [segments]}.

    A key without a `/` is a kind of the core group. ValueError on anything else.
    """
    if not isinstance(spec, dict):
        raise ValueError(f"{source}: must be a mapping of GROUP/Kind to a list of field paths")
    parsed: dict[tuple[str, str], list[tuple[Segment, ...]]] = {}
    for key, paths in spec.items():
        if not isinstance(key, str) or key.count("/") > 1 or not key.rsplit("/", 1)[-1]:
            raise ValueError(f"{source}: {key!r} is not GROUP/Kind (or Kind for the core group)")
        group, _, kind = key.rpartition("/")
        if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
            raise ValueError(f"{source}: {key}: must be a non-empty list of field paths")
        try:
            parsed[(group, kind)] = [parse_path(p) for p in paths]
        except ValueError as exc:
            raise ValueError(f"{source}: {key}: {exc}") from None
    return parsed


def load_paths_file(path: str | Path) -> dict[tuple[str, str], list[tuple[Segment, ...]]]:
    """Read a paths spec (YAML or JSON). FinderError if it cannot be read or is malformed."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise FinderError(f"--paths {path}: {exc}") from None
    try:
        return parse_paths_spec(data, str(path))
    except ValueError as exc:
        raise FinderError(str(exc)) from None


def _schema_image_paths(schema: dict[str, Any],
                        prefix: tuple[Segment, ...] = ()) -> Iterator[tuple[Segment, ...]]:
    """The paths of every string property named `image` in an openAPIV3Schema."""
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        yield from _schema_image_paths(schema["items"], (*prefix, -1))
    for name, sub in (schema.get("properties") or {}).items():
        if name == "image" and sub.get("type") == "string":
            yield (*prefix, name)
        else:
            yield from _schema_image_paths(sub, (*prefix, name))
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _schema_image_paths(schema["additionalProperties"], (*prefix, "*"))


def _own_kind_paths() -> dict[tuple[str, str], list[tuple[Segment, ...]]]:
    from argo_delivery.crds import CRD_KINDS, crd_schema
    from argo_delivery.naming import GROUP

    return {(GROUP, kind): list(_schema_image_paths(crd_schema(kind))) for kind in CRD_KINDS}


def format_path(segments: Iterable[Segment]) -> str:
    text = ""
    for segment in segments:
        if isinstance(segment, int):
            text += f"[{segment}]"
        elif re.fullmatch(r"[A-Za-z0-9_$-]+", segment):
            text += f".{segment}" if text else segment
        else:
            text += f"[{json.dumps(segment)}]"
    return text


# --- scanning one object ------------------------------------------------------------------------

@dataclass
class _Object:
    """The manifest object an image belongs to (for an embedded one, the object holding it)."""

    file: str
    document: int | None
    kind: str
    name: str
    namespace: str | None
    kustomization: str | None
    chart: str | None = None


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


class _Scanner:
    def __init__(self, custom: dict[tuple[str, str], list[tuple[Segment, ...]]],
                 controllers: ControllerImages) -> None:
        self.paths = _own_kind_paths()
        for key, paths in custom.items():
            self.paths[key] = [*self.paths.get(key, []), *paths]
        self.controllers = controllers
        self.images: dict[str, list[Location]] = {}
        self.problems: list[Issue] = []
        self.notes: list[Issue] = []
        self.charts = 0  # Helm charts rendered (failed ones included)

    # -- recording
    def problem(self, obj: _Object | None, path: tuple[Segment, ...] | str, message: str, *,
                file: str = "", document: int | None = None) -> None:
        text = path if isinstance(path, str) else format_path(path)
        if obj is None:
            self.problems.append(Issue(file, document, message, path=text))
        else:
            self.problems.append(Issue(obj.file, obj.document, message, obj.kind, obj.name,
                                       obj.namespace, text))

    def image(self, obj: _Object, path: tuple[Segment, ...], value: Any) -> None:
        if not isinstance(value, str) or not value.strip():
            self.problem(obj, path, f"an image must be a non-empty string; found {_type_name(value)}"
                         + (f" {value!r}" if isinstance(value, str | int | float) else ""))
            return
        if "{{" in value:
            self.problem(obj, path, f"unscannable: image {value!r} is an expression, known only "
                                    "when it runs")
            return
        try:
            canonical = str(parse_image(value.strip()))
        except ImageError as exc:
            self.problem(obj, path, str(exc))
            return
        self.add(canonical, obj, format_path(path), value)

    def add(self, image: str, obj: _Object, path: str, reference: str, via: str | None = None) -> None:
        self.images.setdefault(image, []).append(Location(
            obj.file, obj.document, obj.kind, obj.name, obj.namespace, path, reference, via,
            obj.kustomization, obj.chart))

    # -- containers
    def container(self, obj: _Object, path: tuple[Segment, ...], value: Any, *,
                  image_required: bool = True) -> None:
        if not isinstance(value, dict):
            self.problem(obj, path, f"a container must be a mapping; found {_type_name(value)}")
        elif "image" in value:
            self.image(obj, (*path, "image"), value["image"])
        elif image_required:
            self.problem(obj, (*path, "image"), "a container needs an image; there is none")

    def containers(self, obj: _Object, path: tuple[Segment, ...], value: Any, *,
                   image_required: bool = True) -> None:
        if value is None:
            return
        if not isinstance(value, list):
            self.problem(obj, path, f"must be a list of containers; found {_type_name(value)}")
            return
        for index, item in enumerate(value):
            self.container(obj, (*path, index), item, image_required=image_required)

    def pod_spec(self, obj: _Object, path: tuple[Segment, ...], spec: Any) -> None:
        if not isinstance(spec, dict):
            self.problem(obj, path, f"must be a pod spec (a mapping); found {_type_name(spec)}")
            return
        if "containers" not in spec:
            self.problem(obj, (*path, "containers"), "a pod spec needs containers; there are none")
        for key in POD_CONTAINER_LISTS:
            self.containers(obj, (*path, key), spec.get(key))

    # -- Argo Workflows
    def workflow_spec(self, obj: _Object, path: tuple[Segment, ...], spec: Any) -> None:
        if not isinstance(spec, dict):
            self.problem(obj, path, f"must be a workflow spec (a mapping); found {_type_name(spec)}")
            return
        self.add(self.controllers.argo_exec, obj, "", self.controllers.argo_exec,
                 via="Argo Workflows controller: its executor (init, wait) in every workflow pod")
        defaults = spec.get("templateDefaults")
        has_default_image = isinstance(defaults, dict) and any(
            isinstance(defaults.get(key), dict) and "image" in defaults[key]
            for key in ("container", "script"))
        if defaults is not None:
            self.template(obj, (*path, "templateDefaults"), defaults, image_required=False)
        templates = spec.get("templates")
        if templates is not None and not isinstance(templates, list):
            self.problem(obj, (*path, "templates"),
                         f"must be a list of templates; found {_type_name(templates)}")
        elif templates:
            for index, template in enumerate(templates):
                self.template(obj, (*path, "templates", index), template,
                              image_required=not has_default_image)
        self.pod_spec_patch(obj, path, spec)

    def pod_spec_patch(self, obj: _Object, path: tuple[Segment, ...], value: dict[str, Any]) -> None:
        if "podSpecPatch" in value:
            patch = value["podSpecPatch"]
            self.problem(obj, (*path, "podSpecPatch"),
                         "unscannable: podSpecPatch is a string patch applied when the pod is made; "
                         "check by hand that it sets no image" if isinstance(patch, str) else
                         f"podSpecPatch must be a string; found {_type_name(patch)}")

    def template(self, obj: _Object, path: tuple[Segment, ...], template: Any, *,
                 image_required: bool = True) -> None:
        if not isinstance(template, dict):
            self.problem(obj, path, f"a template must be a mapping; found {_type_name(template)}")
            return
        for key in ("container", "script"):
            if key in template:
                self.container(obj, (*path, key), template[key], image_required=image_required)
        if "containerSet" in template:
            container_set = template["containerSet"]
            if isinstance(container_set, dict):
                self.containers(obj, (*path, "containerSet", "containers"),
                                container_set.get("containers"), image_required=image_required)
            else:
                self.problem(obj, (*path, "containerSet"),
                             f"must be a mapping; found {_type_name(container_set)}")
        for key in ("initContainers", "sidecars"):
            self.containers(obj, (*path, key), template.get(key))
        self.pod_spec_patch(obj, path, template)
        if isinstance(template.get("resource"), dict):
            resource = template["resource"]
            if "manifest" in resource:
                self.embedded_text(obj, (*path, "resource", "manifest"), resource["manifest"])
            if "manifestFrom" in resource:
                self.problem(obj, (*path, "resource", "manifestFrom"),
                             "unscannable: the manifest comes from an artifact at run time")
        for key, inner in (("steps", None), ("dag", "tasks")):
            block = template.get(key)
            if key == "steps" and isinstance(block, list):
                for i, group in enumerate(block):
                    for j, step in enumerate(group if isinstance(group, list) else []):
                        if isinstance(step, dict) and "inline" in step:
                            self.template(obj, (*path, "steps", i, j, "inline"), step["inline"],
                                          image_required=image_required)
            elif key == "dag" and isinstance(block, dict) and isinstance(block.get(inner), list):
                for i, task in enumerate(block[inner]):
                    if isinstance(task, dict) and "inline" in task:
                        self.template(obj, (*path, "dag", "tasks", i, "inline"), task["inline"],
                                      image_required=image_required)

    # -- Argo Events
    def events_pod(self, obj: _Object, spec: dict[str, Any]) -> None:
        self.add(self.controllers.argo_events, obj, "", self.controllers.argo_events,
                 via=f"Argo Events controller: its own image runs every {obj.kind} pod")
        template = spec.get("template")
        if not isinstance(template, dict):
            return
        container = template.get("container")
        if isinstance(container, dict) and "image" in container:
            self.problem(obj, ("spec", "template", "container", "image"),
                         f"Argo Events {ARGO_EVENTS_VERSION} has no such field: the controller runs "
                         f"its own image ({self.controllers.argo_events}) and ignores this one")
        for key in ("initContainers", "sidecars"):
            if key in template:
                self.problem(obj, ("spec", "template", key),
                             f"Argo Events {ARGO_EVENTS_VERSION} has no such field: the controller "
                             "ignores these containers")

    def sensor_triggers(self, obj: _Object, spec: dict[str, Any]) -> None:
        triggers = spec.get("triggers")
        for index, trigger in enumerate(triggers if isinstance(triggers, list) else []):
            template = trigger.get("template") if isinstance(trigger, dict) else None
            for kind in ("k8s", "argoWorkflow"):
                block = template.get(kind) if isinstance(template, dict) else None
                source = block.get("source") if isinstance(block, dict) else None
                if not isinstance(source, dict):
                    continue
                path: tuple[Segment, ...] = ("spec", "triggers", index, "template", kind, "source")
                if "resource" in source:
                    self.embedded(obj, (*path, "resource"), source["resource"])
                if "inline" in source:
                    self.embedded_text(obj, (*path, "inline"), source["inline"])
                for other in sorted(set(source) - {"resource", "inline"}):
                    self.problem(obj, (*path, other), f"unscannable: the resource comes from {other} "
                                                      "when the trigger fires")

    def eventbus(self, obj: _Object, spec: dict[str, Any]) -> None:
        if "nats" in spec:
            self.problem(obj, ("spec", "nats"), "unscannable: argo-delivery does not know the images "
                         "the controller runs for a native NATS EventBus (use jetstream)")
        jetstream = spec.get("jetstream")
        if jetstream is None:
            return
        version = jetstream.get("version") if isinstance(jetstream, dict) else None
        images = self.controllers.jetstream.get(version) if isinstance(version, str) else None
        if images is None:
            self.problem(obj, ("spec", "jetstream", "version"),
                         f"unscannable: no image table for JetStream {version!r}; the controller's "
                         f"table argo-delivery knows has {', '.join(sorted(self.controllers.jetstream))}")
            return
        for image in images:
            self.add(image, obj, "spec.jetstream.version", image,
                     via=f"Argo Events controller: its image table for JetStream {version}")

    # -- configured paths
    def at_paths(self, obj: _Object, value: Any, segments: tuple[Segment, ...],
                 done: tuple[Segment, ...] = ()) -> None:
        if not segments:
            self.image(obj, done, value)
            return
        head, rest = segments[0], segments[1:]
        if head == -1:
            if isinstance(value, list):
                for index, item in enumerate(value):
                    self.at_paths(obj, item, rest, (*done, index))
            elif value is not None:
                self.problem(obj, done, f"must be a list; found {_type_name(value)}")
        elif isinstance(head, int):
            if isinstance(value, list):
                if head < len(value):
                    self.at_paths(obj, value[head], rest, (*done, head))
            elif value is not None:
                self.problem(obj, done, f"must be a list; found {_type_name(value)}")
        elif not isinstance(value, dict):
            if value is not None:
                self.problem(obj, done, f"must be a mapping; found {_type_name(value)}")
        elif head == "*":
            for key, item in value.items():
                self.at_paths(obj, item, rest, (*done, str(key)))
        elif head in value:
            self.at_paths(obj, value[head], rest, (*done, head))

    # -- objects
    def embedded_text(self, obj: _Object, path: tuple[Segment, ...], text: Any) -> None:
        """A manifest held as a string: read it when it is plain YAML; else say so."""
        if not isinstance(text, str):
            self.problem(obj, path, f"must be a string; found {_type_name(text)}")
            return
        if "{{" in text:
            self.problem(obj, path, "unscannable: the manifest is filled in when it runs")
            return
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            self.problem(obj, path, f"invalid YAML: {_one_line(exc)}")
            return
        self.embedded(obj, path, document)

    def embedded(self, obj: _Object, path: tuple[Segment, ...], document: Any) -> None:
        self.scan(document, obj, path)

    def scan(self, document: Any, where: _Object, prefix: tuple[Segment, ...] = ()) -> None:
        """Scan one manifest object; `prefix` (with `where` the object holding it) for an
        embedded one, whose images are located in the object that holds it."""
        embedded = bool(prefix)
        if not isinstance(document, dict):
            self.problem(where if embedded else None, prefix,
                         f"a manifest must be a mapping; found {_type_name(document)}",
                         file=where.file, document=where.document)
            return
        api_version, kind = document.get("apiVersion"), document.get("kind")
        missing = [k for k, v in (("apiVersion", api_version), ("kind", kind))
                   if not isinstance(v, str) or not v]
        if missing:
            self.problem(where if embedded else None, prefix,
                         f"not a Kubernetes object: no {' and no '.join(missing)}",
                         file=where.file, document=where.document)
            return
        meta = document.get("metadata") if isinstance(document.get("metadata"), dict) else {}
        name = str(meta.get("name") or (f"{meta['generateName']}*" if meta.get("generateName") else "?"))
        if embedded:
            obj = where
        else:
            obj = _Object(where.file, where.document, kind, name, meta.get("namespace"),
                          where.kustomization, where.chart)
        group = _group(api_version)
        if kind.endswith("List") and group == "" and isinstance(document.get("items"), list):
            for index, item in enumerate(document["items"]):
                if embedded:
                    self.scan(item, where, (*prefix, "items", index))
                else:
                    self.scan_list_item(item, where, index)
            return
        known = self.scan_known(obj, prefix, group, kind, document)
        for segments in self.paths.get((group, kind), []):
            self.at_paths(obj, document, segments, prefix)
        if not known and (group, kind) not in self.paths and (group, kind) not in NO_IMAGES:
            shown = f"{group}/{kind}" if group else kind
            note = (f"not scanned: {shown} has no known image fields (name them with --paths)"
                    + (f" [{format_path(prefix)}, {kind} {name}]" if embedded else ""))
            self.notes.append(Issue(obj.file, obj.document, note, obj.kind, obj.name, obj.namespace,
                                    format_path(prefix)))

    def scan_list_item(self, item: Any, where: _Object, index: int) -> None:
        # an item of a List is an object of its own, located by its index in the list
        before = len(self.problems)
        self.scan(item, where)
        for i in range(before, len(self.problems)):
            p = self.problems[i]
            self.problems[i] = Issue(p.file, p.document, p.message, p.kind, p.name, p.namespace,
                                     format_path(("items", index)) + (f".{p.path}" if p.path else ""))

    def scan_known(self, obj: _Object, prefix: tuple[Segment, ...], group: str, kind: str,
                   document: dict[str, Any]) -> bool:
        if (group, kind) in POD_SPEC_PATHS:
            value: Any = document
            path = list(prefix)
            for segment in POD_SPEC_PATHS[(group, kind)]:
                path.append(segment)
                if not isinstance(value, dict) or not isinstance(value.get(segment), dict):
                    self.problem(obj, tuple(path), f"{kind} needs "
                                 f"{format_path(POD_SPEC_PATHS[(group, kind)])} (a pod spec); there is none")
                    return True
                value = value[segment]
            self.pod_spec(obj, tuple(path), value)
            return True
        if group != ARGO:
            return False
        spec = document.get("spec")
        if kind in WORKFLOW_SPEC_PATHS:
            value, path = document, list(prefix)
            for segment in WORKFLOW_SPEC_PATHS[kind]:
                path.append(segment)
                value = value.get(segment) if isinstance(value, dict) else None
            self.workflow_spec(obj, tuple(path), value)
            return True
        if kind in ("Sensor", "EventSource", "EventBus") and not isinstance(spec, dict):
            self.problem(obj, (*prefix, "spec"), f"{kind} needs a spec; found {_type_name(spec)}")
            return True
        if kind in ("Sensor", "EventSource"):
            self.events_pod(obj, spec)
            if kind == "Sensor":
                self.sensor_triggers(obj, spec)
            return True
        if kind == "EventBus":
            self.eventbus(obj, spec)
            return True
        return False


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


# --- inputs -------------------------------------------------------------------------------------

def _read_documents(scanner: _Scanner, path: Path, shown: str) -> None:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        scanner.problem(None, "", f"cannot read: {exc}", file=shown)
        return
    if path.suffix == ".json":
        try:
            documents: Iterable[Any] = [json.loads(text)]
        except json.JSONDecodeError as exc:
            scanner.problem(None, "", f"invalid JSON: {exc}", file=shown, document=1)
            return
        _scan_documents(scanner, documents, shown)
        return
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    _scan_documents(scanner, yaml.load_all(text, Loader=loader), shown)


def _scan_documents(scanner: _Scanner, documents: Iterable[Any], shown: str,
                    kustomization: str | None = None) -> None:
    index = 0
    iterator = iter(documents)
    while True:
        index += 1
        try:
            document = next(iterator)
        except StopIteration:
            return
        except yaml.YAMLError as exc:
            scanner.problem(None, "", f"invalid YAML: {_one_line(exc)}", file=shown, document=index)
            return
        if document is None:  # an empty document (a trailing `---`)
            continue
        scanner.scan(document, _Object(shown, index, "", "", None, kustomization))


def built_tool(name: str) -> Path:
    """kustomize or helm, as `make tools` builds them; FinderError naming the fix if missing."""
    from argo_delivery.upstream import tool_path

    exe = tool_path(name)
    if exe is None:
        raise FinderError(f"{name} is not built (looked in $ARGO_DELIVERY_BIN, .cache/bin/ and "
                          "PATH); build it with `make tools`")
    return exe


def _build_kustomization(scanner: _Scanner, folder: Path, shown: str) -> None:
    """`kustomize build` the folder, through an overlay that only asks kustomize to annotate
    each object with the file it came from (so images are located in their files)."""
    exe = built_tool("kustomize")
    with tempfile.TemporaryDirectory(prefix="argo-delivery-kustomize-") as wrapper:
        base = os.path.relpath(folder.resolve(), wrapper)
        Path(wrapper, "kustomization.yaml").write_text(json.dumps(
            {"resources": [base], "buildMetadata": ["originAnnotations"]}))
        proc = subprocess.run([str(exe), "build", wrapper], capture_output=True, text=True,
                              check=False)
        origins = True
        if proc.returncode != 0:  # e.g. a Component: build it as it is, located at the folder
            proc = subprocess.run([str(exe), "build", str(folder)], capture_output=True, text=True,
                                  check=False)
            origins = False
        if proc.returncode != 0:
            scanner.problem(None, "", f"kustomize build failed: {proc.stderr.strip()}",
                            file=shown)
            return
        try:
            documents = list(yaml.safe_load_all(proc.stdout))
        except yaml.YAMLError as exc:
            scanner.problem(None, "", f"kustomize build printed invalid YAML: {_one_line(exc)}",
                            file=shown)
            return
        for document in documents:
            if document is None:
                continue
            file = shown
            annotations = (document.get("metadata") or {}).get("annotations") or {} \
                if isinstance(document, dict) else {}
            if origins and isinstance(annotations.get(ORIGIN_ANNOTATION), str):
                origin = yaml.safe_load(annotations.pop(ORIGIN_ANNOTATION)) or {}
                source = origin.get("path") if isinstance(origin, dict) else None
                if isinstance(source, str) and not re.match(r"^[a-z]+://", source):
                    real = Path(os.path.normpath(Path(wrapper, source)))
                    file = os.path.normpath(Path(shown, os.path.relpath(real, folder.resolve())))
            scanner.scan(document, _Object(file, None, "", "", None, shown))


@dataclass(frozen=True)
class _HelmInputs:
    """The values every chart is rendered with: `-f FILE` then `--set K=V`, in order."""

    values: tuple[str, ...] = ()
    set: tuple[str, ...] = ()

    def args(self) -> list[str]:
        return [*(a for f in self.values for a in ("--values", f)),
                *(a for kv in self.set for a in ("--set", kv))]


_HELM_SOURCE = re.compile(r"^# Source: (?P<source>.+?)\s*$", re.M)
_HELM_SEPARATOR = re.compile(r"^---[ \t]*$", re.M)
_HELM_DEBUG_HINT = "Use --debug flag to render out invalid YAML"


def helm_failure(stderr: str) -> str:
    """helm's error message on one line, without its `--debug` hint."""
    lines = [line for line in stderr.strip().splitlines()
             if line.strip() and line.strip() != _HELM_DEBUG_HINT]
    return " ".join(lines).removeprefix("Error: ") or "no error message"


def helm_template(folder: Path, helm: _HelmInputs | None = None) -> subprocess.CompletedProcess:
    """`helm template release-name FOLDER` offline, with an empty helm state (its homes in a
    temporary folder, none of the caller's `HELM_*` variables, no kubeconfig, so nothing of
    this machine changes what is rendered). TimeoutExpired after HELM_TIMEOUT seconds;
    FinderError if helm is not built or cannot run."""
    exe = built_tool("helm")
    with tempfile.TemporaryDirectory(prefix="argo-delivery-helm-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HELM_")}
        env.update(HELM_CACHE_HOME=os.path.join(home, "cache"),
                   HELM_CONFIG_HOME=os.path.join(home, "config"),
                   HELM_DATA_HOME=os.path.join(home, "data"),
                   KUBECONFIG=os.path.join(home, "no-kubeconfig"))
        try:
            return subprocess.run([str(exe), "template", HELM_RELEASE, str(folder),
                                   *(helm or _HelmInputs()).args()],
                                  capture_output=True, text=True, check=False, env=env,
                                  stdin=subprocess.DEVNULL, timeout=HELM_TIMEOUT)
        except OSError as exc:
            raise FinderError(f"cannot run {exe}: {exc}") from None


def _render_chart(scanner: _Scanner, folder: Path, shown: str, helm: _HelmInputs) -> None:
    """`helm template` the chart, offline and with an empty helm state, and scan what it
    renders, each object located at its template (helm's `# Source: CHART/templates/x.yaml`,
    CHART being the chart's name, not its folder's)."""
    scanner.charts += 1
    chart_file = os.path.normpath(os.path.join(shown, "Chart.yaml"))
    try:
        proc = helm_template(folder, helm)
    except subprocess.TimeoutExpired:
        scanner.problem(None, "", f"helm template did not finish in {HELM_TIMEOUT} s",
                        file=chart_file)
        return
    if proc.returncode != 0:
        scanner.problem(None, "", f"helm template failed: {helm_failure(proc.stderr)}",
                        file=chart_file)
        return
    for chunk in _HELM_SEPARATOR.split(proc.stdout):
        source = _HELM_SOURCE.search(chunk)
        file = shown
        if source:
            _, _, relative = source["source"].partition("/")  # drop the chart's name
            if relative and (folder / relative).is_file():
                file = os.path.normpath(os.path.join(shown, relative))
        try:
            document = yaml.safe_load(chunk)
        except yaml.YAMLError as exc:
            scanner.problem(None, "", f"helm template rendered invalid YAML: {_one_line(exc)}",
                            file=file)
            continue
        if document is not None:
            scanner.scan(document, _Object(file, None, "", "", None, None, shown))


def _scan_path(scanner: _Scanner, path: Path, shown: str, *, named: bool,
               helm: _HelmInputs) -> None:
    if path.is_dir():
        if (path / "Chart.yaml").is_file():
            _render_chart(scanner, path, shown, helm)
            return
        if any((path / name).is_file() for name in KUSTOMIZATION_FILES):
            _build_kustomization(scanner, path, shown)
            return
        for child in sorted(path.iterdir()):
            if child.name.startswith("."):
                continue
            if child.is_dir() or child.suffix in MANIFEST_SUFFIXES:
                _scan_path(scanner, child, os.path.join(shown, child.name), named=False, helm=helm)
    elif path.name == "Chart.yaml":  # a chart named by its Chart.yaml: the chart
        _render_chart(scanner, path.parent, os.path.dirname(shown) or ".", helm)
    elif named or path.suffix in MANIFEST_SUFFIXES:
        _read_documents(scanner, path, shown)


def find_images(paths: Iterable[str | Path],
                custom_paths: dict[tuple[str, str], list[tuple[Segment, ...]]] | None = None,
                controllers: ControllerImages | None = None, *,
                helm_values: Iterable[str | Path] = (),
                helm_set: Iterable[str] = ()) -> FinderResult:
    """Every image in the manifests at `paths` (files or folders), with its locations.

    Every Helm chart among them is rendered with the values files `helm_values` and then the
    `helm_set` values (`KEY=VALUE`, as `helm template --set`), in order.

    FinderError (nothing scanned) if a path or a values file does not exist, a `helm_set` item
    is not KEY=VALUE, kustomize or helm is needed and missing, or values are given and no chart
    was found.
    """
    paths = list(paths)
    for path in paths:
        if not Path(path).exists():
            raise FinderError(f"{path}: no such file or folder")
    helm = _HelmInputs(tuple(str(v) for v in helm_values), tuple(helm_set))
    for values in helm.values:
        if not Path(values).is_file():
            raise FinderError(f"--values {values}: no such file")
    for item in helm.set:
        if "=" not in item or item.startswith("="):
            raise FinderError(f"--set {item}: must be KEY=VALUE")
    scanner = _Scanner(custom_paths or {}, controllers or ControllerImages.defaults())
    for path in paths:
        _scan_path(scanner, Path(path), str(path), named=True, helm=helm)
    if (helm.values or helm.set) and not scanner.charts:
        raise FinderError("--values and --set are for Helm charts, and no path holds one "
                          "(a folder with a Chart.yaml)")
    return FinderResult([FoundImage(image, locations) for image, locations in sorted(scanner.images.items())],
                        scanner.problems, scanner.notes)


def _where(location: Location) -> str:
    return location.file + (f" (document {location.document})" if location.document else "")


def images_table(result: FinderResult) -> Any:
    """IMAGE FILE OBJECT FIELD, one row per location (the image named on its first row only)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, show_edge=False, pad_edge=False, header_style="bold")
    for column in ("IMAGE", "FILE", "OBJECT", "FIELD"):
        table.add_column(column)
    for found in result.images:
        for index, loc in enumerate(found.locations):
            obj = f"{loc.kind} {loc.namespace + '/' if loc.namespace else ''}{loc.name}"
            field_text = loc.path or ""
            if loc.via:
                field_text = f"{field_text + '; ' if field_text else ''}run by the {loc.via}"
            elif loc.reference != found.image:
                field_text += f" = {loc.reference}"
            table.add_row(*(Text(value) for value in (found.image if index == 0 else "",
                                                      _where(loc), obj, field_text)))
    return table
