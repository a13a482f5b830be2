"""What a bundle expects of the cluster but does not contain: the operator's checklist.

The bundle README lists it, and any check of a live cluster reads the same data: the
Secrets the bundle references (never contains), where to route the webhook, and the
controller settings our pods rely on.
"""

from __future__ import annotations

from dataclasses import dataclass

from argo_delivery.config import PlatformConfig
from argo_delivery.eventsources.git_push import ENDPOINT, NAME, WEBHOOK_PORT
from argo_delivery.jetstream import JETSTREAM_VERSION
from argo_delivery.security import executor_security_context

__all__ = ["JETSTREAM_VERSION", "ReferencedSecret", "Webhook", "controller_settings",
           "referenced_secrets", "webhook_route"]


@dataclass(frozen=True)
class ReferencedSecret:
    name: str
    namespaces: tuple[str, ...]
    keys: tuple[str, ...]
    content: str
    required: bool


def referenced_secrets(config: PlatformConfig) -> list[ReferencedSecret]:
    """Every Secret the bundle refers to, where, with which keys and what they must hold."""
    provider = config.git_provider
    orchestrator = (config.orchestrator_namespace,)
    secrets = [ReferencedSecret(
        provider.webhook_secret.name, orchestrator, (provider.webhook_secret.key,),
        f"the secret configured on the {provider.type} webhook; the EventSource rejects "
        "deliveries it does not verify", required=True)]
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
    service: str
    namespace: str
    port: int
    path: str


def webhook_route(config: PlatformConfig) -> Webhook:
    """Where an ingress must send the provider's push webhooks (the Service Argo Events makes)."""
    return Webhook(f"{NAME}-eventsource-svc", config.orchestrator_namespace, WEBHOOK_PORT, ENDPOINT)


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
