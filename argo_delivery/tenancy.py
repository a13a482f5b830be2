"""What each project (tenant) gets: its Namespace, its Project resource, ServiceAccounts, RBAC."""

from __future__ import annotations

from typing import Any

from argo_delivery.capability import Capability, CapabilityError, Registry
from argo_delivery.config import PlatformConfig, Project, TestSuite
from argo_delivery.durations import go_duration, parse_duration
from argo_delivery.naming import GROUP, GROUP_VERSION, LABEL_PROJECT
from argo_delivery.orchestrator import namespace_resources
from argo_delivery.rbac import Account, Role, Rule, service_account, token_secret

__all__ = [
    "CAPABILITY",
    "DEVELOPER",
    "EXECUTOR",
    "PRODUCT_OWNER",
    "access_resources",
    "project_resource",
    "project_resources",
]

_READ = ("get", "list", "watch")

# Argo's wait container in every workflow pod runs as this account (executor.serviceAccountName).
_EXECUTOR_ROLE = Role(
    "argo-delivery-executor", "Argo's wait container: reports step results as WorkflowTaskResults.",
    (Rule("argoproj.io", ("workflowtaskresults",), ("create", "patch")),))
EXECUTOR = Account(_EXECUTOR_ROLE.name, _EXECUTOR_ROLE.description, _EXECUTOR_ROLE,
                   token_secret=True)

# People: member groups of a project are bound to these in the project's namespace.
DEVELOPER = Role(
    "argo-delivery-developer",
    "People who build on the project: see Versions and ask for a stream to run again "
    "(an annotation: patch), ask for Environments and extend or delete their own (the "
    "admission policy argo-delivery-environment-lifecycle refuses anyone else's). Approving "
    "needs the verb approve.",
    (Rule(GROUP, ("projects",), _READ),
     Rule(GROUP, ("versions",), _READ + ("patch",)),
     Rule(GROUP, ("environments",), _READ + ("create", "patch", "delete")),
     Rule("argoproj.io", ("workflows",), _READ)))
PRODUCT_OWNER = Role(
    "argo-delivery-product-owner",
    "Product owners: sign off Versions (write spec.approval; the admission policy "
    "argo-delivery-version-approval asks the authorizer for the custom verb approve), ask for "
    "Environments, demo ones too (the custom verb demo), extend or delete anyone's (manage) "
    "and drop the finalizer of one whose destroy cannot finish (finalize).",
    (Rule(GROUP, ("projects",), _READ),
     Rule(GROUP, ("environments",), _READ + ("create", "patch", "delete", "demo", "manage",
                                             "finalize")),
     Rule(GROUP, ("versions",), _READ + ("patch", "approve")),
     Rule("argoproj.io", ("workflows",), _READ)))


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
                                # Go durations (no `d`): CEL's duration() reads them
                                "defaultTTL": go_duration(parse_duration(env.default_ttl)),
                                "maxTTL": go_duration(parse_duration(env.max_ttl)),
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
    """Namespace (unless the site creates namespaces), Project, and the member groups' Roles and
    RoleBindings of one project."""
    labels = _labels(project)
    namespace = project.namespace
    resources: list[dict[str, Any]] = [
        *namespace_resources(config, namespace, labels),
        project_resource(project, config),
    ]
    for role, groups in ((DEVELOPER, project.developers), (PRODUCT_OWNER, project.product_owners)):
        resources.append(role.manifest(namespace, labels))
        if groups:
            subjects = [{"kind": "Group", "name": group, "apiGroup": "rbac.authorization.k8s.io"}
                        for group in groups]
            resources.append(role.binding(role.name, namespace, subjects, labels))
    return resources


def access_resources(capabilities: Registry, config: PlatformConfig) -> list[dict[str, Any]]:
    """ServiceAccounts, Roles and RoleBindings derived from the capabilities' accounts.

    A project account exists in every project namespace, bound to its role there. An
    orchestrator account exists once, in the orchestrator namespace, and its role is granted
    to it in every project namespace (a Sensor may create Workflows there, nothing else).
    """
    accounts = capabilities.accounts()
    orchestrator = config.orchestrator_namespace
    resources = [service_account(a, orchestrator, {}) for a in accounts
                 if a.home == "orchestrator" and not a.per_project]
    roles: dict[str, Role] = {}
    for account in accounts:
        if account.role and roles.setdefault(account.role.name, account.role) != account.role:
            raise CapabilityError(f"two different roles are both called {account.role.name!r}")
    for project in config.projects:
        labels, namespace = _labels(project), project.namespace
        resources += [role.manifest(namespace, labels) for role in roles.values()]
        for declared in accounts:
            account = declared.for_project(project.name)
            if account.home == "project":
                resources.append(service_account(account, namespace, labels))
                if account.token_secret:
                    resources.append(token_secret(account, namespace, labels))
            elif declared.per_project:
                resources.append(service_account(account, orchestrator, labels))
            if account.role:
                home = namespace if account.home == "project" else orchestrator
                resources.append(account.role.binding(account.name, namespace,
                                                      [account.subject(home)], labels))
    return resources


CAPABILITY = Capability(
    "tenancy", "Per project: its Namespace, its Project resource, the member groups' roles, "
    "and the account Argo's executor runs as.",
    per_project=project_resources, accounts=(EXECUTOR,))
