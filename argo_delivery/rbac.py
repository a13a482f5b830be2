"""Least-privilege RBAC, written once as data.

Each role lists exactly the verbs its steps or people use; nothing is a wildcard (the lint
rule AD008 checks that every rendered rule keeps it so).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from argo_delivery.naming import GROUP

__all__ = ["ROLES", "Rule", "RoleSpec", "role", "role_binding", "service_account"]


@dataclass(frozen=True)
class Rule:
    api_group: str
    resources: tuple[str, ...]
    verbs: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"apiGroups": [self.api_group], "resources": list(self.resources),
                "verbs": list(self.verbs)}


@dataclass(frozen=True)
class RoleSpec:
    name: str
    description: str
    rules: tuple[Rule, ...]


_READ = ("get", "list", "watch")

ROLES: dict[str, RoleSpec] = {spec.name: spec for spec in (
    RoleSpec("argo-delivery-executor",
             "Argo's wait container: reports step results as WorkflowTaskResults.",
             (Rule("argoproj.io", ("workflowtaskresults",), ("create", "patch")),)),
    RoleSpec("argo-delivery-version-writer",
             "generate-version: reads the Project, creates the Version if it is new.",
             (Rule(GROUP, ("projects",), ("get",)),
              Rule(GROUP, ("versions",), ("get", "create")))),
    RoleSpec("argo-delivery-workflow-submitter",
             "Sensors: submit Workflows from the project's WorkflowTemplates.",
             (Rule("argoproj.io", ("workflows",), ("create",)),)),
    RoleSpec("argo-delivery-developer",
             "People who build on the project: see Versions, ask for Environments.",
             (Rule(GROUP, ("projects", "versions"), _READ),
              Rule(GROUP, ("environments",), _READ + ("create", "delete")),
              Rule("argoproj.io", ("workflows",), _READ))),
    RoleSpec("argo-delivery-product-owner",
             "Product owners: sign off Versions (write spec.approval).",
             (Rule(GROUP, ("projects", "environments"), _READ),
              Rule(GROUP, ("versions",), _READ + ("patch",)),
              Rule("argoproj.io", ("workflows",), _READ))),
)}


def service_account(name: str, namespace: str, labels: dict[str, str],
                    description: str) -> dict[str, Any]:
    """A ServiceAccount that mounts no token unless a pod asks for it explicitly."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace, "labels": labels,
                     "annotations": {f"{GROUP}/description": description}},
        "automountServiceAccountToken": False,
    }


def role(spec: RoleSpec, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": spec.name, "namespace": namespace, "labels": labels,
                     "annotations": {f"{GROUP}/description": spec.description}},
        "rules": [rule.to_dict() for rule in spec.rules],
    }


def role_binding(name: str, namespace: str, role_name: str, subjects: list[dict[str, str]],
                 labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role_name},
        "subjects": subjects,
    }
