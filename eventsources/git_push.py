"""EventSource `git-push`: push webhooks from the configured git provider (flow F1).

The sender is always verified from a Secret: GitHub's HMAC `webhookSecret`, GitLab's
`secretToken`, or a bearer token (`authSecret`) for the generic webhook (Gitea, Bitbucket
Server). The config has no switch to turn that off. Only the configured repositories are
registered with the provider; the Sensor filters on them again, so a stray delivery from
another repository never triggers anything.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from argo_delivery.config import Component, PlatformConfig
from argo_delivery.events_common import EVENTSOURCE_SA, WEBHOOK_PORT, pod_template
from argo_delivery.versionhash import normalise_repo

__all__ = ["EVENT_NAMES", "NAME", "git_push", "repository_path"]

NAME = "git-push"
# provider type -> the event name inside the EventSource (what Sensors depend on)
EVENT_NAMES = {"github": "github", "gitlab": "gitlab", "generic": "webhook"}
ENDPOINT = "/push"


def repository_path(component: Component) -> str:
    """`owner/name` (GitHub, Gitea) or `group/sub/project` (GitLab) of a component's repo."""
    normalised = normalise_repo(component.repo)
    if "://" in normalised:
        path = normalised.split("://", 1)[1].partition("/")[2]
    else:
        path = normalised.partition(":")[2]
    return path.strip("/")


def _watched(config: PlatformConfig) -> list[Component]:
    used = {c.name for project in config.projects for c in project.components}
    return [c for c in config.components if c.name in used]


def git_push(config: PlatformConfig) -> dict[str, Any]:
    """The EventSource for the configured provider, in the orchestrator namespace."""
    provider = config.git_provider
    secret = provider.webhook_secret.selector()
    webhook = {"endpoint": ENDPOINT, "port": str(WEBHOOK_PORT), "method": "POST",
               "maxPayloadSize": 4 << 20}
    if provider.webhook_url:
        webhook["url"] = provider.webhook_url.rstrip("/")
    token = provider.api_token.selector() if provider.api_token else None
    event = EVENT_NAMES[provider.type]
    paths = sorted({repository_path(c) for c in _watched(config)})
    spec: dict[str, Any] = {
        "template": pod_template(EVENTSOURCE_SA),
        "service": {"ports": [{"name": "webhook", "port": WEBHOOK_PORT,
                               "targetPort": WEBHOOK_PORT}]},
    }
    if provider.type == "github":
        owners: dict[str, list[str]] = defaultdict(list)
        for path in paths:
            owner, _, name = path.rpartition("/")
            owners[owner].append(name)
        source: dict[str, Any] = {
            "repositories": [{"owner": owner, "names": names} for owner, names in sorted(owners.items())],
            "webhook": webhook,
            "events": ["push"],
            "webhookSecret": secret,
            "contentType": "json",
            "active": True,
            "insecure": False,
        }
        if token:
            source["apiToken"] = token
        if provider.base_url:
            base = provider.base_url.rstrip("/")
            source["githubBaseURL"] = f"{base}/api/v3/"
            source["githubUploadURL"] = f"{base}/api/uploads/"
        spec["github"] = {event: source}
    elif provider.type == "gitlab":
        spec["gitlab"] = {event: {
            "projects": paths,
            "webhook": webhook,
            "events": ["PushEvents"],
            "secretToken": secret,
            "accessToken": token,
            "enableSSLVerification": True,
            "gitlabBaseURL": (provider.base_url or "https://gitlab.com").rstrip("/"),
        }}
    else:
        spec["webhook"] = {event: {**webhook, "authSecret": secret}}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "EventSource",
        "metadata": {"name": NAME, "namespace": config.orchestrator_namespace,
                     "annotations": {"argo-delivery.io/description":
                                     f"Push webhooks from {provider.type}; sender verified "
                                     f"with Secret {provider.webhook_secret.name}."}},
        "spec": spec,
    }
