"""Sensor `on-push` (flow F1): a push to a tracked branch -> `generate-version` per project.

One dependency per project, on the `git-push` EventSource, whose filter accepts only a
push to a tracked branch of one of that project's components (and never a branch
deletion). Each project's trigger creates a Workflow from the project's `generate-version`
WorkflowTemplate in the project's namespace; webhook fields become Workflow parameters,
base64-encoded, which the step reads as environment variables. The trigger creates the Workflow directly
(a `k8s` trigger), so the Sensor's ServiceAccount needs `create` on Workflows and nothing else.
"""

from __future__ import annotations

import json
from typing import Any

from argo_delivery.capability import CapabilityError, SensorTrigger
from argo_delivery.config import GitProvider, PlatformConfig, Project
from argo_delivery.eventsources import git_push
from argo_delivery.naming import LABEL_PROJECT
from argo_delivery.providers import PROVIDERS
from argo_delivery.rbac import WORKFLOW_SUBMITTER, Account
from argo_delivery.security import events_pod_template

__all__ = ["ACCOUNT", "NAME", "on_push", "push_filter"]

NAME = "on-push"
ACCOUNT = Account("argo-delivery-sensor-on-push",
                  "A Sensor: may create Workflows in project namespaces, nothing else.",
                  WORKFLOW_SUBMITTER, home="orchestrator")
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
    escaped = "".join(c if c.isascii() and (c.isalnum() or c in "-_/") else
                      "[.]" if c == "." else f"\\x{{{ord(c):x}}}" for c in path)
    return f"(?i)^{escaped}$"


def push_filter(project: Project, provider: GitProvider) -> dict[str, Any]:
    """Expr filter: the push is to a tracked branch of one of the project's components."""
    fields = PROVIDERS[provider.type].payload
    alternatives = sorted({f"(path =~ {_quote(_same_path(git_push.repository_path(c, provider)))} && "
                           f"ref == {_quote('refs/heads/' + c.branch)})" for c in project.components})
    return {"exprs": [{
        "expr": f"({' || '.join(alternatives)}) && commit != {_quote(ZERO_COMMIT)}",
        "fields": [{"name": "path", "path": fields["path"]},
                   {"name": "ref", "path": fields["ref"]},
                   {"name": "commit", "path": fields["commit"]}],
    }]}


def _dependency_name(project: Project) -> str:
    return f"push-{project.name}"


def _trigger(project: Project, provider: str, target: SensorTrigger) -> dict[str, Any]:
    fields = PROVIDERS[provider].payload
    dependency = _dependency_name(project)
    workflow = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": f"{target.template}-", "namespace": project.namespace,
                     "labels": {LABEL_PROJECT: project.name}},
        "spec": {
            "workflowTemplateRef": {"name": target.template},
            "arguments": {"parameters": [{"name": name, "value": ""}
                                         for name in target.parameters]},
        },
    }
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
    return {
        "template": {
            "name": f"{target.template}-{project.name}",
            "conditions": dependency,
            "k8s": {
                "operation": "create",
                "source": {"resource": workflow},
                "parameters": [
                    {"src": {"dependencyName": dependency, **source},
                     "dest": f"spec.arguments.parameters.{index}.value"}
                    for index, source in enumerate(sources[name] for name in target.parameters)
                ],
            },
        },
        "retryStrategy": {"steps": 3, "duration": "2s", "factor": 2, "jitter": 0.2},
    }


def on_push(config: PlatformConfig, target: SensorTrigger) -> dict[str, Any]:
    """The `on-push` Sensor in the orchestrator namespace; each project's trigger creates a
    Workflow from `target` (declared by the template's module)."""
    provider = config.git_provider.type
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Sensor",
        "metadata": {"name": NAME, "namespace": config.orchestrator_namespace,
                     "annotations": {"argo-delivery.io/description":
                                     f"A push to a tracked branch submits {target.template} "
                                     "in every project that uses the component."}},
        "spec": {
            "template": events_pod_template(ACCOUNT, api_access=True),
            "dependencies": [{
                "name": _dependency_name(project),
                "eventSourceName": git_push.NAME,
                "eventName": PROVIDERS[provider].event_name,
                "filters": push_filter(project, config.git_provider),
            } for project in config.projects],
            "triggers": [_trigger(project, provider, target) for project in config.projects],
        },
    }
