"""Argo's own validators (built by `make tools`) accept good manifests and reject bad ones.

The binaries wrap upstream Go code: argo-workflows v4 `argo lint --offline` and
argo-events v1.9 controller validation. Each rejection asserts the key part of
the upstream message, so a wrapper that stopped calling upstream would fail here.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from argo_delivery.upstream import (
    VALIDATORS,
    UpstreamProblem,
    UpstreamToolError,
    parse_line,
    run_validator,
    tool_path,
)

pytestmark = pytest.mark.conformance

FIXTURES = Path(__file__).parent / "fixtures"
WF = FIXTURES / "workflows"
EV = FIXTURES / "events"
# The library that templateRef / workflowTemplateRef resolve against.
COMMON_STEPS = WF / "valid" / "common-steps.workflowtemplate.yaml"


@pytest.fixture(scope="module", autouse=True)
def _binaries_built() -> None:
    missing = [name for name in VALIDATORS if tool_path(name) is None]
    if missing:
        pytest.fail(
            f"validator binaries missing: {', '.join(missing)} (expected in .cache/bin/); "
            "run `make tools` from the repository root",
            pytrace=False,
        )


def _only(problems: list[UpstreamProblem]) -> UpstreamProblem:
    assert len(problems) == 1, "\n".join(map(str, problems))
    return problems[0]


# --- argo-workflows-lint -------------------------------------------------------------


def test_valid_workflow_templates_and_cron_workflow_pass() -> None:
    # build.workflowtemplate.yaml uses templateRef into common-steps (another file),
    # nightly.cronworkflow.yaml uses workflowTemplateRef to build.
    assert run_validator("argo-workflows-lint", [WF / "valid"]) == []


def test_each_valid_file_passes_given_with_its_references() -> None:
    for f in sorted((WF / "valid").glob("*.yaml")):
        assert run_validator("argo-workflows-lint", [f, WF / "valid"]) == [], f


def test_templateref_only_resolves_against_given_files() -> None:
    # Without common-steps in the input, the offline lint cannot resolve templateRef.
    p = _only(run_validator("argo-workflows-lint", [WF / "valid" / "build.workflowtemplate.yaml"]))
    assert (p.kind, p.name) == ("WorkflowTemplate", "build")
    assert 'couldn\'t find workflow template "common-steps"' in p.message


@pytest.mark.parametrize(
    ("fixture", "name", "expected"),
    [
        (
            "undefined-input-parameter.yaml",
            "undefined-input-parameter",
            "failed to resolve {{inputs.parameters.x}}",
        ),
        (
            "missing-templateref-template.yaml",
            "missing-templateref-template",
            "template reference common-steps.nope not found",
        ),
        ("dag-cycle.yaml", "dag-cycle", "graph with cycle"),
        (
            "misspelt-field.yaml",
            "misspelt-field",
            'strict decoding error: unknown field "spec.templates[0].containr"',
        ),
    ],
)
def test_invalid_workflow_template_is_rejected(fixture: str, name: str, expected: str) -> None:
    path = WF / "invalid" / fixture
    p = _only(run_validator("argo-workflows-lint", [path, COMMON_STEPS]))
    assert p.tool == "argo-workflows-lint"
    assert Path(p.file) == path
    assert (p.kind, p.name) == ("WorkflowTemplate", name)
    assert expected in p.message


def test_all_invalid_workflow_fixtures_reported_together() -> None:
    problems = run_validator("argo-workflows-lint", [WF / "invalid", COMMON_STEPS])
    assert sorted(p.name for p in problems) == sorted(
        f.stem for f in (WF / "invalid").glob("*.yaml")
    )


def test_invalid_cron_schedule_is_rejected(tmp_path: Path) -> None:
    cron = tmp_path / "cron.yaml"
    cron.write_text(
        (WF / "valid" / "nightly.cronworkflow.yaml").read_text().replace('"0 3 * * *"', '"0 3 * *"')
    )
    p = _only(run_validator("argo-workflows-lint", [cron, WF / "valid"]))
    assert (p.kind, p.name) == ("CronWorkflow", "nightly-build")
    assert "cron schedule 0 3 * * is malformed" in p.message


def test_wrong_type_is_rejected_and_other_files_still_resolve(tmp_path: Path) -> None:
    # A file upstream's lenient parse rejects must not stop templateRef resolution elsewhere.
    bad = tmp_path / "bad.yaml"
    text = (WF / "invalid" / "dag-cycle.yaml").read_text()
    bad.write_text(text.replace("entrypoint: main", "entrypoint: [main]"))
    problems = run_validator("argo-workflows-lint", [bad, WF / "valid"])
    p = _only(problems)
    assert (p.file, p.name) == (str(bad), "dag-cycle")
    assert "cannot unmarshal array" in p.message


def test_unnamed_objects_are_numbered(tmp_path: Path) -> None:
    wf = tmp_path / "wf.yaml"
    wf.write_text(
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {generateName: ok-}\n"
        "spec:\n  entrypoint: main\n  templates:\n  - name: main\n    container: {image: a}\n"
        "---\napiVersion: argoproj.io/v1alpha1\nkind: Workflow\n"
        "spec:\n  entrypoint: nope\n  templates:\n  - name: main\n    container: {image: a}\n"
    )
    p = _only(run_validator("argo-workflows-lint", [wf]))
    assert (p.kind, p.name) == ("Workflow", "object #2")
    assert "template name 'nope' undefined" in p.message


def test_workflows_lint_reports_broken_yaml(tmp_path: Path) -> None:
    # Upstream's parser only logs a document that is not YAML; the tool reports it.
    bad = tmp_path / "broken.yaml"
    bad.write_text("kind: WorkflowTemplate\nmetadata: {name: x\n")
    p = _only(run_validator("argo-workflows-lint", [bad]))
    assert "invalid YAML" in p.message


# --- argo-events-lint ----------------------------------------------------------------


def test_valid_sensor_and_webhook_eventsource_pass() -> None:
    assert run_validator("argo-events-lint", [EV / "valid"]) == []


@pytest.mark.parametrize(
    ("fixture", "kind", "name", "expected"),
    [
        (
            # translated by the sensor's own start-up code (expr): unknown name
            "sensor-conditions-unknown-dependency.yaml",
            "Sensor",
            "conditions-unknown-dependency",
            "unknown name tag",
        ),
        (
            "sensor-parameter-unknown-dependency.yaml",
            "Sensor",
            "parameter-unknown-dependency",
            'dependencyName "pushh" is not a dependency',
        ),
        (
            "eventsource-unknown-field.yaml",
            "EventSource",
            "unknown-field",
            'strict decoding error: unknown field "spec.webhook.push.methods"',
        ),
        (
            # pkg/eventsources/common/webhook.ValidateWebhookContext
            "eventsource-bad-port.yaml",
            "EventSource",
            "bad-port",
            "failed to parse server port http",
        ),
    ],
)
def test_invalid_events_object_is_rejected(
    fixture: str, kind: str, name: str, expected: str
) -> None:
    path = EV / "invalid" / fixture
    p = _only(run_validator("argo-events-lint", [path]))
    assert p.tool == "argo-events-lint"
    assert Path(p.file) == path
    assert (p.kind, p.name) == (kind, name)
    assert expected in p.message


def test_sensor_validation_is_upstreams(tmp_path: Path) -> None:
    # reconciler/sensor.ValidateSensor: a trigger without a name, no dependencies.
    bad = tmp_path / "sensor.yaml"
    bad.write_text(
        "apiVersion: argoproj.io/v1alpha1\nkind: Sensor\nmetadata: {name: s}\n"
        "spec:\n  dependencies: []\n  triggers: []\n"
    )
    p = _only(run_validator("argo-events-lint", [bad]))
    assert p.message == "no event dependencies found"


def test_sensor_uses_eventbus_from_given_files(tmp_path: Path) -> None:
    # With a NATS (STAN) EventBus, upstream forbids two dependencies on one event.
    (tmp_path / "bus.yaml").write_text(
        "apiVersion: argoproj.io/v1alpha1\nkind: EventBus\nmetadata: {name: default}\n"
        "spec:\n  nats:\n    native: {}\n"
    )
    (tmp_path / "sensor.yaml").write_text(
        (EV / "valid" / "build-on-push.sensor.yaml")
        .read_text()
        .replace(
            "  triggers:\n",
            "    - name: push-again\n      eventSourceName: git-push\n"
            "      eventName: push\n  triggers:\n",
        )
    )
    p = _only(run_validator("argo-events-lint", [tmp_path]))
    assert "is referenced for more than one dependency" in p.message
    # The same Sensor is fine on the default JetStream bus.
    assert run_validator("argo-events-lint", [tmp_path / "sensor.yaml"]) == []


# --- both tools: interface -----------------------------------------------------------


@pytest.mark.parametrize("tool", VALIDATORS)
def test_usage_errors_exit_2(tool: str, tmp_path: Path) -> None:
    exe = str(tool_path(tool))
    assert subprocess.run([exe], capture_output=True).returncode == 2
    missing = subprocess.run([exe, str(tmp_path / "nope.yaml")], capture_output=True, text=True)
    assert missing.returncode == 2
    assert "nope.yaml" in missing.stderr
    with pytest.raises(UpstreamToolError, match="exited with 2"):
        run_validator(tool, [tmp_path / "nope.yaml"])


@pytest.mark.parametrize("tool", VALIDATORS)
def test_other_kinds_are_ignored_and_stdout_is_clean(tool: str, tmp_path: Path) -> None:
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    proc = subprocess.run([str(tool_path(tool)), str(tmp_path)], capture_output=True, text=True)
    assert (proc.returncode, proc.stdout) == (0, "")


def test_missing_binary_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARGO_DELIVERY_BIN", str(tmp_path))
    assert tool_path("argo-workflows-lint") is None
    with pytest.raises(UpstreamToolError, match="make tools"):
        run_validator("argo-workflows-lint", [COMMON_STEPS])


def test_unparsable_line_becomes_unknown_problem() -> None:
    p = parse_line("argo-events-lint", "something odd")
    assert (p.kind, p.name, p.message) == ("?", "?", "something odd")
    p = parse_line("argo-workflows-lint", 'a.yaml: WorkflowTemplate/object #1: x: "y"')
    assert (p.file, p.kind, p.name) == ("a.yaml", "WorkflowTemplate", "object #1")
    assert p.message == 'x: "y"'
