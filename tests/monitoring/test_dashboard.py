"""The Grafana dashboard (argo_delivery/dashboard.py): its queries under promtool (built by
`make tools`) and its JSON as Grafana reads it.

Every panel's query, as `panel_queries` gives it for a plain Prometheus, is a recording rule
that `promtool check rules` parses, and a `promql_expr_test` of `promtool test rules` that
gives the expected value on synthetic series: counters growing at a steady rate, so that
`increase()`'s extrapolation to the window's edges is exact.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml

from argo_delivery.config import load_default
from argo_delivery.dashboard import ALL_PROJECTS, DASHBOARD_KEY, dashboard, dashboard_configmap, panel_queries
from argo_delivery.metrics import METRICS, exposed
from tests.support import require_binary

CONFIG = load_default()
QUERIES = dict(panel_queries(CONFIG))
BOARD = dashboard(CONFIG)
PANELS = [p for p in BOARD["panels"] if p["type"] != "row"]
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def _promtool(tmp_path, *args):
    promtool = require_binary("promtool")
    done = subprocess.run([str(promtool), *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _recording_rules() -> dict:
    return {"groups": [{"name": "argo-delivery-dashboard", "rules": [
        {"record": f"argo_delivery_dashboard:query_{index}", "expr": expr}
        for index, (_, expr) in enumerate(panel_queries(CONFIG))]}]}


def test_every_panel_query_parses(tmp_path):
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(_recording_rules()))
    out = _promtool(tmp_path, "check", "rules", "rules.yaml")
    assert f"{len(QUERIES)} rules found" in out


def test_the_panels_the_issue_asks_for():
    assert list(QUERIES) == [
        "Versions per day per project", "Failures by flow", "Stream pass rate",
        "Stream duration (p95)", "Stream duration (mean)", "Slowest suites",
        "Environments by project and phase", "Oldest Environment per phase",
        "Environment-hours", "Most overdue Environment", "Reaper actions"]
    assert len(panel_queries(CONFIG)) == len(QUERIES)   # titles are unique


# --- values: (panel query title) -> (input series, expected samples at EVAL) ----------------

P, Q, LATE = "core-team", "partner", "late-team"
EVAL = "2d"    # every window (at most 1d) lies inside the input series
EVAL_MINUTE = 2 * 24 * 60
STEADY = 3000  # samples, one a minute: 50 hours


def _c(name, labels, per_minute, suffix=""):
    """A counter (or a histogram's part) growing by `per_minute` every minute."""
    selector = ", ".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{exposed(name)}{suffix}{{{selector}}}",
            "values": f"0+{per_minute}x{STEADY}"}


def _born(name, labels, value, at_minute):
    """A counter the controller creates at `at_minute` (its first event since it started) with
    `value`, unchanged since."""
    selector = ", ".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{exposed(name)}{{{selector}}}",
            "values": f"_x{at_minute} {value}x{STEADY - at_minute}"}


def _g(name, labels, value):
    """A gauge holding `value`."""
    selector = ", ".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{exposed(name)}{{{selector}}}", "values": f"{value}x{STEADY}"}


def _labels(**labels) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


RUNS = "delivery_workflow_runs_total"
STREAM = "delivery_stream_runs_total"
DURATION = "delivery_workflow_duration_seconds"
SUITE = "delivery_suite_duration_seconds"
ENVS = "delivery_environments"

CASES = {
    # a Version a minute in core-team, two in partner; "exists" is not a new Version
    "Versions per day per project": (
        [_c("delivery_versions_total", {"project": P, "result": "created"}, 1),
         _c("delivery_versions_total", {"project": P, "result": "exists"}, 7),
         _c("delivery_versions_total", {"project": Q, "result": "created"}, 2),
         _born("delivery_versions_total", {"project": LATE, "result": "created"}, 1,
               EVAL_MINUTE - 12 * 60)],
        [(_labels(project=P), 1440), (_labels(project=Q), 2880), (_labels(project=LATE), 1)]),
    # per hour: run-stream fails once and errs once a minute; release ran and never failed: 0;
    # export-release's first failure since the controller started, 10 minutes ago: 1
    "Failures by flow": (
        [_born(RUNS, {"project": P, "flow": "export-release", "status": "Failed"}, 1,
               EVAL_MINUTE - 10),
         _c(RUNS, {"project": P, "flow": "run-stream", "status": "Failed"}, 1),
         _c(RUNS, {"project": Q, "flow": "run-stream", "status": "Error"}, 1),
         _c(RUNS, {"project": P, "flow": "run-stream", "status": "Succeeded"}, 5),
         _c(RUNS, {"project": P, "flow": "release", "status": "Succeeded"}, 1)],
        [(_labels(flow="run-stream"), 120), (_labels(flow="release"), 0),
         (_labels(flow="export-release"), 1)]),
    # 3 of 4 alpha runs pass; nightly only fails (no Succeeded series at all): 0, not nothing;
    # late-team's one alpha run (the first since the controller started) passed: 1
    "Stream pass rate": (
        [_c(STREAM, {"project": P, "stream": "alpha", "status": "Succeeded"}, 3),
         _c(STREAM, {"project": P, "stream": "alpha", "status": "Failed"}, 1),
         _c(STREAM, {"project": P, "stream": "nightly", "status": "Failed"}, 1),
         _c(STREAM, {"project": Q, "stream": "alpha", "status": "Succeeded"}, 1),
         _born(STREAM, {"project": LATE, "stream": "alpha", "status": "Succeeded"}, 1,
               EVAL_MINUTE - 60)],
        [(_labels(project=P, stream="alpha"), 0.75), (_labels(project=P, stream="nightly"), 0),
         (_labels(project=Q, stream="alpha"), 1), (_labels(project=LATE, stream="alpha"), 1)]),
    # every run-stream run takes 200 s, in the (60, 300] bucket; release is not a stream
    "Stream duration (p95)": (
        [_c(DURATION, {"project": P, "flow": "run-stream", "status": "Succeeded", "le": "60"}, 0,
            "_bucket"),
         _c(DURATION, {"project": P, "flow": "run-stream", "status": "Succeeded", "le": "300"}, 1,
            "_bucket"),
         _c(DURATION, {"project": P, "flow": "run-stream", "status": "Succeeded", "le": "+Inf"}, 1,
            "_bucket"),
         _c(DURATION, {"project": P, "flow": "release", "status": "Succeeded", "le": "+Inf"}, 1,
            "_bucket")],
        [(_labels(project=P), 60 + 240 * 0.95)]),
    "Stream duration (mean)": (
        [_c(DURATION, {"project": P, "flow": "run-stream", "status": "Succeeded"}, 200, "_sum"),
         _c(DURATION, {"project": P, "flow": "run-stream", "status": "Succeeded"}, 1, "_count"),
         _c(DURATION, {"project": P, "flow": "release", "status": "Succeeded"}, 9000, "_sum"),
         _c(DURATION, {"project": P, "flow": "release", "status": "Succeeded"}, 1, "_count")],
        [(_labels(project=P), 200)]),
    "Slowest suites": (
        [_c(SUITE, {"project": P, "stream": "alpha", "suite": "e2e"}, 512, "_sum"),
         _c(SUITE, {"project": P, "stream": "alpha", "suite": "e2e"}, 1, "_count"),
         _c(SUITE, {"project": P, "stream": "alpha", "suite": "lint"}, 32, "_sum"),
         _c(SUITE, {"project": P, "stream": "alpha", "suite": "lint"}, 1, "_count")],
        [(_labels(project=P, stream="alpha", suite="e2e"), 512),
         (_labels(project=P, stream="alpha", suite="lint"), 32)]),
    "Environments by project and phase": (
        [_g(ENVS, {"project": P, "phase": "Ready"}, 2), _g(ENVS, {"project": P, "phase": "none"}, 1),
         _g(ENVS, {"project": Q, "phase": "Ready"}, 0)],
        [(_labels(project=P, phase="Ready"), 2), (_labels(project=P, phase="none"), 1),
         (_labels(project=Q, phase="Ready"), 0)]),
    "Oldest Environment per phase": (
        [_g("delivery_environment_oldest_phase_age_seconds", {"project": P, "phase": "Ready"}, 100),
         _g("delivery_environment_oldest_phase_age_seconds",
            {"project": P, "phase": "Provisioning"}, 7200)],
        [(_labels(project=P, phase="Ready"), 100), (_labels(project=P, phase="Provisioning"), 7200)]),
    # three Environments (every phase counts) for the whole day: 72 hours; none: 0
    "Environment-hours": (
        [_g(ENVS, {"project": P, "phase": "Ready"}, 2), _g(ENVS, {"project": P, "phase": "none"}, 1),
         _g(ENVS, {"project": Q, "phase": "Ready"}, 0)],
        [(_labels(project=P), 72), (_labels(project=Q), 0)]),
    "Most overdue Environment": (
        [_g("delivery_environment_overdue_seconds", {"project": P}, 0),
         _g("delivery_environment_overdue_seconds", {"project": Q}, 3600)],
        [(_labels(project=P), 0), (_labels(project=Q), 3600)]),
    # per hour: 2 + 1 deletions a minute; warned series exist but never grow: 0; a reaper
    # whose first run since the controller started (30 minutes ago) retried 3 vends: 3
    "Reaper actions": (
        [_c("delivery_reaper_actions_total", {"project": P, "action": "deleted"}, 2),
         _c("delivery_reaper_actions_total", {"project": Q, "action": "deleted"}, 1),
         _c("delivery_reaper_actions_total", {"project": P, "action": "warned"}, 0),
         _born("delivery_reaper_actions_total", {"project": LATE, "action": "retried_vend"}, 3,
               EVAL_MINUTE - 30)],
        [(_labels(action="deleted"), 180), (_labels(action="warned"), 0),
         (_labels(action="retried_vend"), 3)]),
}


def test_every_panel_has_a_value_test():
    assert set(CASES) == set(QUERIES)


def _expr_tests(cases) -> list[dict]:
    return [{"interval": "1m", "input_series": series,
             "promql_expr_test": [{"expr": expr, "eval_time": EVAL, "exp_samples": [
                 {"labels": labels, "value": value} for labels, value in expected]}]}
            for expr, (series, expected) in cases]


def test_each_panel_query_gives_the_expected_value(tmp_path):
    # the queries themselves, not as rules: promtool would evaluate every rule each minute
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump({
        "rule_files": [], "evaluation_interval": "1m",
        "tests": _expr_tests((QUERIES[title], case) for title, case in CASES.items())}))
    _promtool(tmp_path, "test", "rules", "tests.yaml")


def test_the_project_variable_selects(tmp_path):
    """With one project chosen in Grafana ($project = core-team), the other is left out."""
    title = "Versions per day per project"
    target = next(p for p in PANELS if p["title"] == title)["targets"][0]
    expr = target["expr"].replace("$project", P).replace("$__interval", "1d")
    series, _ = CASES[title]
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump({
        "rule_files": [], "evaluation_interval": "1m",
        "tests": _expr_tests([(expr, (series, [(_labels(project=P), 1440)]))])}))
    _promtool(tmp_path, "test", "rules", "tests.yaml")


# --- the queries only read our metrics ------------------------------------------------------

SERIES_NAME = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\{")


def _allowed_series() -> set[str]:
    allowed = set()
    for name, metric in METRICS.items():
        if metric.kind == "histogram":
            allowed |= {exposed(name) + suffix for suffix in HISTOGRAM_SUFFIXES}
        else:
            allowed.add(exposed(name))
    return allowed


def test_every_query_reads_only_metrics_of_the_table():
    allowed = _allowed_series()
    for title, expr in QUERIES.items():
        names = SERIES_NAME.findall(expr)
        assert names, title
        assert set(names) <= allowed, (title, set(names) - allowed)
        # every series name in the text is one of a selector (no bare name slipped through)
        assert len(re.findall(r"argo_workflows_\w+", expr)) == len(names), title
    variable = BOARD["templating"]["list"][1]["query"]
    assert re.fullmatch(r"label_values\((\w+), project\)", variable)[1] in allowed


def test_a_name_outside_the_table_would_be_caught():
    assert SERIES_NAME.findall('sum(argo_workflows_made_up_total{project=~".*"})') == [
        "argo_workflows_made_up_total"]
    assert "argo_workflows_made_up_total" not in _allowed_series()


def test_labels_used_are_declared():
    """Every label a query groups by or matches on is one the metric declares (or `le`)."""
    for title, expr in QUERIES.items():
        for name, selector in re.findall(r"(argo_workflows_\w+)\{([^}]*)\}", expr):
            base = next(n for n in METRICS if exposed(n) == name or any(
                exposed(n) + s == name for s in HISTOGRAM_SUFFIXES))
            keys = set(re.findall(r"(\w+)\s*[=!]~?", selector))
            assert keys <= set(METRICS[base].labels), (title, keys)
        for group in re.findall(r"by \(([^)]*)\)", expr):
            assert {g.strip() for g in group.split(",")} <= {
                "project", "flow", "status", "stream", "suite", "action", "phase", "le"}, title


# --- panel_queries: the contract for a plain Prometheus -------------------------------------

def test_panel_queries_leave_no_grafana_variable():
    for title, expr in QUERIES.items():
        assert "$" not in expr, title


def test_panel_queries_substitute_as_documented():
    by_title = {p["title"]: p for p in PANELS}
    for title, expr in panel_queries(CONFIG, time_range="6h"):
        panel = by_title[title.split(" (")[0]]
        target = next(t for t in panel["targets"] if t["expr"].replace(
            '"$project"', f'"{ALL_PROJECTS}"').replace("$__interval", panel.get("interval", "1m"))
            .replace("$__range", "6h") == expr)
        assert target["refId"]
    assert "[6h]" in dict(panel_queries(CONFIG, time_range="6h"))["Stream pass rate"]
    assert "[1d]" in QUERIES["Versions per day per project"]      # the panel's interval
    assert "[1h]" in QUERIES["Reaper actions"]
    assert "[1d:60s]" in QUERIES["Environment-hours"]


# --- the JSON Grafana reads ------------------------------------------------------------------

def test_the_json_is_grafanas_classic_model():
    text = dashboard_configmap(CONFIG)["data"][DASHBOARD_KEY]
    assert json.loads(text) == BOARD
    assert BOARD["uid"] == "argo-delivery" and len(BOARD["uid"]) <= 40
    assert isinstance(BOARD["schemaVersion"], int) and BOARD["schemaVersion"] >= 39
    ids = [p["id"] for p in BOARD["panels"]]
    assert len(ids) == len(set(ids))
    assert [p["title"] for p in BOARD["panels"] if p["type"] == "row"] == [
        "Versions and test streams", "Environments"]


def test_panels_tile_the_grid_without_overlap():
    taken = set()
    for panel in BOARD["panels"]:
        grid = panel["gridPos"]
        assert set(grid) == {"h", "w", "x", "y"}, panel["title"]
        assert grid["w"] > 0 and grid["h"] > 0 and 0 <= grid["x"] and grid["x"] + grid["w"] <= 24
        cells = {(grid["x"] + dx, grid["y"] + dy) for dx in range(grid["w"]) for dy in range(grid["h"])}
        assert not cells & taken, panel["title"]
        taken |= cells


def test_every_target_has_an_expression_a_ref_id_and_the_datasource_variable():
    datasource = {"type": "prometheus", "uid": "${datasource}"}
    for panel in PANELS:
        assert panel["type"] in ("timeseries", "bargauge"), panel["title"]
        assert panel["datasource"] == datasource
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)) and all(refs)
        for target in panel["targets"]:
            assert target["expr"].strip() and target["datasource"] == datasource
            assert target["instant"] != target["range"]
            assert '"$project"' in target["expr"]
        assert panel["fieldConfig"]["defaults"]["unit"]


def test_the_variables():
    variables = {v["name"]: v for v in BOARD["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    project = variables["project"]
    assert project["type"] == "query"
    assert project["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert project["query"] == f"label_values({exposed('delivery_workflow_runs_total')}, project)"
    assert project["multi"] and project["includeAll"] and project["allValue"] == ALL_PROJECTS


@pytest.mark.parametrize("panel", PANELS, ids=[p["title"] for p in PANELS])
def test_count_panels_use_whole_intervals(panel):
    """A panel that counts per `$__interval` has a minimum interval, so each bar is one."""
    if any("$__interval" in t["expr"] for t in panel["targets"]):
        assert panel["interval"] in ("1h", "1d")
