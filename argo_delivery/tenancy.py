"""What each project (tenant) gets: its Namespace, its Project resource, ServiceAccounts, RBAC."""

from __future__ import annotations

from typing import Any

from argo_delivery.config import PlatformConfig, Project, TestSuite
from argo_delivery.naming import (
    GROUP_VERSION,
    LABEL_PROJECT,
    POD_SECURITY_LABELS,
    SENSOR_ON_PUSH_SA,
)
from argo_delivery.rbac import ROLES, role, role_binding, service_account

__all__ = [
    "EXECUTOR_SA",
    "SENSOR_ACCOUNTS",
    "VERSION_WRITER_SA",
    "project_resource",
    "project_resources",
]

EXECUTOR_SA = "argo-delivery-executor"
VERSION_WRITER_SA = "argo-delivery-version-writer"
# Sensors run in the orchestrator namespace, each as its own ServiceAccount; every project
# lets each of them create Workflows in its namespace, and nothing else.
SENSOR_ACCOUNTS = (SENSOR_ON_PUSH_SA,)

# ServiceAccount in the project namespace -> the role it is bound to.
_STEP_ACCOUNTS = {
    EXECUTOR_SA: "argo-delivery-executor",
    VERSION_WRITER_SA: "argo-delivery-version-writer",
}


def _suite(suite: TestSuite, config: PlatformConfig) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": suite.name,
        "image": suite.image,
        "timeout": suite.timeout,
    }
    if suite.command:
        data["command"] = list(suite.command)
    if suite.args:
        data["args"] = list(suite.args)
    return data


def project_resource(project: Project, config: PlatformConfig) -> dict[str, Any]:
    """The Project custom resource: everything a running pipeline needs to know about it."""
    spec: dict[str, Any] = {
        "type": project.type,
        "members": {"developers": list(project.developers),
                    "productOwners": list(project.product_owners)},
        "components": [{"name": c.name, "repo": c.repo, "branch": c.branch,
                        "deployPath": c.deploy_path} for c in project.components],
        "testSuites": {"alpha": [_suite(s, config) for s in project.alpha],
                       "nightly": [_suite(s, config) for s in project.nightly]},
    }
    if project.environments:
        env = project.environments
        spec["environments"] = {"terraformModule": env.terraform_module,
                                "variables": dict(env.variables),
                                "defaultTTL": env.default_ttl, "maxTTL": env.max_ttl,
                                "demo": [{"name": d.name, "owner": d.owner,
                                          "variables": dict(d.variables)}
                                         for d in project.demo_environments]}
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "Project",
        "metadata": {"name": project.name, "namespace": project.namespace,
                     "labels": _labels(project)},
        "spec": spec,
    }


def _labels(project: Project) -> dict[str, str]:
    return {LABEL_PROJECT: project.name}


def project_resources(project: Project, config: PlatformConfig) -> list[dict[str, Any]]:
    """Namespace, Project, ServiceAccounts, Roles and RoleBindings of one project."""
    labels = _labels(project)
    namespace = project.namespace
    resources: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": namespace, "labels": {
             **labels, **POD_SECURITY_LABELS}}},
        project_resource(project, config),
    ]
    for account, role_name in _STEP_ACCOUNTS.items():
        resources.append(service_account(account, namespace, labels, ROLES[role_name].description))
    for spec in ROLES.values():
        resources.append(role(spec, namespace, labels))
    for account, role_name in _STEP_ACCOUNTS.items():
        resources.append(role_binding(account, namespace, role_name,
                                      [{"kind": "ServiceAccount", "name": account,
                                        "namespace": namespace}], labels))
    for account in SENSOR_ACCOUNTS:
        resources.append(role_binding(account, namespace, "argo-delivery-workflow-submitter",
                                      [{"kind": "ServiceAccount", "name": account,
                                        "namespace": config.orchestrator_namespace}], labels))
    for role_name, groups in (("argo-delivery-developer", project.developers),
                              ("argo-delivery-product-owner", project.product_owners)):
        if groups:
            resources.append(role_binding(role_name, namespace, role_name,
                                          [{"kind": "Group", "name": group,
                                            "apiGroup": "rbac.authorization.k8s.io"}
                                           for group in groups], labels))
    return resources
