"""Golden files per git provider: the EventSource and the Sensor, byte for byte, in the fast
layer (Argo Events' own validation of the same bundles is in tests/conformance)."""

from __future__ import annotations

import os

import pytest

from argo_delivery.bundle import build_bundle
from tests.providers import PROVIDERS, provider_config
from tests.support import REPO_ROOT

GOLDEN = REPO_ROOT / "tests" / "golden" / "providers"
UPDATE = os.environ.get("ARGO_DELIVERY_UPDATE_GOLDEN") == "1"
FILES = {"git-push.eventsource.yaml": "namespaces/argo-delivery/eventsource/git-push.yaml",
         "on-push-core-team.sensor.yaml": "namespaces/argo-delivery/sensor/on-push-core-team.yaml"}


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_golden_provider_files(provider):
    """Regenerate on purpose only: ARGO_DELIVERY_UPDATE_GOLDEN=1 (refused when CI is set)."""
    bundle = build_bundle(provider_config(provider))
    folder = GOLDEN / provider
    if UPDATE:
        assert not os.environ.get("CI"), "golden files are never regenerated in CI"
        folder.mkdir(parents=True, exist_ok=True)
        for name, path in FILES.items():
            (folder / name).write_bytes(bundle.files[path])
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    for name, path in FILES.items():
        assert (folder / name).read_bytes() == bundle.files[path], f"{provider}/{name} differs"


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_golden_eventsource_with_a_project_webhook(provider):
    """The same, with northwind's own webhook secret: a second event at /push/northwind."""
    bundle = build_bundle(provider_config(provider, project_webhook=True))
    path = GOLDEN / f"{provider}+project-webhook" / "git-push.eventsource.yaml"
    data = bundle.files[FILES["git-push.eventsource.yaml"]]
    if UPDATE:
        assert not os.environ.get("CI"), "golden files are never regenerated in CI"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    assert path.read_bytes() == data, f"{path.parent.name}/{path.name} differs"
