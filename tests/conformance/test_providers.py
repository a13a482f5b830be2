"""Every git provider renders an EventSource and Sensor that Argo Events' own validation accepts,
with the sender always verified from the configured Secret."""

from __future__ import annotations

import pytest
import yaml

from argo_delivery.bundle import build_bundle, write_bundle
from argo_delivery.config import ConfigError, default_config_text, parse_config
from argo_delivery.upstream import VALIDATORS, run_validator
from tests.providers import PROVIDERS, provider_config
from tests.support import require_binary

pytestmark = pytest.mark.conformance


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_provider_bundle_passes_upstream_validation(provider, tmp_path):
    block, section, secret_field = PROVIDERS[provider]
    bundle = build_bundle(provider_config(provider))
    path = write_bundle(bundle, tmp_path).path
    for tool in VALIDATORS:
        require_binary(tool)
        assert run_validator(tool, [path]) == [], tool
    source = yaml.safe_load(bundle.files["namespaces/argo-delivery/eventsource/git-push.yaml"])
    [(event_name, event)] = source["spec"][section].items()
    assert event[secret_field] == {"name": "git-webhook-secret", "key": "secret"}
    sensor = yaml.safe_load(bundle.files["namespaces/argo-delivery/sensor/on-push-core-team.yaml"])
    assert {d["eventName"] for d in sensor["spec"]["dependencies"]} == {event_name}
    if "apiToken" in block:
        token_field = "accessToken" if section == "gitlab" else "apiToken"
        assert event[token_field] == {"name": "git-api-token", "key": "token"}
        assert event["webhook"]["url"] == "https://events.example.com"
    if provider == "github-enterprise":
        assert event["githubBaseURL"] == "https://github.example.com/api/v3/"
    if section in ("github", "gitlab"):
        watched = event.get("projects") or [f"{r['owner']}/{n}" for r in event["repositories"]
                                             for n in r["names"]]
        assert sorted(watched) == ["acme-platform/api", "acme-platform/web",
                                   "acme-platform/worker", "northwind-partners/billing-adapter"]


def test_sender_verification_cannot_be_turned_off():
    text = default_config_text()
    without = text.replace("  webhookSecret:\n    name: git-webhook-secret\n    key: secret\n", "")
    assert without != text
    with pytest.raises(ConfigError, match="missing required key 'webhookSecret'"):
        parse_config(without)
    insecure = text.replace("  type: github\n", "  type: github\n  insecure: true\n")
    with pytest.raises(ConfigError, match="unknown key 'insecure'"):
        parse_config(insecure)


@pytest.mark.parametrize("provider", ["github-with-token", "gitlab"])
@pytest.mark.parametrize("webhook_url", ["https://events.example.com", "https://events.example.com/",
                                         "https://events.example.com/push"])
def test_the_webhook_argo_events_registers_is_the_eventsource_endpoint(provider, webhook_url, tmp_path):
    """Computed by Argo Events' own code (sharedutil.FormattedURL, via sensor-sim): the base
    URL plus /push, once, however the webhookURL was written."""
    import subprocess

    bundle = build_bundle(provider_config(provider, webhook_url))
    path = tmp_path / "git-push.yaml"
    path.write_bytes(bundle.files["namespaces/argo-delivery/eventsource/git-push.yaml"])
    result = subprocess.run([str(require_binary("sensor-sim")), "--registered-url", str(path)],
                            capture_output=True, text=True, check=True)
    section = PROVIDERS[provider][1]
    assert result.stdout == f"{section}/{section}: https://events.example.com/push\n"


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_a_project_webhook_passes_upstream_validation(provider, tmp_path):
    """northwind's own webhook: a second event on the same port, another endpoint and secret."""
    _, section, secret_field = PROVIDERS[provider]
    bundle = build_bundle(provider_config(provider, project_webhook=True))
    path = write_bundle(bundle, tmp_path).path
    for tool in VALIDATORS:
        require_binary(tool)
        assert run_validator(tool, [path]) == [], tool
    events = yaml.safe_load(bundle.files["namespaces/argo-delivery/eventsource/git-push.yaml"])
    assert {name: event[secret_field]["name"] for name, event in events["spec"][section].items()} == {
        section: "git-webhook-secret", f"{section}-northwind": "northwind-webhook"}


@pytest.mark.parametrize("provider", ["github-with-token", "gitlab"])
def test_a_project_webhook_is_registered_at_its_own_url(provider, tmp_path):
    """Argo Events' own code (FormattedURL via sensor-sim) registers each webhook at the base
    URL plus its endpoint: the shared one at /push, northwind's at /push/northwind; the bundle
    README names the same URLs."""
    import subprocess

    from argo_delivery.prerequisites import webhook_routes

    config = provider_config(provider, project_webhook=True)
    bundle = build_bundle(config)
    path = tmp_path / "git-push.yaml"
    path.write_bytes(bundle.files["namespaces/argo-delivery/eventsource/git-push.yaml"])
    result = subprocess.run([str(require_binary("sensor-sim")), "--registered-url", str(path)],
                            capture_output=True, text=True, check=True)
    section = PROVIDERS[provider][1]
    assert result.stdout == (f"{section}/{section}-northwind: https://events.example.com/push/northwind\n"
                             f"{section}/{section}: https://events.example.com/push\n")   # sorted
    readme = bundle.files["README.md"].decode()
    for route in webhook_routes(config):
        assert route.url in result.stdout and f"`{route.path}` (`{route.url}`)" in readme
