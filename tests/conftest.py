"""Fixtures shared by every test folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from argo_delivery.bundle import Bundle, build_bundle, write_bundle
from argo_delivery.config import PlatformConfig, load_default


@pytest.fixture(scope="session")
def default_config() -> PlatformConfig:
    return load_default()


@pytest.fixture(scope="session")
def default_bundle(default_config: PlatformConfig) -> Bundle:
    return build_bundle(default_config)


@pytest.fixture(scope="session")
def default_bundle_dir(default_bundle: Bundle, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default bundle written to disk once per session (treat it as read-only)."""
    return write_bundle(default_bundle, tmp_path_factory.mktemp("dist")).path


# The real kube-apiserver + etcd, one per session, for every test folder (tests/kube_server.py).
from tests.kube_server import kube, kube_terminal_summary  # noqa: E402,F401


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    kube_terminal_summary(terminalreporter, config)
