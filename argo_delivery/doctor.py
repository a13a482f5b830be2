"""`argo-delivery doctor`: check on a live cluster what the bundle expects but does not contain.

It reads the controllers' own configuration and the referenced Secrets and reports each
prerequisite of the bundle README's checklist (argo_delivery/prerequisites.py) as met or
not: the workflow controller's executor image and securityContext and its
`workflowRestrictions`, the Argo Events controller's JetStream images, the CRDs, and every
Secret the bundle references (present, with its keys, not empty).
"""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass
from typing import Any

import yaml

from argo_delivery.config import PlatformConfig
from argo_delivery.jetstream import JETSTREAM_VERSION
from argo_delivery.prerequisites import referenced_secrets
from argo_delivery.security import executor_security_context

__all__ = ["Check", "run_checks"]

WORKFLOWS_CONFIGMAP = "workflow-controller-configmap"
EVENTS_CONFIGMAP = "argo-events-controller-config"
REQUIRED_CRDS = (
    "workflows.argoproj.io", "workflowtemplates.argoproj.io", "workflowtaskresults.argoproj.io",
    "eventbus.argoproj.io", "eventsources.argoproj.io", "sensors.argoproj.io",
    "projects.argo-delivery.io", "versions.argo-delivery.io", "environments.argo-delivery.io",
)


@dataclass(frozen=True)
class Check:
    name: str
    status: str      # ok | problem | note
    message: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def _configmap(core: Any, namespace: str, name: str) -> dict[str, str] | None:
    from kubernetes.client.exceptions import ApiException

    try:
        return core.read_namespaced_config_map(name, namespace).data or {}
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _yaml(text: str | None) -> Any:
    try:
        return yaml.safe_load(text or "") or {}
    except yaml.YAMLError:
        return {}


def _executor_checks(config: PlatformConfig, data: dict[str, str] | None, where: str) -> list[Check]:
    if data is None:
        return [Check("workflow-controller", "problem", f"ConfigMap {where} not found: is Argo "
                      "Workflows installed there? (--workflows-namespace)")]
    executor = _yaml(data.get("executor"))
    checks = []
    image = executor.get("image")
    checks.append(Check("executor image", "ok" if image == config.images.argo_exec else "problem",
                        f"executor.image is {image!r}; the bundle expects {config.images.argo_exec!r} "
                        "(images.argoExec; without it the controller's own default or flag applies)"))
    context = executor.get("securityContext") or {}
    missing = {k: v for k, v in executor_security_context().items() if context.get(k) != v}
    checks.append(Check("executor securityContext", "problem" if missing else "ok",
                        f"executor.securityContext lacks {missing}: Argo's init and wait containers "
                        "are refused in namespaces enforcing Pod Security restricted" if missing else
                        "Argo's init and wait containers meet Pod Security restricted"))
    referencing = (_yaml(data.get("workflowRestrictions")) or {}).get("templateReferencing")
    checks.append(Check("templateReferencing", "ok" if referencing == "Secure" else "problem",
                        f"workflowRestrictions.templateReferencing is {referencing!r}, expected "
                        "'Secure': otherwise anyone allowed to create a Workflow runs any pod"))
    return checks


def _eventbus_check(config: PlatformConfig, data: dict[str, str] | None, where: str) -> Check:
    if data is None:
        return Check("argo-events-controller", "problem", f"ConfigMap {where} not found: is Argo "
                     "Events installed there? (--events-namespace)")
    versions = ((_yaml(data.get("controller-config.yaml")).get("eventBus") or {})
                .get("jetstream") or {}).get("versions") or []
    entry = next((v for v in versions if str(v.get("version")) == JETSTREAM_VERSION), None)
    if entry is None:
        return Check("eventbus images", "problem", f"the Argo Events controller lists no JetStream "
                     f"{JETSTREAM_VERSION}, the version the bundle's EventBus runs")
    nats, reloader, exporter = config.eventbus_images
    wanted = {"natsImage": nats, "configReloaderImage": reloader, "metricsExporterImage": exporter}
    wrong = {k: entry.get(k) for k, v in wanted.items() if entry.get(k) != v}
    return Check("eventbus images", "problem" if wrong else "ok",
                 f"JetStream {JETSTREAM_VERSION} runs {wrong}, the bundle lists {wanted}" if wrong
                 else f"JetStream {JETSTREAM_VERSION} runs the images in images.txt")


def _secret_checks(config: PlatformConfig, core: Any) -> list[Check]:
    from kubernetes.client.exceptions import ApiException

    checks = []
    for secret in referenced_secrets(config):
        for namespace in secret.namespaces:
            name = f"Secret {namespace}/{secret.name}"
            try:
                data = core.read_namespaced_secret(secret.name, namespace).data or {}
            except ApiException as exc:
                if exc.status != 404:
                    raise
                checks.append(Check(name, "problem" if secret.required else "note",
                                    f"missing: {secret.content}"))
                continue
            present = [k for k in secret.keys if base64.b64decode(data.get(k) or "")]
            if secret.required and len(present) < len(secret.keys):
                empty = [k for k in secret.keys if k not in present]
                checks.append(Check(name, "problem", f"key {', '.join(empty)} is missing or empty: "
                                    f"{secret.content}"))
            elif not present:
                checks.append(Check(name, "problem", f"none of {', '.join(secret.keys)} is set"))
            else:
                checks.append(Check(name, "ok", f"has {', '.join(present)}"))
    return checks


def _crd_checks(api_client: Any) -> list[Check]:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    extensions = client.ApiextensionsV1Api(api_client)
    missing = []
    for name in REQUIRED_CRDS:
        try:
            crd = extensions.read_custom_resource_definition(name)
        except ApiException as exc:
            if exc.status != 404:
                raise
            missing.append(name)
            continue
        conditions = (crd.status.conditions or []) if crd.status else []
        if not any(c.type == "Established" and c.status == "True" for c in conditions):
            missing.append(f"{name} (not Established)")
    return [Check("CRDs", "problem" if missing else "ok",
                  f"missing: {', '.join(missing)}" if missing else "every CRD the bundle needs is served")]


def run_checks(config: PlatformConfig, api_client: Any, *, workflows_namespace: str = "argo",
               events_namespace: str = "argo-events") -> list[Check]:
    """Every prerequisite of `config`'s bundle, checked on the cluster behind `api_client`."""
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    return [
        *_crd_checks(api_client),
        *_executor_checks(config, _configmap(core, workflows_namespace, WORKFLOWS_CONFIGMAP),
                          f"{workflows_namespace}/{WORKFLOWS_CONFIGMAP}"),
        _eventbus_check(config, _configmap(core, events_namespace, EVENTS_CONFIGMAP),
                        f"{events_namespace}/{EVENTS_CONFIGMAP}"),
        *_secret_checks(config, core),
    ]
