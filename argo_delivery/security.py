"""Secure defaults for every pod we render: the one place they are written.

The safe choice is what a template gets without asking: non-root, no privilege
escalation, all capabilities dropped, RuntimeDefault seccomp, read-only root filesystem
with an emptyDir at /tmp, requests and limits, no API token. A step that needs something
else says so by name (`api_access=True`, `volumes=[...]`). Workflow steps, EventSource and
Sensor pods and the EventBus all take their posture from here; `argo-delivery lint` is the
safety net, and a test fails when a pod security field is written anywhere else.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from hera.workflows import Container, EmptyDirVolume, ProjectedVolume, Resources, Script
from hera.workflows import models as m

from argo_delivery.rbac import Account

__all__ = [
    "NON_ROOT_UID",
    "container_security_context",
    "container_step",
    "events_pod_template",
    "executor_security_context",
    "pod_security_context",
    "resource_requirements",
    "script_step",
    "step_resources",
    "workflow_defaults",
]

# A uid with no meaning in any image; files the step writes go to an emptyDir at /tmp.
NON_ROOT_UID = 65532

_POD_SECURITY = {
    "runAsNonRoot": True, "runAsUser": NON_ROOT_UID, "runAsGroup": NON_ROOT_UID,
    "fsGroup": NON_ROOT_UID, "seccompProfile": {"type": "RuntimeDefault"},
}
_CONTAINER_SECURITY = {
    "runAsNonRoot": True, "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"},
}
TMP_SIZE = "64Mi"

# Where clients look for the in-cluster token, CA and namespace.
API_TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
API_TOKEN_VOLUME = "api-token"
API_TOKEN_SECONDS = 3600
# The projection kubelet makes for an automounted token, written out: ServiceAccounts keep
# automountServiceAccountToken false, and a pod that calls the API mounts this explicitly.
# (Argo Workflows copies a template's automountServiceAccountToken to the pod only when it is
# false, and Argo Events' Sensor pod template has no such field, so an opt-in by that field
# never reaches the pod.)
_API_TOKEN_SOURCES = [
    {"serviceAccountToken": {"path": "token", "expirationSeconds": API_TOKEN_SECONDS}},
    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
    {"downwardAPI": {"items": [{"path": "namespace",
                                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
]


def pod_security_context() -> dict[str, Any]:
    """A pod's `securityContext` as a manifest dict."""
    return copy.deepcopy(_POD_SECURITY)


def container_security_context() -> dict[str, Any]:
    """A container's `securityContext` as a manifest dict."""
    return copy.deepcopy(_CONTAINER_SECURITY)


def executor_security_context() -> dict[str, Any]:
    """What the workflow controller's `executor.securityContext` must set so that Argo's init
    and wait containers meet Pod Security `restricted` (the controller's config, not ours)."""
    return {key: copy.deepcopy(_CONTAINER_SECURITY[key])
            for key in ("runAsNonRoot", "allowPrivilegeEscalation", "capabilities", "seccompProfile")}


def resource_requirements(cpu: str, memory: str, cpu_limit: str, memory_limit: str) -> dict[str, Any]:
    return {"requests": {"cpu": cpu, "memory": memory},
            "limits": {"cpu": cpu_limit, "memory": memory_limit}}


def step_resources(cpu: str = "100m", memory: str = "128Mi", cpu_limit: str = "1",
                   memory_limit: str = "512Mi") -> Resources:
    return Resources(cpu_request=cpu, memory_request=memory, cpu_limit=cpu_limit,
                     memory_limit=memory_limit)


def _step_kwargs(api_access: bool, volumes: Sequence[Any], resources: Resources | None) -> dict[str, Any]:
    tmp = EmptyDirVolume(name="tmp", mount_path="/tmp", size_limit=TMP_SIZE)
    # Only an explicit opt-in mounts a token; the workflow's default is none.
    token = [ProjectedVolume(name=API_TOKEN_VOLUME, mount_path=API_TOKEN_DIR, read_only=True,
                             sources=[m.VolumeProjection.model_validate(s) for s in _API_TOKEN_SOURCES])
             ] if api_access else []
    return {
        "volumes": [tmp, *token, *volumes],
        "resources": resources or step_resources(),
        "security_context": m.SecurityContext.model_validate(_CONTAINER_SECURITY),
    }


def script_step(*, name: str, image: str, source: str, api_access: bool = False,
                volumes: Sequence[Any] = (), resources: Resources | None = None,
                **kwargs: Any) -> Script:
    """A script template with the secure posture; `kwargs` are any other Script fields."""
    return Script(name=name, image=image, source=source,
                  **_step_kwargs(api_access, volumes, resources), **kwargs)


def container_step(*, name: str, image: str, api_access: bool = False,
                   volumes: Sequence[Any] = (), resources: Resources | None = None,
                   **kwargs: Any) -> Container:
    """A container template with the secure posture; `kwargs` are any other Container fields."""
    return Container(name=name, image=image, **_step_kwargs(api_access, volumes, resources),
                     **kwargs)


def workflow_defaults(account: Account, executor: Account, deadline_seconds: int,
                      keep_finished_seconds: int = 86400) -> dict[str, Any]:
    """Keyword arguments every WorkflowTemplate and CronWorkflow spec takes.

    `account` runs the steps, `executor` runs Argo's wait container; neither mounts a token
    unless a step opts in.
    """
    return {
        "service_account_name": account.name,
        "automount_service_account_token": False,
        "executor": m.ExecutorConfig(service_account_name=executor.name),
        "active_deadline_seconds": deadline_seconds,
        "ttl_strategy": m.TTLStrategy(seconds_after_completion=keep_finished_seconds),
        "pod_gc": m.PodGC(strategy="OnPodSuccess"),
        "security_context": m.PodSecurityContext.model_validate(_POD_SECURITY),
    }


def events_pod_template(account: Account, api_access: bool = False) -> dict[str, Any]:
    """`spec.template` of an EventSource or Sensor: non-root, read-only, bounded.

    `api_access` mounts the account's token (a Sensor's process talks to the API to trigger).
    No /tmp volume: Argo Events' controller adds its own `tmp` emptyDir at /tmp to every
    EventSource and Sensor pod (v1.9.11 pkg/reconciler/{eventsource,sensor}/resource.go), and
    a second one makes the Deployment invalid ("Duplicate value: \"tmp\"").
    """
    mounts: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    if api_access:
        mounts.append({"name": API_TOKEN_VOLUME, "mountPath": API_TOKEN_DIR, "readOnly": True})
        volumes.append({"name": API_TOKEN_VOLUME,
                        "projected": {"sources": copy.deepcopy(_API_TOKEN_SOURCES)}})
    template: dict[str, Any] = {
        "serviceAccountName": account.name,
        "securityContext": pod_security_context(),
        "container": {
            "securityContext": container_security_context(),
            "resources": resource_requirements("50m", "64Mi", "500m", "256Mi"),
        },
    }
    if volumes:
        template["container"]["volumeMounts"] = mounts
        template["volumes"] = volumes
    return template
