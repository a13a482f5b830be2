"""The rendered generate-version step against real git repositories (no API server needed here)."""

from __future__ import annotations

import pytest

from argo_delivery.versionhash import version_hash
from tests.gitrepos import GitDaemon, make_repo
from tests.stepscripts import load_step_module, script_template
from tests.support import require_binary


@pytest.fixture(scope="module")
def step(default_bundle):
    source = default_bundle.files["namespaces/core-team/workflowtemplate/generate-version.yaml"]
    return load_step_module(script_template(source, "generate-version"))


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    require_binary("git", "apt-get install git")
    root = tmp_path_factory.mktemp("repos")
    return root, {
        "api": make_repo(root, "api", {"main": 2, "release": 1}),
        "web": make_repo(root, "web", {"main": 3}),
        "worker": make_repo(root, "worker", {"main": 1, "release": 2}),
    }


def components(urls, branches):
    return [{"name": name, "repo": urls[name], "branch": branch} for name, branch in branches.items()]


def test_heads_are_branch_heads_local_and_over_git_daemon(step, repos):
    root, made = repos
    branches = {"api": "main", "web": "main", "worker": "release"}
    with GitDaemon(root) as daemon:
        urls = {"api": made["api"].url, "web": daemon.url(made["web"]), "worker": daemon.url(made["worker"])}
        heads = step.resolve_component_heads(components(urls, branches))
    assert {h["name"]: h["commit"] for h in heads} == {
        name: made[name].heads[branch] for name, branch in branches.items()}
    assert [h["ref"] for h in heads] == ["main", "main", "release"]
    assert step.version_hash("core-team", heads) == version_hash("core-team", heads)


def test_hash_equals_the_cli(step, repos):
    from click.testing import CliRunner

    from argo_delivery.cli import main

    _, made = repos
    comps = components({n: r.url for n, r in made.items()}, {"api": "release", "web": "main"})
    heads = step.resolve_component_heads(comps)
    args = ["hash", "--project", "p"]
    for head in heads:
        args += ["--component", f"{head['name']}={head['repo']}@{head['commit']}"]
    assert CliRunner().invoke(main, args).output.strip() == step.version_hash("p", heads)


def test_missing_branch_and_missing_repo_fail_clearly_without_retrying(step, repos, capsys):
    root, made = repos
    with pytest.raises(step.StepError) as caught:
        step.resolve_component_heads([
            {"name": "api", "repo": made["api"].url, "branch": "no-such-branch"},
            {"name": "ghost", "repo": (root / "ghost.git").as_uri(), "branch": "main"},
        ], attempts=4)
    message = str(caught.value)
    assert "component api: branch 'no-such-branch' does not exist" in message
    assert "component ghost: cannot read" in message
    assert caught.value.exit_code == step.EXIT_PERMANENT
    assert '"event": "retry"' not in capsys.readouterr().out, "permanent errors are not retried"


def test_a_repository_git_daemon_does_not_serve_fails_without_retrying(step, repos, capsys):
    root, made = repos
    with GitDaemon(root) as daemon:
        ghost = daemon.url(made["api"]).replace("api", "ghost")
        with pytest.raises(step.StepError) as caught:
            step.resolve_component_heads([{"name": "ghost", "repo": ghost, "branch": "main"}],
                                         attempts=4)
    assert "repository not exported" in str(caught.value)
    assert caught.value.exit_code == step.EXIT_PERMANENT
    assert '"event": "retry"' not in capsys.readouterr().out, "permanent errors are not retried"


def test_network_errors_are_retried_with_backoff_then_fail(step, capsys):
    from tests.gitrepos import free_port

    port = free_port()  # nothing listens here: connection refused, a transient error
    with pytest.raises(step.StepError) as caught:
        step.resolve_component_heads([{"name": "api", "repo": f"git://127.0.0.1:{port}/api.git",
                                       "branch": "main"}], attempts=2, timeout=10)
    assert caught.value.exit_code == step.EXIT_TRANSIENT
    assert "gave up after 2 attempts" in str(caught.value)
    assert '"event": "retry"' in capsys.readouterr().out


def test_a_git_server_that_never_answers_times_out_and_is_retried(step, capsys):
    """It accepts the connection and says nothing: each try ends at the timeout, the step
    gives up after its attempts with a message that says so, as a transient error (Argo
    retries the step)."""
    from tests.gitrepos import HangingGitServer

    with HangingGitServer() as server:
        with pytest.raises(step.StepError) as caught:
            step.resolve_component_heads([{"name": "api", "repo": server.url("api.git"),
                                           "branch": "main"}], attempts=2, timeout=1)
        assert server.connections == 2
    assert str(caught.value) == ("component api: git ls-remote timed out after 1s "
                                 "(gave up after 2 attempts)")
    assert caught.value.exit_code == step.EXIT_TRANSIENT
    assert '"event": "retry"' in capsys.readouterr().out


def test_the_git_limits_come_from_the_config(step):
    """gitProvider.timeout and attempts reach the step as its environment."""
    import yaml

    from argo_delivery.bundle import build_bundle
    from argo_delivery.config import default_config_text, parse_config

    data = yaml.safe_load(default_config_text())
    data["gitProvider"].update(timeout="5s", attempts=2)
    bundle = build_bundle(parse_config(yaml.safe_dump(data), "git-limits.yaml"))
    template = yaml.safe_load(
        bundle.files["namespaces/core-team/workflowtemplate/generate-version.yaml"])
    [script] = [t["script"] for t in template["spec"]["templates"] if "script" in t]
    env = {e["name"]: e["value"] for e in script["env"] if "value" in e}
    assert (env["AD_GIT_TIMEOUT"], env["AD_ATTEMPTS"]) == ("5", "2")


def test_credentials_never_reach_messages(step):
    assert step.redact("fatal: unable to access 'https://bob:s3cret@git.example/x.git/'") == \
        "fatal: unable to access 'https://***@git.example/x.git/'"
    # tokens in query strings too (GitLab's private_token, OAuth's access_token)
    assert step.redact("https://git.example/x.git?private_token=glpat-s3cret&ref=main failed") == \
        "https://git.example/x.git?private_token=***&ref=main failed"
    assert step.redact("GET https://h/a?x=1&access_token=s3cret'") == "GET https://h/a?x=1&access_token=***'"
    assert step.redact("https://h/a?page=2&sort=asc") == "https://h/a?page=2&sort=asc"


def test_git_credentials_go_through_git_config_not_argv(step, tmp_path, monkeypatch):
    (tmp_path / ".git-credentials").write_text("https://bob:s3cret@git.example\n")
    monkeypatch.setenv("AD_GIT_CREDENTIALS", str(tmp_path))
    env = step.git_environment()
    assert env["GIT_CONFIG_KEY_0"] == "credential.helper"
    assert env["GIT_CONFIG_VALUE_0"] == f"store --file={tmp_path / '.git-credentials'}"
    assert "s3cret" not in " ".join(env.values())
    assert env["GIT_TERMINAL_PROMPT"] == "0"


def test_private_repo_over_smart_http_with_a_credentials_secret(step, repos, tmp_path,
                                                                monkeypatch, capsys):
    from tests.gitrepos import GitHttpServer

    root, made = repos
    with GitHttpServer(root, "bot", "s3cret-t0ken") as server:
        component = [{"name": "api", "repo": server.url(made["api"]), "branch": "release"}]
        # No credentials: refused at once, as a permanent error, and no prompt hangs.
        monkeypatch.delenv("AD_GIT_CREDENTIALS", raising=False)
        with pytest.raises(step.StepError) as caught:
            step.resolve_component_heads(component)
        assert caught.value.exit_code == step.EXIT_PERMANENT
        assert "asks for credentials and the git credentials Secret has none" in str(caught.value)
        # The mounted Secret, in git-credential-store format, as the template mounts it.
        secret = tmp_path / "git-credentials"
        secret.mkdir()
        (secret / ".git-credentials").write_text(f"http://bot:s3cret-t0ken@127.0.0.1:{server.port}\n")
        monkeypatch.setenv("AD_GIT_CREDENTIALS", str(secret))
        heads = step.resolve_component_heads(component)
    assert heads[0]["commit"] == made["api"].heads["release"]
    assert "s3cret-t0ken" not in capsys.readouterr().out + str(caught.value)
