"""Least-privilege RBAC as data: roles, the ServiceAccounts that hold them, and their manifests.

Each role lists exactly the verbs its steps or people use; nothing is a wildcard (the lint
rule AD008 checks that every rendered rule keeps it so). A binding is built from the role
object itself (`Role.binding`), so it cannot name a role that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from argo_delivery.naming import GROUP

__all__ = ["WORKFLOW_SUBMITTER", "Account", "Role", "Rule", "service_account", "token_secret"]

_RBAC_API = "rbac.authorization.k8s.io"


@dataclass(frozen=True)
class Rule:
    api_group: str
    resources: tuple[str, ...]
    verbs: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"apiGroups": [self.api_group], "resources": list(self.resources),
                "verbs": list(self.verbs)}


@dataclass(frozen=True)
class Role:
    """A namespaced Role: its name, why it exists, and its rules."""

    name: str
    description: str
    rules: tuple[Rule, ...]

    def manifest(self, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
        return {
            "apiVersion": f"{_RBAC_API}/v1",
            "kind": "Role",
            "metadata": {"name": self.name, "namespace": namespace, "labels": labels,
                         "annotations": {f"{GROUP}/description": self.description}},
            "rules": [rule.to_dict() for rule in self.rules],
        }

    def binding(self, name: str, namespace: str, subjects: list[dict[str, str]],
                labels: dict[str, str]) -> dict[str, Any]:
        """A RoleBinding of this role to `subjects` in `namespace`."""
        return {
            "apiVersion": f"{_RBAC_API}/v1",
            "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "roleRef": {"apiGroup": _RBAC_API, "kind": "Role", "name": self.name},
            "subjects": subjects,
        }


@dataclass(frozen=True)
class Account:
    """A ServiceAccount a capability's pods run as.

    `home` says where it lives: in every project namespace (the steps of a project's
    workflows) or in the orchestrator namespace (EventSource and Sensor pods). `role`, when
    set, is granted to it in every project namespace (only its own, when `per_project`),
    and nowhere else. `token_secret` asks
    for a token Secret beside it, for a consumer that mounts the token from a Secret by name
    (Argo Workflows does so for `executor.serviceAccountName`).
    """

    name: str
    description: str
    role: Role | None = None
    home: Literal["project", "orchestrator"] = "project"
    token_secret: bool = False
    # An orchestrator account of which each project has its own (`<name>-<project>`), bound
    # in that project's namespace only: no token spans tenants.
    per_project: bool = False

    def for_project(self, project_name: str) -> Account:
        """The concrete account of one project (itself unless `per_project`)."""
        if not self.per_project:
            return self
        return Account(f"{self.name}-{project_name}", self.description, self.role, self.home,
                       self.token_secret)

    def subject(self, namespace: str) -> dict[str, str]:
        return {"kind": "ServiceAccount", "name": self.name, "namespace": namespace}


def service_account(account: Account, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    """A ServiceAccount that mounts no token unless a pod asks for it explicitly."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": account.name, "namespace": namespace, "labels": labels,
                     "annotations": {f"{GROUP}/description": account.description}},
        "automountServiceAccountToken": False,
    }


def token_secret(account: Account, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    """A `<account>.service-account-token` Secret, filled in by the token controller: the
    name Argo Workflows mounts for an executor ServiceAccount that lists no secret of its own."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"{account.name}.service-account-token", "namespace": namespace,
                     "labels": labels,
                     "annotations": {"kubernetes.io/service-account.name": account.name}},
        "type": "kubernetes.io/service-account-token",
    }


# Every Sensor that triggers workflows holds this role in each project namespace.
WORKFLOW_SUBMITTER = Role(
    "argo-delivery-workflow-submitter",
    "Sensors: submit Workflows from the project's WorkflowTemplates.",
    (Rule("argoproj.io", ("workflows",), ("create",)),))
