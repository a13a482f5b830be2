"""The Grafana dashboard: the pipeline at a glance, from our custom metrics alone.

Optional by config (`monitoring.dashboard.enabled`): ConfigMap `argo-delivery-dashboard`
(namespace `monitoring.dashboard.namespace`, default the orchestrator's) holds the dashboard's
JSON under key `argo-delivery.json`, labelled `grafana_dashboard: "1"` (or
`monitoring.dashboard.labels`) for the Grafana chart's dashboard sidecar. It needs no
prometheus-operator, so it is a capability of its own rather than part of monitoring.py.

Every query is built here from `metrics.exposed(...)` names of the METRICS table and the
dashboard's two variables: `$datasource` (a Prometheus data source) and `$project` (multi-value,
All = `.*`). Queries count a counter's rise over whole windows (`_increase`: increase(), or
the whole value of a series born inside the window) and keep every series that exists, at
zero rather than filtered out, so each panel shows data (possibly 0) as soon as its series
are scraped.

`panel_queries(config)` gives each panel's query with the Grafana variables replaced by values
a plain Prometheus accepts, for tests that run them against one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from argo_delivery.capability import Capability
from argo_delivery.config import PlatformConfig
from argo_delivery.metrics import METRICS, exposed

__all__ = ["CAPABILITY", "CONFIGMAP", "DASHBOARD_KEY", "DASHBOARD_UID", "Panel", "Target",
           "dashboard", "dashboard_configmap", "dashboard_json", "dashboard_resources",
           "panel_queries", "panels"]

CONFIGMAP = "argo-delivery-dashboard"
DASHBOARD_KEY = "argo-delivery.json"
DASHBOARD_UID = "argo-delivery"
# Grafana 12's classic dashboard model; a newer Grafana migrates it on load.
SCHEMA_VERSION = 41
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
PROJECT = 'project=~"$project"'
FAILED = 'status=~"Failed|Error"'
SUCCEEDED = 'status="Succeeded"'
CREATED = 'result="created"'
# Environment-hours: the number of Environments sampled every ENV_SAMPLE, each sample worth
# ENV_SAMPLE of one Environment's time.
ENV_SAMPLE_SECONDS = 60
GRID_WIDTH = 24

# What panel_queries puts for the dashboard's variables: `$project` as the All value;
# `$__interval` is each panel's minimum interval (Grafana's value at any range up to
# maxDataPoints x that interval); `$__range` a fixed window.
ALL_PROJECTS = ".*"
DEFAULT_RANGE = "1d"


@dataclass(frozen=True)
class Target:
    """One query of a panel: PromQL with Grafana variables, and how its series are named."""

    expr: str
    legend: str
    name: str = ""      # told apart in panel_queries when a panel has several targets
    instant: bool = False


@dataclass(frozen=True)
class Panel:
    title: str
    kind: str            # timeseries | bargauge
    description: str
    targets: tuple[Target, ...]
    unit: str = "short"
    width: int = 8
    height: int = 8
    interval: str | None = None   # the panel's minimum interval (`$__interval` is never less)
    bars: bool = False            # timeseries drawn as stacked bars (counts per interval)
    stacked: bool = False
    max: float | None = None
    decimals: int | None = None
    overrides: tuple[dict[str, Any], ...] = field(default=())


def _m(name: str, selector: str = "", suffix: str = "") -> str:
    """A selector of one of our series (`suffix`: _bucket, _sum or _count of a histogram)."""
    metric = METRICS[name]
    if suffix and metric.kind != "histogram":
        raise ValueError(f"{name} is a {metric.kind}, it has no {suffix}")
    return f"{exposed(name)}{suffix}{{{selector}}}"


def _where(*matchers: str) -> str:
    return ", ".join((*matchers, PROJECT))


def _increase(selector: str, window: str) -> str:
    """What a counter (or a histogram's part) rose by within `window`. increase() counts the
    rises after a series' first sample, and the controller creates a series at its first event
    since it started, with that event's value: a series born inside the window counts with its
    whole value (as the alerts' ArgoDeliveryFlowFailing does)."""
    return f"(({selector} unless {selector} offset {window}) or increase({selector}[{window}]))"


def _count_where(name: str, by: str, window: str, *matchers: str) -> str:
    """sum by (`by`) of the counter's rise over `window` among series matching `matchers`,
    with every other series of the same group at 0: a group that ran but never matched shows
    0, not nothing."""
    return (f"sum by ({by}) (\n  {_increase(_m(name, _where(*matchers)), window)}\n"
            f"  or 0 * {_increase(_m(name, _where()), window)}\n)")


def _versions() -> Panel:
    return Panel(
        "Versions per day per project", "timeseries",
        "New Versions (pushes resolved into commits not seen before) per day, by project. "
        "Pushes whose commits already had a Version are not counted.",
        (Target(f"sum by (project) "
                f"{_increase(_m('delivery_versions_total', _where(CREATED)), '$__interval')}",
                "{{project}}"),),
        width=12, interval="1d", bars=True, decimals=0)


def _failures() -> Panel:
    return Panel(
        "Failures by flow", "timeseries",
        "Workflows of each flow that ended Failed or Error per hour (0: the flow ran, nothing "
        "failed). argo list -n <project namespace> --status Failed,Error says which.",
        (Target(_count_where("delivery_workflow_runs_total", "flow", "$__interval", FAILED),
                "{{flow}}"),),
        width=12, interval="1h", bars=True, decimals=0)


def _pass_rate() -> Panel:
    stream = "delivery_stream_runs_total"
    return Panel(
        "Stream pass rate", "bargauge",
        "Share of run-stream Workflows that Succeeded over the dashboard's time range, by "
        "project and stream (NaN: none finished in the range).",
        (Target(f"{_count_where(stream, 'project, stream', '$__range', SUCCEEDED)}\n"
                f"/\nsum by (project, stream) {_increase(_m(stream, _where()), '$__range')}",
                "{{project}} {{stream}}", instant=True),),
        unit="percentunit", max=1)


def _stream_duration() -> Panel:
    histogram = "delivery_workflow_duration_seconds"
    flow = 'flow="run-stream"'
    return Panel(
        "Stream duration", "timeseries",
        "Duration of run-stream Workflows (alpha and nightly) that finished in the 24 hours "
        "before each point, by project: the 95th percentile (from the histogram's buckets, "
        "so as coarse as they are) and the mean.",
        (Target(f"histogram_quantile(0.95, sum by (project, le) "
                f"{_increase(_m(histogram, _where(flow), '_bucket'), '1d')})",
                "{{project}} p95", "p95"),
         Target(f"sum by (project) {_increase(_m(histogram, _where(flow), '_sum'), '1d')}\n/\n"
                f"sum by (project) {_increase(_m(histogram, _where(flow), '_count'), '1d')}",
                "{{project}} mean", "mean")),
        unit="s", interval="1h")


def _slowest_suites() -> Panel:
    histogram = "delivery_suite_duration_seconds"
    by = "project, stream, suite"
    return Panel(
        "Slowest suites", "bargauge",
        "The ten test suites with the longest mean duration over the dashboard's time range.",
        (Target(f"topk(10,\n  sum by ({by}) {_increase(_m(histogram, _where(), '_sum'), '$__range')}\n"
                f"  /\n  sum by ({by}) {_increase(_m(histogram, _where(), '_count'), '$__range')}\n)",
                "{{project}} {{stream}} {{suite}}", instant=True),),
        unit="s")


def _environments() -> Panel:
    return Panel(
        "Environments by project and phase", "timeseries",
        "Environments that exist, per project and phase, as the reaper counted them at its "
        "last run (phase none: not picked up yet).",
        (Target(f"sum by (project, phase) ({_m('delivery_environments', _where())})",
                "{{project}} {{phase}}"),),
        width=12, stacked=True, decimals=0)


def _oldest() -> Panel:
    return Panel(
        "Oldest Environment per phase", "bargauge",
        "How long the project's longest-waiting Environment has been in each phase (0: none "
        "in it), at the reaper's last run; Ready is an Environment's age in use.",
        (Target(f"max by (project, phase) "
                f"({_m('delivery_environment_oldest_phase_age_seconds', _where())})",
                "{{project}} {{phase}}", instant=True),),
        width=12, unit="s")


def _environment_hours() -> Panel:
    alive = f"sum by (project) ({_m('delivery_environments', _where())})"
    return Panel(
        "Environment-hours", "bargauge",
        "Environment-hours per project over the dashboard's time range: the number of "
        f"Environments (every phase) sampled every {ENV_SAMPLE_SECONDS} seconds, each sample "
        f"counted as {ENV_SAMPLE_SECONDS} seconds of one Environment. An approximation: the "
        "counts are the reaper's, as of its last run.",
        (Target(f"sum_over_time({alive}[$__range:{ENV_SAMPLE_SECONDS}s])\n"
                f"* {ENV_SAMPLE_SECONDS} / 3600", "{{project}}", instant=True),),
        unit="h", decimals=1)


def _overdue() -> Panel:
    return Panel(
        "Most overdue Environment", "bargauge",
        "How long past its expiry the project's most overdue Environment still exists (0: none), "
        "at the reaper's last run.",
        (Target(f"max by (project) ({_m('delivery_environment_overdue_seconds', _where())})",
                "{{project}}", instant=True),),
        unit="s")


def _reaper() -> Panel:
    return Panel(
        "Reaper actions", "timeseries",
        "What the reaper did per hour: deleted (expired), warned (expiring soon), "
        "retried_destroy, retried_vend.",
        (Target(f"sum by (action) "
                f"{_increase(_m('delivery_reaper_actions_total', _where()), '$__interval')}",
                "{{action}}"),),
        interval="1h", bars=True, decimals=0)


# (row title, panels left to right, wrapping at the grid's width)
ROWS: tuple[tuple[str, tuple[Any, ...]], ...] = (
    ("Versions and test streams",
     (_versions, _failures, _pass_rate, _stream_duration, _slowest_suites)),
    ("Environments", (_environments, _oldest, _environment_hours, _overdue, _reaper)),
)


def panels(config: PlatformConfig) -> list[tuple[str, list[Panel]]]:
    """The dashboard's rows and their panels (the same for every config today: the project
    variable selects, the metrics carry the rest)."""
    del config
    return [(title, [make() for make in makers]) for title, makers in ROWS]


def _field_config(panel: Panel) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": panel.unit, "min": 0}
    if panel.max is not None:
        defaults["max"] = panel.max
    if panel.decimals is not None:
        defaults["decimals"] = panel.decimals
    if panel.kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "bars" if panel.bars else "line",
            "fillOpacity": 80 if panel.bars else (30 if panel.stacked else 10),
            "lineWidth": 1, "showPoints": "never", "spanNulls": False,
            "stacking": {"mode": "normal" if panel.bars or panel.stacked else "none",
                         "group": "A"}}
    return {"defaults": defaults, "overrides": list(panel.overrides)}


def _options(panel: Panel) -> dict[str, Any]:
    if panel.kind == "timeseries":
        return {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                "tooltip": {"mode": "multi", "sort": "desc"}}
    return {"displayMode": "gradient", "orientation": "horizontal", "showUnfilled": True,
            "valueMode": "color", "namePlacement": "left",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}


def _panel_json(panel: Panel, panel_id: int, grid: dict[str, int]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": panel_id, "type": panel.kind, "title": panel.title,
        "description": panel.description, "datasource": DATASOURCE, "gridPos": grid,
        "fieldConfig": _field_config(panel), "options": _options(panel)}
    if panel.interval:
        body["interval"] = panel.interval
    body["targets"] = [
        {"refId": chr(ord("A") + index), "datasource": DATASOURCE, "editorMode": "code",
         "expr": target.expr, "legendFormat": target.legend,
         "instant": target.instant, "range": not target.instant}
        for index, target in enumerate(panel.targets)]
    return body


def _layout(rows: Iterable[tuple[str, list[Panel]]]) -> list[dict[str, Any]]:
    """Rows and panels with ids and grid positions: each row a full-width header, its panels
    left to right, wrapping at the grid's width."""
    laid: list[dict[str, Any]] = []
    y = 0
    for title, row_panels in rows:
        laid.append({"id": len(laid) + 1, "type": "row", "title": title, "collapsed": False,
                     "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y}, "panels": []})
        y += 1
        x, line_height = 0, 0
        for panel in row_panels:
            if x + panel.width > GRID_WIDTH:
                x, y, line_height = 0, y + line_height, 0
            laid.append(_panel_json(panel, len(laid) + 1,
                                    {"h": panel.height, "w": panel.width, "x": x, "y": y}))
            x += panel.width
            line_height = max(line_height, panel.height)
        y += line_height
    return laid


def _variables() -> list[dict[str, Any]]:
    project_values = f"label_values({exposed('delivery_workflow_runs_total')}, project)"
    return [
        {"name": "datasource", "label": "Data source", "type": "datasource",
         "query": "prometheus", "current": {}, "hide": 0, "refresh": 1, "regex": "",
         "options": [], "includeAll": False, "multi": False},
        {"name": "project", "label": "Project", "type": "query", "datasource": DATASOURCE,
         "definition": project_values, "query": project_values, "refresh": 2, "sort": 1,
         "regex": "", "options": [], "hide": 0, "multi": True, "includeAll": True,
         "allValue": ALL_PROJECTS,
         "current": {"selected": True, "text": ["All"], "value": ["$__all"]}},
    ]


def dashboard(config: PlatformConfig) -> dict[str, Any]:
    """The dashboard as Grafana's classic JSON model."""
    return {
        "uid": DASHBOARD_UID, "title": "argo-delivery",
        "description": "Versions, test streams, Environments, the reaper and failures of the "
                       "argo-delivery pipeline (the workflow controller's argo_workflows_delivery_* "
                       "metrics).",
        "tags": ["argo-delivery", "argo-workflows"], "timezone": "", "editable": True,
        "graphTooltip": 1, "refresh": "5m", "schemaVersion": SCHEMA_VERSION, "version": 1,
        "time": {"from": "now-7d", "to": "now"}, "timepicker": {},
        "fiscalYearStartMonth": 0, "liveNow": False, "links": [],
        "annotations": {"list": []},
        "templating": {"list": _variables()},
        "panels": _layout(panels(config)),
    }


def dashboard_json(config: PlatformConfig) -> str:
    return json.dumps(dashboard(config), indent=2, ensure_ascii=False) + "\n"


def dashboard_configmap(config: PlatformConfig) -> dict[str, Any]:
    settings = config.monitoring.dashboard
    metadata: dict[str, Any] = {"name": CONFIGMAP,
                                "namespace": settings.namespace or config.orchestrator_namespace,
                                "labels": dict(settings.labels)}
    if settings.annotations:
        metadata["annotations"] = dict(settings.annotations)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata,
            "data": {DASHBOARD_KEY: dashboard_json(config)}}


def dashboard_resources(config: PlatformConfig) -> list[dict[str, Any]]:
    """What `monitoring.dashboard` asks for (nothing by default)."""
    return [dashboard_configmap(config)] if config.monitoring.dashboard.enabled else []


_VARIABLE = re.compile(r"\$(__range|__interval|project)\b")


def _substitute(expr: str, values: dict[str, str]) -> str:
    return _VARIABLE.sub(lambda match: values[match.group(1)], expr)


def panel_queries(config: PlatformConfig, *, time_range: str = DEFAULT_RANGE
                  ) -> list[tuple[str, str]]:
    """(title, PromQL) of every query of the dashboard, in panel order, with Grafana's variables
    replaced as for a plain Prometheus: `$project` -> `.*` (All), `$__interval` -> the panel's
    minimum interval (1d or 1h), `$__range` -> `time_range`. The title is
    the panel's, followed by " (<name>)" for a panel with several queries."""
    queries: list[tuple[str, str]] = []
    for _, row_panels in panels(config):
        for panel in row_panels:
            values = {"project": ALL_PROJECTS, "__range": time_range,
                      "__interval": panel.interval or "1m"}
            for target in panel.targets:
                title = f"{panel.title} ({target.name})" if len(panel.targets) > 1 else panel.title
                queries.append((title, _substitute(target.expr, values)))
    return queries


CAPABILITY = Capability(
    "dashboard", "A Grafana dashboard (JSON in a ConfigMap for the Grafana sidecar) of the "
    "pipeline's metrics, with monitoring.dashboard.enabled.",
    per_platform=dashboard_resources)
