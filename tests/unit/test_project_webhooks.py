"""A project with a webhook secret of its own: its own endpoint and event on the one
EventSource, and a Sensor that hears that event only (tests/conformance runs the same bundles
through Argo Events' own code)."""

from __future__ import annotations

import pytest
import yaml

from argo_delivery.bundle import build_bundle, resource_path
from argo_delivery.config import SecretKeyRef, default_config_text, parse_config
from argo_delivery.lint import lint_documents
from argo_delivery.prerequisites import referenced_secrets, webhook_routes
from tests.providers import PROVIDERS, provider_config, with_project_webhook

EVENTSOURCE = "namespaces/argo-delivery/eventsource/git-push.yaml"


def _sensor(bundle, project):
    return yaml.safe_load(bundle.files[f"namespaces/argo-delivery/sensor/on-push-{project}.yaml"])


def _events(bundle, section):
    return yaml.safe_load(bundle.files[EVENTSOURCE])["spec"][section]


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_a_project_with_its_own_secret_has_its_own_endpoint_and_event(provider):
    _, section, secret_field = PROVIDERS[provider]
    config = provider_config(provider, project_webhook=True)
    assert config.projects[1].webhook_secret == SecretKeyRef("northwind-webhook", "secret")
    bundle = build_bundle(config)
    events = _events(bundle, section)
    shared = section if provider != "generic" else "webhook"
    assert sorted(events) == sorted([shared, f"{shared}-northwind"])
    own = events[f"{shared}-northwind"]
    webhook = own.get("webhook", own)   # the generic webhook is the webhook block itself
    assert webhook["endpoint"] == "/push/northwind" and webhook["port"] == "12000"
    assert own[secret_field] == {"name": "northwind-webhook", "key": "secret"}
    assert events[shared][secret_field] == {"name": "git-webhook-secret", "key": "secret"}
    assert events[shared].get("webhook", events[shared])["endpoint"] == "/push"
    # each webhook watches its own projects' repositories (a shared component in both)
    if section == "gitlab":
        assert events[shared]["projects"] == ["acme-platform/api", "acme-platform/web",
                                              "acme-platform/worker"]
        assert own["projects"] == ["acme-platform/api", "northwind-partners/billing-adapter"]
    elif section == "github":
        assert own["repositories"] == [{"owner": "acme-platform", "names": ["api"]},
                                       {"owner": "northwind-partners", "names": ["billing-adapter"]}]
    # each Sensor hears its webhook's event only
    [core] = _sensor(bundle, "core-team")["spec"]["dependencies"]
    [northwind] = _sensor(bundle, "northwind")["spec"]["dependencies"]
    assert (core["eventName"], northwind["eventName"]) == (shared, f"{shared}-northwind")
    assert core["eventSourceName"] == northwind["eventSourceName"] == "git-push"


def test_every_sensor_dependency_names_an_event_of_the_eventsource():
    for project_webhook in (False, True):
        for provider, (_, section, _) in PROVIDERS.items():
            bundle = build_bundle(provider_config(provider, project_webhook=project_webhook))
            events = set(_events(bundle, section))
            used = {d["eventName"] for r in bundle.resources if r["kind"] == "Sensor"
                    for d in r["spec"]["dependencies"] if d["eventSourceName"] == "git-push"}
            assert used == events, (provider, project_webhook)


def test_without_a_project_on_the_shared_endpoint_there_is_none():
    text = with_project_webhook(default_config_text())
    text = text.replace("    components: [api, web, worker]\n",
                        "    components: [api, web, worker]\n"
                        "    webhookSecret: {name: core-webhook, key: secret}\n", 1)
    # no shared secret needed: every project has its own
    text = text.replace("  webhookSecret:\n    name: git-webhook-secret\n    key: secret\n", "", 1)
    config = parse_config(text)
    assert config.git_provider.webhook_secret is None
    assert not [w for w in config.warnings if w.severity == "warning"]
    bundle = build_bundle(config)
    assert sorted(_events(bundle, "github")) == ["github-core-team", "github-northwind"]
    assert [s.name for s in referenced_secrets(config)][:2] == ["core-webhook", "northwind-webhook"]
    assert "git-webhook-secret" not in bundle.files["README.md"].decode()
    assert lint_documents([(resource_path(r), r) for r in bundle.resources]) == []


def test_the_bundle_readme_lists_each_webhook_with_its_url_secret_and_repositories():
    config = provider_config("github-with-token", project_webhook=True)
    routes = webhook_routes(config)
    assert [(r.path, r.projects, r.url) for r in routes] == [
        ("/push", ("core-team",), "https://events.example.com/push"),
        ("/push/northwind", ("northwind",), "https://events.example.com/push/northwind")]
    readme = build_bundle(config).files["README.md"].decode()
    assert ("   - `/push/northwind` (`https://events.example.com/push/northwind`): the pushes of "
            "project `northwind`, verified\n     with Secret `northwind-webhook` key `secret`; the "
            "EventSource registers it on `acme-platform/api`, `northwind-partners/billing-adapter`."
            ) in readme
    assert ("   - `northwind-webhook` in `argo-delivery`:\n     key `secret`; the secret configured "
            "on the github webhook at `/push/northwind` (project `northwind`)") in readme
    # without an API token the operator registers each hook
    readme = build_bundle(provider_config("github", project_webhook=True)).files["README.md"].decode()
    assert "verified\n     with Secret `northwind-webhook` key `secret`; register it, with that " \
           "secret, on `acme-platform/api`, `northwind-partners/billing-adapter`." in readme


def test_project_secrets_kept_in_one_secret_are_one_entry_with_their_keys():
    text = with_project_webhook(default_config_text()).replace(
        "{name: northwind-webhook, key: secret}", "{name: git-webhook-secret, key: northwind}")
    [hooks, *_] = referenced_secrets(parse_config(text))
    assert hooks.name == "git-webhook-secret" and hooks.keys == ("secret", "northwind")
    assert hooks.content.startswith("`secret`: the secret configured on the github webhook at "
                                    "`/push` (project `core-team`); `northwind`: the secret "
                                    "configured on the github webhook at `/push/northwind`")
