"""The command line: help everywhere, --version, init."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from argo_delivery import __version__
from argo_delivery.cli import main
from argo_delivery.config import default_config_text, load_config


def commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from commands(command, (*prefix, name))


@pytest.mark.parametrize("path", [(), *commands(main)], ids=lambda p: " ".join(p) or "main")
def test_help_on_every_command(path):
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output
    assert "Examples:" in result.output and "argo-delivery " in result.output


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_python_m_argo_delivery_is_the_cli():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "argo_delivery", "--version"], capture_output=True,
                          text=True, check=True)
    assert proc.stdout == f"argo-delivery, version {__version__}\n"
    usage = subprocess.run([sys.executable, "-m", "argo_delivery", "images", "--help"],
                           capture_output=True, text=True, check=True).stdout
    assert usage.startswith("Usage: argo-delivery images ")


SCHEMA_LINE = "# yaml-language-server: $schema=platform.schema.json\n"


def test_init_writes_the_default_and_refuses_to_overwrite(tmp_path):
    target = tmp_path / "platform.yaml"
    runner = CliRunner()
    assert runner.invoke(main, ["init", str(target)]).exit_code == 0
    assert target.read_text() == SCHEMA_LINE + default_config_text()
    assert load_config(target).bundle_name == "acme-platform"
    target.write_text("# mine\n")
    result = runner.invoke(main, ["init", str(target)])
    assert result.exit_code == 2 and "--force" in result.stderr
    assert target.read_text() == "# mine\n"
    assert runner.invoke(main, ["init", str(target), "--force"]).exit_code == 0
    assert target.read_text() == SCHEMA_LINE + default_config_text()


def test_require_digests_refuses_tags_and_writes_nothing(tmp_path):
    config = tmp_path / "platform.yaml"
    config.write_text(default_config_text().replace("requireDigests: false", "requireDigests: true"))
    result = CliRunner().invoke(main, ["render", "--config", str(config), "--out", str(tmp_path / "d")])
    assert result.exit_code == 2
    assert "is not pinned by digest" in result.stderr and "requireDigests" in result.stderr
    assert not (tmp_path / "d").exists()


def test_registry_mirror_rewrites_every_image(tmp_path):
    import json

    config = tmp_path / "platform.yaml"
    config.write_text(default_config_text().replace("mirror: null", "mirror: registry.site:5000"))
    result = CliRunner().invoke(main, ["render", "--config", str(config), "--out", str(tmp_path),
                                       "--json"])
    assert result.exit_code == 0, result.output
    images = json.loads(result.stdout)["images"]
    assert len(images) == 8
    assert all(i.startswith(("registry.site:5000/docker.io/", "registry.site:5000/quay.io/argoproj/",
                             "registry.site:5000/registry.example.com/"))
               for i in images)
    manifests = "".join(p.read_text() for p in (tmp_path / "0.1.0").rglob("*.yaml"))
    assert "image: docker.io/" not in manifests


def test_an_eventbus_whose_images_are_unknown_is_reported_not_raised(monkeypatch, tmp_path):
    from argo_delivery import bundle as bundle_module
    from argo_delivery.bundle import build_bundle
    from argo_delivery.images import ImageError

    foreign = {"apiVersion": "argoproj.io/v1alpha1", "kind": "EventBus",
               "metadata": {"name": "other", "namespace": "argo-delivery"},
               "spec": {"jetstream": {"version": "9.9.9"}}}
    with pytest.raises(ImageError, match="JetStream 9.9.9, whose images argo-delivery does not know"):
        build_bundle(load_config(None), extra=[foreign])
    monkeypatch.setattr(bundle_module, "build_bundle", lambda config: build_bundle(config, extra=[foreign]))
    result = CliRunner().invoke(main, ["render", "--example", "--out", str(tmp_path / "d")])
    assert result.exit_code == 2
    assert "JetStream 9.9.9" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "d").exists()


# --- item 8: user text is never markup -------------------------------------------------------

def test_config_values_and_patterns_are_printed_literally(tmp_path):
    config = tmp_path / "platform.yaml"
    config.write_text(default_config_text().replace("branch: release", 'branch: "dev[/x]"')
                      .replace("mirror: null", 'mirror: "Bad[bold]Mirror"'))
    result = CliRunner().invoke(main, ["render", "--config", str(config), "--out", str(tmp_path / "d")])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert 'found string "dev[/x]"' in result.stderr
    assert '"Bad[bold]Mirror"' in result.stderr
    # a pattern's character classes are part of the message
    assert "expected a value matching ^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*$" in result.stderr


def test_lint_findings_are_printed_literally(tmp_path, default_bundle):
    import yaml

    doc = next(r for r in default_bundle.resources if r["kind"] == "WorkflowTemplate")
    doc = json.loads(json.dumps(doc))
    doc["spec"]["templates"][0]["script"]["imagePullPolicy[b]"] = "Always"
    (tmp_path / "wt.yaml").write_text(yaml.safe_dump(doc))
    result = CliRunner().invoke(main, ["lint", str(tmp_path), "--no-upstream"])
    assert result.exit_code == 1
    assert "spec.templates[0].script.imagePullPolicy[b]" in result.stdout


# --- item 2: which config -----------------------------------------------------------------

@pytest.fixture
def empty_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ARGO_DELIVERY_CONFIG", raising=False)
    return tmp_path


def _renamed_config(path, name):
    path.write_text(default_config_text().replace("name: acme-platform", f"name: {name}"))
    return path


@pytest.mark.parametrize("command", [["render"], ["lint", "--no-upstream"], ["hash", "--project", "p"]])
def test_no_config_is_a_clear_error_not_the_example(empty_cwd, command):
    result = CliRunner().invoke(main, [*command, "--json"] if command[0] != "hash" else command)
    assert result.exit_code == 2
    assert not (empty_cwd / "dist").exists()
    text = result.stdout + result.stderr
    assert "no platform config" in text and "--example" in text and "ARGO_DELIVERY_CONFIG" in text


def test_platform_yaml_in_the_current_folder_is_used_and_named(empty_cwd):
    _renamed_config(empty_cwd / "platform.yaml", "local-platform")
    result = CliRunner().invoke(main, ["render", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["name"] == "local-platform"
    assert "config: platform.yaml (found in the current folder)" in result.stderr


def test_environment_variable_is_used_after_the_current_folder(empty_cwd, monkeypatch):
    env_config = _renamed_config(empty_cwd / "elsewhere.yaml", "from-env")
    monkeypatch.setenv("ARGO_DELIVERY_CONFIG", str(env_config))
    result = CliRunner().invoke(main, ["render", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["name"] == "from-env"
    assert "$ARGO_DELIVERY_CONFIG" in result.stderr and "elsewhere.yaml" in result.stderr
    _renamed_config(empty_cwd / "platform.yaml", "local-platform")
    result = CliRunner().invoke(main, ["render", "--json", "--out", "other"])
    assert json.loads(result.stdout)["name"] == "local-platform"


def test_example_only_on_request_and_config_from_stdin(empty_cwd):
    runner = CliRunner()
    result = runner.invoke(main, ["render", "--example", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["name"] == "acme-platform"
    assert "<embedded default platform> (--example)" in result.stderr
    both = runner.invoke(main, ["render", "--example", "--config", "x.yaml"])
    assert both.exit_code == 2 and "exclude each other" in both.stderr
    text = default_config_text().replace("name: acme-platform", "name: piped")
    result = runner.invoke(main, ["render", "--config", "-", "--json", "--out", "piped"], input=text)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["name"] == "piped"
    assert "config: <stdin>" in result.stderr


# --- item 11: errors are data, exit codes ----------------------------------------------------

def test_config_problems_as_json_on_stdout(tmp_path):
    config = tmp_path / "platform.yaml"
    config.write_text(default_config_text().replace("type: external", "type: partner"))
    result = CliRunner().invoke(main, ["render", "--config", str(config), "--json"])
    assert result.exit_code == 2
    failure = json.loads(result.stdout)
    assert failure["ok"] is False and failure["exitCode"] == 2
    [problem] = failure["problems"]
    assert problem["source"] == str(config)
    assert problem["path"] == "projects[1].type"
    assert isinstance(problem["line"], int) and isinstance(problem["column"], int)
    assert "partner" in problem["message"]


def test_usage_errors_as_json(tmp_path):
    result = CliRunner().invoke(main, ["render", "--example", "--json", "--no-such-option"])
    assert result.exit_code == 2
    failure = json.loads(result.stdout)
    assert failure["exitCode"] == 2 and "--no-such-option" in failure["problems"][0]["message"]
    result = CliRunner().invoke(main, ["lint", "--no-upstream", "--json", "--disable", "AD999"])
    assert result.exit_code == 2
    assert "AD999" in json.loads(result.stdout)["error"]


def test_a_bug_exits_70_without_a_traceback(monkeypatch, tmp_path):
    from argo_delivery import bundle as bundle_module

    def broken(config):
        raise RuntimeError("boom")

    monkeypatch.setattr(bundle_module, "build_bundle", broken)
    result = CliRunner().invoke(main, ["render", "--example", "--out", str(tmp_path)])
    assert result.exit_code == 70
    assert "internal error: RuntimeError: boom" in result.stderr
    assert "Traceback" not in result.output
    result = CliRunner().invoke(main, ["render", "--example", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 70
    assert "RuntimeError: boom" in json.loads(result.stdout)["error"]


def test_an_unwritable_out_is_an_error_not_a_traceback(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(main, ["render", "--example", "--out", str(blocker / "dist")])
    assert result.exit_code == 2, result.output
    assert "cannot write the bundle" in result.stderr
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    result = CliRunner().invoke(main, ["render", "--example", "--out", str(blocker / "dist"), "--json"])
    assert result.exit_code == 2 and json.loads(result.stdout)["ok"] is False


def test_exit_codes_are_documented_for_every_command():
    from tests.support import REPO_ROOT

    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("## Command line"):readme.index("## Platform config")]
    for path in commands(main):
        assert f"`argo-delivery {' '.join(path)}" in section, path
    for code in ("| 0 |", "| 1 |", "| 2 |", "| 70 |"):
        assert code in section


# --- item 12: lint on real folders, verify ----------------------------------------------------

def test_lint_config_folder_is_refused(tmp_path, default_bundle_dir):
    result = CliRunner().invoke(main, ["lint", "--config", str(default_bundle_dir), "--no-upstream"])
    assert result.exit_code == 2
    assert "is a folder" in result.stderr and "BUNDLE_DIR" in result.stderr
    both = CliRunner().invoke(main, ["lint", str(default_bundle_dir), "--example", "--no-upstream"])
    assert both.exit_code == 2 and "not both" in both.stderr


def test_lint_an_empty_folder_is_an_error_and_counts_are_printed(tmp_path, default_bundle_dir):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(main, ["lint", str(empty), "--no-upstream"])
    assert result.exit_code == 2 and "no YAML files" in result.stderr
    (empty / "blank.yaml").write_text("# nothing\n")
    result = CliRunner().invoke(main, ["lint", str(empty), "--no-upstream"])
    assert result.exit_code == 2 and "no Kubernetes resources" in result.stderr
    result = CliRunner().invoke(main, ["lint", str(default_bundle_dir), "--no-upstream"])
    assert result.exit_code == 0
    files = len([p for p in default_bundle_dir.rglob("*.yaml") if p.name != "kustomization.yaml"])
    assert f"checked {files} files, {files} resources: clean" in result.stdout
    summary = json.loads(CliRunner().invoke(main, ["lint", str(default_bundle_dir), "--no-upstream",
                                                   "--json"]).stdout)
    assert summary["files"] == summary["resources"] == files and summary["ok"] is True


def test_lint_options_from_the_command_line(tmp_path):
    import yaml

    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns"},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    (tmp_path / "all.yaml").write_text(yaml.safe_dump_all([widget, pod]))
    runner = CliRunner()
    rules = {f["rule"] for f in json.loads(
        runner.invoke(main, ["lint", str(tmp_path), "--no-upstream", "--json"]).stdout)["findings"]}
    assert rules == {"K8S001", "AD001", "AD002", "AD003", "AD004", "AD005", "AD006", "AD007"}
    result = runner.invoke(main, ["lint", str(tmp_path), "--no-upstream", "--json",
                                  "--ignore-missing-schemas", "--disable", "AD001,ad002",
                                  "--disable", "AD003"])
    assert {f["rule"] for f in json.loads(result.stdout)["findings"]} == {"AD004", "AD005", "AD006",
                                                                          "AD007"}


def test_lint_bad_yaml_is_located(tmp_path):
    (tmp_path / "bad.yaml").write_text("kind: Pod\nmetadata: [\n")
    result = CliRunner().invoke(main, ["lint", str(tmp_path), "--no-upstream", "--json"])
    assert result.exit_code == 2
    [problem] = json.loads(result.stdout)["problems"]
    assert problem["source"] == "bad.yaml" and problem["line"] == 3
    assert "invalid YAML" in problem["message"]


@pytest.fixture
def bundle_copy(tmp_path, default_bundle_dir):
    import shutil

    return Path(shutil.copytree(default_bundle_dir, tmp_path / "0.1.0"))


def test_verify_an_intact_bundle(bundle_copy, default_bundle):
    result = CliRunner().invoke(main, ["verify", str(bundle_copy)])
    assert result.exit_code == 0, result.output
    assert default_bundle.digest in result.stdout
    summary = json.loads(CliRunner().invoke(main, ["verify", str(bundle_copy), "--json"]).stdout)
    assert summary["ok"] is True and summary["digest"] == default_bundle.digest
    assert summary["files"] == len(default_bundle.files)


def test_verify_catches_a_changed_file(bundle_copy):
    victim = bundle_copy / "images.txt"
    victim.write_text(victim.read_text() + "evil.example/x:1\n")
    result = CliRunner().invoke(main, ["verify", str(bundle_copy), "--json"])
    assert result.exit_code == 1
    changes = {(d["change"], d["path"]) for d in json.loads(result.stdout)["differences"]}
    assert ("differs", "images.txt") in changes and ("digest", "bundle.json") in changes


def test_verify_catches_a_file_changed_with_its_checksum(bundle_copy):
    import hashlib

    victim = bundle_copy / "images.txt"
    victim.write_text(victim.read_text() + "evil.example/x:1\n")
    sums = bundle_copy / "SHA256SUMS"
    lines = [f"{hashlib.sha256(victim.read_bytes()).hexdigest()}  images.txt" if line.endswith(
        "  images.txt") else line for line in sums.read_text().splitlines()]
    sums.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(main, ["verify", str(bundle_copy)])
    assert result.exit_code == 1
    assert "digest: bundle.json" in result.stdout
    (bundle_copy / "stray.yaml").write_text("{}\n")
    assert "unlisted: stray.yaml" in CliRunner().invoke(main, ["verify", str(bundle_copy)]).stdout


def test_verify_a_folder_that_is_no_bundle(tmp_path):
    result = CliRunner().invoke(main, ["verify", str(tmp_path)])
    assert result.exit_code == 2 and "SHA256SUMS" in result.stderr


# --- item 13: conventions ----------------------------------------------------------------

def test_version_command_and_the_deprecated_hash_alias():
    result = CliRunner().invoke(main, ["version"])
    assert result.exit_code == 0 and result.stdout == f"argo-delivery {__version__}\n"
    assert json.loads(CliRunner().invoke(main, ["version", "--json"]).stdout) == {"version": __version__}
    commit = "0123456789abcdef0123456789abcdef01234567"
    args = ["--project", "p", "--component", f"api=https://x/api@{commit}"]
    new = CliRunner().invoke(main, ["hash", *args])
    old = CliRunner().invoke(main, ["version", "hash", *args])
    assert new.exit_code == old.exit_code == 0
    assert old.stdout == new.stdout and new.stdout.startswith("sha256:")
    assert "deprecated" in old.stderr


@pytest.mark.parametrize("shell, marker", [("bash", "complete "), ("zsh", "compdef"),
                                           ("fish", "--command argo-delivery")])
def test_completion_scripts(shell, marker):
    result = CliRunner().invoke(main, ["completion", shell])
    assert result.exit_code == 0
    assert "_ARGO_DELIVERY_COMPLETE" in result.stdout and marker in result.stdout


def test_completion_completes_commands():
    result = CliRunner().invoke(main, [], prog_name="argo-delivery", env={
        "_ARGO_DELIVERY_COMPLETE": "bash_complete", "COMP_WORDS": "argo-delivery ve", "COMP_CWORD": "1"})
    assert "verify" in result.stdout and "version" in result.stdout


def test_schema_command_and_init_point_the_editor_at_it(tmp_path):
    from argo_delivery.config import platform_schema

    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0 and json.loads(result.stdout) == platform_schema()
    target = tmp_path / "site" / "platform.yaml"
    assert CliRunner().invoke(main, ["init", str(target)]).exit_code == 0
    first = target.read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=platform.schema.json"
    assert json.loads((target.parent / "platform.schema.json").read_text()) == platform_schema()
    stdout = CliRunner().invoke(main, ["init", "-"]).stdout
    assert stdout == default_config_text()
    out = tmp_path / "schema.json"
    assert CliRunner().invoke(main, ["schema", "--out", str(out)]).exit_code == 0
    assert json.loads(out.read_text()) == platform_schema()


def test_render_stdout_is_one_stream_and_writes_nothing(empty_cwd, default_bundle):
    import yaml

    result = CliRunner().invoke(main, ["render", "--example", "--stdout"])
    assert result.exit_code == 0, result.output
    documents = list(yaml.safe_load_all(result.stdout))
    assert documents == default_bundle.resources
    assert "# Source: crds/projects.argo-delivery.io.yaml" in result.stdout
    assert list(empty_cwd.iterdir()) == []
    assert CliRunner().invoke(main, ["render", "--example", "--stdout", "--check"]).exit_code == 2


@pytest.mark.parametrize("command", [[], ["render"], ["lint"], ["hash"], ["verify"], ["schema"],
                                     ["versions"], ["versions", "show"]])
def test_help_does_not_import_hera(command):
    import subprocess
    import sys

    code = ("import sys\nfrom argo_delivery.cli import main\n"
            f"try:\n    main({[*command, '--help']!r})\nexcept SystemExit:\n    pass\n"
            "print('LOADED', sorted({m.split('.')[0] for m in sys.modules} & "
            "{'hera', 'argo_workflows', 'jsonschema', 'pydantic', 'kubernetes_validate'}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Usage:" in result.stdout and "Examples:" in result.stdout
    assert "LOADED []" in result.stdout


def test_hash_predicts_the_version_from_the_heads(tmp_path, monkeypatch):
    from argo_delivery.versionhash import version_hash, version_name
    from tests.gitrepos import make_repo

    repos = tmp_path / "repos"
    api = make_repo(repos / "acme-platform", "api", {"main": 2})
    billing = make_repo(repos / "northwind-partners", "billing-adapter", {"main": 1, "other": 1})
    home = tmp_path / "home"
    home.mkdir()
    # The config's https://github.com URLs, served from local bare repos.
    (home / ".gitconfig").write_text(f'[url "{repos.as_uri()}/"]\n\tinsteadOf = https://github.com/\n')
    monkeypatch.setenv("HOME", str(home))
    result = CliRunner().invoke(main, ["hash", "--project", "northwind", "--example", "--json"])
    assert result.exit_code == 0, result.output
    predicted = json.loads(result.stdout)
    expected = version_hash("northwind", [
        {"name": "api", "repo": "https://github.com/acme-platform/api.git", "commit": api.heads["main"]},
        {"name": "billing-adapter", "repo": "https://github.com/northwind-partners/billing-adapter.git",
         "commit": billing.heads["main"]}])
    assert predicted["hash"] == expected
    assert predicted["name"] == version_name("northwind", expected)
    assert {c["name"]: c["commit"] for c in predicted["components"]} == {
        "api": api.heads["main"], "billing-adapter": billing.heads["main"]}
    plain = CliRunner().invoke(main, ["hash", "--project", "northwind", "--example"])
    assert f"Version {predicted['name']}" in plain.stdout
    unknown = CliRunner().invoke(main, ["hash", "--project", "nope", "--example"])
    assert unknown.exit_code == 2 and "core-team, northwind" in unknown.stderr


def test_hash_of_a_missing_branch_is_a_clear_error(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(
        f'[url "{(tmp_path / "none").as_uri()}/"]\n\tinsteadOf = https://github.com/\n')
    monkeypatch.setenv("HOME", str(home))
    result = CliRunner().invoke(main, ["hash", "--project", "northwind", "--example"])
    assert result.exit_code == 2
    assert "cannot resolve the heads of project northwind" in result.stderr
    assert "Traceback" not in result.output


def test_render_stdout_into_a_closed_pipe_is_quiet(tmp_path):
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-m", "argo_delivery.cli", "render", "--example",
                                "--stdout"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    assert process.stdout.readline() == b"---\n"
    process.stdout.close()  # as `| head -1` does
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 0, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr


@pytest.mark.parametrize("content, change", [(None, "missing"), ("[]", "unreadable"),
                                             ('{"name": "x"}', "unreadable"), ("{", "unreadable")])
def test_verify_a_bundle_json_without_a_digest(bundle_copy, content, change):
    if content is None:
        (bundle_copy / "bundle.json").unlink()
    else:
        (bundle_copy / "bundle.json").write_text(content)
    result = CliRunner().invoke(main, ["verify", str(bundle_copy), "--json"])
    assert result.exit_code == 1, result.output
    assert (change, "bundle.json") in {(d["change"], d["path"])
                                       for d in json.loads(result.stdout)["differences"]}


def test_hash_takes_commits_or_a_config_not_both():
    commit = "0123456789abcdef0123456789abcdef01234567"
    result = CliRunner().invoke(main, ["hash", "--project", "p", "--example",
                                       "--component", f"api=https://x/api@{commit}", "--json"])
    assert result.exit_code == 2
    assert "not both" in json.loads(result.stdout)["error"]
