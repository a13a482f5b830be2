"""Our EventBus pins a JetStream version the pinned Argo Events controller knows, and
images.txt lists exactly the images that controller runs for it (read from upstream)."""

from __future__ import annotations

import pytest
import yaml

from argo_delivery.eventbus import JETSTREAM_IMAGES, JETSTREAM_VERSION
from argo_delivery.images import rewrite_image
from tests.support import go_module_dir, pinned_version

pytestmark = pytest.mark.conformance


def test_jetstream_version_and_images_match_the_upstream_controller_config(default_bundle):
    module = "github.com/argoproj/argo-events"
    root = go_module_dir(module, pinned_version("argo-events-lint", module))
    configmap = yaml.safe_load((root / "manifests/base/controller-manager/controller-config.yaml")
                               .read_text())
    config = yaml.safe_load(configmap["data"]["controller-config.yaml"])
    versions = {v["version"]: v for v in config["eventBus"]["jetstream"]["versions"]}
    assert JETSTREAM_VERSION in versions
    entry = versions[JETSTREAM_VERSION]
    upstream = {entry["natsImage"], entry["metricsExporterImage"], entry["configReloaderImage"]}
    assert set(JETSTREAM_IMAGES) == upstream
    listed = default_bundle.files["images.txt"].decode().split()
    assert {rewrite_image(image) for image in upstream} <= set(listed)
