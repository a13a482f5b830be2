"""Config validation: the embedded default, and a corpus of bad configs with their messages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from argo_delivery.bundle import build_bundle
from argo_delivery.cli import main
from argo_delivery.config import (
    CROSS_FIELD_RULES,
    DOCUMENT_RULES,
    PROJECT_RULES,
    WARNING_RULES,
    ConfigError,
    SecretKeyRef,
    _schema_errors,
    default_config_text,
    load_config,
    load_default,
    parse_config,
    repository_ids_sent_by_the_provider,
)
from argo_delivery.eventsources.git_push import git_push
from argo_delivery.jetstream import JETSTREAM_IMAGES
from tests.support import REPO_ROOT

HERE = Path(__file__).parent
BAD = sorted((HERE / "bad_configs").glob("*.yaml"))
WARNED = sorted((HERE / "warning_configs").glob("*.yaml"))
MINIMAL = (HERE / "minimal-platform.yaml").read_text()
DIGEST = "sha256:" + "ab" * 32


def expectations(path: Path) -> list[str]:
    return [line.removeprefix("# expect: ").rstrip("\n") for line in path.read_text().splitlines()
            if line.startswith("# expect: ")]


def test_default_config_models_a_realistic_platform():
    config = load_default()
    assert len(config.components) >= 3
    assert {p.type for p in config.projects} == {"internal", "external"}
    assert all(p.alpha and p.nightly for p in config.projects)
    assert all(p.environments for p in config.projects)
    assert any(p.demo_environments for p in config.projects)


def test_minimal_config_is_valid():
    config = load_config(HERE / "minimal-platform.yaml")
    assert [c.name for c in config.projects[0].components] == ["api", "web"]
    assert config.projects[0].namespace == "team-a"  # defaults to the name


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_config_is_reported_with_its_message(path: Path):
    expected = expectations(path)
    assert expected, f"{path.name} has no `# expect:` line"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = str(caught.value)
    for message in expected:
        assert message in text
    assert all(str(p).startswith(str(path)) for p in caught.value.problems)


def test_every_problem_is_reported_not_just_the_first():
    with pytest.raises(ConfigError) as caught:
        load_config(HERE / "bad_configs" / "many_problems.yaml")
    assert len(caught.value.problems) == 3


def test_cross_field_problems_are_reported_in_rule_order_a_project_at_a_time():
    path = HERE / "bad_configs" / "cross_field_rules.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert [f"{p.path}: {p.message}" for p in caught.value.problems] == expectations(path)


def test_every_cross_field_rule_is_proven_by_a_bad_config():
    proven = set()
    for path in BAD:
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError:
            continue
        proven |= {rule for rule in DOCUMENT_RULES if any(rule(data))}  # on any document
        if not isinstance(data, dict) or _schema_errors(data):
            continue  # the other rules run only on schema-valid data
        proven |= {rule for rule in CROSS_FIELD_RULES if any(rule(data))}
        proven |= {rule for rule in PROJECT_RULES for index, project in enumerate(data["projects"])
                   if any(rule(data, ["projects", index], project))}
    # every provider in the table sends a repository id: test_provider_table.py proves this
    # rule with an entry that sends none
    proven.add(repository_ids_sent_by_the_provider)
    unproven = set(CROSS_FIELD_RULES + PROJECT_RULES + DOCUMENT_RULES) - proven
    assert not unproven, [rule.__name__ for rule in unproven]


@pytest.mark.parametrize("path", WARNED, ids=[p.stem for p in WARNED])
def test_warned_config_is_valid_and_each_warning_is_located(path: Path):
    expected = expectations(path)
    assert expected, f"{path.name} has no `# expect:` line"
    warnings = [str(w) for w in load_config(path).warnings if w.severity == "warning"]
    for message in expected:
        assert any(message in warning for warning in warnings), (message, warnings)
    assert all(re.match(rf"{re.escape(str(path))}:\d+:\d+: ", w) for w in warnings), warnings


def test_every_warning_rule_is_proven_by_a_warned_config():
    proven = {rule for path in WARNED for rule in WARNING_RULES
              if any(rule(yaml.safe_load(path.read_text())))}
    assert set(WARNING_RULES) == proven, [r.__name__ for r in set(WARNING_RULES) - proven]


def test_the_shipped_configs_raise_no_warning():
    for config in (load_default(), load_config(HERE / "minimal-platform.yaml")):
        assert [w for w in config.warnings if w.severity != "note"] == []


def test_notes_say_when_each_schedule_next_fires():
    notes = [str(w) for w in parse_config(MINIMAL, "m.yaml").warnings
             if w.severity == "note" and "next fires" in w.message]
    assert len(notes) == 2
    assert re.match(r"m\.yaml:\d+:\d+: schedules\.nightly: '0 2 \* \* \*' next fires at "
                    r"\d{4}-\d\d-\d\d 02:00 UTC \(in [0-9dhms]+\)$", notes[0]), notes[0]
    assert "schedules.reaper: '*/15 * * * *' next fires at " in notes[1]


def test_a_credential_in_a_url_is_never_echoed():
    path = HERE / "bad_configs" / "credentials_in_urls.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "SECRET" not in str(caught.value)
    # and a schema message that shows a refused value hides the credential too
    text = MINIMAL.replace("https://github.com/acme/api.git", "'https://u:SECRET@github.com/a b'")
    text = text.replace("type: github", "type: github\n  webhookURL: ftp://x:SECRET@events")
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert "SECRET" not in str(caught.value)
    assert {p.path for p in caught.value.problems} == {"components[0].repo", "gitProvider.webhookURL"}


def test_dotted_secret_names_and_keys_kubernetes_accepts_are_accepted():
    config = parse_config(MINIMAL.replace("{name: hook, key: secret}",
                                          "{name: git.hook-v2, key: webhook.secret_1}"))
    assert config.git_provider.webhook_secret == SecretKeyRef("git.hook-v2", "webhook.secret_1")


def test_a_gitlab_under_a_path_prefix_accepts_its_repositories():
    text = MINIMAL.replace("https://github.com/", "https://git.example.com/gitlab/").replace(
        "type: github", "type: gitlab\n  baseURL: https://git.example.com/gitlab\n"
        "  webhookURL: https://events.example.com\n  apiToken: {name: api, key: token}")
    config = parse_config(text)
    source = git_push(config)["spec"]["gitlab"]["gitlab"]
    # GitLab names its projects relative to the prefix
    assert source["projects"] == ["acme/api", "acme/web"]
    assert source["gitlabBaseURL"] == "https://git.example.com/gitlab"


def test_the_cli_prints_warnings_and_renders(tmp_path: Path):
    path = HERE / "warning_configs" / "unused_component.yaml"
    result = CliRunner().invoke(main, ["render", "--config", str(path), "--out", str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
    assert (f"warning: {path}:7:12: components[2].name: component 'worker' is used by no project"
            in result.stderr)
    assert "note: " in result.stderr and "next fires at" in result.stderr


def test_missing_file():
    with pytest.raises(ConfigError, match="no-such.yaml: no such file"):
        load_config("no-such.yaml")


def test_cross_field_rules_run_only_on_schema_valid_input():
    # A project with an unknown component AND a schema error: the schema error is reported,
    # the cross-field rule (which needs well-formed input) is not attempted on garbage.
    text = (HERE / "minimal-platform.yaml").read_text().replace("[api, web]", "[api, nope]")
    text = text.replace("type: internal", "type: 7")
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "x.yaml")
    assert [p.path for p in caught.value.problems] == ["projects[0].type"]


@pytest.mark.parametrize("path", BAD[:3] + [HERE / "bad_configs" / "many_problems.yaml"],
                         ids=lambda p: p.stem)
def test_cli_prints_every_problem_exits_2_and_writes_nothing(path: Path, tmp_path: Path):
    result = CliRunner().invoke(main, ["render", "--config", str(path), "--out", str(tmp_path / "dist")])
    assert result.exit_code == 2
    for message in expectations(path):
        assert message in result.stderr
    assert not (tmp_path / "dist").exists()


def test_cli_missing_config_exits_2(tmp_path: Path):
    result = CliRunner().invoke(main, ["render", "--config", str(tmp_path / "absent.yaml"),
                                       "--out", str(tmp_path / "dist")])
    assert result.exit_code == 2
    assert "absent.yaml: no such file" in result.stderr
    assert not (tmp_path / "dist").exists()


def test_every_secret_reference_is_a_secret_key_ref_and_renders_as_a_selector():
    config = parse_config(MINIMAL.replace("github.com", "gitlab.com").replace("type: github", "type: gitlab\n"
                                          "  webhookURL: https://events.example.com\n"
                                          "  apiToken: {name: api, key: token}"))
    assert config.git_provider.webhook_secret == SecretKeyRef("hook", "secret")
    assert config.git_provider.api_token == SecretKeyRef("api", "token")
    source = git_push(config)["spec"]["gitlab"]["gitlab"]
    assert source["secretToken"] == {"name": "hook", "key": "secret"}
    assert source["accessToken"] == {"name": "api", "key": "token"}


def test_every_image_the_policy_refuses_is_a_located_problem_in_one_run():
    path = HERE / "bad_configs" / "unpinned_images.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    problems = caught.value.problems
    assert [p.path for p in problems] == [
        "images.python", "images.git", "projects[0].testSuites.nightly[0].image",
        "registry.eventBusDigests.natsio/prometheus-nats-exporter:0.14", "registry.requireDigests"]
    lines = path.read_text().splitlines()
    assert "python: python:3.12-slim" in lines[problems[0].line - 1]
    assert "ghcr.io/acme/tests:1.0" in lines[problems[2].line - 1]
    assert "requireDigests: true" in lines[problems[-1].line - 1]
    # nats has its digest; the other two JetStream images are named, with how to pin them
    assert "images natsio/nats-server-config-reloader:0.14.0, natsio/prometheus-nats-exporter:0.14.0 " \
           "are not pinned" in problems[-1].message
    assert "registry.eventBusDigests" in problems[-1].message


def test_the_typed_config_holds_the_mirrored_references_and_they_are_rendered_as_is():
    config = parse_config(default_config_text().replace("mirror: null", "mirror: mirror.site:5000"))
    assert config.images.git == "mirror.site:5000/docker.io/library/python:3.12-bookworm"
    suite = config.projects[0].alpha[0]
    assert suite.image == "mirror.site:5000/docker.io/library/python:3.12-slim-bookworm"
    assert config.eventbus_images[0] == "mirror.site:5000/docker.io/library/nats:2.10.29"
    bundle = build_bundle(config)
    # rewritten once, when the config was built: rendering a second time would nest the mirror
    assert bundle.images == sorted({config.images.git, suite.image, *config.eventbus_images,
                                    config.images.argo_exec, config.images.argo_events,
                                    config.images.terraform})
    project = next(r for r in bundle.resources if r["kind"] == "Project")
    assert project["spec"]["testSuites"]["alpha"][0]["image"] == suite.image


def test_eventbus_digests_pin_the_jetstream_images_under_require_digests():
    text = default_config_text()
    for image in ("python:3.12-slim-bookworm", "python:3.12-bookworm", "environment-tools:1.12.6"):
        text = text.replace(f"{image}\n", f"{image}@{DIGEST}\n")
    digests = ", ".join(f"{image!r}: {DIGEST}" for image in JETSTREAM_IMAGES)
    text = text.replace("requireDigests: false",
                        f"requireDigests: true\n  eventBusDigests: {{{digests}}}")
    text = text.replace("\nimages:\n", f"\nimages:\n  argoExec: quay.io/argoproj/argoexec:v4.1.4@{DIGEST}\n"
                        f"  argoEvents: quay.io/argoproj/argo-events:v1.9.11@{DIGEST}\n", 1)
    config = parse_config(text)
    assert config.eventbus_images == tuple(f"docker.io/{'library/' if '/' not in image else ''}"
                                           f"{image}@{DIGEST}" for image in JETSTREAM_IMAGES)
    images = build_bundle(config).images
    assert len(images) == 8 and all(image.endswith(f"@{DIGEST}") for image in images)


def test_controller_images_default_to_the_pinned_upstream_versions(default_config):
    from argo_delivery import controllers
    from tests.support import pinned_version

    assert controllers.ARGO_WORKFLOWS_VERSION == pinned_version(
        "argo-workflows-lint", "github.com/argoproj/argo-workflows/v4")
    assert controllers.ARGO_EVENTS_VERSION == pinned_version(
        "argo-events-lint", "github.com/argoproj/argo-events")
    assert default_config.images.argo_exec == controllers.ARGO_EXEC_IMAGE
    assert default_config.images.argo_events == controllers.ARGO_EVENTS_IMAGE


def test_images_txt_lists_the_controllers_images_for_our_pods(default_bundle):
    assert {"quay.io/argoproj/argoexec:v4.1.4", "quay.io/argoproj/argo-events:v1.9.11"} <= \
        set(default_bundle.images)


def test_controller_images_follow_the_registry_policy():
    text = (REPO_ROOT / "tests/unit/minimal-platform.yaml").read_text()
    mirrored = parse_config(text + "registry: {mirror: registry.site.example}\n")
    assert mirrored.images.argo_exec == "registry.site.example/quay.io/argoproj/argoexec:v4.1.4"
    with pytest.raises(ConfigError) as caught:
        parse_config(text + "registry: {requireDigests: true}\n", "p.yaml")
    located = {(p.path, p.line) for p in caught.value.problems}
    assert ("images", 11) in located  # the defaults are located at the images block


def test_the_terraform_image_is_needed_only_by_a_project_with_environments():
    text = (REPO_ROOT / "tests/unit/minimal-platform.yaml").read_text()
    trimmed = "\n".join(line for line in text.splitlines() if not line.startswith("  terraform:"))
    assert parse_config(trimmed).images.terraform is None  # no environments: not needed
    with pytest.raises(ConfigError, match="environments are vended by images.terraform"):
        parse_config(trimmed.replace("    components: [", "    environments: {terraformModule: "
                                     "'git::https://git.example/infra//env?ref=main', "
                                     "defaultTTL: 1h, maxTTL: 2h}\n    components: [", 1))
