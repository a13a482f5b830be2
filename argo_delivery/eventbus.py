"""The EventBus: JetStream, pinned, in the orchestrator namespace beside EventSources and Sensors."""

from __future__ import annotations

from typing import Any

from argo_delivery.config import PlatformConfig
from argo_delivery.images import rewrite_image
from argo_delivery.security import (
    container_security_context,
    pod_security_context,
    resource_requirements,
)

__all__ = ["EVENTBUS_NAME", "JETSTREAM_IMAGES", "JETSTREAM_VERSION", "eventbus", "eventbus_images"]

# EventSources and Sensors use the EventBus called `default` unless told otherwise.
EVENTBUS_NAME = "default"
# A version the Argo Events v1.9.11 controller knows (its controller-config.yaml lists the
# images for each); a test reads that file from the Go module and checks this table.
JETSTREAM_VERSION = "2.10.29"
JETSTREAM_IMAGES = (
    "nats:2.10.29",
    "natsio/nats-server-config-reloader:0.14.0",
    "natsio/prometheus-nats-exporter:0.14.0",
)


def _container(cpu: str, memory: str, cpu_limit: str, memory_limit: str) -> dict[str, Any]:
    return {"resources": resource_requirements(cpu, memory, cpu_limit, memory_limit),
            "securityContext": container_security_context()}


def eventbus(config: PlatformConfig) -> dict[str, Any]:
    """The JetStream EventBus named `default` (what EventSources and Sensors use unless told)."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "EventBus",
        "metadata": {"name": EVENTBUS_NAME, "namespace": config.orchestrator_namespace},
        "spec": {"jetstream": {
            "version": JETSTREAM_VERSION,
            "replicas": 3,
            "persistence": {"accessMode": "ReadWriteOnce", "volumeSize": "10Gi"},
            "securityContext": pod_security_context(),
            "containerTemplate": _container("100m", "256Mi", "1", "1Gi"),
            "reloaderContainerTemplate": _container("10m", "32Mi", "100m", "64Mi"),
            "metricsContainerTemplate": _container("10m", "32Mi", "100m", "64Mi"),
        }},
    }


def eventbus_images(resources: list[dict[str, Any]], mirror: str | None = None) -> list[str]:
    """Images the Argo Events controller runs for our EventBus (they appear in no manifest).

    Under a registry mirror they are listed as the mirror serves them: point the controller's
    JetStream image settings there too.
    """
    versions = {r["spec"]["jetstream"]["version"] for r in resources
                if r["kind"] == "EventBus" and "jetstream" in r.get("spec", {})}
    if versions - {JETSTREAM_VERSION}:
        raise ValueError(f"no image table for JetStream {sorted(versions - {JETSTREAM_VERSION})}")
    return [rewrite_image(image, mirror) for image in JETSTREAM_IMAGES] if versions else []
