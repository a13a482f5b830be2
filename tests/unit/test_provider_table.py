"""The git-provider table is the one place a provider is described: adding one is one entry."""

from __future__ import annotations

import pytest
import yaml

from argo_delivery import config as config_module
from argo_delivery.bundle import build_bundle
from argo_delivery.config import ConfigError, default_config_text, parse_config, platform_schema
from argo_delivery.providers import PROVIDERS, EventSourceInputs, GitProviderKind


def test_the_schema_offers_exactly_the_table():
    assert platform_schema()["properties"]["gitProvider"]["properties"]["type"]["enum"] == \
        list(PROVIDERS)


@pytest.fixture
def bitbucket(monkeypatch):
    """A Bitbucket Server entry, added the way a contributor would add it."""
    def event_source(inputs: EventSourceInputs):
        return {**inputs.webhook, "authSecret": inputs.secret}

    kind = GitProviderKind(
        "bitbucket-server", "webhook", "bitbucket",
        {"path": "body.repository.slug", "repo": "body.repository.links.clone.0.href",
         "ref": "body.changes.0.ref.id", "commit": "body.changes.0.toHash",
         "sender": "body.actor.name"},
        "unsupported", True, event_source)
    monkeypatch.setitem(PROVIDERS, kind.type, kind)
    platform_schema.cache_clear()
    yield kind
    platform_schema.cache_clear()


def test_a_new_entry_is_a_provider_everywhere(bitbucket):
    text = default_config_text().replace("type: github", "type: bitbucket-server", 1)
    bundle = build_bundle(parse_config(text, "bitbucket.yaml"))
    source = yaml.safe_load(bundle.files["namespaces/argo-delivery/eventsource/git-push.yaml"])
    assert source["spec"]["webhook"]["bitbucket"]["authSecret"] == {"name": "git-webhook-secret",
                                                                   "key": "secret"}
    sensor = yaml.safe_load(bundle.files["namespaces/argo-delivery/sensor/on-push-core-team.yaml"])
    dependency = sensor["spec"]["dependencies"][0]
    assert dependency["eventName"] == "bitbucket"
    assert [f["path"] for f in dependency["filters"]["exprs"][0]["fields"]] == [
        "body.repository.slug", "body.changes.0.ref.id", "body.changes.0.toHash"]
    # and the config rules read the entry: an API token is refused for it
    token = text.replace("type: bitbucket-server", "type: bitbucket-server\n  apiToken: "
                         "{name: t, key: token}\n  webhookURL: https://events.example.com", 1)
    with pytest.raises(ConfigError, match="apiToken applies to github and gitlab only"):
        parse_config(token, "bitbucket.yaml")


def test_a_provider_that_sends_no_repository_id_refuses_repository_ids(bitbucket):
    """The entry above names no `id` path: a repositoryId could never match its pushes."""
    text = default_config_text().replace("type: github", "type: bitbucket-server", 1)
    text = text.replace("    branch: release\n", "    branch: release\n    repositoryId: 7\n", 1)
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "bitbucket.yaml")
    [problem] = caught.value.problems
    assert (problem.path, problem.line) == ("components[2].repositoryId", 26)
    assert problem.message == ("bitbucket-server pushes carry no repository id, so no push would "
                               "match it; remove repositoryId (repository ids apply to github, "
                               "gitlab, generic)")


def test_rules_name_the_providers_from_the_table():
    assert config_module._providers_where(lambda kind: kind.base_url) == "github and gitlab"
