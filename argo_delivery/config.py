"""The platform configuration: load one YAML file, validate it, return typed objects.

Validation happens in three layers, and every problem of a layer is reported at once:
YAML syntax (with line and column), then the JSON Schema shipped in the package (with the
field path, what was expected and what was found) together with what any document is
checked for (duplicate keys, credentials in a URL), then the cross-field rules a schema
cannot express (names that must exist, names that must be unique, images the registry
policy refuses). A valid config may still carry warnings (`PlatformConfig.warnings`:
likely mistakes, each located, and notes such as when a schedule next fires). The typed
config holds every image resolved under that policy, as the cluster pulls it: renderers
use it as is.

An images lock (`argo_delivery.imagelock.ImagesLock`), given to `load_config` or
`parse_config`, is part of that policy: every image it holds is pinned by the lock's digest
before the mirror is applied, so `registry.requireDigests` accepts it, and a digest written in
the config that the lock contradicts is refused at its place.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import json
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache, partial
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jsonschema
import yaml
from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter

from argo_delivery.controllers import ARGO_EVENTS_IMAGE, ARGO_EXEC_IMAGE
from argo_delivery.durations import format_duration, go_duration, parse_duration
from argo_delivery.images import ImageError, ImageRef, parse_image, rewrite_image
from argo_delivery.jetstream import JETSTREAM_IMAGES
from argo_delivery.naming import (
    LABEL_BUNDLE,
    LABEL_PART_OF,
    LABEL_PROJECT,
    LABEL_VERSION,
    POD_SECURITY_LABELS,
)
from argo_delivery.providers import (
    PROVIDERS,
    WEBHOOK_ENDPOINT,
    GitProviderKind,
    provider_root,
    split_repo,
    webhook_base_url,
)
from argo_delivery.quantities import parse_quantity
from argo_delivery.versionhash import normalise_repo

if TYPE_CHECKING:
    from argo_delivery.imagelock import ImagesLock, LockedImage

__all__ = [
    "Component",
    "ConfigError",
    "ConfigProblem",
    "DashboardSettings",
    "DemoEnvironment",
    "EnvironmentDefaults",
    "EnvironmentSettings",
    "LeakSweep",
    "MonitoringSettings",
    "VeleroSettings",
    "GitProvider",
    "Images",
    "Isolation",
    "Namespaces",
    "NetworkPeer",
    "PlatformConfig",
    "RateLimit",
    "Project",
    "Registry",
    "Schedules",
    "SecretKeyRef",
    "TestSuite",
    "default_config_text",
    "load_config",
    "load_default",
    "parse_config",
    "platform_schema",
    "reserved_namespace",
]

DEFAULT_CONFIG_NAME = "<embedded default platform>"


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a config file, located as precisely as we can.

    `severity` is "error" (the config cannot be used), "warning" (a likely mistake) or
    "note" (worth knowing, e.g. when a schedule next fires).
    """

    source: str
    message: str
    path: str = ""
    line: int | None = None
    column: int | None = None
    severity: str = "error"

    def __str__(self) -> str:
        where = self.source
        if self.line is not None:
            where += f":{self.line}:{self.column}"
        field_path = f" {self.path}:" if self.path else ""
        return f"{where}:{field_path} {self.message}"


class ConfigError(Exception):
    """A config that cannot be used; `problems` lists every reason."""

    def __init__(self, problems: list[ConfigProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class Component:
    name: str
    repo: str
    branch: str
    deploy_path: str
    repository_id: int | None = None  # the provider's id of the repository, when configured


@dataclass(frozen=True)
class TestSuite:
    name: str
    image: str  # resolved: what the cluster pulls
    timeout: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    # the suite container's requests and limits (cpu, memory), defaults filled in
    requests: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_SUITE_REQUESTS))
    limits: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_SUITE_LIMITS))


@dataclass(frozen=True)
class DemoEnvironment:
    name: str
    owner: str
    variables: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LeakSweep:
    """The container that removes what the cloud keeps after a destroy (persistent disks)."""

    image: str  # resolved
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    timeout: str = "10m"


@dataclass(frozen=True)
class EnvironmentDefaults:
    terraform_module: str
    default_ttl: str
    max_ttl: str
    variables: dict[str, str] = field(default_factory=dict)
    credentials_secret: str | None = None  # its keys: env of the Terraform and sweep steps
    leak_sweep: LeakSweep | None = None


@dataclass(frozen=True)
class EnvironmentSettings:
    """How every project's Environments are vended, destroyed and reaped."""

    engine: str = "tofu"  # tofu | terraform: the binary in images.terraform
    # Argo's artifactRepositoryRef ({"configMap": ..., "key": ...}); None: the controller's default
    artifact_repository_ref: dict[str, str] | None = None
    expiry_warning: str = "1h"
    apply_timeout: str = "30m"


@dataclass(frozen=True)
class AirgapSettings:
    """Air-gap export: every released Version packed into the artifact repository."""

    export: bool = False
    # Argo's artifactRepositoryRef ({"configMap": ..., "key": ...}); None: the controller's default
    artifact_repository_ref: dict[str, str] | None = None
    insecure_registries: tuple[str, ...] = ()
    registry_auth_secret: str | None = None   # a kubernetes.io/dockerconfigjson Secret
    signing_key_secret: SecretKeyRef | None = None
    timeout: str = "30m"


# The label the Grafana chart's dashboard sidecar selects by default (sidecar.dashboards.label
# and labelValue).
DASHBOARD_SIDECAR_LABELS = {"grafana_dashboard": "1"}


@dataclass(frozen=True)
class DashboardSettings:
    """The Grafana dashboard's ConfigMap (argo_delivery/dashboard.py)."""

    enabled: bool = False
    namespace: str | None = None   # None: the orchestrator namespace
    labels: dict[str, str] = field(default_factory=lambda: dict(DASHBOARD_SIDECAR_LABELS))
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MonitoringSettings:
    """The PrometheusRule and PodMonitors (argo_delivery/monitoring.py), and the alerts'
    thresholds (durations as in the config)."""

    prometheus_rule: bool = False
    pod_monitors: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    workflows_namespace: str = "argo"
    workflows_metrics_scheme: str = "https"
    scrape_from: tuple[NetworkPeer, ...] = ()
    failures: int = 3
    failure_window: str = "1h"
    version_within: str = "30m"
    stuck_after: str = "2h"
    expiry_grace: str = "1h"
    reaper_silent_for: str = "2h"
    dashboard: DashboardSettings = field(default_factory=DashboardSettings)


@dataclass(frozen=True)
class VeleroSettings:
    """The Velero Schedule (argo_delivery/velero.py): when, how long backups are kept, where."""

    schedule: str
    ttl: str = "720h"                   # a Go duration, as Velero reads it
    storage_location: str | None = None  # None: Velero's default BackupStorageLocation
    namespace: str = "velero"
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Project:
    name: str
    namespace: str
    type: str
    components: tuple[Component, ...]
    developers: tuple[str, ...] = ()
    product_owners: tuple[str, ...] = ()
    alpha: tuple[TestSuite, ...] = ()
    nightly: tuple[TestSuite, ...] = ()
    environments: EnvironmentDefaults | None = None
    demo_environments: tuple[DemoEnvironment, ...] = ()
    # ResourceQuota spec.hard: isolation.quota with the project's own keys over it
    quota: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_QUOTA))
    # its own webhook endpoint and secret; None: the shared ones (gitProvider.webhookSecret)
    webhook_secret: SecretKeyRef | None = None


@dataclass(frozen=True)
class Images:
    """Resolved under the registry policy: fully qualified, mirrored, what the cluster pulls.

    `python` and `terraform` are None when unset: no shipped flow runs them yet.
    """

    git: str
    argo_exec: str
    argo_events: str
    python: str | None = None
    terraform: str | None = None
    airgap: str | None = None


@dataclass(frozen=True)
class Registry:
    mirror: str | None = None
    require_digests: bool = False


@dataclass(frozen=True)
class Schedules:
    time_zone: str
    nightly: str
    reaper: str
    nightly_versions: int = 1  # how many Versions one nightly run takes, newest first


@dataclass(frozen=True)
class SecretKeyRef:
    """One key of a Secret in the orchestrator namespace."""

    name: str
    key: str

    def selector(self) -> dict[str, str]:
        """As Kubernetes and Argo Events write a SecretKeySelector."""
        return {"name": self.name, "key": self.key}


@dataclass(frozen=True)
class GitProvider:
    type: str
    # the shared endpoint's secret; None when every project has a webhook secret of its own
    webhook_secret: SecretKeyRef | None
    base_url: str | None = None
    credentials_secret: str | None = None
    webhook_url: str | None = None
    api_token: SecretKeyRef | None = None
    git_timeout_seconds: int = 60
    git_attempts: int = 4


@dataclass(frozen=True)
class Namespaces:
    """How the bundle treats the Namespaces it uses (the orchestrator's and the projects')."""

    manage: bool = True  # render the Namespace objects; False: the site creates them
    labels: dict[str, str] = field(default_factory=dict)       # extra, on every Namespace
    annotations: dict[str, str] = field(default_factory=dict)  # extra, on every Namespace


# What a project namespace gets unless the config says otherwise: room for a few workflows
# at once; the container defaults are what Argo's init and wait containers get when the
# workflow controller's executor sets no resources.
DEFAULT_QUOTA = {"pods": "20", "requests.cpu": "4", "requests.memory": "8Gi",
                 "limits.cpu": "8", "limits.memory": "16Gi"}
DEFAULT_CONTAINER_REQUESTS = {"cpu": "50m", "memory": "64Mi"}
DEFAULT_SUITE_REQUESTS = {"cpu": "100m", "memory": "128Mi"}
DEFAULT_SUITE_LIMITS = {"cpu": "1", "memory": "512Mi"}
DEFAULT_CONTAINER_LIMITS = {"cpu": "500m", "memory": "256Mi"}


@dataclass(frozen=True)
class NetworkPeer:
    """A source of connections: an IP block, or a namespace (optionally only some of its pods)."""

    cidr: str | None = None
    namespace: str | None = None
    pod_labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Isolation:
    """NetworkPolicies and the LimitRange (each project's quota is on its `Project`)."""

    webhook_from: tuple[NetworkPeer, ...] = ()  # empty: from anywhere
    egress_to: tuple[str, ...] | None = None     # None: egress not restricted
    container_requests: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_CONTAINER_REQUESTS))
    container_limits: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_CONTAINER_LIMITS))
    # the orchestrator's ResourceQuota keys the config sets; the rest is sized from the pods
    # the bundle makes Argo Events run there (argo_delivery/isolation.py)
    orchestrator_quota: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RateLimit:
    requests_per_unit: int
    unit: str


DEFAULT_TRIGGER_RATE_LIMIT = RateLimit(60, "Minute")


@dataclass(frozen=True)
class PlatformConfig:
    """A validated platform: what every renderer takes."""

    bundle_name: str
    bundle_version: str
    orchestrator_namespace: str
    components: tuple[Component, ...]
    projects: tuple[Project, ...]
    images: Images
    registry: Registry
    schedules: Schedules | None
    git_provider: GitProvider
    # What the Argo Events controller runs for the EventBus, resolved like `images`.
    eventbus_images: tuple[str, ...]
    namespaces: Namespaces = field(default_factory=Namespaces)
    trigger_rate_limit: RateLimit = DEFAULT_TRIGGER_RATE_LIMIT
    isolation: Isolation = field(default_factory=Isolation)
    environments: EnvironmentSettings = field(default_factory=EnvironmentSettings)
    airgap: AirgapSettings = field(default_factory=AirgapSettings)
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)
    velero: VeleroSettings | None = None   # backup.velero; None: no Schedule
    # Warnings and notes about a valid config, located (never part of equality).
    warnings: tuple[ConfigProblem, ...] = field(default=(), compare=False)

    def component(self, name: str) -> Component:
        """The component called `name` (KeyError with the known names otherwise)."""
        for component in self.components:
            if component.name == name:
                return component
        known = ", ".join(c.name for c in self.components)
        raise KeyError(f"no component {name!r}; known components: {known}")


@cache
def platform_schema() -> dict[str, Any]:
    """The JSON Schema (Draft 2020-12) a platform config must satisfy."""
    text = resources.files("argo_delivery").joinpath("data/platform.schema.json").read_text()
    schema = json.loads(text)
    # The provider types are the entries of the provider table, so adding one is one entry.
    schema["properties"]["gitProvider"]["properties"]["type"]["enum"] = list(PROVIDERS)
    return schema


def default_config_text() -> str:
    """The embedded default platform, as YAML text with its comments."""
    return resources.files("argo_delivery").joinpath("data/default-platform.yaml").read_text()


def load_default(*, images_lock: ImagesLock | None = None) -> PlatformConfig:
    """The embedded default platform (its images pinned by `images_lock` if given)."""
    return parse_config(default_config_text(), DEFAULT_CONFIG_NAME, images_lock=images_lock)


def load_config(path: str | Path | None, *, images_lock: ImagesLock | None = None) -> PlatformConfig:
    """Load and validate a config file; `None` means the embedded default.

    With `images_lock`, every image the lock holds is pinned by its digest (see `parse_config`).
    """
    if path is None:
        return load_default(images_lock=images_lock)
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(str(path), "no such file")]) from None
    except IsADirectoryError:
        raise ConfigError([ConfigProblem(str(path), "is a directory, expected a YAML file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigProblem(str(path), f"cannot read: {exc}")]) from None
    return parse_config(text, str(path), images_lock=images_lock)


def parse_config(text: str, source: str = "<string>", *,
                 images_lock: ImagesLock | None = None) -> PlatformConfig:
    """Validate config text; raise ConfigError listing every problem.

    With `images_lock`, every image of the config (the EventBus's JetStream images included)
    that the lock holds is pinned by the lock's digest, before `registry.mirror` is applied;
    the image rules (`IMAGES_LOCK_RULES`) read the lock, so `registry.requireDigests` accepts
    a locked image and a digest the lock contradicts is refused where it is written. A lock
    entry the config never uses is a warning.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(p for p in (exc.context, exc.problem) if p)
        raise ConfigError([ConfigProblem(
            source, f"invalid YAML: {message}",
            line=mark.line + 1 if mark else None, column=mark.column + 1 if mark else None,
        )]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigProblem(source, f"invalid YAML: {exc}")]) from None

    if data is None:
        raise ConfigError([ConfigProblem(source, "the file is empty; expected a platform mapping")])

    def located(rules: tuple[Callable[[Data], Iterator[Problem]], ...],
                severity: str = "error") -> list[ConfigProblem]:
        return [ConfigProblem(source, message, _format_path(items), *_position(node, items), severity)
                for rule in rules for items, message in rule(data)]

    refused = located(DOCUMENT_RULES)
    problems = list(_duplicate_keys(node, source)) + refused
    # a value a document rule refused (a credential, say) is not also shown by the schema
    problems += [problem for problem in (_schema_problem(error, node, source)
                                         for error in _schema_errors(data))
                 if problem.path not in {refusal.path for refusal in refused}]
    if problems:
        raise ConfigError(problems)
    problems = located(tuple(partial(rule, images_lock=images_lock) if rule in IMAGES_LOCK_RULES
                             else rule for rule in CROSS_FIELD_RULES))
    if problems:
        raise ConfigError(problems)
    warnings = located(WARNING_RULES, "warning")
    if images_lock is not None:  # not located: the config does not name what it does not use
        warnings += [ConfigProblem(source, (
            f"the images lock holds {image}, which this config runs nowhere: remove it from "
            "the lock (or run `argo-delivery images lock` again)"), severity="warning")
            for image in _unused_lock_entries(data, images_lock)]
    warnings += located(NOTE_RULES, "note")
    return dataclasses.replace(_build(data, images_lock), warnings=tuple(warnings))


def _duplicate_keys(root: yaml.Node | None, source: str) -> Iterator[ConfigProblem]:
    """Keys written twice in one mapping: PyYAML silently keeps the last one."""
    def walk(node: yaml.Node | None, path: list[Any]) -> Iterator[ConfigProblem]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[tuple[str, str], yaml.Node] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    continue
                identity = (key_node.tag, key_node.value)
                first = seen.get(identity)
                if first is not None and key_node.value != "<<":
                    yield ConfigProblem(
                        source, f"duplicate key {key_node.value!r}: first at line "
                        f"{first.start_mark.line + 1}, again at line {key_node.start_mark.line + 1}; "
                        "YAML would silently keep the last one, so write it once",
                        _format_path(path + [key_node.value]),
                        key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                seen.setdefault(identity, key_node)
                yield from walk(value_node, path + [key_node.value])
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                yield from walk(item, path + [index])
    yield from walk(root, [])


def _schema_errors(data: Any) -> list[jsonschema.ValidationError]:
    validator = jsonschema.Draft202012Validator(platform_schema())
    return sorted(validator.iter_errors(data), key=lambda e: (list(map(str, e.absolute_path)), e.message))


def _format_path(items: list[Any] | tuple[Any, ...]) -> str:
    text = ""
    for item in items:
        text += f"[{item}]" if isinstance(item, int) else (f".{item}" if text else str(item))
    return text or "(top level)"


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    kind = {bool: "boolean", int: "integer", float: "number", str: "string",
            list: "list", dict: "mapping"}.get(type(value), type(value).__name__)
    if isinstance(value, (dict, list)):
        return f"a {kind}"
    if isinstance(value, str):
        shown = json.dumps(_redact(value))
    else:
        shown = str(value).lower() if isinstance(value, bool) else str(value)
    return f"{kind} {shown}"


def _schema_problem(error: jsonschema.ValidationError, root: yaml.Node | None, source: str) -> ConfigProblem:
    path_items = list(error.absolute_path)
    instance = error.instance
    schema = error.schema if isinstance(error.schema, dict) else {}
    validator = error.validator
    if validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        # a YAML key may be 1 or true: name it as written
        keys = {key if isinstance(key, str) else json.dumps(key) for key in instance}
        unknown = sorted(keys - set(allowed))
        parts = []
        for key in unknown:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            parts.append(f"unknown key {key!r}{hint}")
        message = "; ".join(parts) + f"; expected one of: {', '.join(allowed)}"
        if unknown:
            path_items = path_items + [unknown[0]]
            line, column = _position(root, path_items, key=True)
            return ConfigProblem(source, message, _format_path(path_items[:-1]), line, column)
    elif validator == "required":
        missing = re.match(r"'(.+)' is a required property", error.message)
        message = f"missing required key {missing.group(1)!r}" if missing else error.message
    elif validator == "type" and schema.get("title") == "duration" and \
            isinstance(instance, (int, float)) and not isinstance(instance, bool):
        message = (f"expected a duration such as 30m, 8h or 1d, found {_describe(instance)}: "
                   f"add a unit (e.g. {_raw(root, path_items, instance)}m)")
    elif validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        message = f"expected {expected}, found {_describe(instance)}"
        if "string" in expected and isinstance(instance, (int, float, bool)):
            raw = _raw(root, path_items, instance)
            message += (f": quote it (\"{raw}\") so that YAML reads it as text"
                        if raw is not None else ": quote it so that YAML reads it as text")
    elif validator == "enum":
        choices = [str(choice) for choice in error.validator_value]
        message = f"expected one of {', '.join(choices)}, found {_describe(instance)}"
        if isinstance(instance, str):
            lowered = {choice.lower(): choice for choice in choices}
            close = difflib.get_close_matches(instance.strip().lower(), list(lowered), n=1)
            if close:
                message += f" (did you mean {lowered[close[0]]!r}?)"
    elif validator == "pattern":
        expected = schema.get("x-expected") or f"a value matching {error.validator_value}"
        message = f"expected {expected}, found {_describe(instance)}"
        if isinstance(instance, str) and instance.strip() != instance and \
                re.search(error.validator_value, instance.strip()):
            message += ": remove the whitespace around it"
        elif schema.get("title") == "duration" and re.fullmatch(r"[0-9]+(\.[0-9]+)?", instance.strip()):
            message += f": add a unit (e.g. {instance.strip()}m)"
    elif validator in ("minItems", "minLength"):
        unit = "item(s)" if validator == "minItems" else "character(s)"
        message = f"expected at least {error.validator_value} {unit}, found {len(instance)}"
    elif validator in ("maxItems", "maxLength"):
        unit = "item(s)" if validator == "maxItems" else "character(s)"
        message = f"expected at most {error.validator_value} {unit}, found {len(instance)}"
    else:
        message = error.message
    line, column = _position(root, path_items)
    return ConfigProblem(source, message, _format_path(path_items), line, column)


def _raw(root: yaml.Node | None, path_items: list[Any], value: Any) -> str | None:
    """The text of the scalar at `path_items` as written in the file (YAML reads `1.10` as 1.1)."""
    node = _node(root, path_items)
    if isinstance(node, yaml.ScalarNode) and node.value:
        return node.value
    return None if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _position(root: yaml.Node | None, path_items: list[Any],
              key: bool = False) -> tuple[int | None, int | None]:
    """Line and column (1-based) of the node at `path_items`, or of its nearest parent."""
    node = _node(root, path_items, key)
    if node is None:
        return None, None
    return node.start_mark.line + 1, node.start_mark.column + 1


def _node(root: yaml.Node | None, path_items: list[Any], key: bool = False) -> yaml.Node | None:
    """The node at `path_items` (its key node with `key`), or its nearest parent."""
    node = root
    for depth, item in enumerate(path_items):
        if isinstance(node, yaml.MappingNode):
            # the last of duplicate keys: the one PyYAML keeps
            for key_node, value_node in reversed(node.value):
                if key_node.value == item:
                    last = depth == len(path_items) - 1
                    node = key_node if (key and last) else value_node
                    break
            else:
                break
        elif isinstance(node, yaml.SequenceNode) and isinstance(item, int) and item < len(node.value):
            node = node.value[item]
        else:
            break
    return node


Data = dict[str, Any]  # a part of the config as parsed from YAML
Problem = tuple[list[Any], str]  # (path items, message) of one cross-field problem


def _duplicates(path: list[Any], values: list[str], what: str) -> Iterator[Problem]:
    for index, value in enumerate(values):
        first = values.index(value)
        if first != index:
            yield path + [index], f"duplicate {what} {value!r} (first used at {_format_path(path + [first])})"


def unique_component_names(data: Data) -> Iterator[Problem]:
    yield from _duplicates(["components"], [c["name"] for c in data["components"]], "component name")


def _normalised_repo(repo: str) -> str:
    """normalise_repo; a URL urllib cannot parse stays as written (repository_urls_parse says why)."""
    try:
        return normalise_repo(repo)
    except ValueError:
        return repo


def repository_urls_parse(data: Data) -> Iterator[Problem]:
    for index, component in enumerate(data["components"]):
        try:
            normalise_repo(component["repo"])
        except ValueError as exc:
            yield ["components", index, "repo"], (f"expected a git URL, found "
                                                   f"{_describe(component['repo'])} ({exc})")


def one_component_per_branch(data: Data) -> Iterator[Problem]:
    components = data["components"]
    tracked = [f"{_normalised_repo(c['repo'])}@{c['branch']}" for c in components]
    for index, value in enumerate(tracked):
        first = tracked.index(value)
        if first != index:
            yield ["components", index, "repo"], (f"repository and branch {value!r} are already "
                                                   f"tracked by component {components[first]['name']!r}")


def repository_ids_sent_by_the_provider(data: Data) -> Iterator[Problem]:
    """The filter compares repositoryId with the id in the push: a provider that sends none
    would never fire."""
    kind = PROVIDERS[data["gitProvider"]["type"]]
    if "id" in kind.payload:
        return
    for index, component in enumerate(data["components"]):
        if "repositoryId" in component:
            with_ids = [k.type for k in PROVIDERS.values() if "id" in k.payload]
            yield ["components", index, "repositoryId"], (
                f"{kind.type} pushes carry no repository id, so no push would match it; remove "
                f"repositoryId (repository ids apply to {', '.join(with_ids)})")


def repository_ids_name_one_repository(data: Data) -> Iterator[Problem]:
    """One repository has one id (two components may track two branches of it), and one id
    names one repository."""
    ids: dict[int, tuple[int, str]] = {}
    repos: dict[str, tuple[int, int]] = {}
    for index, component in enumerate(data["components"]):
        if "repositoryId" not in component:
            continue
        repo, number = _normalised_repo(component["repo"]), component["repositoryId"]
        if repo in repos and repos[repo][1] != number:
            first = repos[repo][0]
            yield ["components", index, "repositoryId"], (
                f"repository {repo} has repositoryId {repos[repo][1]} at components[{first}] "
                f"({data['components'][first]['name']!r}); one repository has one id")
        elif number in ids and ids[number][1] != repo:
            first = ids[number][0]
            yield ["components", index, "repositoryId"], (
                f"repositoryId {number} is already the id of {ids[number][1]} "
                f"(components[{first}], {data['components'][first]['name']!r}); one id names "
                "one repository")
        repos.setdefault(repo, (index, number))
        ids.setdefault(number, (index, repo))


def unique_project_names(data: Data) -> Iterator[Problem]:
    yield from _duplicates(["projects"], [p["name"] for p in data["projects"]], "project name")


def _transport(repo: str) -> str:
    """The scheme of a git URL as the schema admits it; scp-like `git@host:path` is ssh."""
    return repo.split("://", 1)[0].lower() if "://" in repo else "ssh"


def repos_use_a_secure_transport(data: Data) -> Iterator[Problem]:
    for index, component in enumerate(data["components"]):
        transport = _transport(component["repo"])
        if transport == "http":
            yield ["components", index, "repo"], (
                "http:// sends the git credentials and the code in clear text and lets anyone on "
                "the way change what is built; use https:// or ssh://")
        elif transport == "file":
            yield ["components", index, "repo"], (
                "a file:// repository is a path on the machine that reads it, which the "
                "cluster's pods do not have; serve it over https:// or ssh://")


def _repo_host_and_path(repo: str) -> tuple[str, str] | None:
    """Lower-case host and path (no `.git`) of a git URL; None for a URL that does not parse."""
    try:
        return split_repo(normalise_repo(repo))[1:]
    except ValueError:
        return None


def repos_on_the_provider(data: Data) -> Iterator[Problem]:
    """An https:// repo elsewhere than the provider's host (and path prefix) never gets a push."""
    provider = data["gitProvider"]
    root = provider_root(provider["type"], provider.get("baseURL"))
    if root is None:
        return
    host, prefix = root
    where = f"{host}/{prefix}" if prefix else host
    origin = "gitProvider.baseURL" if provider.get("baseURL") else f"gitProvider.type {provider['type']}"
    for index, component in enumerate(data["components"]):
        located = _repo_host_and_path(component["repo"])
        if _transport(component["repo"]) not in ("https", "http") or located is None:
            continue  # SSH hosts may be aliases: a warning (ssh_repos_on_the_provider)
        repo_host, path = located
        if repo_host != host or (prefix and not path.startswith(prefix + "/")):
            yield ["components", index, "repo"], (
                f"the repository is not on {where} ({origin}), so no push webhook from the "
                f"provider can be about it; point repo at {where}/... or fix gitProvider")


def ssh_repos_have_credentials(data: Data) -> Iterator[Problem]:
    if data["gitProvider"].get("credentialsSecret"):
        return
    for index, component in enumerate(data["components"]):
        if _transport(component["repo"]) == "ssh":
            yield ["components", index, "repo"], (
                "an SSH repository needs a key: name the Secret that holds it in "
                "gitProvider.credentialsSecret (or use an https:// URL)")


def reserved_namespace(name: str) -> bool:
    """Kubernetes' own namespaces: `default` and the `kube-` prefix (kube-system, kube-public...)."""
    return name == "default" or name.startswith("kube-")


def project_namespaces_are_their_own(data: Data) -> Iterator[Problem]:
    projects = data["projects"]
    namespaces = [p.get("namespace", p["name"]) for p in projects]
    for index, namespace in enumerate(namespaces):
        where = ["projects", index, "namespace" if "namespace" in projects[index] else "name"]
        first = namespaces.index(namespace)
        if first != index:
            yield where, (f"namespace {namespace!r} is already used by project "
                          f"{projects[first]['name']!r}; each project needs its own")
        if namespace == data["orchestrator"]["namespace"]:
            yield where, (f"namespace {namespace!r} is the orchestrator's namespace; "
                          "a project needs a namespace of its own")
        if reserved_namespace(namespace):
            yield where, f"namespace {namespace!r} is reserved; choose another"


def orchestrator_namespace_not_reserved(data: Data) -> Iterator[Problem]:
    namespace = data["orchestrator"]["namespace"]
    if reserved_namespace(namespace):
        yield ["orchestrator", "namespace"], (
            f"namespace {namespace!r} is reserved for Kubernetes itself (default and kube-*); "
            "choose another")


# Namespace labels the bundle sets itself, and why: a site's labels cannot override them.
_OUR_NAMESPACE_LABELS = {
    **{key: "it is the Pod Security level the bundle sets"
       for key in POD_SECURITY_LABELS},
    **{key: "it identifies the bundle" for key in (LABEL_PART_OF, LABEL_VERSION, LABEL_BUNDLE)},
    LABEL_PROJECT: "it names the project",
    "kubernetes.io/metadata.name": "the API server sets it to the namespace's name",
}


def namespace_labels_are_not_ours(data: Data) -> Iterator[Problem]:
    settings = data.get("namespaces", {})
    for kind in ("labels", "annotations"):
        for key in settings.get(kind, {}):
            reason = _OUR_NAMESPACE_LABELS.get(key) if kind == "labels" else None
            if reason is None and key.startswith("argo-delivery.io/"):
                reason = "argo-delivery.io/ is argo-delivery's own prefix"
            if reason:
                yield ["namespaces", kind, key], (
                    f"{kind[:-1]} {key!r} is set by argo-delivery on every Namespace it renders "
                    f"({reason}); remove it here")


def dashboard_labels_are_not_ours(data: Data) -> Iterator[Problem]:
    labels = ((data.get("monitoring") or {}).get("dashboard") or {}).get("labels", {})
    for key in labels:
        if key in (LABEL_PART_OF, LABEL_VERSION, LABEL_BUNDLE) or key.startswith("argo-delivery.io/"):
            yield ["monitoring", "dashboard", "labels", key], (
                f"label {key!r} is set by argo-delivery on every resource of the bundle (it "
                "identifies the bundle); choose another for the Grafana sidecar")


# Rules of one project: (data, path of the project, project) -> problems.
def known_components(data: Data, base: list[Any], project: Data) -> Iterator[Problem]:
    names = [c["name"] for c in data["components"]]
    for index, name in enumerate(project["components"]):
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            yield base + ["components", index], (f"unknown component {name!r}{hint}; "
                                                 f"known components: {', '.join(names)}")


def unique_project_components(data: Data, base: list[Any], project: Data) -> Iterator[Problem]:
    yield from _duplicates(base + ["components"], project["components"], "component")


def unique_suite_names(data: Data, base: list[Any], project: Data) -> Iterator[Problem]:
    for stream in ("alpha", "nightly"):
        suites = project.get("testSuites", {}).get(stream, [])
        names = [s["name"] for s in suites]
        yield from _duplicates(base + ["testSuites", stream], names, f"{stream} suite name")


def suites_are_plain_text(data: Data, base: list[Any], project: Data) -> Iterator[Problem]:
    """A suite's image, command and args become a container's fields verbatim: Argo would read
    `{{...}}` in them as an expression of its own, so they may not contain it."""
    for stream in ("alpha", "nightly"):
        for index, suite in enumerate(project.get("testSuites", {}).get(stream, [])):
            for key in ("image", "command", "args"):
                values = suite.get(key)
                for position, value in enumerate(values if isinstance(values, list) else [values]):
                    if isinstance(value, str) and "{{" in value:
                        path = base + ["testSuites", stream, index, key]
                        if isinstance(values, list):
                            path.append(position)
                        yield path, (f"{value!r} contains '{{{{', which Argo Workflows would "
                                     "expand as its own expression; suites get the Version's "
                                     "facts as environment variables (AD_VERSION, ...) instead")


def suite_requests_within_limits(data: Data, base: list[Any], project: Data) -> Iterator[Problem]:
    for stream in ("alpha", "nightly"):
        for index, suite in enumerate(project.get("testSuites", {}).get(stream, [])):
            configured = suite.get("resources", {})
            for name in ("cpu", "memory"):
                request = str(configured.get("requests", {}).get(name, DEFAULT_SUITE_REQUESTS[name]))
                limit = str(configured.get("limits", {}).get(name, DEFAULT_SUITE_LIMITS[name]))
                if parse_quantity(request) > parse_quantity(limit):
                    kind = "requests" if name in configured.get("requests", {}) else "limits"
                    yield base + ["testSuites", stream, index, "resources", kind, name], (
                        f"the {name} request {request} is more than the limit {limit}: "
                        "Kubernetes refuses such a container")


def unique_demo_names(data: Data, base: list[Any], project: Data) -> Iterator[Problem]:
    demos = project.get("demoEnvironments", [])
    yield from _duplicates(base + ["demoEnvironments"], [d["name"] for d in demos], "demo environment name")


def default_ttl_within_max(data: Data, base: list[Any], project: Data) -> Iterator[Problem]:
    environments = project.get("environments")
    if environments and parse_duration(environments["defaultTTL"]) > parse_duration(environments["maxTTL"]):
        yield base + ["environments", "defaultTTL"], (f"defaultTTL {environments['defaultTTL']} is "
                                                      f"longer than maxTTL {environments['maxTTL']}")


TTL_MIN = timedelta(minutes=1)
TTL_MAX = timedelta(days=90)


def sensible_ttls(data: Data, base: list[Any], project: Data) -> Iterator[Problem]:
    environments = project.get("environments")
    for key in ("defaultTTL", "maxTTL") if environments else ():
        text = environments[key]
        ttl = parse_duration(text)
        if ttl < TTL_MIN:
            number = re.match(r"[0-9.]+", text)
            hint = f" (did you mean {number.group()}h?)" if number and float(number.group()) else ""
            yield base + ["environments", key], (
                f"{key} {text} is shorter than {format_duration(TTL_MIN)}: an environment would "
                f"be reaped before it is up{hint}")
        elif ttl > TTL_MAX:
            yield base + ["environments", key], (
                f"{key} {text} is longer than {format_duration(TTL_MAX)}: an environment that "
                "lives that long is a demo environment (demoEnvironments, exempt from TTL)")


def _invisible(text: str) -> str | None:
    """What makes `text` read as another string: an invisible or unusual space character."""
    for index, char in enumerate(text):
        category = unicodedata.category(char)
        if category in ("Cc", "Cf", "Co", "Cn", "Zl", "Zp") or (category == "Zs" and char != " "):
            name = unicodedata.name(char, "unnamed character")
            return f"U+{ord(char):04X} {name} at position {index + 1}"
    if text != text.strip():
        return "whitespace at its start or end"
    return None


def visible_group_names(data: Data, base: list[Any], project: Data) -> Iterator[Problem]:
    names = [(["members", role, index], group)
             for role in ("developers", "productOwners")
             for index, group in enumerate(project.get("members", {}).get(role, []))]
    names += [(["demoEnvironments", index, "owner"], demo["owner"])
              for index, demo in enumerate(project.get("demoEnvironments", []))]
    for items, name in names:
        invisible = _invisible(name)
        if invisible:
            yield base + items, (f"group {json.dumps(name)} contains {invisible}; it would match "
                                 "no group the identity provider sends: retype it")


def environments_need_an_image(data: Data, base: list[Any], project: Data) -> Iterator[Problem]:
    if project.get("environments") and not data["images"].get("terraform"):
        yield base + ["environments"], ("environments are vended by images.terraform, which is "
                                        "not set: an image with the engine (tofu or terraform), "
                                        "python3, git and kubectl")


def airgap_export_needs_an_image(data: Data) -> Iterator[Problem]:
    if (data.get("airgap") or {}).get("export") and not data["images"].get("airgap"):
        yield ["airgap", "export"], ("the export runs in images.airgap, which is not set: an "
                                     "image with argo-delivery, skopeo and git (kustomize and "
                                     "helm for those deploy paths, ssh-keygen to sign)")


def module_is_a_git_source(data: Data, base: list[Any], project: Data) -> Iterator[Problem]:
    module = (project.get("environments") or {}).get("terraformModule")
    if module and not re.match(r"^git::[^?]+//[^?]*(\?ref=[^&]+)?$", module):
        yield base + ["environments", "terraformModule"], (
            f"terraformModule {module}: environments are vended from a git module, "
            "git::REPO//PATH?ref=REF (e.g. git::https://git.example.com/infra.git//modules/env?ref=v1)")


def demos_need_environments(data: Data, base: list[Any], project: Data) -> Iterator[Problem]:
    if project.get("demoEnvironments") and not project.get("environments"):
        yield base + ["demoEnvironments"], ("demo environments need the project's `environments` "
                                            "settings (terraformModule, defaultTTL, maxTTL)")


PROJECT_RULES: tuple[Callable[[Data, list[Any], Data], Iterator[Problem]], ...] = (
    known_components,
    unique_project_components,
    unique_suite_names,
    suites_are_plain_text,
    suite_requests_within_limits,
    unique_demo_names,
    default_ttl_within_max,
    sensible_ttls,
    demos_need_environments,
    environments_need_an_image,
    module_is_a_git_source,
    visible_group_names,
)


def each_project(data: Data) -> Iterator[Problem]:
    """PROJECT_RULES, project by project: a project's problems are reported together."""
    for index, project in enumerate(data["projects"]):
        for rule in PROJECT_RULES:
            yield from rule(data, ["projects", index], project)


def known_time_zone(data: Data) -> Iterator[Problem]:
    if "schedules" not in data:
        return
    time_zone = data["schedules"]["timeZone"]
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        yield ["schedules", "timeZone"], (f"expected an IANA time zone such as Europe/Berlin, "
                                          f"found {time_zone!r}")


# As Argo's CronWorkflow reads a schedule (robfig/cron's ParseStandard): five fields, these
# descriptors, or `@every <duration>`. croniter checks the fields' ranges and finds the next run.
_CRON_FIELDS = (("minute", "0-59"), ("hour", "0-23"), ("day-of-month", "1-31"),
                ("month", "1-12 or jan-dec"), ("day-of-week", "0-6 or sun-sat"))
_CRON_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_CRON_NAMES = re.compile(r"jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|sun|mon|tue|wed|thu|fri|sat",
                         re.IGNORECASE)


def _cron_problem(cron: str) -> str | None:
    text = cron.strip()
    if text.startswith("@every"):
        every = text.removeprefix("@every").strip()
        try:
            if "d" not in every and parse_duration(every) > timedelta(0):
                return None
        except ValueError:
            pass
        return f"expected @every <duration> such as @every 1h30m (units ms, s, m, h), found {cron!r}"
    if text.startswith("@"):
        if text in _CRON_DESCRIPTORS:
            return None
        close = difflib.get_close_matches(text, _CRON_DESCRIPTORS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return (f"unknown schedule {cron!r}{hint}; expected 5 cron fields, "
                f"{', '.join(_CRON_DESCRIPTORS)} or @every <duration>")
    fields = text.split()
    if len(fields) != 5:
        return f"expected a cron expression with 5 fields, found {len(fields)} in {cron!r}"
    for index, (name, bounds) in enumerate(_CRON_FIELDS):
        value = fields[index]
        probe = ["*"] * 5
        probe[index] = value
        unsupported = re.search(r"[A-Za-z#]", _CRON_NAMES.sub("", value)) if index >= 3 else \
            re.search(r"[A-Za-z#]", value)
        out_of_range = index == 4 and any(int(n) > 6 for n in re.findall(r"(?<![/0-9])[0-9]+", value))
        if unsupported:
            return (f"{name} field {value!r} of {cron!r} uses syntax Argo's cron parser does not "
                    f"read (L, W, #); expected {bounds}")
        if out_of_range or not croniter.is_valid(" ".join(probe)):
            return f"{name} field {value!r} of {cron!r} is out of range or not understood; expected {bounds}"
    try:
        croniter(text, datetime(2000, 1, 1)).get_next(datetime)
    except CroniterBadDateError:
        return f"{cron!r} never fires: no date matches it"
    except (CroniterBadCronError, CroniterError) as exc:
        return f"{cron!r} is not a valid cron expression ({exc})"
    return None


def valid_crons(data: Data) -> Iterator[Problem]:
    if "schedules" in data:
        for key in ("nightly", "reaper"):
            problem = _cron_problem(data["schedules"][key])
            if problem:
                yield ["schedules", key], problem
    # Velero reads its Schedule with the same parser as Argo (robfig/cron's ParseStandard)
    velero = (data.get("backup") or {}).get("velero")
    if velero and (problem := _cron_problem(velero["schedule"])):
        yield ["backup", "velero", "schedule"], problem


# Go's time.ParseDuration, which Velero's TTL goes through (metav1.Duration): decimal numbers
# each with a unit, optionally signed; no d unit.
_GO_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def go_duration_seconds(text: str) -> float:
    """Seconds of a duration as Go's time.ParseDuration reads it; ValueError otherwise."""
    body = text[1:] if text[:1] in "+-" else text
    if body == "0":
        return 0.0
    pos, seconds = 0, 0.0
    for match in _GO_DURATION_PART.finditer(body):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _GO_UNITS[match.group(2)]
        pos = match.end()
    if not body or pos != len(body):
        raise ValueError(f"not a Go duration: {text!r}")
    return -seconds if text.startswith("-") else seconds


def velero_ttl_is_a_go_duration(data: Data) -> Iterator[Problem]:
    velero = (data.get("backup") or {}).get("velero")
    if not velero or "ttl" not in velero:
        return
    text = velero["ttl"]
    try:
        seconds = go_duration_seconds(text)
    except ValueError:
        try:
            hint = f" (did you mean {go_duration(parse_duration(text))}?)"
        except ValueError:
            hint = ""
        yield ["backup", "velero", "ttl"], (
            f"expected a Go duration such as 720h or 720h0m0s (units h, m, s: Velero reads it "
            f"with Go's time.ParseDuration, which has no d unit), found {text!r}{hint}")
        return
    if seconds <= 0:
        yield ["backup", "velero", "ttl"], (
            f"ttl {text!r} is not a retention: Velero reads 0 as its server's default TTL and "
            "deletes a backup with a negative one at once; give the duration to keep each "
            "backup, such as 720h")


def _providers_where(predicate: Callable[[GitProviderKind], bool]) -> str:
    return " and ".join(kind.type for kind in PROVIDERS.values() if predicate(kind))


def base_url_applies(data: Data) -> Iterator[Problem]:
    provider = data["gitProvider"]
    if provider.get("baseURL") and not PROVIDERS[provider["type"]].base_url:
        yield ["gitProvider", "baseURL"], (
            f"baseURL applies to {_providers_where(lambda k: k.base_url)} only; "
            f"a {provider['type']} webhook needs none")


def api_token_required(data: Data) -> Iterator[Problem]:
    provider = data["gitProvider"]
    if PROVIDERS[provider["type"]].api_token == "required" and "apiToken" not in provider:
        yield ["gitProvider"], (f"{provider['type']} needs apiToken: Argo Events' "
                                f"{PROVIDERS[provider['type']].section} EventSource registers its "
                                "webhook with it")


def webhook_url_has_a_host(data: Data) -> Iterator[Problem]:
    url = data["gitProvider"].get("webhookURL")
    if url and not urlparse(url.strip()).hostname:
        yield ["gitProvider", "webhookURL"], (f"expected the public base URL the provider calls, "
                                               f"such as https://events.example.com, found {url!r}")


def webhook_url_is_a_base(data: Data) -> Iterator[Problem]:
    url = data["gitProvider"].get("webhookURL")
    if url and webhook_base_url(url) != url.strip().rstrip("/"):
        yield ["gitProvider", "webhookURL"], (
            f"webhookURL is the base URL: Argo Events appends {WEBHOOK_ENDPOINT} itself, so "
            f"{url!r} would register {url.rstrip('/')}{WEBHOOK_ENDPOINT}; "
            f"using {webhook_base_url(url)!r}")


def api_token_usable(data: Data) -> Iterator[Problem]:
    provider = data["gitProvider"]
    if provider.get("apiToken") and PROVIDERS[provider["type"]].api_token == "unsupported":
        yield ["gitProvider", "apiToken"], (
            f"apiToken applies to {_providers_where(lambda k: k.api_token != 'unsupported')} only")
    elif provider.get("apiToken") and not provider.get("webhookURL"):
        yield ["gitProvider"], ("apiToken needs webhookURL: the public URL the provider calls, "
                                "at which the webhook is registered")


def _on_the_shared_webhook(data: Data) -> list[str]:
    """Names of the projects without a webhook secret of their own."""
    return [project["name"] for project in data["projects"] if "webhookSecret" not in project]


def shared_webhook_secret_when_used(data: Data) -> Iterator[Problem]:
    shared = _on_the_shared_webhook(data)
    if shared and "webhookSecret" not in data["gitProvider"]:
        names = ", ".join(repr(name) for name in shared)
        who, has, its = ("projects", "have", "their") if len(shared) > 1 else ("project", "has", "its")
        yield ["gitProvider"], (
            f"missing required key 'webhookSecret': {who} {names} {has} no webhookSecret of {its} "
            f"own, so {its} pushes arrive at the shared endpoint {WEBHOOK_ENDPOINT}, verified with "
            "gitProvider.webhookSecret")


def webhook_secrets_are_their_own(data: Data) -> Iterator[Problem]:
    """A project's own webhook secret shared with another endpoint isolates nothing: whoever
    knows it sends pushes to both."""
    seen: dict[tuple[str, str], str] = {}
    shared = data["gitProvider"].get("webhookSecret")
    if shared and _on_the_shared_webhook(data):
        seen[(shared["name"], shared["key"])] = "the shared endpoint's secret (gitProvider.webhookSecret)"
    for index, project in enumerate(data["projects"]):
        ref = project.get("webhookSecret")
        if not ref:
            continue
        mine = f"the secret of project {project['name']!r} (projects[{index}].webhookSecret)"
        other = seen.setdefault((ref["name"], ref["key"]), mine)
        if other != mine:
            yield ["projects", index, "webhookSecret"], (
                f"Secret {ref['name']!r} key {ref['key']!r} is already {other}: whoever knows it "
                f"could send pushes for both; give project {project['name']!r} a key of its own, "
                "or no webhookSecret to use the shared endpoint")


def _image_policy(data: Data, images_lock: ImagesLock | None = None) -> Callable[[str], str]:
    """The reference the cluster pulls for a configured one (ImageError if it breaks policy):
    pinned by the images lock's digest if it holds the image, then moved under the mirror."""
    registry = data.get("registry", {})
    mirror = registry.get("mirror")

    def resolve(reference: str) -> str:
        pinned = reference if images_lock is None else _pin(reference, images_lock, mirror)
        if registry.get("requireDigests", False) and not parse_image(pinned).digest:
            if images_lock is None:
                raise ImageError(
                    f"image {reference!r} is not pinned by digest; registry.requireDigests is on, "
                    "so write it as name:tag@sha256:<digest>, or render with an images lock that "
                    "holds it (--images-lock FILE, written by `argo-delivery images lock`)")
            raise ImageError(
                f"image {reference!r} is not pinned by digest and the images lock holds no "
                f"{parse_image(reference)}; registry.requireDigests is on, so run `argo-delivery "
                "images lock` to lock it, add it to the lock, or write it as "
                "name:tag@sha256:<digest>")
        return rewrite_image(pinned, mirror)
    return resolve


def _locked_entries(reference: str, images_lock: ImagesLock, mirror: str | None) -> list[LockedImage]:
    """What the lock holds for a configured image, keyed as the config writes it (Docker's
    defaults explicit) or by its tag alone when it carries a digest; each key also as the
    cluster pulls it under `mirror` (a lock made over a mirrored bundle). For an image written
    by tag alone that no such key holds, the lock's entries of that tag written with a digest
    (a lock made over manifests already pinned)."""
    image = parse_image(reference)

    def keys(ref: ImageRef) -> set[str]:
        return {str(ref), rewrite_image(str(ref), mirror)} if mirror else {str(ref)}

    by_tag = keys(ImageRef(image.registry, image.repository, image.tag, None)) if image.tag else set()
    wanted = keys(image) | by_tag
    entries = [entry for key, entry in sorted(images_lock.images.items()) if key in wanted]
    if not entries and by_tag and not image.digest:
        entries = [entry for _, entry in sorted(images_lock.images.items())
                   if entry.ref.digest and entry.ref.tag and
                   str(ImageRef(entry.ref.registry, entry.ref.repository, entry.ref.tag, None)) in by_tag]
    return entries


def _pin(reference: str, images_lock: ImagesLock, mirror: str | None) -> str:
    """`reference` fully qualified and pinned by the lock's digest (unpinned if the lock does
    not hold it); ImageError if the lock contradicts the config's digest, or itself."""
    image = parse_image(reference)
    entries = _locked_entries(reference, images_lock, mirror)
    for entry in entries:
        if image.digest and entry.digest != image.digest:
            raise ImageError(
                f"image {reference!r} is pinned to {image.digest} here, but the images lock gives "
                f"{entry.image} the digest {entry.digest}: make them agree (correct the digest "
                "here, or run `argo-delivery images lock` again)")
    digests = sorted({entry.digest for entry in entries})
    if len(digests) > 1:
        raise ImageError(f"image {reference!r}: the images lock gives it {len(digests)} digests "
                         f"({', '.join(f'{e.image} {e.digest}' for e in entries)}); keep one")
    if not digests:
        return str(image)
    return str(ImageRef(image.registry, image.repository, image.tag, digests[0]))


def _unused_lock_entries(data: Data, images_lock: ImagesLock) -> list[str]:
    """The lock's images no configured image (nor a JetStream image) uses."""
    mirror = data.get("registry", {}).get("mirror")
    references = [reference for _, reference in _configured_images(data)] + _eventbus_references(data)
    used = {entry.image for reference in references
            for entry in _locked_entries(reference, images_lock, mirror)}
    return sorted(set(images_lock.images) - used)


# images.<key> -> its default (None: no default), in the order they are checked
IMAGE_DEFAULTS: dict[str, str | None] = {
    "python": None, "git": None, "terraform": None, "airgap": None,
    "argoExec": ARGO_EXEC_IMAGE, "argoEvents": ARGO_EVENTS_IMAGE,
}


def _configured_images(data: Data) -> Iterator[tuple[list[Any], str]]:
    for key, default in IMAGE_DEFAULTS.items():
        if key in data["images"]:
            yield ["images", key], data["images"][key]
        elif default:
            yield ["images"], default  # located at the block that could set it
    for p_index, project in enumerate(data["projects"]):
        for stream, suites in project.get("testSuites", {}).items():
            for s_index, suite in enumerate(suites):
                yield ["projects", p_index, "testSuites", stream, s_index, "image"], suite["image"]
        if sweep := project.get("environments", {}).get("leakSweep"):
            yield ["projects", p_index, "environments", "leakSweep", "image"], sweep["image"]


def _eventbus_references(data: Data) -> list[str]:
    """The JetStream images, each with its digest from registry.eventBusDigests if given."""
    digests = data.get("registry", {}).get("eventBusDigests", {})
    return [f"{image}@{digests[image]}" if image in digests else image for image in JETSTREAM_IMAGES]


def images_follow_the_registry_policy(data: Data, images_lock: ImagesLock | None = None) -> Iterator[Problem]:
    resolve = _image_policy(data, images_lock)
    for items, reference in _configured_images(data):
        try:
            resolve(reference)
        except ImageError as exc:
            yield items, str(exc)


def eventbus_digests_name_eventbus_images(data: Data) -> Iterator[Problem]:
    for image in data.get("registry", {}).get("eventBusDigests", {}):
        if image not in JETSTREAM_IMAGES:
            close = difflib.get_close_matches(str(image), JETSTREAM_IMAGES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            yield ["registry", "eventBusDigests", image], (
                f"{image!r} is not an EventBus image{hint}; they are: {', '.join(JETSTREAM_IMAGES)}")


def eventbus_images_pinned(data: Data, images_lock: ImagesLock | None = None) -> Iterator[Problem]:
    # The Argo Events controller chooses these images, so no config field names them: they
    # are located at their registry.eventBusDigests entry, or at the setting that demands
    # the digests.
    registry = data.get("registry", {})
    digests = registry.get("eventBusDigests", {})
    unpinned = []
    for image, reference in zip(JETSTREAM_IMAGES, _eventbus_references(data), strict=True):
        if images_lock is not None:
            try:
                reference = _pin(reference, images_lock, registry.get("mirror"))
            except ImageError as exc:  # the lock contradicts eventBusDigests (or itself)
                yield (["registry", "eventBusDigests", image] if image in digests
                       else ["registry"]), str(exc)
                continue
        if "@" not in reference:
            unpinned.append(image)
    if unpinned and registry.get("requireDigests"):
        yield ["registry", "requireDigests"], (
            f"the EventBus's JetStream images {', '.join(unpinned)} are not pinned by digest; "
            "give each one's digest in registry.eventBusDigests (image: sha256:<digest>) and "
            "point the Argo Events controller's eventBus.jetstream images at the same digests"
            + ("; the images lock holds none of them either: run `argo-delivery images lock`, "
               "or add them to the lock" if images_lock is not None else
               " (or render with an images lock that holds them: --images-lock FILE)"))


# --- isolation: quotas, container defaults, network peers -------------------------------------

def _quantities(data: Data) -> Iterator[tuple[list[Any], str, Any]]:
    """(path items, Kubernetes resource name, value) of every cpu and memory quantity."""
    isolation = data.get("isolation", {})
    quotas = [(["isolation", key], isolation.get(key, {})) for key in ("quota", "orchestratorQuota")]
    quotas += [(["projects", index, "quota"], project.get("quota", {}))
               for index, project in enumerate(data["projects"])]
    for base, quota in quotas:
        yield from ((base + [key], key, value) for key, value in quota.items() if key != "pods")
    for kind in ("requests", "limits"):
        for name, value in isolation.get("containerDefaults", {}).get(kind, {}).items():
            yield ["isolation", "containerDefaults", kind, name], name, value


def memory_in_bytes(data: Data) -> Iterator[Problem]:
    for items, name, value in _quantities(data):
        text = str(value)
        if name.endswith("memory") and text.endswith("m"):
            yield items, (f"{text} is {text[:-1]} thousandths of a byte (m is milli); "
                          f"did you mean {text[:-1]}Mi?")


def _container_defaults(data: Data) -> dict[str, dict[str, str]]:
    configured = data.get("isolation", {}).get("containerDefaults", {})
    return {kind: {**default, **{k: str(v) for k, v in configured.get(kind, {}).items()}}
            for kind, default in (("requests", DEFAULT_CONTAINER_REQUESTS),
                                  ("limits", DEFAULT_CONTAINER_LIMITS))}


def container_defaults_fit(data: Data) -> Iterator[Problem]:
    defaults = _container_defaults(data)
    configured = data.get("isolation", {}).get("containerDefaults", {})
    for name in ("cpu", "memory"):
        request, limit = defaults["requests"][name], defaults["limits"][name]
        if parse_quantity(request) > parse_quantity(limit):
            kind = "requests" if name in configured.get("requests", {}) else "limits"
            yield ["isolation", "containerDefaults", kind, name], (
                f"the default {name} request {request} is more than the default limit {limit}: "
                "Kubernetes refuses such a LimitRange (a default request must not exceed the "
                "default limit)")


def _quota(data: Data, project: Data) -> dict[str, str]:
    return {key: str(value) for key, value in
            {**DEFAULT_QUOTA, **data.get("isolation", {}).get("quota", {}),
             **project.get("quota", {})}.items()}


def quotas_hold_a_defaulted_container(data: Data) -> Iterator[Problem]:
    """A quota smaller than one container's defaults refuses every pod of Argo's (its init and
    wait containers take the defaults), so no workflow would run in the project."""
    defaults = _container_defaults(data)
    reported = set()
    for index, project in enumerate(data["projects"]):
        quota = _quota(data, project)
        for kind in ("requests", "limits"):
            for name in ("cpu", "memory"):
                key = f"{kind}.{name}"
                if parse_quantity(quota[key]) >= parse_quantity(defaults[kind][name]):
                    continue
                where = (["projects", index, "quota", key] if key in project.get("quota", {})
                         else ["isolation", "quota", key])
                if tuple(where) not in reported:
                    reported.add(tuple(where))
                    yield where, (f"{key} {quota[key]} is less than one container's default "
                                  f"{name} {kind[:-1]} {defaults[kind][name]} "
                                  "(isolation.containerDefaults): the quota would refuse every "
                                  "workflow pod (Argo's init and wait containers take the defaults)")


def _network_peers(data: Data) -> Iterator[tuple[list[Any], Data]]:
    for index, peer in enumerate(data.get("isolation", {}).get("webhookFrom", [])):
        yield ["isolation", "webhookFrom", index], peer


def network_peers_name_one_source(data: Data) -> Iterator[Problem]:
    for items, peer in _network_peers(data):
        if "podLabels" in peer and "namespace" not in peer:
            yield items + ["podLabels"], "podLabels select pods of a namespace: name the namespace"
        elif ("cidr" in peer) == ("namespace" in peer):
            yield items, ("name either cidr (an IP block) or namespace (with podLabels, "
                          "some of its pods), " + ("not both" if "cidr" in peer else "found neither"))


def cidrs_parse(data: Data) -> Iterator[Problem]:
    cidrs = [(items + ["cidr"], peer["cidr"]) for items, peer in _network_peers(data) if "cidr" in peer]
    cidrs += [(["isolation", "egressTo", index], cidr)
              for index, cidr in enumerate(data.get("isolation", {}).get("egressTo", []))]
    for items, text in cidrs:
        try:
            ipaddress.ip_network(text)
        except ValueError:
            try:
                close = ipaddress.ip_network(text, strict=False)
                hint = f": its address has bits set beyond the prefix (did you mean {close}?)"
            except ValueError:
                hint = ""
            yield items, f"expected a CIDR such as 10.0.0.0/8 or 2001:db8::/32, found {text!r}{hint}"


# What the schema cannot express, in the order problems are reported. Each rule runs on
# schema-valid data and yields (path items, message).
# generate-version's limits (templates/generate_version.py renders them): the step's deadline,
# Argo's retries of it with their backoff, the Workflow's deadline; and the step's own pause
# between two tries of a git call (1 s, doubling, at most 30 s).
GIT_STEP_DEADLINE_SECONDS = 600
GIT_STEP_RETRIES = 2
GIT_STEP_BACKOFF_SECONDS = (10, 20)         # Backoff(duration=10s, factor=2), one per retry
GENERATE_VERSION_DEADLINE_SECONDS = 900
# Room for each attempt's pod to start and the step to read the Project and write the Version.
GIT_STEP_OVERHEAD_SECONDS = 30


def git_step_seconds(timeout: float, attempts: int) -> float:
    """The longest one try of generate-version's step spends on a git server that never
    answers: every call's timeout, and the pauses between the calls."""
    return attempts * timeout + sum(min(2.0 ** i, 30.0) for i in range(attempts - 1))


def git_calls_fit_the_deadlines(data: Data) -> Iterator[Problem]:
    provider = data["gitProvider"]
    timeout = parse_duration(provider.get("timeout", "60s")).total_seconds()
    attempts = provider.get("attempts", 4)
    where = ["gitProvider", "timeout" if "timeout" in provider else "attempts"]
    if timeout < 1 or timeout != int(timeout):
        yield ["gitProvider", "timeout"], (
            f"timeout {provider['timeout']} is not a whole number of seconds (at least 1s)")
        return
    one = git_step_seconds(timeout, attempts) + GIT_STEP_OVERHEAD_SECONDS
    every = (GIT_STEP_RETRIES + 1) * one + sum(GIT_STEP_BACKOFF_SECONDS)
    if one > GIT_STEP_DEADLINE_SECONDS:
        yield where, (
            f"{attempts} attempts of {timeout:g}s (and the pauses between them) take up to "
            f"{one:g}s, longer than the step's deadline of {GIT_STEP_DEADLINE_SECONDS}s: a git "
            "server that never answers would be cut off by the deadline, without the step's "
            "message; lower timeout or attempts")
    elif every > GENERATE_VERSION_DEADLINE_SECONDS:
        yield where, (
            f"{attempts} attempts of {timeout:g}s, in each of the step's {GIT_STEP_RETRIES + 1} "
            f"tries, take up to {every:g}s, longer than generate-version's deadline of "
            f"{GENERATE_VERSION_DEADLINE_SECONDS}s: a git server that never answers would end "
            "the run at its deadline, without the step's message; lower timeout or attempts")


CROSS_FIELD_RULES: tuple[Callable[[Data], Iterator[Problem]], ...] = (
    unique_component_names,
    repository_urls_parse,
    repos_use_a_secure_transport,
    repos_on_the_provider,
    ssh_repos_have_credentials,
    one_component_per_branch,
    git_calls_fit_the_deadlines,
    repository_ids_sent_by_the_provider,
    repository_ids_name_one_repository,
    unique_project_names,
    project_namespaces_are_their_own,
    orchestrator_namespace_not_reserved,
    namespace_labels_are_not_ours,
    dashboard_labels_are_not_ours,
    each_project,
    airgap_export_needs_an_image,
    known_time_zone,
    valid_crons,
    velero_ttl_is_a_go_duration,
    base_url_applies,
    api_token_required,
    webhook_url_has_a_host,
    api_token_usable,
    shared_webhook_secret_when_used,
    webhook_secrets_are_their_own,
    images_follow_the_registry_policy,
    eventbus_digests_name_eventbus_images,
    eventbus_images_pinned,
    memory_in_bytes,
    container_defaults_fit,
    quotas_hold_a_defaulted_container,
    network_peers_name_one_source,
    cidrs_parse,
)

# The rules that read the images lock `parse_config` is given (keyword `images_lock`).
IMAGES_LOCK_RULES = frozenset({images_follow_the_registry_policy, eventbus_images_pinned})


# --- rules that read any document: they run with the schema, on whatever was parsed ---------

_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<userinfo>[^/\s?#@]*)@")


def _redact(text: str) -> str:
    """`text` with the user and password of every URL in it replaced by ***."""
    return _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}://***@", text)


def _has_credentials(text: str) -> bool:
    for match in _URL_USERINFO.finditer(text):
        user, _, password = match.group("userinfo").partition(":")
        # ssh://git@host names an account, not a secret; a user over http(s) is a token
        if password or (user and match.group("scheme").lower() in ("http", "https")):
            return True
    return False


def _strings(value: Any, path: list[Any]) -> Iterator[tuple[list[Any], str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, path + [key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, path + [index])


def no_credentials_in_urls(data: Data) -> Iterator[Problem]:
    """A credential in any URL of the config would be copied into the rendered resources,
    readable by whoever can read those (every project's members can read their Project)."""
    for items, text in _strings(data, []):
        if items == ["registry", "mirror"] and "@" in text:
            yield items, ("registry credentials do not belong in registry.mirror (found "
                          f"{json.dumps(_redact(text.split('@')[-1]))} after a user part): give them "
                          "to the cluster as image pull secrets or in the container runtime's config")
        elif _has_credentials(text):
            if items[:1] == ["gitProvider"]:
                where = ("the provider's API token belongs in gitProvider.apiToken, the webhook "
                         "secret in gitProvider.webhookSecret, git credentials in the Secret "
                         "named by gitProvider.credentialsSecret")
            elif items[:1] == ["components"] or items[-1:] == ["terraformModule"]:
                where = "git credentials belong in the Secret named by gitProvider.credentialsSecret"
            else:
                where = ("a secret belongs in a Kubernetes Secret, never in the config (git "
                         "credentials: the Secret named by gitProvider.credentialsSecret)")
            yield items, (f"credentials in a URL ({_redact(text)}) would be copied into the "
                          "rendered resources and readable by everyone who can read them; "
                          f"remove them: {where}")


# Run on any parsed document, together with the schema (a credential is refused even when
# the rest of the file is still broken).
DOCUMENT_RULES: tuple[Callable[[Data], Iterator[Problem]], ...] = (
    no_credentials_in_urls,
)


# --- warnings and notes: a valid config may still be a mistake -------------------------------

def every_component_is_used(data: Data) -> Iterator[Problem]:
    used = {name for project in data["projects"] for name in project["components"]}
    for index, component in enumerate(data["components"]):
        if component["name"] not in used:
            yield ["components", index, "name"], (
                f"component {component['name']!r} is used by no project, so a push to it starts "
                "nothing; add it to a project's components or remove it")


def ssh_repos_on_the_provider(data: Data) -> Iterator[Problem]:
    provider = data["gitProvider"]
    root = provider_root(provider["type"], provider.get("baseURL"))
    if root is None:
        return
    for index, component in enumerate(data["components"]):
        located = _repo_host_and_path(component["repo"])
        if _transport(component["repo"]) in ("https", "http") or located is None:
            continue
        if located[0] != root[0]:
            yield ["components", index, "repo"], (
                f"the repository's host {located[0]} is not the provider's ({root[0]}); unless "
                "it is another name of the same server, no push webhook will be about it")


def shared_webhook_secret_is_used(data: Data) -> Iterator[Problem]:
    if "webhookSecret" in data["gitProvider"] and not _on_the_shared_webhook(data):
        yield ["gitProvider", "webhookSecret"], (
            "every project has a webhookSecret of its own, so nothing listens at the shared "
            f"endpoint {WEBHOOK_ENDPOINT} and this secret is not used; remove it")


def namespace_settings_need_namespaces(data: Data) -> Iterator[Problem]:
    settings = data.get("namespaces", {})
    if settings.get("manage", True) is False:
        for kind in ("labels", "annotations"):
            if settings.get(kind):
                yield ["namespaces", kind], (f"namespaces.{kind} change nothing with "
                                             "namespaces.manage: false (no Namespace is rendered)")


def dashboard_settings_need_the_dashboard(data: Data) -> Iterator[Problem]:
    settings = (data.get("monitoring") or {}).get("dashboard") or {}
    if not settings.get("enabled", False):
        for key in ("namespace", "labels", "annotations"):
            if key in settings:
                yield ["monitoring", "dashboard", key], (
                    f"monitoring.dashboard.{key} changes nothing without "
                    "monitoring.dashboard.enabled: true (no dashboard is rendered)")
    elif settings.get("labels") == {}:
        yield ["monitoring", "dashboard", "labels"], (
            "no labels: the Grafana sidecar finds dashboards by label, so this one is only "
            "imported by hand (its JSON is the ConfigMap's key argo-delivery.json)")


WARNING_RULES: tuple[Callable[[Data], Iterator[Problem]], ...] = (
    every_component_is_used,
    webhook_url_is_a_base,
    ssh_repos_on_the_provider,
    namespace_settings_need_namespaces,
    shared_webhook_secret_is_used,
    dashboard_settings_need_the_dashboard,
)


def next_runs(data: Data) -> Iterator[Problem]:
    if "schedules" not in data:
        return
    schedules = data["schedules"]
    zone = ZoneInfo(schedules["timeZone"])
    now = datetime.now(zone)
    for key in ("nightly", "reaper"):
        cron = schedules[key].strip()
        if cron.startswith("@every"):
            continue
        upcoming = croniter(cron, now).get_next(datetime)
        wait = timedelta(minutes=round((upcoming - now).total_seconds() / 60))
        yield ["schedules", key], (f"{cron!r} next fires at {upcoming:%Y-%m-%d %H:%M} "
                                   f"{schedules['timeZone']} (in {format_duration(wait)})")


NOTE_RULES: tuple[Callable[[Data], Iterator[Problem]], ...] = (
    next_runs,
)


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def _build(data: Data, images_lock: ImagesLock | None = None) -> PlatformConfig:
    # The rules above have reported every image the policy refuses, so this cannot raise.
    resolve = _image_policy(data, images_lock)
    components = tuple(
        Component(c["name"], c["repo"], c["branch"], c.get("deployPath", "deploy"), c.get("repositoryId"))
        for c in data["components"]
    )
    by_name = {c.name: c for c in components}

    def suites(items: list[dict[str, Any]]) -> tuple[TestSuite, ...]:
        return tuple(TestSuite(s["name"], resolve(s["image"]), s["timeout"], tuple(s.get("command", ())),
                               tuple(s.get("args", ())),
                               {**DEFAULT_SUITE_REQUESTS, **{k: str(v) for k, v in s.get(
                                   "resources", {}).get("requests", {}).items()}},
                               {**DEFAULT_SUITE_LIMITS, **{k: str(v) for k, v in s.get(
                                   "resources", {}).get("limits", {}).items()}}) for s in items)

    projects = []
    for p in data["projects"]:
        env = p.get("environments")
        members = p.get("members", {})
        projects.append(Project(
            name=p["name"],
            namespace=p.get("namespace", p["name"]),
            type=p["type"],
            components=tuple(by_name[name] for name in p["components"]),
            developers=tuple(members.get("developers", ())),
            product_owners=tuple(members.get("productOwners", ())),
            alpha=suites(p.get("testSuites", {}).get("alpha", [])),
            nightly=suites(p.get("testSuites", {}).get("nightly", [])),
            environments=EnvironmentDefaults(
                env["terraformModule"], env["defaultTTL"], env["maxTTL"],
                dict(env.get("variables", {})), env.get("credentialsSecret"),
                LeakSweep(resolve(sweep["image"]), tuple(sweep.get("command", ())),
                          tuple(sweep.get("args", ())), sweep.get("timeout", "10m"))
                if (sweep := env.get("leakSweep")) else None) if env else None,
            demo_environments=tuple(DemoEnvironment(d["name"], d["owner"], dict(d.get("variables", {})))
                                    for d in p.get("demoEnvironments", [])),
            quota=_quota(data, p),
            webhook_secret=SecretKeyRef(**p["webhookSecret"]) if "webhookSecret" in p else None,
        ))
    registry = data.get("registry", {})
    provider = data["gitProvider"]
    namespaces = data.get("namespaces", {})
    return PlatformConfig(
        bundle_name=data["bundle"]["name"],
        bundle_version=data["bundle"]["version"],
        orchestrator_namespace=data["orchestrator"]["namespace"],
        components=components,
        projects=tuple(projects),
        images=Images(**{_snake(key): resolve(data["images"].get(key, default))
                         for key, default in IMAGE_DEFAULTS.items()
                         if key in data["images"] or default}),
        registry=Registry(registry.get("mirror"), bool(registry.get("requireDigests", False))),
        schedules=Schedules(data["schedules"]["timeZone"], data["schedules"]["nightly"],
                            data["schedules"]["reaper"],
                            data["schedules"].get("nightlyVersions", 1))
        if "schedules" in data else None,
        git_provider=GitProvider(provider["type"], SecretKeyRef(**provider["webhookSecret"])
                                 if "webhookSecret" in provider else None,
                                 provider.get("baseURL"),
                                 provider.get("credentialsSecret", {}).get("name"),
                                 webhook_base_url(provider["webhookURL"])
                                 if "webhookURL" in provider else None,
                                 SecretKeyRef(**provider["apiToken"]) if "apiToken" in provider
                                 else None,
                                 int(parse_duration(provider.get("timeout", "60s")).total_seconds()),
                                 provider.get("attempts", 4)),
        eventbus_images=tuple(resolve(image) for image in _eventbus_references(data)),
        namespaces=Namespaces(namespaces.get("manage", True), dict(namespaces.get("labels", {})),
                              dict(namespaces.get("annotations", {}))),
        trigger_rate_limit=RateLimit(limit["requestsPerUnit"], limit["unit"])
        if (limit := data["orchestrator"].get("triggerRateLimit")) else DEFAULT_TRIGGER_RATE_LIMIT,
        isolation=_isolation(data),
        environments=EnvironmentSettings(
            settings.get("engine", "tofu"),
            dict(settings["artifactRepositoryRef"]) if "artifactRepositoryRef" in settings else None,
            settings.get("expiryWarning", "1h"), settings.get("applyTimeout", "30m"))
        if (settings := data.get("environments")) else EnvironmentSettings(),
        airgap=_airgap(data.get("airgap") or {}),
        monitoring=_monitoring(data.get("monitoring") or {}),
        velero=_velero(velero) if (velero := (data.get("backup") or {}).get("velero")) else None,
    )


def _velero(settings: Data) -> VeleroSettings:
    return VeleroSettings(settings["schedule"].strip(), settings.get("ttl", "720h"),
                          settings.get("storageLocation"), settings.get("namespace", "velero"),
                          dict(settings.get("labels", {})))


_MONITORING_KEYS = {"prometheusRule": "prometheus_rule", "podMonitors": "pod_monitors",
                    "workflowsNamespace": "workflows_namespace",
                    "workflowsMetricsScheme": "workflows_metrics_scheme", "failures": "failures",
                    "failureWindow": "failure_window", "versionWithin": "version_within",
                    "stuckAfter": "stuck_after", "expiryGrace": "expiry_grace",
                    "reaperSilentFor": "reaper_silent_for"}


def _dashboard(settings: Data) -> DashboardSettings:
    return DashboardSettings(bool(settings.get("enabled", False)), settings.get("namespace"),
                             dict(settings.get("labels", DASHBOARD_SIDECAR_LABELS)),
                             dict(settings.get("annotations", {})))


def _monitoring(settings: Data) -> MonitoringSettings:
    return MonitoringSettings(labels=dict(settings.get("labels", {})),
                              dashboard=_dashboard(settings.get("dashboard") or {}),
                              scrape_from=tuple(
                                  NetworkPeer(p.get("cidr"), p.get("namespace"),
                                              dict(p.get("podLabels", {})))
                                  for p in settings.get("scrapeFrom", [])),
                              **{field_: settings[key] for key, field_ in _MONITORING_KEYS.items()
                                 if key in settings})


def _airgap(settings: Data) -> AirgapSettings:
    signing = settings.get("signingKeySecret")
    return AirgapSettings(
        bool(settings.get("export", False)),
        dict(settings["artifactRepositoryRef"]) if "artifactRepositoryRef" in settings else None,
        tuple(settings.get("insecureRegistries", ())), settings.get("registryAuthSecret"),
        SecretKeyRef(**signing) if signing else None, settings.get("timeout", "30m"))


def _isolation(data: Data) -> Isolation:
    isolation = data.get("isolation", {})
    defaults = _container_defaults(data)
    return Isolation(
        webhook_from=tuple(NetworkPeer(p.get("cidr"), p.get("namespace"), dict(p.get("podLabels", {})))
                           for p in isolation.get("webhookFrom", [])),
        egress_to=tuple(isolation["egressTo"]) if "egressTo" in isolation else None,
        container_requests=defaults["requests"], container_limits=defaults["limits"],
        orchestrator_quota={key: str(value) for key, value in isolation.get("orchestratorQuota", {}).items()})
