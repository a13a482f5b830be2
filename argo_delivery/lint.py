"""`argo-delivery lint`: schema checks and the policy rules (README "Security defaults").

Layers, each reported as findings with a rule ID:
- K8S001: core kinds validated strictly by kubernetes-validate (unknown fields too);
- ARGO001: argoproj.io resources round-tripped through hera's models (unknown or misspelt
  fields, wrong types);
- CRD001: our custom resources validated against our own CRD schemas;
- AD001..AD018: the policy rules (non-root, no privilege escalation, no credentials in
  URLs or env values, no member group reading Secrets, ...), the container rules on every
  pod-bearing kind (Argo's and Deployment, StatefulSet, DaemonSet, ReplicaSet, Job,
  CronJob, Pod);
- UP001/UP002: Argo's own validators (`make tools`), when they are built.
"""

from __future__ import annotations

import copy
import re
import types
import typing
import urllib.parse
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pydantic
import yaml

from argo_delivery.crds import CRD_KINDS, crd_schema
from argo_delivery.eventpods import QUOTA_KEYS, events_pods, pods_usage
from argo_delivery.naming import GROUP
from argo_delivery.quantities import parse_quantity

__all__ = ["DISABLE_ANNOTATION", "Finding", "LintOptions", "LintResult", "ManifestError", "RULES",
           "lint_documents", "lint_paths", "load_documents"]


@dataclass(frozen=True)
class Finding:
    """One problem: which rule, which file and resource, which field, and the fix."""

    rule: str
    file: str
    resource: str
    field: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        fix = f" Fix: {self.fix}" if self.fix else ""
        where = f" {self.field}:" if self.field else ""
        return f"{self.file}: {self.rule} {self.resource}:{where} {self.message}.{fix}"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


# rule id -> (short name, fix)
RULES: dict[str, tuple[str, str]] = {
    "K8S001": ("kubernetes-schema", "match the Kubernetes API schema"),
    "ARGO001": ("argo-schema", "match the Argo API schema (hera's models)"),
    "CRD001": ("crd-schema", "match the argo-delivery CRD schema"),
    "AD001": ("run-as-non-root", "set securityContext.runAsNonRoot: true on the pod or container"),
    "AD002": ("no-privilege-escalation", "set securityContext.allowPrivilegeEscalation: false"),
    "AD003": ("drop-all-capabilities", "set securityContext.capabilities.drop: [ALL]"),
    "AD004": ("seccomp-runtime-default",
              "set securityContext.seccompProfile.type: RuntimeDefault on the pod or container"),
    "AD005": ("read-only-root-filesystem", "set securityContext.readOnlyRootFilesystem: true "
              "and mount an emptyDir where the step writes"),
    "AD006": ("resources", "set resources.requests and resources.limits for cpu and memory"),
    "AD007": ("no-default-service-account",
              "set serviceAccountName to a dedicated ServiceAccount (never `default`)"),
    "AD008": ("no-rbac-wildcard", "list the exact apiGroups, resources and verbs"),
    "AD009": ("no-pod-spec-patch", "remove podSpecPatch and use the typed fields"),
    "AD010": ("active-deadline", "set spec.activeDeadlineSeconds"),
    "AD011": ("ttl-strategy", "set spec.ttlStrategy (secondsAfterCompletion)"),
    "AD012": ("pod-gc", "set spec.podGC.strategy (e.g. OnPodCompletion)"),
    "AD013": ("no-automount-token", "set automountServiceAccountToken: false on the workflow "
              "(and executor.serviceAccountName); opt in per template where a step calls the API"),
    "AD014": ("template-token-opt-in",
              "mount a projected serviceAccountToken volume at "
              "/var/run/secrets/kubernetes.io/serviceaccount (security.script_step(api_access=True))"),
    "AD015": ("executor-token-secret",
              "add a Secret of type kubernetes.io/service-account-token named "
              "<executor account>.service-account-token, annotated "
              "kubernetes.io/service-account.name: <executor account>"),
    "AD016": ("sensor-api-token",
              "mount a projected serviceAccountToken volume at "
              "/var/run/secrets/kubernetes.io/serviceaccount in the Sensor's template "
              "(security.events_pod_template(account, api_access=True))"),
    "AD017": ("no-credentials-in-values",
              "keep credentials in a Secret and reference it (gitProvider.credentialsSecret for "
              "git, env valueFrom.secretKeyRef for a step); never in a URL or a literal value"),
    "AD018": ("no-member-secret-access",
              "bind member groups only to Roles without access to secrets; Secrets in a project "
              "namespace are for its ServiceAccounts"),
    "AD019": ("workflow-ref-only",
              "a Workflow or CronWorkflow from a WorkflowTemplate sets only spec.workflowTemplateRef and "
              "spec.arguments; put anything else in the template"),
    "AD020": ("sensor-workflows-admission",
              "keep the bundle's ValidatingAdmissionPolicy argo-delivery-sensor-workflows, with "
              "failurePolicy Fail, a Deny binding and all its validations, for every Sensor account"),
    "AD021": ("versions-admission",
              "keep the bundle's ValidatingAdmissionPolicy argo-delivery-versions, with "
              "failurePolicy Fail, a Deny binding and all its validations"),
    "AD022": ("quota-admits-workflow-pods",
              "give the namespace a LimitRange with default requests and limits for containers "
              "(isolation.containerDefaults), and a ResourceQuota that holds each workflow pod "
              "(isolation.quota, projects[].quota)"),
    "AD023": ("quota-admits-event-pods",
              "leave isolation.orchestratorQuota unset (it is sized from the bundle's own "
              "EventBus, EventSource and Sensor pods) or raise it, and keep the namespace's "
              "LimitRange"),
    "AD024": ("approval-admission",
              "keep the bundle's ValidatingAdmissionPolicy argo-delivery-version-approval, with "
              "failurePolicy Fail, a Deny binding and all its validations"),
    "AD025": ("environment-admission",
              "keep the bundle's ValidatingAdmissionPolicy argo-delivery-environment-requests "
              "(its binding takes the namespace's Project as parameter), with failurePolicy Fail, "
              "a Deny binding and all its validations"),
    "UP001": ("argo-workflows-lint", "see Argo Workflows' message"),
    "UP002": ("argo-events-lint", "see Argo Events' message"),
}

INDEX_FILE_NAMES = frozenset({"kustomization.yaml"})
# On any resource: rule IDs (comma-separated) not to report for that resource.
DISABLE_ANNOTATION = f"{GROUP}/lint-disable"


@dataclass(frozen=True)
class LintOptions:
    """What the caller turned off: rules by ID, and K8S001 for kinds that have no schema."""

    disabled: frozenset[str] = field(default_factory=frozenset)
    ignore_missing_schemas: bool = False


class ManifestError(Exception):
    """A file that cannot be linted: not UTF-8, or not YAML (with the line and column)."""

    def __init__(self, file: str, message: str, line: int | None = None, column: int | None = None):
        self.file, self.message, self.line, self.column = file, message, line, column
        where = f"{file}:{line}:{column}" if line is not None else file
        super().__init__(f"{where}: {message}")


def load_documents(paths: list[Path]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(file, document) for every YAML document in the given files and folders.

    Raises ManifestError for a file that is not UTF-8 YAML.
    """
    for path in paths:
        files = sorted(path.rglob("*.y*ml")) if path.is_dir() else [path]
        for file in files:
            if file.name in INDEX_FILE_NAMES:
                continue
            shown = str(file.relative_to(path)) if path.is_dir() else str(file)
            try:
                documents = list(yaml.safe_load_all(file.read_text(encoding="utf-8")))
            except UnicodeDecodeError as exc:
                raise ManifestError(shown, f"not UTF-8 text: {exc.reason}") from None
            except yaml.MarkedYAMLError as exc:
                mark = exc.problem_mark or exc.context_mark
                message = " ".join(p for p in (exc.context, exc.problem) if p)
                raise ManifestError(shown, f"invalid YAML: {message}",
                                    mark.line + 1 if mark else None,
                                    mark.column + 1 if mark else None) from None
            except yaml.YAMLError as exc:
                raise ManifestError(shown, f"invalid YAML: {exc}") from None
            for doc in documents:
                if isinstance(doc, dict):
                    yield shown, doc


def _ident(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata") or {}
    name = f"{meta['namespace']}/{meta.get('name', '?')}" if meta.get("namespace") else meta.get("name", "?")
    return f"{doc.get('kind', '?')} {name}"


def _finding(rule: str, file: str, doc: dict[str, Any], field: str, message: str) -> Finding:
    return Finding(rule, file, _ident(doc), field, message, RULES[rule][1])


# --- schema layers -----------------------------------------------------------------------

@cache
def _core_validator(api_version: str, kind: str) -> jsonschema.Validator | None:
    """kubernetes-validate's strict schema for a core kind, built once per kind.

    `kubernetes_validate.validate` reloads the large shared definitions file and rebuilds
    the validator for every document; this is the same schema and registry, cached.
    """
    import kubernetes_validate.utils as kv
    from referencing import Registry, Resource

    version = kv.latest_version()
    folder = f"kubernetes-json-schema/v{version}-local-strict"
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = kv.schema_contents(f"{folder}/{kind.lower()}-{api}.json", version)
    except FileNotFoundError:
        return None
    registry = Resource.from_contents(_core_definitions(folder)) @ (
        Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


@cache
def _core_definitions(folder: str) -> dict[str, Any]:
    import kubernetes_validate.utils as kv

    return kv.schema_contents(f"{folder}/_definitions.json", kv.latest_version())


def _check_core(file: str, doc: dict[str, Any], options: LintOptions) -> list[Finding]:
    validator = _core_validator(str(doc.get("apiVersion", "")), str(doc.get("kind", "")))
    if validator is None:
        if options.ignore_missing_schemas:
            return []
        return [_finding("K8S001", file, doc, "apiVersion",
                         f"no Kubernetes schema for {doc.get('apiVersion')} {doc.get('kind')}")]
    error = next(validator.iter_errors(doc), None)
    if error is None:
        return []
    return [_finding("K8S001", file, doc, ".".join(str(p) for p in error.path), error.message)]


@cache
def _argo_models() -> dict[str, type[pydantic.BaseModel]]:
    from hera.events import models as events
    from hera.workflows import models as workflows

    return {"Workflow": workflows.Workflow, "WorkflowTemplate": workflows.WorkflowTemplate,
            "ClusterWorkflowTemplate": workflows.ClusterWorkflowTemplate,
            "CronWorkflow": workflows.CronWorkflow, "Sensor": events.Sensor,
            "EventSource": events.EventSource}


def _unknown_keys(original: Any, parsed: Any, path: str) -> Iterator[str]:
    if isinstance(original, dict) and isinstance(parsed, dict):
        for key, value in original.items():
            child = f"{path}.{key}" if path else str(key)
            if key not in parsed:
                yield child
            else:
                yield from _unknown_keys(value, parsed[key], child)
    elif isinstance(original, list) and isinstance(parsed, list):
        for index, (a, b) in enumerate(zip(original, parsed, strict=False)):
            yield from _unknown_keys(a, b, f"{path}[{index}]")


# Go types with custom JSON that hera's events models describe as wrapper objects: their
# content is left to argo-events-lint's strict decode into the real Go types.
_OPAQUE_EVENTS_TYPES = frozenset({"Int64OrString", "Amount", "K8SResource"})


def _adapt_to_hera(value: Any, annotation: Any) -> Any:
    """`value` reshaped where hera's events models differ from Argo Events' JSON."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _adapt_to_hera(value, typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _adapt_to_hera(value, options[0]) if len(options) == 1 else value
    if origin is list and isinstance(value, list):
        return [_adapt_to_hera(v, typing.get_args(annotation)[0]) for v in value]
    if origin is dict and isinstance(value, dict):
        return {k: _adapt_to_hera(v, typing.get_args(annotation)[1]) for k, v in value.items()}
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        if annotation.__name__ in _OPAQUE_EVENTS_TYPES:
            return {}
        aliases = {f.alias or name for name, f in annotation.model_fields.items()}
        if isinstance(value, dict) and "groupVersionResource" in aliases and \
                "groupVersionResource" not in value:
            # Go embeds GroupVersionResource inline (`json:",inline"`): group, version and
            # resource sit beside the other fields; hera's model nests them.
            value = {k: v for k, v in value.items() if k not in ("group", "version", "resource")} | {
                "groupVersionResource": {k: value[k] for k in ("group", "version", "resource")
                                         if k in value}}
        if isinstance(value, dict):
            fields = {(f.alias or name): f.annotation for name, f in annotation.model_fields.items()}
            return {k: _adapt_to_hera(v, fields[k]) if k in fields else v for k, v in value.items()}
        return value
    if annotation is str and isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # int64 fields that hera's models type as strings
    return value


def _embedded_resources(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(field path, resource) of every k8s / argoWorkflow trigger of a Sensor."""
    for index, trigger in enumerate((doc.get("spec") or {}).get("triggers") or []):
        template = trigger.get("template") or {}
        for kind in ("k8s", "argoWorkflow"):
            source = (template.get(kind) or {}).get("source") or {}
            if isinstance(source.get("resource"), dict):
                yield f"spec.triggers[{index}].template.{kind}.source.resource", source["resource"]


def _check_argo(file: str, doc: dict[str, Any], options: LintOptions) -> list[Finding]:
    model = _argo_models().get(doc.get("kind", ""))
    if model is None:  # EventBus: hera has no model; argo-events-lint decodes it strictly
        return []
    findings = []
    if doc.get("kind") in ("Sensor", "EventSource"):
        # A trigger's embedded resource is a manifest of its own: lint it as one.
        for at, embedded in _embedded_resources(doc):
            for finding in _lint_one(file, embedded, options):
                findings.append(Finding(finding.rule, file, _ident(doc),
                                        f"{at}.{finding.field}".rstrip("."), finding.message,
                                        finding.fix))
        doc = _adapt_to_hera(doc, model)
    return findings + _check_argo_model(file, doc, model)


def _check_argo_model(file: str, doc: dict[str, Any], model: type[pydantic.BaseModel]) -> list[Finding]:
    try:
        parsed = model.model_validate(doc).model_dump(exclude_none=True, by_alias=True, mode="json")
    except pydantic.ValidationError as exc:
        return [_finding("ARGO001", file, doc, ".".join(str(p) for p in err["loc"]), err["msg"])
                for err in exc.errors()]
    # hera's events models carry no apiVersion/kind; the dispatcher already matched them.
    return [_finding("ARGO001", file, doc, key, "unknown field (not in the Argo API)")
            for key in _unknown_keys(doc, parsed, "") if key not in ("apiVersion", "kind")]


@cache
def _crd_validator(kind: str) -> jsonschema.Draft202012Validator:
    schema = copy.deepcopy(crd_schema(kind))

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if (node.get("type") == "object" and "properties" in node
                    and "additionalProperties" not in node
                    and not node.get("x-kubernetes-preserve-unknown-fields")):
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schema)
    schema["properties"].update({"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                 "metadata": {"type": "object"}})
    return jsonschema.Draft202012Validator(schema)


def _check_crd(file: str, doc: dict[str, Any]) -> list[Finding]:
    validator = _crd_validator(doc["kind"])
    return [_finding("CRD001", file, doc, ".".join(str(p) for p in err.absolute_path), err.message)
            for err in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.path)))]


# --- policy rules --------------------------------------------------------------------------

def _workflow_spec(doc: dict[str, Any]) -> tuple[dict[str, Any], str]:
    if doc["kind"] == "CronWorkflow":
        return doc.get("spec", {}).get("workflowSpec", {}), "spec.workflowSpec"
    return doc.get("spec", {}), "spec"


def _template_containers(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for key in ("container", "script"):
        if isinstance(template.get(key), dict):
            yield key, template[key]
    for key in ("initContainers", "sidecars"):
        for index, container in enumerate(template.get(key) or []):
            yield f"{key}[{index}]", container
    for index, container in enumerate((template.get("containerSet") or {}).get("containers") or []):
        yield f"containerSet.containers[{index}]", container


def _container_rules(file: str, doc: dict[str, Any], where: str, container: dict[str, Any],
                     pod_contexts: list[dict[str, Any]]) -> list[Finding]:
    found = []
    ctx = container.get("securityContext") or {}
    contexts = [ctx, *pod_contexts]
    if not any(c.get("runAsNonRoot") is True for c in contexts):
        found.append(_finding("AD001", file, doc, f"{where}.securityContext.runAsNonRoot",
                              "the container may run as root"))
    if ctx.get("allowPrivilegeEscalation") is not False:
        found.append(_finding("AD002", file, doc, f"{where}.securityContext.allowPrivilegeEscalation",
                              "privilege escalation is not turned off"))
    if "ALL" not in ((ctx.get("capabilities") or {}).get("drop") or []):
        found.append(_finding("AD003", file, doc, f"{where}.securityContext.capabilities.drop",
                              "capabilities are not all dropped"))
    if not any((c.get("seccompProfile") or {}).get("type") in ("RuntimeDefault", "Localhost")
               for c in contexts):
        found.append(_finding("AD004", file, doc, f"{where}.securityContext.seccompProfile",
                              "no seccomp profile (RuntimeDefault) on the pod or container"))
    if ctx.get("readOnlyRootFilesystem") is not True:
        found.append(_finding("AD005", file, doc, f"{where}.securityContext.readOnlyRootFilesystem",
                              "the root filesystem is writable"))
    resources = container.get("resources") or {}
    missing = [f"{kind}.{res}" for kind in ("requests", "limits") for res in ("cpu", "memory")
               if res not in (resources.get(kind) or {})]
    if missing:
        found.append(_finding("AD006", file, doc, f"{where}.resources",
                              f"missing {', '.join(missing)}"))
    return found


def _check_workflow_policy(file: str, doc: dict[str, Any]) -> list[Finding]:
    spec, at = _workflow_spec(doc)
    if doc["kind"] in ("Workflow", "CronWorkflow") and spec.get("workflowTemplateRef"):
        # The referenced template carries (and is checked for) the policy; anything set here
        # overrides it, and is exactly what the admission policy refuses from a Sensor.
        from argo_delivery.admission import SENSOR_SETTABLE

        return [_finding("AD019", file, doc, f"{at}.{key}",
                         f"{key} overrides the referenced WorkflowTemplate")
                for key in spec if key not in SENSOR_SETTABLE]
    found = []
    if spec.get("serviceAccountName") in (None, "", "default"):
        found.append(_finding("AD007", file, doc, f"{at}.serviceAccountName",
                              "the workflow runs as the namespace's default ServiceAccount"))
    if spec.get("automountServiceAccountToken") is not False:
        found.append(_finding("AD013", file, doc, f"{at}.automountServiceAccountToken",
                              "every pod gets an API token, whether its step uses it or not"))
    if "podSpecPatch" in spec:
        found.append(_finding("AD009", file, doc, f"{at}.podSpecPatch", "podSpecPatch is set"))
    if not spec.get("activeDeadlineSeconds"):
        found.append(_finding("AD010", file, doc, f"{at}.activeDeadlineSeconds",
                              "the workflow can run forever"))
    if not spec.get("ttlStrategy"):
        found.append(_finding("AD011", file, doc, f"{at}.ttlStrategy",
                              "finished workflows are never deleted"))
    if not (spec.get("podGC") or {}).get("strategy"):
        found.append(_finding("AD012", file, doc, f"{at}.podGC", "finished pods are never deleted"))
    pod_ctx = spec.get("securityContext") or {}
    for t_index, template in enumerate(spec.get("templates") or []):
        t_at = f"{at}.templates[{t_index}]"
        if "podSpecPatch" in template:
            found.append(_finding("AD009", file, doc, f"{t_at}.podSpecPatch", "podSpecPatch is set"))
        if template.get("serviceAccountName") == "default":
            found.append(_finding("AD007", file, doc, f"{t_at}.serviceAccountName",
                                  "the template runs as the default ServiceAccount"))
        if template.get("automountServiceAccountToken") is True:
            found.append(_finding("AD014", file, doc, f"{t_at}.automountServiceAccountToken",
                                  "Argo Workflows copies a template's automountServiceAccountToken "
                                  "to the pod only when it is false, so this opt-in never mounts "
                                  "a token"))
        contexts = [template.get("securityContext") or {}, pod_ctx]
        for where, container in _template_containers(template):
            found += _container_rules(file, doc, f"{t_at}.{where}", container, contexts)
    return found


def _check_events_policy(file: str, doc: dict[str, Any]) -> list[Finding]:
    template = (doc.get("spec") or {}).get("template") or {}
    found = []
    if doc["kind"] == "Sensor" and template.get("serviceAccountName") in (None, "", "default"):
        found.append(_finding("AD007", file, doc, "spec.template.serviceAccountName",
                              "the Sensor runs as the namespace's default ServiceAccount"))
    if doc["kind"] in ("Sensor", "EventSource"):
        found += _container_rules(file, doc, "spec.template.container",
                                  template.get("container") or {},
                                  [template.get("securityContext") or {}])
    return found


# Kubernetes' own pod-bearing kinds: (apiVersion group, kind) -> path of the pod spec.
POD_SPEC_PATHS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "Pod"): ("spec",),
    ("apps", "Deployment"): ("spec", "template", "spec"),
    ("apps", "StatefulSet"): ("spec", "template", "spec"),
    ("apps", "DaemonSet"): ("spec", "template", "spec"),
    ("apps", "ReplicaSet"): ("spec", "template", "spec"),
    ("", "ReplicationController"): ("spec", "template", "spec"),
    ("batch", "Job"): ("spec", "template", "spec"),
    ("batch", "CronJob"): ("spec", "jobTemplate", "spec", "template", "spec"),
}


def _check_pod_policy(file: str, doc: dict[str, Any], path: tuple[str, ...]) -> list[Finding]:
    """The container rules (AD001-AD006) and AD007 on a Deployment, Job, Pod, ... pod spec."""
    spec: Any = doc
    for key in path:
        spec = spec.get(key) if isinstance(spec, dict) else None
    if not isinstance(spec, dict):
        return []
    at = ".".join(path)
    found = []
    if spec.get("serviceAccountName") in (None, "", "default"):
        found.append(_finding("AD007", file, doc, f"{at}.serviceAccountName",
                              "the pod runs as the namespace's default ServiceAccount"))
    pod_ctx = spec.get("securityContext") or {}
    for key in ("initContainers", "containers"):
        for index, container in enumerate(spec.get(key) or []):
            if isinstance(container, dict):
                found += _container_rules(file, doc, f"{at}.{key}[{index}]", container, [pod_ctx])
    return found


def _check_rbac(file: str, doc: dict[str, Any]) -> list[Finding]:
    found = []
    for index, rule in enumerate(doc.get("rules") or []):
        for key in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
            if any("*" in str(value) for value in rule.get(key) or []):
                found.append(_finding("AD008", file, doc, f"rules[{index}].{key}",
                                      f"wildcard in {key}: {rule[key]}"))
    return found


# --- credentials in plain sight ---------------------------------------------------------

_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")
# Well-known token shapes (GitLab, GitHub, Slack, AWS, Google) and private keys.
_TOKEN_SHAPES = re.compile(
    r"\b(?:glpat|gldt|glrt|glptt|glcbt|glimt|glsoat|glffct|glagent)-[0-9A-Za-z_-]{20,}"
    r"|\bgh[pousr]_[0-9A-Za-z]{36,}"
    r"|\bgithub_pat_[0-9A-Za-z_]{22,}"
    r"|\bxox[abposr]-[0-9A-Za-z-]{10,}"
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"
    r"|\bAIza[0-9A-Za-z_-]{35}"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----")
_SECRET_QUERY_KEYS = frozenset({
    "private_token", "access_token", "token", "auth_token", "api_key", "apikey", "api-key",
    "password", "passwd", "secret", "client_secret", "x-amz-security-token"})
_LONG_RANDOM = re.compile(r"^[A-Za-z0-9_-]{32,}$")


def _strings(value: Any, at: str) -> Iterator[tuple[str, str]]:
    """(field path, text) of every string value inside `value`."""
    if isinstance(value, str):
        yield at, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{at}.{key}" if at else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{at}[{index}]")


def _url_credentials(url: str) -> str | None:
    """What kind of credential `url` carries, or None."""
    try:
        parts = urllib.parse.urlsplit(url)
        netloc = parts.netloc
    except ValueError:
        return None
    userinfo, at, _ = netloc.rpartition("@")
    if at and userinfo:
        user, colon, password = userinfo.partition(":")
        if colon and password:
            return "a password in its user info"
        if _TOKEN_SHAPES.search(user) or _LONG_RANDOM.match(user):
            return "a token as its user name"
    for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=False):
        if key.lower() in _SECRET_QUERY_KEYS and value:
            return f"a token in its query string ({key}=)"
    return None


def _redact_url(url: str) -> str:
    """`url` with its user info and query values masked: the finding must not leak them."""
    try:
        parts = urllib.parse.urlsplit(url)
        netloc = parts.netloc
    except ValueError:
        return "(unparsable URL)"
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    query = "&".join(f"{key}=***" for key, _ in urllib.parse.parse_qsl(parts.query))
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _check_credentials(file: str, doc: dict[str, Any]) -> list[Finding]:
    """AD017: credentials in any URL or value of a resource (a Secret's data is their place)."""
    if doc.get("kind") == "Secret" and doc.get("apiVersion") == "v1":
        return []
    found = []
    for at, text in _strings(doc, ""):
        for url in _URL.findall(text):
            what = _url_credentials(url)
            if what:
                found.append(_finding("AD017", file, doc, at,
                                      f"URL {_redact_url(url)} carries {what}"))
        shape = _TOKEN_SHAPES.search(text)
        if shape and not any(_url_credentials(u) for u in _URL.findall(text)):
            found.append(_finding("AD017", file, doc, at,
                                  f"the value holds what looks like a credential "
                                  f"({shape.group(0)[:6]}...)"))
    return found


# --- rules across resources: what the controllers need at run time -------------------------

TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
_ARGO_TOKEN_NAME = "workflows.argoproj.io/service-account-token.name"


def _token_secret_name(account: dict[str, Any]) -> str:
    """The Secret Argo Workflows mounts for an executor ServiceAccount (util/secrets)."""
    if account.get("secrets"):
        return account["secrets"][0]["name"]
    annotations = (account.get("metadata") or {}).get("annotations") or {}
    return annotations.get(_ARGO_TOKEN_NAME, f"{account['metadata']['name']}.service-account-token")


def _mounts_token(template: dict[str, Any]) -> bool:
    container = template.get("container") or {}
    return any(m.get("mountPath", "").rstrip("/") == TOKEN_DIR
               for m in container.get("volumeMounts") or [])


def _check_runtime_wiring(documents: list[tuple[str, dict[str, Any]]]) -> list[Finding]:
    """Rules that need two resources: only checked when both are among the linted documents."""
    def key(doc: dict[str, Any]) -> tuple[str, str]:
        meta = doc.get("metadata") or {}
        return meta.get("namespace", ""), meta.get("name", "")

    accounts = {key(d): d for _, d in documents if d.get("kind") == "ServiceAccount"}
    token_secrets = {key(d) for _, d in documents if d.get("kind") == "Secret"
                     and d.get("type") == "kubernetes.io/service-account-token"}
    found = []
    for file, doc in documents:
        kind, (namespace, _) = doc.get("kind"), key(doc)
        if kind in ARGO_KINDS:
            spec, at = _workflow_spec(doc)
            executor = (spec.get("executor") or {}).get("serviceAccountName")
            account = accounts.get((namespace, executor))
            if account and (namespace, _token_secret_name(account)) not in token_secrets:
                found.append(_finding(
                    "AD015", file, doc, f"{at}.executor.serviceAccountName",
                    f"Argo mounts the executor's token from Secret {_token_secret_name(account)}, "
                    "which is not among these resources: the pod would hang in Init"))
        elif kind == "Sensor":
            template = (doc.get("spec") or {}).get("template") or {}
            account = accounts.get((namespace, template.get("serviceAccountName")))
            if account and account.get("automountServiceAccountToken") is False \
                    and not _mounts_token(template):
                found.append(_finding(
                    "AD016", file, doc, "spec.template",
                    f"ServiceAccount {account['metadata']['name']} mounts no token and the "
                    "template mounts none, so the sensor exits with \"failed to get kubeconfig\""))
    return found


_SECRET_RESOURCES = frozenset({"secrets", "*"})


def _secret_verbs(role: dict[str, Any]) -> list[str]:
    """The verbs `role` grants on Secrets (core group), empty when it grants none."""
    verbs: list[str] = []
    for rule in role.get("rules") or []:
        groups = rule.get("apiGroups") or []
        resources = {str(r).split("/")[0] for r in rule.get("resources") or []}
        if ("" in groups or "*" in groups) and resources & _SECRET_RESOURCES:
            verbs += [str(v) for v in rule.get("verbs") or [] if str(v) not in verbs]
    return verbs


def _check_member_secret_access(documents: list[tuple[str, dict[str, Any]]]) -> list[Finding]:
    """AD018: a (Cluster)RoleBinding gives a Group a Role that grants access to Secrets."""
    roles = {("Role", (d.get("metadata") or {}).get("namespace", ""),
              (d.get("metadata") or {}).get("name", "")): d
             for _, d in documents if d.get("kind") == "Role"}
    roles.update({("ClusterRole", "", (d.get("metadata") or {}).get("name", "")): d
                  for _, d in documents if d.get("kind") == "ClusterRole"})
    found = []
    for file, doc in documents:
        if doc.get("kind") not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        groups = [str(s.get("name")) for s in doc.get("subjects") or []
                  if isinstance(s, dict) and s.get("kind") == "Group"]
        ref = doc.get("roleRef") or {}
        namespace = (doc.get("metadata") or {}).get("namespace", "") if ref.get("kind") == "Role" else ""
        role = roles.get((ref.get("kind"), namespace, ref.get("name")))
        verbs = _secret_verbs(role) if groups and role else []
        if verbs:
            found.append(_finding(
                "AD018", file, doc, "roleRef",
                f"binds group {', '.join(groups)} to {ref.get('kind')} {ref.get('name')}, which "
                f"grants {', '.join(verbs)} on secrets: members could read the credentials "
                "stored there"))
    return found


# --- the bundle's admission policies are present and not weakened ---------------------------

def _enforced_policies(documents: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """ValidatingAdmissionPolicies that fail closed and have a binding that denies."""
    denying = {(d.get("spec") or {}).get("policyName") for _, d in documents
               if d.get("kind") == "ValidatingAdmissionPolicyBinding"
               and "Deny" in ((d.get("spec") or {}).get("validationActions") or [])}
    return [d for _, d in documents if d.get("kind") == "ValidatingAdmissionPolicy"
            and (d.get("spec") or {}).get("failurePolicy", "Fail") == "Fail"
            and (d.get("metadata") or {}).get("name") in denying]


def _policy_text(policy: dict[str, Any], part: str) -> str:
    return " ".join(str(item.get("expression", "")) for item in (policy.get("spec") or {}).get(part) or [])


def _matches(policy: dict[str, Any], resource: str, operation: str) -> bool:
    rules = ((policy.get("spec") or {}).get("matchConstraints") or {}).get("resourceRules") or []
    return any(resource in (r.get("resources") or []) and operation in (r.get("operations") or [])
               for r in rules)


# Roles whose rights an admission policy must bound: (rule, resource, verbs that need the
# policy, the operation the policy must match, what its validations must check, the finding).
_ROLE_POLICIES = (
    ("AD021", "versions", {"create"}, "CREATE",
     ("request.userInfo.username ==", "namespaceObject.metadata.labels",
      "object.spec.hash.substring(7, 23)", "!has(object.spec.approval)"),
     "grants create on versions, and no admission policy checks who creates a Version, its "
     "name, project and approval: Versions could be forged"),
    ("AD025", "environments", {"create", "patch", "update"}, "CREATE",
     ("object.spec.owner == request.userInfo.username",
      "duration(params.spec.environments.maxTTL)", "check('demo').allowed()",
      "object.spec.project == params.metadata.name"),
     "grants create, patch or update on environments, and no admission policy checks the "
     "owner, the TTL and who asks for a demo environment: owners could be forged and TTLs "
     "unbounded"),
    ("AD024", "versions", {"patch", "update"}, "UPDATE",
     ("check('approve').allowed()", "oldObject.status.stream == 'candidate'",
      "object.spec.approval.approvedBy == request.userInfo.username",
      "object.spec.approval == oldObject.spec.approval"),
     "grants patch or update on versions, and no admission policy checks who sets "
     "spec.approval, in whose name and on which Version: approvals could be forged"),
)


def _check_admission(documents: list[tuple[str, dict[str, Any]]]) -> list[Finding]:
    """AD020/AD021/AD024/AD025: what a Sensor's token, the Version writer, a product owner or a
    developer asking for an Environment can do is bounded by policy."""
    from argo_delivery.admission import SENSOR_SETTABLE, WORKFLOW_SPEC_FIELDS, service_account_user

    policies = _enforced_policies(documents)
    found = []
    sensor_checks = [f"!has(object.spec.{key})" for key in WORKFLOW_SPEC_FIELDS
                     if key not in SENSOR_SETTABLE] + ["in variables.templates",
                                                       "request.namespace in variables.namespaces"]

    def bounded(resource: str, operation: str, checks, extra: str = "") -> bool:
        return any(_matches(p, resource, operation) and extra in _policy_text(p, "matchConditions")
                   and all(check in _policy_text(p, "validations") for check in checks)
                   for p in policies)

    for file, doc in documents:
        meta = doc.get("metadata") or {}
        if doc.get("kind") == "Sensor" and any(
                (resource.get("kind") == "Workflow") for _, resource in _embedded_resources(doc)):
            account = ((doc.get("spec") or {}).get("template") or {}).get("serviceAccountName")
            user = service_account_user(meta.get("namespace", ""), str(account))
            if not bounded("workflows", "CREATE", sensor_checks, f'"{user}"'):
                found.append(_finding(
                    "AD020", file, doc, "spec.template.serviceAccountName",
                    f"nothing at admission bounds the Workflows {user} creates: with `create "
                    "workflows` alone it could run any pod as any ServiceAccount"))
        elif doc.get("kind") == "Role":
            for rule, resource, verbs, operation, checks, message in _ROLE_POLICIES:
                if any(GROUP in (r.get("apiGroups") or []) and resource in (r.get("resources") or [])
                       and verbs & set(r.get("verbs") or []) for r in doc.get("rules") or []) \
                        and not bounded(resource, operation, checks):
                    found.append(_finding(rule, file, doc, "rules", message))
    return found


# --- entry points -----------------------------------------------------------------------------

_QUOTA_KEYS = tuple((kind, name) for kind in ("requests", "limits") for name in ("cpu", "memory"))


def _container_defaults(limit_range: dict[str, Any]) -> dict[str, dict[str, Any]]:
    for item in (limit_range.get("spec") or {}).get("limits") or []:
        if item.get("type") == "Container":
            limits = item.get("default") or {}
            # Kubernetes defaults a request to the limit when no default request is given
            return {"limits": limits, "requests": {**limits, **(item.get("defaultRequest") or {})}}
    return {"limits": {}, "requests": {}}


def _check_quotas(documents: list[tuple[str, dict[str, Any]]]) -> list[Finding]:
    """AD022: every workflow pod fits its namespace's ResourceQuota. Argo's wait container
    takes the LimitRange's defaults (the controller's executor may set no resources; the
    safe assumption), and a container without a value the quota counts is refused."""
    def namespace(doc: dict[str, Any]) -> str:
        return (doc.get("metadata") or {}).get("namespace", "")

    quotas = [(namespace(d), d) for _, d in documents if d.get("kind") == "ResourceQuota"]
    defaults: dict[str, dict[str, dict[str, Any]]] = {}
    for _, doc in documents:
        if doc.get("kind") == "LimitRange":
            defaults[namespace(doc)] = _container_defaults(doc)
    found = []
    for file, doc in documents:
        if doc.get("kind") not in ARGO_KINDS or doc.get("kind") == "ClusterWorkflowTemplate":
            continue
        spec, at = _workflow_spec(doc)
        given = defaults.get(namespace(doc), {"limits": {}, "requests": {}})
        for index, template in enumerate(spec.get("templates") or []):
            containers = [(where, c) for where, c in _template_containers(template)
                          if not where.startswith("initContainers")]
            if not containers:
                continue
            containers.append(("Argo's wait container", {}))
            for quota_ns, quota in quotas:
                if quota_ns != namespace(doc):
                    continue
                hard = (quota.get("spec") or {}).get("hard") or {}
                found += [_finding("AD022", file, doc, f"{at}.templates[{index}]", message)
                          for message in _quota_problems(containers, given, hard,
                                                         quota["metadata"]["name"])]
    return found


def _quota_problems(containers: list[tuple[str, dict[str, Any]]], given: dict[str, dict[str, Any]],
                    hard: dict[str, Any], quota: str) -> Iterator[str]:
    for kind, name in _QUOTA_KEYS:
        key = f"{kind}.{name}"
        values = [(where, ((container.get("resources") or {}).get(kind) or {}).get(
            name, given[kind].get(name))) for where, container in containers]
        unset = [where for where, value in values if value is None]
        if key not in hard:
            continue
        if unset:
            yield (f"{', '.join(unset)} sets no {key} and the namespace has no LimitRange "
                   f"default for it: ResourceQuota {quota} refuses the pod")
            continue
        try:
            total = sum(parse_quantity(value) for _, value in values)
            allowed = parse_quantity(hard[key])
        except ValueError:
            continue  # a quantity this check does not read (K8S001 reports a malformed one)
        if total > allowed:
            needs = f"{total / 2**20:.0f}Mi" if name == "memory" else f"{total.normalize():f}"
            yield (f"the pod needs {key} {needs} (its containers and Argo's wait container at "
                   f"the LimitRange defaults), more than ResourceQuota {quota} allows "
                   f"({hard[key]}): it would never be admitted")


def _check_event_pods_quota(documents: list[tuple[str, dict[str, Any]]]) -> list[Finding]:
    """AD023: the pods Argo Events runs for a namespace's EventBus, EventSources and Sensors fit
    its ResourceQuota all at once, each Deployment with the pod a rollout runs beside the old
    ones (else a Sensor or an EventBus replica never starts, or a rollout sticks)."""
    resources = [doc for _, doc in documents]
    found = []
    for file, quota in documents:
        if quota.get("kind") != "ResourceQuota":
            continue
        namespace = (quota.get("metadata") or {}).get("namespace", "")
        groups = events_pods(resources, namespace)
        if not groups:
            continue
        defaults = next((_container_defaults(d) for d in resources if d.get("kind") == "LimitRange"
                         and (d.get("metadata") or {}).get("namespace") == namespace),
                        {"limits": {}, "requests": {}})
        hard = (quota.get("spec") or {}).get("hard") or {}
        try:
            used, unset = pods_usage(groups, defaults, rollout=True)
        except ValueError:
            continue  # a quantity this check does not read (K8S001 reports a malformed one)
        for key in QUOTA_KEYS:
            if key not in hard:
                continue
            if key in unset:
                found.append(_finding("AD023", file, quota, f"spec.hard.{key}", (
                    f"{', '.join(unset[key])} sets no {key} and the namespace has no LimitRange "
                    f"default for it: ResourceQuota {quota['metadata']['name']} refuses its pods")))
                continue
            try:
                allowed = parse_quantity(hard[key])
            except ValueError:
                continue
            if used[key] > allowed:
                needs = (f"{used[key]:f}" if key == "pods" else f"{used[key] / 2**20:.0f}Mi"
                         if key.endswith("memory") else f"{used[key].normalize():f}")
                found.append(_finding("AD023", file, quota, f"spec.hard.{key}", (
                    f"the EventBus, EventSource and Sensor pods Argo Events runs here need {key} "
                    f"{needs} ({', '.join(f'{g.owner} x{g.replicas + g.surge}' for g in groups)}, "
                    "each Deployment with the pod a rollout adds), more than ResourceQuota "
                    f"{quota['metadata']['name']} allows ({hard[key]}): some would not start")))
    return found


ARGO_KINDS = frozenset({"Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow"})
EVENTS_KINDS = frozenset({"Sensor", "EventSource", "EventBus"})


# Ours (argo_delivery/monitoring.py, argo_delivery/velero.py), with no schema
# kubernetes-validate knows.
MONITORING_KINDS = frozenset({"PrometheusRule", "PodMonitor"})
VELERO_KINDS = frozenset({"Schedule"})


def _lint_one(file: str, doc: dict[str, Any], options: LintOptions) -> list[Finding]:
    """Schema layers, then the policy rules of one resource (without AD017)."""
    findings: list[Finding] = []
    api_version, kind = str(doc.get("apiVersion", "")), doc.get("kind", "")
    group = api_version.split("/")[0] if "/" in api_version else ""
    if group == "argoproj.io":
        findings += _check_argo(file, doc, options)
        if kind in ARGO_KINDS:
            findings += _check_workflow_policy(file, doc)
        elif kind in EVENTS_KINDS:
            findings += _check_events_policy(file, doc)
    elif group == GROUP and kind in CRD_KINDS:
        findings += _check_crd(file, doc)
    elif group == "monitoring.coreos.com" and kind in MONITORING_KINDS:
        pass   # the prometheus-operator's CRD schemas (tests/apiserver) and promtool check them
    elif group == "velero.io" and kind in VELERO_KINDS:
        pass   # Velero's CRD schema checks it (tests/apiserver/test_velero.py)
    else:
        findings += _check_core(file, doc, options)
    if (group, kind) in POD_SPEC_PATHS:
        findings += _check_pod_policy(file, doc, POD_SPEC_PATHS[(group, kind)])
    if kind in ("Role", "ClusterRole"):
        findings += _check_rbac(file, doc)
    return findings


def _disabled_by_annotation(doc: dict[str, Any]) -> set[str]:
    annotations = (doc.get("metadata") or {}).get("annotations") or {}
    text = annotations.get(DISABLE_ANNOTATION, "") if isinstance(annotations, dict) else ""
    return {rule.strip() for rule in str(text).split(",") if rule.strip()}


def lint_documents(documents: list[tuple[str, dict[str, Any]]],
                   options: LintOptions | None = None) -> list[Finding]:
    """Every finding for (file, document) pairs, schema layers first.

    Rules in `options.disabled`, and those a resource names in its `DISABLE_ANNOTATION`,
    are not reported.
    """
    options = options or LintOptions()
    findings: list[Finding] = []
    for file, doc in documents:
        findings += _lint_one(file, doc, options) + _check_credentials(file, doc)
    findings += (_check_runtime_wiring(documents) + _check_member_secret_access(documents)
                 + _check_admission(documents) + _check_quotas(documents)
                 + _check_event_pods_quota(documents))
    skipped = {(file, _ident(doc)): _disabled_by_annotation(doc) for file, doc in documents}
    return [f for f in findings if f.rule not in options.disabled
            and f.rule not in skipped.get((f.file, f.resource), ())]


def _relative(file: str, roots: list[Path]) -> str:
    """`file` relative to the folder it was found in, as the other layers report it."""
    for root in roots:
        if root.is_dir() and Path(file).is_relative_to(root):
            return str(Path(file).relative_to(root))
    return file


@dataclass
class LintResult:
    """What `lint_paths` found, and how much it looked at."""

    findings: list[Finding]
    notes: list[str]
    files: int
    resources: int

    def __iter__(self) -> Iterator[Any]:  # `findings, notes = lint_paths(...)` keeps working
        return iter((self.findings, self.notes))


def lint_paths(paths: list[Path], upstream: bool = True,
               options: LintOptions | None = None) -> LintResult:
    """Lint files and folders: the findings, notes (e.g. validators not built) and counts."""
    options = options or LintOptions()
    documents = list(load_documents(paths))
    findings = lint_documents(documents, options)
    notes: list[str] = []
    # Argo's validators name a resource by kind and name: match their findings to annotations so.
    skipped = {(file, doc.get("kind"), (doc.get("metadata") or {}).get("name")):
               _disabled_by_annotation(doc) for file, doc in documents}
    if upstream:
        from argo_delivery import upstream as up

        for tool, rule in (("argo-workflows-lint", "UP001"), ("argo-events-lint", "UP002")):
            if up.tool_path(tool) is None:
                notes.append(f"{tool} is not built, so Argo's own validation was skipped; "
                             "run `make tools`")
                continue
            if rule in options.disabled:
                continue
            for problem in up.run_validator(tool, paths):
                file = _relative(problem.file, paths)
                if rule in skipped.get((file, problem.kind, problem.name), ()):
                    continue
                findings.append(Finding(rule, file, f"{problem.kind} {problem.name}", "", problem.message,
                                        RULES[rule][1]))
    return LintResult(findings, notes, files=len({file for file, _ in documents}),
                      resources=len(documents))
