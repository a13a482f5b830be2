"""Run Argo's own validators, built from upstream Go code by ``make tools``.

``argo-workflows-lint`` is the code path of ``argo lint --offline`` (argo-workflows
v4); ``argo-events-lint`` runs Argo Events' controller validation after a strict
decode. Both print one problem per line as ``FILE: Kind/name: message`` and exit
0 (valid), 1 (problems) or 2 (usage error).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

VALIDATORS = ("argo-workflows-lint", "argo-events-lint")

BIN_ENV = "ARGO_DELIVERY_BIN"


class UpstreamToolError(RuntimeError):
    """A validator binary is missing or failed in a way that is not a verdict."""


@dataclass(frozen=True)
class UpstreamProblem:
    tool: str
    file: str
    kind: str
    name: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.kind}/{self.name}: {self.message}"


def _repo_root() -> Path | None:
    for parent in Path(__file__).resolve().parents:
        if (parent / "tools").is_dir() and (parent / "pyproject.toml").is_file():
            return parent
    return None


def tool_path(name: str) -> Path | None:
    """Where the validator ``name`` is, or None.

    ``$ARGO_DELIVERY_BIN/NAME`` when that variable is set, else ``.cache/bin/NAME``
    in the checkout holding this package, else in the current directory, else PATH.
    """
    bin_dir = os.environ.get(BIN_ENV)
    if bin_dir:
        candidate = Path(bin_dir) / name
        return candidate if candidate.is_file() else None
    candidates = []
    root = _repo_root()
    if root is not None:
        candidates.append(root / ".cache" / "bin" / name)
    candidates.append(Path.cwd() / ".cache" / "bin" / name)
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    return Path(found) if found else None


_LINE = re.compile(r"^(?P<file>.*?): (?P<kind>[A-Za-z]+|\?)/(?P<name>[^:]*): (?P<message>.*)$")


def parse_line(tool: str, line: str) -> UpstreamProblem:
    """``FILE: Kind/name: message`` -> UpstreamProblem (kind/name "?" if unparsable)."""
    m = _LINE.match(line)
    if m:
        return UpstreamProblem(tool, m["file"], m["kind"], m["name"], m["message"])
    return UpstreamProblem(tool, "", "?", "?", line)


def run_validator(
    tool: str, paths: list[Path] | list[str], *, timeout: float = 300
) -> list[UpstreamProblem]:
    """Run validator ``tool`` on ``paths``; [] means every object is valid."""
    if not paths:
        raise ValueError("run_validator needs at least one path")
    exe = tool_path(tool)
    if exe is None:
        raise UpstreamToolError(
            f"{tool} not found (looked in ${BIN_ENV}, .cache/bin/ and PATH); "
            "build it with `make tools`"
        )
    cmd = [str(exe), *(str(p) for p in paths)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except OSError as exc:
        raise UpstreamToolError(f"cannot run {exe}: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise UpstreamToolError(f"{tool} timed out after {timeout}s") from exc
    if proc.returncode not in (0, 1):
        raise UpstreamToolError(
            f"{tool} exited with {proc.returncode}: {proc.stderr.strip() or proc.stdout.strip()}"
        )
    problems = [parse_line(tool, line) for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode == 1 and not problems:
        raise UpstreamToolError(f"{tool} failed without reporting a problem: {proc.stderr.strip()}")
    if proc.returncode == 0 and problems:
        raise UpstreamToolError(f"{tool} exited 0 but printed: {proc.stdout.strip()}")
    return problems
