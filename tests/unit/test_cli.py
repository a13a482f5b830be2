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
