"""Run a rendered script step the way Argo runs it: its source from the YAML, its env substituted."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import yaml


def script_template(workflow_template: dict[str, Any] | bytes, name: str) -> dict[str, Any]:
    doc = yaml.safe_load(workflow_template) if isinstance(workflow_template, bytes) else workflow_template
    for template in doc["spec"]["templates"]:
        if template["name"] == name:
            return template["script"]
    raise LookupError(name)


def substitute(text: str, values: dict[str, str]) -> str:
    """Argo's `{{...}}` substitution, once, over the text of the template (not of the values)."""
    def replace(match: re.Match[str]) -> str:
        key = match.group(1).strip()
        if key not in values:
            raise KeyError(f"no value for {{{{{key}}}}}")
        return values[key]
    return re.sub(r"\{\{([^{}]+)\}\}", replace, text)


def step_environment(script: dict[str, Any], values: dict[str, str]) -> dict[str, str]:
    return {env["name"]: substitute(env["value"], values) for env in script.get("env", [])}


def load_step_module(script: dict[str, Any], name: str = "rendered_step") -> types.ModuleType:
    """The script's source as a module (its `if __name__ == '__main__'` block does not run)."""
    module = types.ModuleType(name)
    exec(compile(script["source"], f"<{name}>", "exec"), module.__dict__)  # noqa: S102
    return module


def run_step(script: dict[str, Any], values: dict[str, str], extra_env: dict[str, str],
             workdir: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Write the source to a file and run it with python3, as Argo's script template does."""
    source = workdir / "script"
    source.write_text(script["source"])
    env = {"PATH": os.environ["PATH"], **step_environment(script, values), **extra_env}
    command = [sys.executable if script["command"] == ["python3"] else script["command"][0],
               str(source)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=workdir)
