"""The rendered default bundle passes Argo's own validators, and `argo-delivery lint` runs them."""

from __future__ import annotations

import json
import time

import pytest
import yaml
from click.testing import CliRunner

from argo_delivery.cli import main
from argo_delivery.upstream import VALIDATORS, run_validator
from tests.support import require_binary

pytestmark = pytest.mark.conformance


@pytest.mark.parametrize("tool", VALIDATORS)
def test_every_file_of_the_default_bundle_passes(tool, default_bundle_dir):
    require_binary(tool)
    assert run_validator(tool, [default_bundle_dir]) == []


def test_validators_really_read_the_bundle(default_bundle_dir, tmp_path):
    """A broken copy of a bundle file is caught, so a clean result above is not vacuous."""
    for tool in VALIDATORS:
        require_binary(tool)
    template = yaml.safe_load((default_bundle_dir / "namespaces/core-team/workflowtemplate/"
                               "generate-version.yaml").read_text())
    template["spec"]["templates"][0]["script"]["env"][0]["value"] = "{{inputs.parameters.nope}}"
    sensor = yaml.safe_load((default_bundle_dir / "namespaces/argo-delivery/sensor/on-push-core-team.yaml")
                            .read_text())
    sensor["spec"]["triggers"][0]["template"]["conditions"] = "push-nobody"
    (tmp_path / "wt.yaml").write_text(yaml.safe_dump(template))
    (tmp_path / "sensor.yaml").write_text(yaml.safe_dump(sensor))
    workflow_problems = run_validator("argo-workflows-lint", [tmp_path / "wt.yaml"])
    assert any("inputs.parameters.nope" in p.message for p in workflow_problems)
    events_problems = run_validator("argo-events-lint", [tmp_path / "sensor.yaml"])
    assert any("push-nobody" in p.message or "unknown name" in p.message for p in events_problems)


def test_lint_cli_runs_upstream_validators_and_is_clean(default_bundle_dir):
    for tool in VALIDATORS:
        require_binary(tool)
    start = time.monotonic()
    result = CliRunner().invoke(main, ["lint", str(default_bundle_dir), "--json"])
    elapsed = time.monotonic() - start
    report = json.loads(result.stdout)
    assert result.exit_code == 0, report
    assert (report["findings"], report["notes"]) == ([], []), "upstream validators were not run"
    print(f"lint of the default bundle, upstream validators included: {elapsed:.2f} s")


def test_lint_cli_reports_upstream_findings(tmp_path, default_bundle_dir):
    require_binary("argo-workflows-lint")
    template = yaml.safe_load((default_bundle_dir / "namespaces/core-team/workflowtemplate/"
                               "generate-version.yaml").read_text())
    template["spec"]["entrypoint"] = "no-such-template"
    (tmp_path / "wt.yaml").write_text(yaml.safe_dump(template))
    result = CliRunner().invoke(main, ["lint", str(tmp_path), "--json"])
    assert result.exit_code == 1
    findings = [f for f in json.loads(result.stdout)["findings"] if f["rule"] == "UP001"]
    assert findings and findings[0]["file"] == "wt.yaml"
    assert "no-such-template" in findings[0]["message"]


def test_lint_without_a_folder_renders_the_config_and_lints_it():
    for tool in VALIDATORS:
        require_binary(tool)
    result = CliRunner().invoke(main, ["lint", "--example", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["findings"], report["notes"]) == ([], [])
