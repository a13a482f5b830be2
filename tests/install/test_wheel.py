"""Installable as a user installs it: a wheel built from this checkout, installed into a fresh
virtualenv (not editable, no test extras), gives a working `argo-delivery` on PATH."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv

import pytest

from tests.support import REPO_ROOT

pytestmark = pytest.mark.install


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("install")
    # a copy of the source tree: setuptools builds in-tree and would leave build/ in the repo
    source = root / "source"
    shutil.copytree(REPO_ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", ".cache", "dist", "build", "*.egg-info", "__pycache__", ".pytest_cache"))
    wheels = root / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels),
                    str(source)], check=True, capture_output=True, text=True)
    [wheel] = wheels.glob("argo_delivery-*.whl")
    env_dir = root / "venv"
    venv.create(env_dir, with_pip=True)
    result = subprocess.run([str(env_dir / "bin" / "pip"), "install", "-q", str(wheel)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return env_dir / "bin"


def run(bin_dir, *args, cwd):
    return subprocess.run([str(bin_dir / "argo-delivery"), *args], capture_output=True, text=True,
                          cwd=cwd, env={"PATH": f"{bin_dir}:/usr/bin:/bin"})


def test_render_and_lint_work_from_the_installed_wheel(installed, tmp_path):
    assert run(installed, "--help", cwd=tmp_path).returncode == 0
    rendered = run(installed, "render", "--example", "--out", str(tmp_path / "dist"), cwd=tmp_path)
    assert rendered.returncode == 0, rendered.stderr
    assert (tmp_path / "dist" / "0.1.0" / "SHA256SUMS").is_file()
    # the installed package carries its data: schema, default config, step sources, templates
    linted = run(installed, "lint", str(tmp_path / "dist" / "0.1.0"), "--no-upstream", cwd=tmp_path)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert run(installed, "init", "platform.yaml", cwd=tmp_path).returncode == 0
    found = run(installed, "render", "--out", str(tmp_path / "mine"), cwd=tmp_path)
    assert found.returncode == 0 and "platform.yaml" in found.stderr, found.stderr
