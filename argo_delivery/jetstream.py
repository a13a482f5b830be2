"""The JetStream our EventBus runs: a version the pinned Argo Events controller knows.

The controller, not the bundle, chooses the images it runs for that version (they appear in
no manifest of ours); the config resolves them under the registry policy like its own images.
"""

__all__ = ["JETSTREAM_IMAGES", "JETSTREAM_VERSION"]

# The Argo Events v1.9.11 controller's controller-config.yaml lists the images for each
# version; a test reads that file from the Go module and checks this table.
JETSTREAM_VERSION = "2.10.29"
JETSTREAM_IMAGES = (
    "nats:2.10.29",
    "natsio/nats-server-config-reloader:0.14.0",
    "natsio/prometheus-nats-exporter:0.14.0",
)
