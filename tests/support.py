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


def pinned_version(tool: str, module: str) -> str:
    """The version of `module` that tools/<tool>/go.mod requires (the one we validate against)."""
    import re

    gomod = REPO_ROOT / "tools" / tool / "go.mod"
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", gomod.read_text(), re.M)
    if not match:
        pytest.fail(f"tools/{tool}/go.mod does not require {module}")
    return match.group(1)


def go_module_dir(module: str, version: str) -> Path:
    """Directory of `module@version` in Go's module cache (downloaded if needed)."""
    import json
    import subprocess

    if shutil.which("go") is None:
        pytest.fail(f"`go` is not on PATH; it is needed to read {module}@{version}")
    proc = subprocess.run(["go", "mod", "download", "-json", f"{module}@{version}"],
                          capture_output=True, text=True, cwd=REPO_ROOT)
    try:
        info = json.loads(proc.stdout)
    except json.JSONDecodeError:
        info = {"Error": proc.stderr.strip() or "no output"}
    if info.get("Error") or not info.get("Dir"):
        pytest.fail(f"go mod download {module}@{version} failed: {info.get('Error')}")
    return Path(info["Dir"])
