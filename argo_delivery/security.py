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

from hera.workflows import Container, EmptyDirVolume, Resources, Script
from hera.workflows import models as m

from argo_delivery.rbac import Account

__all__ = [
    "NON_ROOT_UID",
    "container_security_context",
    "container_step",
    "events_pod_template",
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


def pod_security_context() -> dict[str, Any]:
    """A pod's `securityContext` as a manifest dict."""
    return copy.deepcopy(_POD_SECURITY)


def container_security_context() -> dict[str, Any]:
    """A container's `securityContext` as a manifest dict."""
    return copy.deepcopy(_CONTAINER_SECURITY)


def resource_requirements(cpu: str, memory: str, cpu_limit: str, memory_limit: str) -> dict[str, Any]:
    return {"requests": {"cpu": cpu, "memory": memory},
            "limits": {"cpu": cpu_limit, "memory": memory_limit}}


def step_resources(cpu: str = "100m", memory: str = "128Mi", cpu_limit: str = "1",
                   memory_limit: str = "512Mi") -> Resources:
    return Resources(cpu_request=cpu, memory_request=memory, cpu_limit=cpu_limit,
                     memory_limit=memory_limit)


def _step_kwargs(api_access: bool, volumes: Sequence[Any], resources: Resources | None) -> dict[str, Any]:
    return {
        "volumes": [EmptyDirVolume(name="tmp", mount_path="/tmp", size_limit=TMP_SIZE), *volumes],
        "resources": resources or step_resources(),
        "security_context": m.SecurityContext.model_validate(_CONTAINER_SECURITY),
        # Only an explicit opt-in mounts a token; the workflow's default is none.
        **({"automount_service_account_token": True} if api_access else {}),
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


def events_pod_template(account: Account) -> dict[str, Any]:
    """`spec.template` of an EventSource or Sensor: non-root, read-only, bounded."""
    return {
        "serviceAccountName": account.name,
        "securityContext": pod_security_context(),
        "container": {
            "securityContext": container_security_context(),
            "resources": resource_requirements("50m", "64Mi", "500m", "256Mi"),
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        },
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE}}],
    }
