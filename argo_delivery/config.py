"""The platform configuration: load one YAML file, validate it, return typed objects.

Validation happens in three layers, and every problem of a layer is reported at once:
YAML syntax (with line and column), then the JSON Schema shipped in the package (with the
field path, what was expected and what was found) together with what any document is
checked for (duplicate keys, credentials in a URL), then the cross-field rules a schema
cannot express (names that must exist, names that must be unique, images the registry
policy refuses). The typed config holds every image resolved under that policy, as the cluster
pulls it: renderers use it as is.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache, partial
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jsonschema
import yaml

from argo_delivery.durations import parse_duration
from argo_delivery.images import ImageError, rewrite_image
from argo_delivery.jetstream import JETSTREAM_IMAGES
from argo_delivery.providers import PROVIDERS, GitProviderKind
from argo_delivery.versionhash import normalise_repo

__all__ = [
    "Component",
    "ConfigError",
    "ConfigProblem",
    "DemoEnvironment",
    "EnvironmentDefaults",
    "GitProvider",
    "Images",
    "PlatformConfig",
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
]

DEFAULT_CONFIG_NAME = "<embedded default platform>"


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a config file, located as precisely as we can."""

    source: str
    message: str
    path: str = ""
    line: int | None = None
    column: int | None = None

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


@dataclass(frozen=True)
class TestSuite:
    name: str
    image: str  # resolved: what the cluster pulls
    timeout: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class DemoEnvironment:
    name: str
    owner: str
    variables: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EnvironmentDefaults:
    terraform_module: str
    default_ttl: str
    max_ttl: str
    variables: dict[str, str] = field(default_factory=dict)


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


@dataclass(frozen=True)
class Images:
    """Resolved under the registry policy: fully qualified, mirrored, what the cluster pulls."""

    python: str
    git: str
    terraform: str


@dataclass(frozen=True)
class Registry:
    mirror: str | None = None
    require_digests: bool = False


@dataclass(frozen=True)
class Schedules:
    time_zone: str
    nightly: str
    reaper: str


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
    webhook_secret: SecretKeyRef
    base_url: str | None = None
    credentials_secret: str | None = None
    webhook_url: str | None = None
    api_token: SecretKeyRef | None = None


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
    schedules: Schedules
    git_provider: GitProvider
    # What the Argo Events controller runs for the EventBus, resolved like `images`.
    eventbus_images: tuple[str, ...]

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


def load_default() -> PlatformConfig:
    """The embedded default platform."""
    return parse_config(default_config_text(), DEFAULT_CONFIG_NAME)


def load_config(path: str | Path | None) -> PlatformConfig:
    """Load and validate a config file; `None` means the embedded default."""
    if path is None:
        return load_default()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(str(path), "no such file")]) from None
    except IsADirectoryError:
        raise ConfigError([ConfigProblem(str(path), "is a directory, expected a YAML file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigProblem(str(path), f"cannot read: {exc}")]) from None
    return parse_config(text, str(path))


def parse_config(text: str, source: str = "<string>") -> PlatformConfig:
    """Validate config text; raise ConfigError listing every problem."""
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

    def located(rules: tuple[Callable[[Data], Iterator[Problem]], ...]) -> list[ConfigProblem]:
        return [ConfigProblem(source, message, _format_path(items), *_position(node, items))
                for rule in rules for items, message in rule(data)]

    refused = located(DOCUMENT_RULES)
    problems = list(_duplicate_keys(node, source)) + refused
    # a value a document rule refused (a credential, say) is not also shown by the schema
    problems += [problem for problem in (_schema_problem(error, node, source)
                                         for error in _schema_errors(data))
                 if problem.path not in {refusal.path for refusal in refused}]
    if problems:
        raise ConfigError(problems)
    problems = located(CROSS_FIELD_RULES)
    if problems:
        raise ConfigError(problems)
    return _build(data)


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
    elif validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        message = f"expected {expected}, found {_describe(instance)}"
    elif validator == "enum":
        message = f"expected one of {', '.join(map(str, error.validator_value))}, found {_describe(instance)}"
    elif validator == "pattern":
        expected = schema.get("x-expected") or f"a value matching {error.validator_value}"
        message = f"expected {expected}, found {_describe(instance)}"
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


def _position(root: yaml.Node | None, path_items: list[Any],
              key: bool = False) -> tuple[int | None, int | None]:
    """Line and column (1-based) of the node at `path_items`, or of its nearest parent."""
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
    if node is None:
        return None, None
    return node.start_mark.line + 1, node.start_mark.column + 1


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


def unique_project_names(data: Data) -> Iterator[Problem]:
    yield from _duplicates(["projects"], [p["name"] for p in data["projects"]], "project name")


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
        if namespace.startswith("kube-") or namespace == "default":
            yield where, f"namespace {namespace!r} is reserved; choose another"


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


def unique_demo_names(data: Data, base: list[Any], project: Data) -> Iterator[Problem]:
    demos = project.get("demoEnvironments", [])
    yield from _duplicates(base + ["demoEnvironments"], [d["name"] for d in demos], "demo environment name")


def default_ttl_within_max(data: Data, base: list[Any], project: Data) -> Iterator[Problem]:
    environments = project.get("environments")
    if environments and parse_duration(environments["defaultTTL"]) > parse_duration(environments["maxTTL"]):
        yield base + ["environments", "defaultTTL"], (f"defaultTTL {environments['defaultTTL']} is "
                                                      f"longer than maxTTL {environments['maxTTL']}")


def demos_need_environments(data: Data, base: list[Any], project: Data) -> Iterator[Problem]:
    if project.get("demoEnvironments") and not project.get("environments"):
        yield base + ["demoEnvironments"], ("demo environments need the project's `environments` "
                                            "settings (terraformModule, defaultTTL, maxTTL)")


PROJECT_RULES: tuple[Callable[[Data, list[Any], Data], Iterator[Problem]], ...] = (
    known_components,
    unique_project_components,
    unique_suite_names,
    unique_demo_names,
    default_ttl_within_max,
    demos_need_environments,
)


def each_project(data: Data) -> Iterator[Problem]:
    """PROJECT_RULES, project by project: a project's problems are reported together."""
    for index, project in enumerate(data["projects"]):
        for rule in PROJECT_RULES:
            yield from rule(data, ["projects", index], project)


def known_time_zone(data: Data) -> Iterator[Problem]:
    time_zone = data["schedules"]["timeZone"]
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        yield ["schedules", "timeZone"], (f"expected an IANA time zone such as Europe/Berlin, "
                                          f"found {time_zone!r}")


def five_field_crons(data: Data) -> Iterator[Problem]:
    for key in ("nightly", "reaper"):
        cron = data["schedules"][key]
        if len(cron.split()) != 5 and not cron.startswith("@"):
            yield ["schedules", key], (f"expected a cron expression with 5 fields, found "
                                       f"{len(cron.split())} in {cron!r}")


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


def api_token_usable(data: Data) -> Iterator[Problem]:
    provider = data["gitProvider"]
    if provider.get("apiToken") and PROVIDERS[provider["type"]].api_token == "unsupported":
        yield ["gitProvider", "apiToken"], (
            f"apiToken applies to {_providers_where(lambda k: k.api_token != 'unsupported')} only")
    elif provider.get("apiToken") and not provider.get("webhookURL"):
        yield ["gitProvider"], ("apiToken needs webhookURL: the public URL the provider calls, "
                                "at which the webhook is registered")


def _image_policy(data: Data) -> Callable[[str], str]:
    """The reference the cluster pulls for a configured one (ImageError if it breaks policy)."""
    registry = data.get("registry", {})
    return partial(rewrite_image, mirror=registry.get("mirror"),
                   require_digest=registry.get("requireDigests", False))


def _configured_images(data: Data) -> Iterator[tuple[list[Any], str]]:
    for key in ("python", "git", "terraform"):
        yield ["images", key], data["images"][key]
    for p_index, project in enumerate(data["projects"]):
        for stream, suites in project.get("testSuites", {}).items():
            for s_index, suite in enumerate(suites):
                yield ["projects", p_index, "testSuites", stream, s_index, "image"], suite["image"]


def _eventbus_references(data: Data) -> list[str]:
    """The JetStream images, each with its digest from registry.eventBusDigests if given."""
    digests = data.get("registry", {}).get("eventBusDigests", {})
    return [f"{image}@{digests[image]}" if image in digests else image for image in JETSTREAM_IMAGES]


def images_follow_the_registry_policy(data: Data) -> Iterator[Problem]:
    resolve = _image_policy(data)
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


def eventbus_images_pinned(data: Data) -> Iterator[Problem]:
    # The Argo Events controller chooses these images, so no config field names them: they
    # are located at the setting that demands the digests.
    if not data.get("registry", {}).get("requireDigests"):
        return
    unpinned = [image for image in _eventbus_references(data) if "@" not in image]
    if unpinned:
        yield ["registry", "requireDigests"], (
            f"the EventBus's JetStream images {', '.join(unpinned)} are not pinned by digest; "
            "give each one's digest in registry.eventBusDigests (image: sha256:<digest>) and "
            "point the Argo Events controller's eventBus.jetstream images at the same digests")


# What the schema cannot express, in the order problems are reported. Each rule runs on
# schema-valid data and yields (path items, message).
CROSS_FIELD_RULES: tuple[Callable[[Data], Iterator[Problem]], ...] = (
    unique_component_names,
    repository_urls_parse,
    one_component_per_branch,
    unique_project_names,
    project_namespaces_are_their_own,
    each_project,
    known_time_zone,
    five_field_crons,
    base_url_applies,
    api_token_required,
    api_token_usable,
    images_follow_the_registry_policy,
    eventbus_digests_name_eventbus_images,
    eventbus_images_pinned,
)


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


def _build(data: Data) -> PlatformConfig:
    # The rules above have reported every image the policy refuses, so this cannot raise.
    resolve = _image_policy(data)
    components = tuple(
        Component(c["name"], c["repo"], c["branch"], c.get("deployPath", "deploy"))
        for c in data["components"]
    )
    by_name = {c.name: c for c in components}

    def suites(items: list[dict[str, Any]]) -> tuple[TestSuite, ...]:
        return tuple(TestSuite(s["name"], resolve(s["image"]), s["timeout"], tuple(s.get("command", ())),
                               tuple(s.get("args", ()))) for s in items)

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
            environments=EnvironmentDefaults(env["terraformModule"], env["defaultTTL"], env["maxTTL"],
                                             dict(env.get("variables", {}))) if env else None,
            demo_environments=tuple(DemoEnvironment(d["name"], d["owner"], dict(d.get("variables", {})))
                                    for d in p.get("demoEnvironments", [])),
        ))
    registry = data.get("registry", {})
    provider = data["gitProvider"]
    return PlatformConfig(
        bundle_name=data["bundle"]["name"],
        bundle_version=data["bundle"]["version"],
        orchestrator_namespace=data["orchestrator"]["namespace"],
        components=components,
        projects=tuple(projects),
        images=Images(**{k: resolve(data["images"][k]) for k in ("python", "git", "terraform")}),
        registry=Registry(registry.get("mirror"), bool(registry.get("requireDigests", False))),
        schedules=Schedules(data["schedules"]["timeZone"], data["schedules"]["nightly"],
                            data["schedules"]["reaper"]),
        git_provider=GitProvider(provider["type"], SecretKeyRef(**provider["webhookSecret"]),
                                 provider.get("baseURL"),
                                 provider.get("credentialsSecret", {}).get("name"),
                                 provider.get("webhookURL"),
                                 SecretKeyRef(**provider["apiToken"]) if "apiToken" in provider
                                 else None),
        eventbus_images=tuple(resolve(image) for image in _eventbus_references(data)),
    )
