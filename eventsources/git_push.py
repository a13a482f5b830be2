"""EventSource `git-push`: push webhooks from the configured git provider (flow F1).

The sender is always verified from a Secret: GitHub's HMAC `webhookSecret`, GitLab's
`secretToken`, or a bearer token (`authSecret`) for the generic webhook (Gitea, Bitbucket
Server). The config has no switch to turn that off. Only the configured repositories are
registered with the provider; the Sensor filters on them again, so a stray delivery from
another repository never triggers anything.

One EventSource (one pod, one Service, one port) serves every project, with one event per
webhook: the shared one at `/push` for the projects without a webhook secret of their own,
verified with `gitProvider.webhookSecret`, and one at `/push/<project>` for each project with
its own `webhookSecret`, verified with that. A project's Sensor depends on its webhook's event
only, so a sender who knows one project's secret starts nothing in another project.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from argo_delivery import providers
from argo_delivery.config import Component, GitProvider, PlatformConfig, Project, SecretKeyRef
from argo_delivery.providers import PROVIDERS, WEBHOOK_ENDPOINT, EventSourceInputs, webhook_endpoint
from argo_delivery.rbac import Account
from argo_delivery.security import events_pod_template

__all__ = ["ACCOUNT", "NAME", "WEBHOOK_PORT", "Webhook", "event_name", "git_push", "repository_path",
           "webhooks"]

NAME = "git-push"
ACCOUNT = Account("argo-delivery-eventsource", "EventSource pods: receive webhooks; no API access.",
                  home="orchestrator")
WEBHOOK_PORT = 12000
ENDPOINT = WEBHOOK_ENDPOINT


def repository_path(component: Component, provider: GitProvider) -> str:
    """`owner/name` (GitHub, Gitea) or `group/sub/project` (GitLab) of a component's repo, as
    the provider names it (a GitLab under https://host/gitlab/ names it without `gitlab/`)."""
    return providers.repository_path(component.repo, provider.type, provider.base_url)


@dataclass(frozen=True)
class Webhook:
    """One webhook of the EventSource: an event, the path it listens at, the secret that
    verifies its sender, the projects whose Sensors depend on it and the repositories it
    watches (registered with the provider where the EventSource registers hooks)."""

    event: str
    endpoint: str
    secret: SecretKeyRef
    projects: tuple[str, ...]
    paths: tuple[str, ...]


def event_name(project: Project, config: PlatformConfig) -> str:
    """The EventSource event `project`'s Sensor depends on: its own, or the shared one."""
    shared = PROVIDERS[config.git_provider.type].event_name
    return shared if project.webhook_secret is None else f"{shared}-{project.name}"


def webhooks(config: PlatformConfig) -> list[Webhook]:
    """The shared webhook (if a project uses it), then each project's own, in config order."""
    provider = config.git_provider

    def paths(projects: list[Project]) -> tuple[str, ...]:
        return tuple(sorted({repository_path(c, provider) for p in projects for c in p.components}))

    shared = [p for p in config.projects if p.webhook_secret is None]
    hooks = []
    if shared:
        if provider.webhook_secret is None:   # the config refuses this
            raise ValueError("gitProvider.webhookSecret is needed: projects "
                             f"{[p.name for p in shared]} use the shared webhook")
        hooks.append(Webhook(PROVIDERS[provider.type].event_name, webhook_endpoint(),
                             provider.webhook_secret, tuple(p.name for p in shared), paths(shared)))
    hooks += [Webhook(event_name(p, config), webhook_endpoint(p.name), p.webhook_secret, (p.name,),
                      paths([p])) for p in config.projects if p.webhook_secret is not None]
    return hooks


def git_push(config: PlatformConfig) -> dict[str, Any]:
    """The EventSource for the configured provider, in the orchestrator namespace."""
    provider = config.git_provider
    kind = PROVIDERS[provider.type]
    events = {}
    for hook in webhooks(config):
        webhook = {"endpoint": hook.endpoint, "port": str(WEBHOOK_PORT), "method": "POST",
                   "maxPayloadSize": 4 << 20}
        if provider.webhook_url:
            webhook["url"] = provider.webhook_url
        events[hook.event] = kind.event_source(EventSourceInputs(
            webhook=webhook,
            secret=hook.secret.selector(),
            token=provider.api_token.selector() if provider.api_token else None,
            paths=list(hook.paths),
            base_url=provider.base_url,
        ))
    spec: dict[str, Any] = {
        "template": events_pod_template(ACCOUNT),
        "service": {"ports": [{"name": "webhook", "port": WEBHOOK_PORT,
                               "targetPort": WEBHOOK_PORT}]},
        kind.section: events,
    }
    verified = ", ".join(f"{hook.endpoint} with Secret {hook.secret.name}" for hook in webhooks(config))
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "EventSource",
        "metadata": {"name": NAME, "namespace": config.orchestrator_namespace,
                     "annotations": {"argo-delivery.io/description":
                                     f"Push webhooks from {provider.type}; sender verified "
                                     f"at {verified}."}},
        "spec": spec,
    }
