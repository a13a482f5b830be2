"""The PrometheusRule's alerts under `promtool test rules` (promtool built by `make tools`):
each alert fires on the series that mean trouble and stays quiet on the healthy ones.

The rules are the rendered ones (argo_delivery/monitoring.py, every monitoring setting on);
the annotations are left out of the unit tests (promtool would compare their expanded text)
and checked by `promtool check rules` on the whole rendered rule file instead.
"""

from __future__ import annotations

import copy
import subprocess

import pytest
import yaml

from argo_delivery.bundle import build_bundle
from argo_delivery.config import default_config_text, parse_config
from tests.support import require_binary

NS = "argo-delivery"
P = "core-team"
LAST = "argo_workflows_delivery_workflow_last_run_timestamp_seconds"
RUNS = "argo_workflows_delivery_workflow_runs_total"


def _rule_file():
    data = yaml.safe_load(default_config_text())
    data["monitoring"] = {"prometheusRule": True, "podMonitors": True}
    bundle = build_bundle(parse_config(yaml.safe_dump(data), "monitoring.yaml"))
    rule = yaml.safe_load(bundle.files[f"namespaces/{NS}/prometheusrule/argo-delivery-alerts.yaml"])
    return rule["spec"]


SPEC = _rule_file()
RULES = SPEC["groups"][0]["rules"]


def _names(alert: str, label: str) -> list[str]:
    return [r["labels"][label] for r in RULES if r["alert"] == alert]


def _promtool(tmp_path, tests, *, annotations=False):
    promtool = require_binary("promtool")
    spec = copy.deepcopy(SPEC)
    if not annotations:
        for rule in spec["groups"][0]["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(spec))
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump({
        "rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}))
    done = subprocess.run([str(promtool), "test", "rules", "tests.yaml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def _test(series, alert, eval_time, expected, interval="1m"):
    return {"interval": interval,
            "input_series": [{"series": s, "values": v} for s, v in series],
            "alert_rule_test": [{"eval_time": eval_time, "alertname": alert,
                                 "exp_alerts": [{"exp_labels": labels} for labels in expected]}]}


def _last(flow, status):
    return f'{LAST}{{project="{P}", flow="{flow}", status="{status}"}}'


def test_the_rendered_rules_pass_promtool_check(tmp_path):
    promtool = require_binary("promtool")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(SPEC))
    done = subprocess.run([str(promtool), "check", "rules", "rules.yaml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert {r["alert"] for r in RULES} == {
        "ArgoDeliveryFlowFailing", "ArgoDeliveryPushWithoutVersion",
        "ArgoDeliveryEnvironmentStuck", "ArgoDeliveryEnvironmentExpired",
        "ArgoDeliveryReaperFailing", "ArgoDeliveryReaperSilent",
        "ArgoDeliveryWorkflowControllerNotScraped", "ArgoDeliveryEventSourceNotRunning",
        "ArgoDeliverySensorNotRunning"}


def test_annotations_expand(tmp_path):
    failing = f'{RUNS}{{project="{P}", flow="run-stream", status="Failed"}}'
    _promtool(tmp_path, [{
        # 4 more failures in 4 minutes; increase() extrapolates to the window's edges: about 5
        "interval": "1m", "input_series": [{"series": failing, "values": "1 2 3 4 5"}],
        "alert_rule_test": [{"eval_time": "4m", "alertname": "ArgoDeliveryFlowFailing",
                             "exp_alerts": [{
                                 "exp_labels": {"severity": "warning", "project": P,
                                                "flow": "run-stream"},
                                 "exp_annotations": {
                                     "summary": f"run-stream of project {P} failed about 5 times",
                                     "description": next(
                                         r["annotations"]["description"] for r in RULES
                                         if r["alert"] == "ArgoDeliveryFlowFailing").replace(
                                         "{{ $labels.flow }}", "run-stream").replace(
                                         "{{ $labels.project }}", P)}}]}]}],
        annotations=True)


def test_a_flow_failing_counts_a_series_born_in_the_window(tmp_path):
    """The controller creates a failure counter at the first failure since it started (value
    1): that first failure counts, which increase() alone would miss; an old series counts only
    what it rose within the window."""
    born = f'{RUNS}{{project="{P}", flow="generate-version", status="Failed"}}'
    old = f'{RUNS}{{project="{P}", flow="run-stream", status="Error"}}'
    _promtool(tmp_path, [
        _test([(born, "_ _ 1 2 3 3 3")], "ArgoDeliveryFlowFailing", "6m",
              [{"severity": "warning", "project": P, "flow": "generate-version"}]),
        _test([(born, "_ _ 1 2 2 2 2")], "ArgoDeliveryFlowFailing", "6m", []),
        # ten failures two hours ago, two in the last hour: under the threshold of 3
        _test([(old, "10x120 11 12")], "ArgoDeliveryFlowFailing", "122m", []),
        _test([(old, "10x120 11 12 13")], "ArgoDeliveryFlowFailing", "123m",
              [{"severity": "warning", "project": P, "flow": "run-stream"}]),
    ])


CASES = {
    # three failures of one flow within the hour; one failure, or failures of Succeeded, no
    "ArgoDeliveryFlowFailing": (
        [(f'{RUNS}{{project="{P}", flow="run-stream", status="Failed"}}', "1 1 2 3 4 4")],
        "5m", [{"severity": "warning", "project": P, "flow": "run-stream"}],
        [(f'{RUNS}{{project="{P}", flow="run-stream", status="Failed"}}', "1 1 2 2 2 2"),
         (f'{RUNS}{{project="{P}", flow="run-stream", status="Succeeded"}}', "1 2 3 4 5 6")]),
    # the newest push (created at 60s) failed, the last success is older, 40 minutes on
    "ArgoDeliveryPushWithoutVersion": (
        [(_last("generate-version", "Failed"), "60x60"),
         (_last("generate-version", "Succeeded"), "0x60")],
        "40m", [{"severity": "critical", "project": P}],
        [(_last("generate-version", "Failed"), "60x60"),
         (_last("generate-version", "Succeeded"), "120x60")]),
    "ArgoDeliveryEnvironmentStuck": (
        [(f'argo_workflows_delivery_environment_oldest_phase_age_seconds{{project="{P}", '
          f'phase="Destroying"}}', "8000x10")],
        "5m", [{"severity": "warning", "project": P, "phase": "Destroying"}],
        [(f'argo_workflows_delivery_environment_oldest_phase_age_seconds{{project="{P}", '
          f'phase="Destroying"}}', "100x10"),
         (f'argo_workflows_delivery_environment_oldest_phase_age_seconds{{project="{P}", '
          f'phase="Ready"}}', "99999x10")]),
    "ArgoDeliveryEnvironmentExpired": (
        [(f'argo_workflows_delivery_environment_overdue_seconds{{project="{P}"}}', "4000x10")],
        "5m", [{"severity": "warning", "project": P}],
        [(f'argo_workflows_delivery_environment_overdue_seconds{{project="{P}"}}', "0x10")]),
    "ArgoDeliveryReaperFailing": (
        [(_last("reap-environments", "Failed"), "200x10"),
         (_last("reap-environments", "Succeeded"), "100x10")],
        "5m", [{"severity": "warning", "project": P}],
        [(_last("reap-environments", "Failed"), "200x10"),
         (_last("reap-environments", "Succeeded"), "300x10")]),
    # the last success was at 0; 3 hours later the reaper is silent (threshold 2h); a reaper
    # that succeeds every 15 minutes is not
    "ArgoDeliveryReaperSilent": (
        [(_last("reap-environments", "Succeeded"), "0x200")],
        "3h", [{"severity": "warning", "project": P}],
        [(_last("reap-environments", "Succeeded"), "0+60x200")]),
    "ArgoDeliveryWorkflowControllerNotScraped": (
        [(f'up{{job="{NS}/argo-delivery-workflow-controller"}}', "0x20")],
        "15m", [{"severity": "critical"}],
        [(f'up{{job="{NS}/argo-delivery-workflow-controller"}}', "1x20")]),
}


@pytest.mark.parametrize("alert", sorted(CASES))
def test_alert_fires_and_stays_quiet(tmp_path, alert):
    trouble, when, expected, healthy = CASES[alert]
    _promtool(tmp_path, [_test(trouble, alert, when, expected),
                         _test(healthy, alert, when, [])])


@pytest.mark.parametrize("kind, label", [("EventSource", "eventsource"), ("Sensor", "sensor")])
def test_an_event_pod_not_running_fires_for_that_one(tmp_path, kind, label):
    alert = f"ArgoDelivery{kind}NotRunning"
    names = _names(alert, label)
    assert len(names) >= 3
    down = names[0]

    def up(name, values):
        return (f'up{{job="{NS}/argo-delivery-events", namespace="{NS}", {label}="{name}"}}',
                values)
    trouble = [up(down, "0x10"), *(up(n, "1x10") for n in names[1:])]
    healthy = [up(n, "1x10") for n in names]
    # a pod that is gone altogether: no series at all
    gone = [up(n, "1x10") for n in names[1:]]
    expected = [{"severity": "critical", label: down}]
    _promtool(tmp_path, [_test(trouble, alert, "8m", expected), _test(gone, alert, "8m", expected),
                         _test(healthy, alert, "8m", [])])
