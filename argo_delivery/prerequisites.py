"""What a bundle expects of the cluster but does not contain: the operator's checklist.

The bundle README lists it, and any check of a live cluster reads the same data: the
Secrets the bundle references (never contains), where to route the webhook, and the
controller settings our pods rely on.
"""

from __future__ import annotations

from dataclasses import dataclass

from argo_delivery.config import PlatformConfig, SecretKeyRef
from argo_delivery.eventsources.git_push import NAME, WEBHOOK_PORT, webhooks
from argo_delivery.jetstream import JETSTREAM_VERSION
from argo_delivery.security import executor_security_context

__all__ = ["JETSTREAM_VERSION", "ReferencedSecret", "Webhook", "controller_settings",
           "referenced_secrets", "webhook_routes"]


@dataclass(frozen=True)
class ReferencedSecret:
    name: str
    namespaces: tuple[str, ...]
    keys: tuple[str, ...]
    content: str
    required: bool


def _projects(names: tuple[str, ...]) -> str:
    return ("project " if len(names) == 1 else "projects ") + ", ".join(f"`{n}`" for n in names)


def referenced_secrets(config: PlatformConfig) -> list[ReferencedSecret]:
    """Every Secret the bundle refers to, where, with which keys and what they must hold.

    Webhook secrets come first, one entry per Secret (projects with webhook secrets of their
    own may keep them as keys of one Secret).
    """
    provider = config.git_provider
    orchestrator = (config.orchestrator_namespace,)
    by_name: dict[str, list[Webhook]] = {}
    for hook in webhook_routes(config):
        by_name.setdefault(hook.secret.name, []).append(hook)
    secrets = []
    for name, hooks in by_name.items():
        keys = tuple(dict.fromkeys(hook.secret.key for hook in hooks))
        uses = "; ".join((f"`{hook.secret.key}`: " if len(keys) > 1 else "")
                         + f"the secret configured on the {provider.type} webhook at "
                         f"`{hook.path}` ({_projects(hook.projects)})" for hook in hooks)
        secrets.append(ReferencedSecret(
            name, orchestrator, keys, f"{uses}; the EventSource rejects deliveries it does not "
            "verify, and an empty secret verifies nothing", required=True))
    if provider.api_token:
        secrets.append(ReferencedSecret(
            provider.api_token.name, orchestrator, (provider.api_token.key,),
            f"a {provider.type} API token allowed to manage the repositories' webhooks "
            "(the EventSource registers them)", required=True))
    if provider.credentials_secret:
        secrets.append(ReferencedSecret(
            provider.credentials_secret, tuple(p.namespace for p in config.projects),
            (".git-credentials", "ssh-privatekey", "known_hosts"),
            "only for private repositories: `.git-credentials` in git-credential-store format "
            "for HTTPS, or `ssh-privatekey` and `known_hosts` for SSH", required=False))
    return secrets


@dataclass(frozen=True)
class Webhook:
    """Where an ingress must send one webhook's deliveries, and what the provider must send."""

    service: str
    namespace: str
    port: int
    path: str
    projects: tuple[str, ...]        # whose Sensors hear it
    secret: SecretKeyRef             # what verifies the sender
    repositories: tuple[str, ...]    # where the provider sends it from
    url: str | None                  # the public URL the provider calls, when configured
    registered: bool                 # the EventSource registers it with the provider itself


def webhook_routes(config: PlatformConfig) -> list[Webhook]:
    """Every webhook of the EventSource: the shared one at `/push` (projects without a secret of
    their own) and each project's own at `/push/<project>`, behind the Service Argo Events
    makes."""
    provider = config.git_provider
    return [Webhook(f"{NAME}-eventsource-svc", config.orchestrator_namespace, WEBHOOK_PORT,
                    hook.endpoint, hook.projects, hook.secret, hook.paths,
                    provider.webhook_url + hook.endpoint if provider.webhook_url else None,
                    provider.api_token is not None)
            for hook in webhooks(config)]


def controller_settings(config: PlatformConfig) -> dict[str, str]:
    """The controllers' settings our pods rely on, as YAML snippets for their ConfigMaps."""
    import yaml

    nats, reloader, exporter = config.eventbus_images
    executor = yaml.safe_dump({"image": config.images.argo_exec,
                               "securityContext": executor_security_context()}, sort_keys=True)
    eventbus = yaml.safe_dump({"eventBus": {"jetstream": {"versions": [{
        "version": JETSTREAM_VERSION, "natsImage": nats, "configReloaderImage": reloader,
        "metricsExporterImage": exporter, "startCommand": "/nats-server"}]}}}, sort_keys=False)
    restrictions = yaml.safe_dump({"templateReferencing": "Secure"})
    return {"workflow-controller-configmap: executor": executor,
            "workflow-controller-configmap: workflowRestrictions": restrictions,
            "argo-events-controller-config: controller-config.yaml": eventbus}
