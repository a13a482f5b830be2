"""Sensor `on-push` (flow F1): a push to a tracked branch -> `generate-version` per project.

One Sensor per project, with one dependency on the `git-push` EventSource's event for that
project's webhook (its own, where it has a webhook secret of its own, else the shared one),
whose filter accepts only a push to a tracked branch of one of that project's components (and
never a branch deletion). Each project's trigger creates a Workflow from the project's `generate-version`
WorkflowTemplate in the project's namespace; webhook fields become Workflow parameters,
base64-encoded, which the step reads as environment variables. The trigger creates the Workflow directly
(a `k8s` trigger), so the Sensor's ServiceAccount needs `create` on Workflows and nothing else.
"""

from __future__ import annotations

import json
from typing import Any

from argo_delivery.capability import CapabilityError, SensorTrigger
from argo_delivery.config import Component, GitProvider, PlatformConfig, Project
from argo_delivery.eventsources import git_push
from argo_delivery.naming import LABEL_PROJECT
from argo_delivery.providers import PROVIDERS, provider_root
from argo_delivery.rbac import WORKFLOW_SUBMITTER, Account
from argo_delivery.security import events_pod_template

from ._triggers import workflow_trigger

__all__ = ["ACCOUNT", "NAME", "on_push", "push_filter"]

NAME = "on-push"
ACCOUNT = Account("argo-delivery-sensor-on-push",
                  "A project's on-push Sensor: may create Workflows in its project's namespace "
                  "(only from generate-version, the admission policy says), nothing else.",
                  WORKFLOW_SUBMITTER, home="orchestrator", per_project=True)
ZERO_COMMIT = "0" * 40

def _b64_template(path: str, strip_prefix: str = "") -> str:
    """A dataTemplate that base64-encodes a payload field; a missing one reads `unknown`.

    Argo Workflows expands `{{...}}` found in workflow parameter values; base64 text cannot
    contain braces, so nothing a webhook sends is ever read as an Argo expression. The step
    decodes the values.
    """
    keys = " ".join(f'"{key}"' for key in path.removeprefix("body.").split("."))
    value = f'(dig {keys} "unknown" .Input.body)'
    if strip_prefix:
        value = f'(trimPrefix "{strip_prefix}" {value})'
    return "{{ b64enc " + value + " }}"


def _quote(text: str) -> str:
    # govaluate string literal; config values are already restricted to safe characters
    # (the schema allows no quotes or backslashes in branch names).
    return json.dumps(text)


def _same_path(path: str) -> str:
    """A govaluate `=~` pattern (a Go regexp) matching `path` in any case.

    GitLab, GitHub and Gitea name a repository in any case (`Acme/API` is `acme/api`) and
    send it in its canonical case, which the config need not use. Argo Events evaluates expr
    filters with govaluate and no functions (v1.9.11, pkg/sensors/dependencies/filter.go),
    so there is no lower(): the match is a case-insensitive regexp. Characters other than
    letters, digits, `-`, `_` and `/` are written as `\\x{..}` escapes (`.` as `[.]`).
    """
    return f"(?i)^{_escape(path)}$"


def _escape(text: str) -> str:
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_/") else
                   "[.]" if c == "." else f"\\x{{{ord(c):x}}}" for c in text)


def _on_host(provider: GitProvider) -> str | None:
    """A govaluate `=~` pattern for the clone URL of a repository on the provider (any case,
    any port), or None for a provider with no fixed host (the generic webhook)."""
    root = provider_root(provider.type, provider.base_url)
    if root is None:
        return None
    host, prefix = root
    return f"(?i)^https?://{_escape(host)}(:[0-9]+)?/" + (f"{_escape(prefix)}/" if prefix else "")


def _component_match(component: Component, provider: GitProvider) -> str:
    """The repository path (any case) and tracked branch of a component, and its repository id
    when the config gives one (a number: govaluate compares it with the payload's as float64,
    exact up to 2**53, the schema's maximum)."""
    match = (f"path =~ {_quote(_same_path(git_push.repository_path(component, provider)))} && "
             f"ref == {_quote('refs/heads/' + component.branch)}")
    if component.repository_id is not None:
        match += f" && id == {int(component.repository_id)}"
    return f"({match})"


def push_filter(project: Project, provider: GitProvider) -> dict[str, Any]:
    """Expr filter: the push is to a tracked branch of one of the project's components, on the
    provider's host (a same-named repository elsewhere or a fork does not fire), with the
    component's repository id where the config gives one, never a deletion."""
    fields = PROVIDERS[provider.type].payload
    with_id = [c.name for c in project.components if c.repository_id is not None]
    if with_id and "id" not in fields:
        raise CapabilityError(f"components {with_id} have a repositoryId, but {provider.type} "
                              "pushes carry no repository id")
    alternatives = sorted({_component_match(c, provider) for c in project.components})
    expr = f"({' || '.join(alternatives)}) && commit != {_quote(ZERO_COMMIT)}"
    names = [("path", "path"), ("ref", "ref"), ("commit", "commit")]
    if with_id:
        names.append(("id", "id"))
    host = _on_host(provider)
    if host:
        expr += f" && repo =~ {_quote(host)}"
        names.append(("repo", "repo"))
    return {"exprs": [{"expr": expr, "fields": [{"name": name, "path": fields[key]}
                                                 for name, key in names]}]}


def _dependency_name(project: Project) -> str:
    return f"push-{project.name}"


def _trigger(project: Project, config: PlatformConfig, target: SensorTrigger) -> dict[str, Any]:
    fields = PROVIDERS[config.git_provider.type].payload
    sources = {
        "repo": {"dataTemplate": _b64_template(fields["repo"])},
        "branch": {"dataTemplate": _b64_template(fields["ref"], strip_prefix="refs/heads/")},
        "commit": {"dataTemplate": _b64_template(fields["commit"])},
        "sender": {"dataTemplate": _b64_template(fields["sender"])},
    }
    unknown = sorted(set(target.parameters) - set(sources))
    if unknown:
        raise CapabilityError(f"Sensor {NAME} cannot set parameters {unknown} of {target.template}; "
                              f"a push carries only {sorted(sources)}")
    return workflow_trigger(f"{target.template}-{project.name}", _dependency_name(project),
                            project.namespace, project.name, target.template,
                            {name: sources[name] for name in target.parameters},
                            config.trigger_rate_limit)


def on_push(project: Project, config: PlatformConfig, target: SensorTrigger) -> dict[str, Any]:
    """The Sensor `on-push-<project>` in the orchestrator namespace: a push to a tracked branch
    of one of the project's components creates a Workflow from `target` (declared by the
    template's module) in the project's namespace. Each project has its own Sensor and
    ServiceAccount, so no Sensor token reaches another tenant's namespace."""
    trigger = _trigger(project, config, target)
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Sensor",
        "metadata": {"name": f"{NAME}-{project.name}", "namespace": config.orchestrator_namespace,
                     "labels": {LABEL_PROJECT: project.name},
                     "annotations": {"argo-delivery.io/description":
                                     f"A push to a tracked branch of a component of {project.name} "
                                     f"submits {target.template} in namespace {project.namespace}."}},
        "spec": {
            "template": events_pod_template(target.account.for_project(project.name), api_access=True),
            "dependencies": [{
                "name": _dependency_name(project),
                "eventSourceName": git_push.NAME,
                "eventName": git_push.event_name(project, config),
                "filters": push_filter(project, config.git_provider),
            }],
            "triggers": [trigger],
        },
    }
