"""Helpers for tests: where the repo and its built tools are."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN_DIR = REPO_ROOT / ".cache" / "bin"


def require_binary(name: str, fix: str = "make tools") -> Path:
    """The path of a built tool; fails the test loudly (never skips) when it is missing."""
    path = BIN_DIR / name
    if path.is_file() and os.access(path, os.X_OK):
        return path
    found = shutil.which(name) if name in ("git", "etcd", "sha256sum") else None
    if found:
        return Path(found)
    pytest.fail(f"{name} is not built or installed (looked for .cache/bin/{name}); run `{fix}`",
                pytrace=False)
