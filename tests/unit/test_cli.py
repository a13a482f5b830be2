"""The command line: help everywhere, --version, init."""

from __future__ import annotations

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


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_init_writes_the_default_and_refuses_to_overwrite(tmp_path):
    target = tmp_path / "platform.yaml"
    runner = CliRunner()
    assert runner.invoke(main, ["init", str(target)]).exit_code == 0
    assert target.read_text() == default_config_text()
    assert load_config(target).bundle_name == "acme-platform"
    target.write_text("# mine\n")
    result = runner.invoke(main, ["init", str(target)])
    assert result.exit_code == 2 and "--force" in result.stderr
    assert target.read_text() == "# mine\n"
    assert runner.invoke(main, ["init", str(target), "--force"]).exit_code == 0
    assert target.read_text() == default_config_text()


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
    assert len(images) == 5
    assert all(i.startswith("registry.site:5000/docker.io/") for i in images)
    manifests = "".join(p.read_text() for p in (tmp_path / "0.1.0").rglob("*.yaml"))
    assert "image: docker.io/" not in manifests


def test_an_eventbus_whose_images_are_unknown_is_reported_not_raised(monkeypatch, tmp_path):
    from argo_delivery import cli
    from argo_delivery.bundle import build_bundle
    from argo_delivery.images import ImageError

    foreign = {"apiVersion": "argoproj.io/v1alpha1", "kind": "EventBus",
               "metadata": {"name": "other", "namespace": "argo-delivery"},
               "spec": {"jetstream": {"version": "9.9.9"}}}
    with pytest.raises(ImageError, match="JetStream 9.9.9, whose images argo-delivery does not know"):
        build_bundle(load_config(None), extra=[foreign])
    monkeypatch.setattr(cli, "build_bundle", lambda config: build_bundle(config, extra=[foreign]))
    result = CliRunner().invoke(main, ["render", "--out", str(tmp_path / "d")])
    assert result.exit_code == 2
    assert "JetStream 9.9.9" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "d").exists()
