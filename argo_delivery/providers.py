"""Git providers: everything provider-specific, one entry per provider.

An entry says how its push webhook reaches Argo Events (the EventSource section, the event
name, how the sender is verified, what the EventSource block looks like), where the facts
of a push are in its payload (gjson paths, as Argo Events reads them), and which config
settings apply to it. The config rules, the `git-push` EventSource and the `on-push` Sensor
all read this table; adding a provider is one entry here.
"""

from __future__ import annotations

import urllib.parse
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["PROVIDERS", "WEBHOOK_ENDPOINT", "EventSourceInputs", "GitProviderKind", "provider_root",
           "repository_path", "split_repo", "webhook_base_url", "webhook_endpoint"]

# The path the git-push EventSource serves for the projects without a webhook secret of their
# own (each of the others has `/push/<project>`); Argo Events appends it to `webhook.url` when
# it registers the hook (sharedutil.FormattedURL), so the configured webhookURL is the base.
WEBHOOK_ENDPOINT = "/push"


def webhook_endpoint(project: str | None = None) -> str:
    """The path of the shared webhook, or of `project`'s own."""
    return WEBHOOK_ENDPOINT if project is None else f"{WEBHOOK_ENDPOINT}/{project}"


def webhook_base_url(url: str) -> str:
    """`gitProvider.webhookURL` as the base Argo Events appends the endpoint to: without a
    trailing slash or a trailing endpoint (which would register `/push/push`)."""
    base = url.strip().rstrip("/")
    return base.removesuffix(WEBHOOK_ENDPOINT).rstrip("/")


@dataclass(frozen=True)
class EventSourceInputs:
    """What every provider's EventSource block is built from."""

    webhook: dict[str, Any]          # endpoint, port, method, maxPayloadSize, url when registered
    secret: dict[str, str]           # the Secret that verifies the sender
    token: dict[str, str] | None     # the API token that registers webhooks, if configured
    paths: list[str]                 # repository paths of the watched components
    base_url: str | None             # a self-hosted instance


@dataclass(frozen=True)
class GitProviderKind:
    type: str                  # gitProvider.type in the config
    section: str               # the EventSource spec key (Argo Events' event source type)
    event_name: str            # the event's name inside that section (what Sensors depend on)
    # push fact -> gjson path in the webhook body: path, repo, ref, commit, sender, and `id`
    # (the repository's numeric id) where the provider sends one
    payload: dict[str, str]
    api_token: Literal["required", "optional", "unsupported"]
    base_url: bool             # whether gitProvider.baseURL applies
    event_source: Callable[[EventSourceInputs], dict[str, Any]]
    host: str | None = None    # where its repositories are without baseURL (None: anywhere)


def split_repo(url: str) -> tuple[str, str, str]:
    """Scheme, host and path (no leading or trailing `/`) of a git URL; scp-like is ssh.

    Raises ValueError for a URL urllib cannot parse (a port out of range, say).
    """
    url = url.strip()
    if "://" in url:
        parts = urllib.parse.urlsplit(url)
        return parts.scheme.lower(), (parts.hostname or "").lower(), parts.path.strip("/")
    userhost, _, path = url.partition(":")
    return "ssh", userhost.rpartition("@")[2].lower(), path.strip("/")


def provider_root(provider_type: str, base_url: str | None) -> tuple[str, str] | None:
    """Host and path prefix under which the provider's repositories are (None: anywhere).

    A self-hosted GitLab may live under a path (https://host/gitlab): its project paths are
    relative to that prefix.
    """
    kind = PROVIDERS[provider_type]
    if base_url and kind.base_url:
        _, host, prefix = split_repo(base_url)
        return host, prefix
    return (kind.host, "") if kind.host else None


def repository_path(repo: str, provider_type: str, base_url: str | None) -> str:
    """`owner/name` (GitHub, Gitea) or `group/sub/project` (GitLab) of a repository, as the
    provider names it in a push: relative to the provider's path prefix for http(s) URLs."""
    scheme, _, path = split_repo(repo)
    root = provider_root(provider_type, base_url)
    prefix = root[1] if root else ""
    if prefix and scheme in ("http", "https") and path.startswith(prefix + "/"):
        path = path[len(prefix) + 1:]
    return path.removesuffix(".git").strip("/")


def _github(inputs: EventSourceInputs) -> dict[str, Any]:
    owners: dict[str, list[str]] = defaultdict(list)
    for path in inputs.paths:
        owner, _, name = path.rpartition("/")
        owners[owner].append(name)
    source: dict[str, Any] = {
        "repositories": [{"owner": owner, "names": names} for owner, names in sorted(owners.items())],
        "webhook": inputs.webhook,
        "events": ["push"],
        "webhookSecret": inputs.secret,
        "contentType": "json",
        "active": True,
        "insecure": False,
    }
    if inputs.token:
        source["apiToken"] = inputs.token
    if inputs.base_url:
        base = inputs.base_url.rstrip("/")
        source["githubBaseURL"] = f"{base}/api/v3/"
        source["githubUploadURL"] = f"{base}/api/uploads/"
    return source


def _gitlab(inputs: EventSourceInputs) -> dict[str, Any]:
    return {
        "projects": inputs.paths,
        "webhook": inputs.webhook,
        "events": ["PushEvents"],
        "secretToken": inputs.secret,
        "accessToken": inputs.token,
        "enableSSLVerification": True,
        "gitlabBaseURL": (inputs.base_url or "https://gitlab.com").rstrip("/"),
    }


def _generic(inputs: EventSourceInputs) -> dict[str, Any]:
    return {**inputs.webhook, "authSecret": inputs.secret}


_GITHUB_PAYLOAD = {"path": "body.repository.full_name", "repo": "body.repository.clone_url",
                   "ref": "body.ref", "commit": "body.after", "sender": "body.sender.login",
                   "id": "body.repository.id"}

PROVIDERS: dict[str, GitProviderKind] = {kind.type: kind for kind in (
    # GitHub and GitHub Enterprise (baseURL): HMAC `webhookSecret`.
    GitProviderKind("github", "github", "github", _GITHUB_PAYLOAD, "optional", True, _github,
                    host="github.com"),
    # GitLab (self-hosted with baseURL): `secretToken`; its EventSource must register the hook.
    GitProviderKind("gitlab", "gitlab", "gitlab",
                    {"path": "body.project.path_with_namespace", "repo": "body.project.git_http_url",
                     "ref": "body.ref", "commit": "body.after", "sender": "body.user_username",
                     "id": "body.project.id"},
                    "required", True, _gitlab, host="gitlab.com"),
    # Gitea and Forgejo send GitHub-shaped pushes with a bearer token (a relay can reshape
    # others, e.g. Bitbucket Server).
    GitProviderKind("generic", "webhook", "webhook", _GITHUB_PAYLOAD, "unsupported", False, _generic),
)}
