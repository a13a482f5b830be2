"""Secure defaults for every pod we render (DESIGN section 5), written once.

The safe choice is what a template gets without asking: non-root, no privilege
escalation, all capabilities dropped, RuntimeDefault seccomp, read-only root filesystem,
requests and limits, no API token. A step that needs something else says so by name.
"""

from __future__ import annotations

from typing import Any

from hera.workflows import Resources
from hera.workflows import models as m

__all__ = [
    "NON_ROOT_UID",
    "container_security_context",
    "pod_security_context",
    "step_resources",
    "workflow_defaults",
]

# A uid with no meaning in any image; files the step writes go to an emptyDir at /tmp.
NON_ROOT_UID = 65532


def container_security_context() -> m.SecurityContext:
    return m.SecurityContext(
        run_as_non_root=True,
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        capabilities=m.Capabilities(drop=["ALL"]),
        seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
    )


def pod_security_context() -> m.PodSecurityContext:
    return m.PodSecurityContext(
        run_as_non_root=True,
        run_as_user=NON_ROOT_UID,
        run_as_group=NON_ROOT_UID,
        fs_group=NON_ROOT_UID,
        seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
    )


def step_resources(cpu: str = "100m", memory: str = "128Mi", cpu_limit: str = "1",
                   memory_limit: str = "512Mi") -> Resources:
    return Resources(cpu_request=cpu, memory_request=memory, cpu_limit=cpu_limit,
                     memory_limit=memory_limit)


def workflow_defaults(service_account: str, executor_account: str, deadline_seconds: int,
                      keep_finished_seconds: int = 86400) -> dict[str, Any]:
    """Keyword arguments every WorkflowTemplate and CronWorkflow spec takes."""
    return {
        "service_account_name": service_account,
        "automount_service_account_token": False,
        "executor": m.ExecutorConfig(service_account_name=executor_account),
        "active_deadline_seconds": deadline_seconds,
        "ttl_strategy": m.TTLStrategy(seconds_after_completion=keep_finished_seconds),
        "pod_gc": m.PodGC(strategy="OnPodSuccess"),
        "security_context": pod_security_context(),
    }
