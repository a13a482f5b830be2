"""Metrics and alerts for real: the workflow controller's metrics (on, https, as upstream ships
it) scraped all session by a real Prometheus on the host (tests/e2e/cluster.py
`start_prometheus`, built by `make tools`), with the bundle's own PrometheusRule loaded.

A push -> a Version -> its alpha suites: our custom metrics rise by exactly what ran, with the
documented labels only. A push whose repository is gone -> generate-version fails -> the
matching alerts fire in the live rule evaluation, and in `promtool test rules` fed with the
same scraped samples; the alerts of what did not fail stay quiet. Every query of the Grafana
dashboard returns data.

Named to run last: by then every earlier module's flows have been measured too, and the
label check covers whatever they emitted (each test here also stands alone).
"""

from __future__ import annotations

import re
import subprocess
import time

import pytest
import yaml

from argo_delivery.bundle import build_bundle
from argo_delivery.config import default_config_text, parse_config
from argo_delivery.dashboard import panel_queries
from argo_delivery.metrics import METRICS, PREFIX, exposed
from tests.e2e.test_environments import reap_now
from tests.e2e.test_push_to_version import (
    CORE,
    PARTNER,
    deliver,
    install,
    payload,
    push_with_the_repository_gone,
    served,  # noqa: F401 (a fixture)
    sign,
    versions,
    workflows,
)
from tests.e2e.test_reliability import _epoch
from tests.e2e.test_streams import _edit, wait_stream
from tests.gitrepos import push_commit
from tests.support import require_binary

pytestmark = pytest.mark.e2e

RUNS = exposed("delivery_workflow_runs_total")
LAST = exposed("delivery_workflow_last_run_timestamp_seconds")
# What Prometheus adds to every scraped series; `le` is a histogram bucket's bound.
SCRAPE_LABELS = {"__name__", "job", "instance"}
# Alerts read from the `up` of pods this host Prometheus does not scrape (it has no Kubernetes
# service discovery): not loaded here; their promtool tests are in tests/monitoring.
POD_ALERTS = ("ArgoDeliveryEventSourceNotRunning", "ArgoDeliverySensorNotRunning")
MONITORING = {"prometheusRule": True, "podMonitors": True, "failures": 1,
              "failureWindow": "1h", "versionWithin": "20s"}


def _config():
    data = yaml.safe_load(default_config_text())
    data["monitoring"] = MONITORING
    return parse_config(yaml.safe_dump(data), "monitoring.yaml")


CONFIG = _config()
PROJECT = {p.namespace: p.name for p in CONFIG.projects}


@pytest.fixture(scope="module")
def rules(cluster):
    """The bundle's PrometheusRule (thresholds lowered for the test), loaded into the session's
    Prometheus."""
    [rule] = [r for r in build_bundle(CONFIG).resources if r["kind"] == "PrometheusRule"]
    spec = rule["spec"]
    for group in spec["groups"]:
        group["rules"] = [r for r in group["rules"] if r["alert"] not in POD_ALERTS]
    cluster.load_rules("argo-delivery", spec)
    return spec


@pytest.fixture(scope="module")
def platform(cluster, events_controller, served, tmp_path_factory):  # noqa: F811
    return install(cluster, served, tmp_path_factory, edit=_edit)


def value(cluster, expr: str) -> float:
    """The one value of an instant query; 0 when it has no result (a series not born yet)."""
    result = cluster.prometheus_query(expr)
    assert len(result) <= 1, result
    return float(result[0]["value"][1]) if result else 0.0


def test_a_push_and_its_alpha_run_are_measured(cluster, rules, platform, served):  # noqa: F811
    daemon, repos = served
    project = PROJECT[CORE]
    counted = {
        "created": f'{exposed("delivery_versions_total")}{{project="{project}", result="created"}}',
        "generate": f'{RUNS}{{project="{project}", flow="generate-version", status="Succeeded"}}',
        "stream": f'{exposed("delivery_stream_runs_total")}'
                  f'{{project="{project}", stream="alpha", status="Succeeded"}}',
        "suite": f'{exposed("delivery_suite_runs_total")}'
                 f'{{project="{project}", stream="alpha", suite="quick", status="Succeeded"}}',
        "suite_seconds": f'{exposed("delivery_suite_duration_seconds")}_count'
                         f'{{project="{project}", stream="alpha", suite="quick"}}',
        "stream_seconds": f'{exposed("delivery_workflow_duration_seconds")}_count'
                          f'{{project="{project}", flow="run-stream", status="Succeeded"}}',
    }
    before = {key: value(cluster, expr) for key, expr in counted.items()}
    known = {v["metadata"]["name"] for v in versions(cluster, CORE)}
    # `web` is core-team's alone: one Version, one alpha run
    body = payload("acme-platform", "web", "main", push_commit(repos["web"], "main"))
    assert deliver(cluster, body, sign(body)) == "200"
    fresh = cluster.wait_for("the push's Version", lambda: [
        v for v in versions(cluster, CORE) if v["metadata"]["name"] not in known], 180,
        logs=["workflow-controller"])
    wait_stream(cluster, CORE, fresh[0]["metadata"]["name"], ("nightly",))

    def measured():
        now = {key: value(cluster, expr) for key, expr in counted.items()}
        return now if all(now[k] > before[k] for k in now) else None
    after = cluster.wait_for("the push and its alpha run in Prometheus", measured, 90,
                             logs=["prometheus", "workflow-controller"], interval=1)
    assert {k: after[k] - before[k] for k in after} == dict.fromkeys(after, 1.0)
    # the creation time of the run-stream Workflow that finished last (in the whole suite, an
    # earlier module's run may finish after this one's: the gauge is set at each finish)
    last = value(cluster, f'{LAST}{{project="{project}", flow="run-stream", status="Succeeded"}}')
    created = {int(_epoch(w["metadata"]["creationTimestamp"]))
               for w in workflows(cluster, CORE, "run-stream")
               if (w.get("status") or {}).get("phase") == "Succeeded"}
    assert int(last) in created, (last, sorted(created)[-5:])


def test_every_series_has_the_documented_labels(cluster, rules):
    """Whatever this session's flows emitted: each series is one of METRICS (histograms as
    _bucket/_sum/_count) with exactly its declared labels, and no value that names a commit,
    a Version or a user."""
    series = cluster.prometheus_query(f'{{__name__=~"{PREFIX}delivery_.+"}}')
    seen = set()
    for s in series:
        labels = dict(s["metric"])
        name = labels["__name__"].removeprefix(PREFIX)
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if base != name and METRICS.get(base) and METRICS[base].kind == "histogram":
            name = base
        assert name in METRICS, f"an undeclared series {labels['__name__']}"
        seen.add(name)
        extra = {"le"} if name != labels["__name__"].removeprefix(PREFIX) else set()
        assert set(labels) - SCRAPE_LABELS - extra == set(METRICS[name].labels), labels
        assert labels["job"] == cluster.PROMETHEUS_JOB
        for key, text in labels.items():
            assert not re.search(r"[0-9a-f]{12,}", text), f"{key}={text} in {labels}"
    assert {"delivery_workflow_runs_total", "delivery_workflow_duration_seconds",
            "delivery_workflow_last_run_timestamp_seconds", "delivery_versions_total",
            "delivery_stream_runs_total", "delivery_suite_runs_total",
            "delivery_suite_duration_seconds"} <= seen, sorted(seen)


def _firing(cluster, alert: str) -> list[dict[str, str]]:
    return [a["labels"] for a in cluster.prometheus_alerts()
            if a["labels"]["alertname"] == alert and a["state"] == "firing"]


def test_a_failing_flow_fires_its_alerts(cluster, rules, platform, served, tmp_path):  # noqa: F811
    """The partner's component repo disappears: its generate-version fails, and the flow's
    failure alert and the push-without-Version alert fire for that project only."""
    partner, core = PROJECT[PARTNER], PROJECT[CORE]
    start = time.time()
    push_with_the_repository_gone(cluster, served)

    failing = {"alertname": "ArgoDeliveryFlowFailing", "severity": "warning",
               "project": partner, "flow": "generate-version"}
    cluster.wait_for("ArgoDeliveryFlowFailing firing", lambda: failing in _firing(
        cluster, "ArgoDeliveryFlowFailing"), 60, logs=["prometheus"], interval=1)
    no_version = {"alertname": "ArgoDeliveryPushWithoutVersion", "severity": "critical",
                  "project": partner}
    # versionWithin is 20s: fires once the failed run is older than that
    cluster.wait_for("ArgoDeliveryPushWithoutVersion firing", lambda: no_version in _firing(
        cluster, "ArgoDeliveryPushWithoutVersion"), 90, logs=["prometheus"], interval=1)
    # quiet where nothing failed: core-team's pushes all became Versions, the controller is up
    assert not [a for a in _firing(cluster, "ArgoDeliveryFlowFailing")
                if a["project"] == core and a["flow"] == "generate-version"]
    assert not [a for a in _firing(cluster, "ArgoDeliveryPushWithoutVersion")
                if a["project"] == core]
    assert not _firing(cluster, "ArgoDeliveryWorkflowControllerNotScraped")

    # the same scraped samples fire the same alerts under `promtool test rules`
    _promtool_agrees(cluster, rules, tmp_path, start - 60, {
        "ArgoDeliveryFlowFailing": [failing], "ArgoDeliveryPushWithoutVersion": [no_version]},
        projects=(partner, core))


def _promtool_agrees(cluster, spec: dict, tmp_path, since: float, expected: dict,
                     projects: tuple[str, ...]) -> None:
    """Every sample of generate-version's run counters and last-run times the live Prometheus
    holds since `since`, replayed at the scrape interval into `promtool test rules`: the alerts
    fire exactly as `expected` (promtool's clock starts at 0, so the Unix times in the last-run
    series are moved by the same origin)."""
    promtool = require_binary("promtool")
    step = int(cluster.SCRAPE_INTERVAL.removesuffix("s"))
    names = "|".join((RUNS, LAST))
    now = f'{{__name__=~"{names}", flow="generate-version"}}'
    # the failed runs the live alerts saw, as Prometheus holds them now
    cluster.wait_for("the failed run's samples in Prometheus", lambda: [
        r for r in cluster.prometheus_query(now) if r["metric"].get("status") != "Succeeded"],
        60, logs=["prometheus"], interval=1)
    end = time.time() + step
    time.sleep(step)
    selector = (f'{{__name__=~"{names}", flow="generate-version", '
                f'project=~"{"|".join(projects)}"}}')
    data = cluster.prometheus_api("/api/v1/query_range", {
        "query": selector, "start": f"{since:.0f}", "end": f"{end:.0f}", "step": f"{step}"})
    points = int((int(end) - int(since)) // step) + 1
    series = []
    for s in data["result"]:
        labels = {k: v for k, v in s["metric"].items() if k not in ("job", "instance")}
        name = labels.pop("__name__")
        values = ["_"] * points
        for t, v in s["values"]:
            shifted = float(v) - int(since) if name == LAST else float(v)
            values[int((float(t) - int(since)) // step)] = f"{shifted:g}"
        series.append({"series": name + "{" + ", ".join(
            f'{k}="{v}"' for k, v in sorted(labels.items())) + "}",
            "values": " ".join(values)})
    assert series, f"no samples of {selector}"
    rules = {"groups": [{**g, "rules": [{k: v for k, v in r.items() if k != "annotations"}
                                         for r in g["rules"]]} for g in spec["groups"]]}
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump({
        "rule_files": ["rules.yaml"], "evaluation_interval": f"{step}s",
        "tests": [{"interval": f"{step}s", "input_series": series, "alert_rule_test": [
            {"eval_time": f"{(points - 1) * step}s", "alertname": alert,
             "exp_alerts": [{"exp_labels": {k: v for k, v in labels.items() if k != "alertname"}}
                            for labels in wanted]}
            for alert, wanted in expected.items()]}]}))
    done = subprocess.run([str(promtool), "test", "rules", "tests.yaml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr + "\nseries now:\n" + "\n".join(
        f"{r['metric']} {r['value']}" for r in cluster.prometheus_query(now))


def test_every_dashboard_panel_returns_data(cluster, rules, platform):
    """After a push, its alpha run (the first test) and a reaper run: every query of the
    Grafana dashboard (argo_delivery/dashboard.py, Grafana's variables as `panel_queries`
    replaces them) returns data from this Prometheus."""
    reap_now(cluster)   # the Environment panels read the reaper's gauges
    cluster.wait_for("the reaper's gauges in Prometheus", lambda: cluster.prometheus_query(
        exposed("delivery_environments")), 60, logs=["prometheus"], interval=1)
    if not value(cluster, f'count({exposed("delivery_suite_duration_seconds")}_count)'):
        pytest.fail("no suite has run in this session: run the module whole (its first test)")
    queries = panel_queries(CONFIG, time_range="1h")

    def all_answer():
        empty = [(title, expr) for title, expr in queries if not cluster.prometheus_query(expr)]
        return not empty or print(f"no data yet: {[t for t, _ in empty]}")
    # Environment-hours is a subquery at minute steps: it has data from the first whole
    # minute after the reaper's gauges were first scraped
    cluster.wait_for("every dashboard query answering", all_answer, 150, logs=["prometheus"],
                     interval=5)
