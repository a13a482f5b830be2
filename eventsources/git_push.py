"""EventSource `git-push`: push webhooks from the configured git provider (flow F1).

The sender is always verified from a Secret: GitHub's HMAC `webhookSecret`, GitLab's
`secretToken`, or a bearer token (`authSecret`) for the generic webhook (Gitea, Bitbucket
Server). The config has no switch to turn that off. Only the configured repositories are
registered with the provider; the Sensor filters on them again, so a stray delivery from
another repository never triggers anything.
"""

from __future__ import annotations

from typing import Any

from argo_delivery import providers
from argo_delivery.config import Component, GitProvider, PlatformConfig
from argo_delivery.providers import PROVIDERS, WEBHOOK_ENDPOINT, EventSourceInputs
from argo_delivery.rbac import Account
from argo_delivery.security import events_pod_template

__all__ = ["ACCOUNT", "NAME", "WEBHOOK_PORT", "git_push", "repository_path"]

NAME = "git-push"
ACCOUNT = Account("argo-delivery-eventsource", "EventSource pods: receive webhooks; no API access.",
                  home="orchestrator")
WEBHOOK_PORT = 12000
ENDPOINT = WEBHOOK_ENDPOINT


def repository_path(component: Component, provider: GitProvider) -> str:
    """`owner/name` (GitHub, Gitea) or `group/sub/project` (GitLab) of a component's repo, as
    the provider names it (a GitLab under https://host/gitlab/ names it without `gitlab/`)."""
    return providers.repository_path(component.repo, provider.type, provider.base_url)


def _watched(config: PlatformConfig) -> list[Component]:
    used = {c.name for project in config.projects for c in project.components}
    return [c for c in config.components if c.name in used]


def git_push(config: PlatformConfig) -> dict[str, Any]:
    """The EventSource for the configured provider, in the orchestrator namespace."""
    provider = config.git_provider
    kind = PROVIDERS[provider.type]
    webhook = {"endpoint": ENDPOINT, "port": str(WEBHOOK_PORT), "method": "POST",
               "maxPayloadSize": 4 << 20}
    if provider.webhook_url:
        webhook["url"] = provider.webhook_url
    inputs = EventSourceInputs(
        webhook=webhook,
        secret=provider.webhook_secret.selector(),
        token=provider.api_token.selector() if provider.api_token else None,
        paths=sorted({repository_path(c, provider) for c in _watched(config)}),
        base_url=provider.base_url,
    )
    spec: dict[str, Any] = {
        "template": events_pod_template(ACCOUNT),
        "service": {"ports": [{"name": "webhook", "port": WEBHOOK_PORT,
                               "targetPort": WEBHOOK_PORT}]},
        kind.section: {kind.event_name: kind.event_source(inputs)},
    }
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "EventSource",
        "metadata": {"name": NAME, "namespace": config.orchestrator_namespace,
                     "annotations": {"argo-delivery.io/description":
                                     f"Push webhooks from {provider.type}; sender verified "
                                     f"with Secret {provider.webhook_secret.name}."}},
        "spec": spec,
    }
