"""Argo Workflows custom metrics (argo_delivery/metrics.py) as rendered: on every
WorkflowTemplate, one help text per name, small bounded label sets, and the reaper's numbers."""

from __future__ import annotations

import datetime
import re

import yaml

from argo_delivery.bundle import build_bundle
from argo_delivery.config import default_config_text, parse_config
from argo_delivery.envmodel import PHASES
from argo_delivery.expiry import state_numbers
from argo_delivery.metrics import METRICS, REAPER_ACTIONS, exposed, reaper_keys
from argo_delivery.templates._steps import step_module
from tests.support import REPO_ROOT

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
# Every label value a metric may carry besides a literal from the config: each bounded.
BOUNDED_VARIABLES = {"{{workflow.status}}", "{{status}}", "{{workflow.parameters.stream}}",
                     "{{outputs.parameters.result}}"}


def _everything_on():
    data = yaml.safe_load(default_config_text())
    data["airgap"] = {"export": True}
    data["images"]["airgap"] = "registry.example.com/platform/argo-delivery:0.1.0"
    data["projects"][0]["environments"]["leakSweep"] = {
        "image": "docker.io/library/python:3.12-slim-bookworm", "command": ["python3", "-m", "sweep"]}
    bundle = build_bundle(parse_config(yaml.safe_dump(data), "everything.yaml"))
    return {path: yaml.safe_load(text) for path, text in bundle.files.items()
            if path.endswith(".yaml")}


FILES = _everything_on()


def _kind(kind):
    return {path: doc for path, doc in FILES.items() if doc.get("kind") == kind}


def _all_specs():
    for path, doc in _kind("WorkflowTemplate").items():
        for spec in (doc["spec"].get("metrics") or {}).get("prometheus", []):
            yield path, "workflow", spec
        for template in doc["spec"]["templates"]:
            for spec in (template.get("metrics") or {}).get("prometheus", []):
                yield path, template["name"], spec


def test_every_workflow_template_counts_and_times_its_runs_by_project_flow_and_status():
    templates = _kind("WorkflowTemplate")
    names = {doc["metadata"]["name"] for doc in templates.values()}
    assert {"generate-version", "run-stream", "release", "vend-environment",
            "destroy-environment", "reap-environments", "export-release"} <= names
    for doc in templates.values():
        specs = {s["name"]: s for s in doc["spec"]["metrics"]["prometheus"]}
        project = doc["metadata"]["labels"]["argo-delivery.io/project"]
        for name in ("delivery_workflow_runs_total", "delivery_workflow_duration_seconds",
                     "delivery_workflow_last_run_timestamp_seconds"):
            labels = {item["key"]: item["value"] for item in specs[name]["labels"]}
            assert labels == {"project": project, "flow": doc["metadata"]["name"],
                              "status": "{{workflow.status}}"}


def test_cron_workflows_are_measured_by_the_template_they_run():
    crons = _kind("CronWorkflow")
    assert crons
    templates = {(d["metadata"]["namespace"], d["metadata"]["name"])
                 for d in _kind("WorkflowTemplate").values()}
    for doc in crons.values():
        spec = doc["spec"]["workflowSpec"]
        assert "metrics" not in spec   # lint AD019: only the reference and the arguments
        assert (doc["metadata"]["namespace"], spec["workflowTemplateRef"]["name"]) in templates


def test_one_help_and_one_type_per_name_and_every_name_declared():
    seen = {}
    for path, where, spec in _all_specs():
        metric = METRICS[spec["name"]]
        kind = next(k for k in ("counter", "gauge", "histogram") if k in spec)
        assert (kind, spec["help"]) == (metric.kind, metric.help), (path, where)
        assert [item["key"] for item in spec["labels"]] == list(metric.labels), (path, where)
        seen[spec["name"]] = True
    assert set(seen) == set(METRICS)   # each declared metric is emitted somewhere
    for name in METRICS:
        assert re.fullmatch(r"[a-z_]+", name)
        assert exposed(name) == "argo_workflows_" + name


def test_labels_never_carry_a_commit_a_version_or_a_user():
    for path, where, spec in _all_specs():
        for item in spec["labels"]:
            value = item["value"]
            assert "{{" not in value or value in BOUNDED_VARIABLES, (path, where, item)


def test_suites_leak_sweep_export_and_version_results_are_counted():
    run_stream = FILES["namespaces/core-team/workflowtemplate/run-stream.yaml"]
    suites = [t for t in run_stream["spec"]["templates"] if "-suite-" in t["name"]]
    assert suites
    for template in suites:
        names = [s["name"] for s in template["metrics"]["prometheus"]]
        assert names == ["delivery_suite_runs_total", "delivery_suite_duration_seconds"]
        labels = {i["key"]: i["value"] for i in template["metrics"]["prometheus"][0]["labels"]}
        assert f"{labels['stream']}-suite-{labels['suite']}" == template["name"]
    steps = {t["name"]: t for doc in FILES.values() if doc.get("kind") == "WorkflowTemplate"
             and doc["metadata"]["namespace"] == "core-team" for t in doc["spec"]["templates"]}
    assert steps["leak-sweep"]["metrics"]["prometheus"][0]["name"] == "delivery_leak_sweeps_total"
    assert steps["pack"]["metrics"]["prometheus"][0]["name"] == "delivery_airgap_exports_total"
    version = steps["generate-version"]
    assert version["metrics"]["prometheus"][0]["when"] == "{{status}} == Succeeded"
    outputs = {p["name"]: p for p in version["outputs"]["parameters"]}
    assert outputs["result"]["valueFrom"]["default"] == "none"
    env = {e["name"]: e["value"] for e in version["script"]["env"]}
    assert env["AD_RESULT_OUTPUT"] == outputs["result"]["valueFrom"]["path"]


def test_the_reap_step_writes_every_number_its_metrics_read():
    reap = next(t for t in FILES["namespaces/core-team/workflowtemplate/reap-environments.yaml"]
                ["spec"]["templates"] if t["name"] == "reap")
    outputs = {p["name"]: p["valueFrom"] for p in reap["outputs"]["parameters"]}
    step = step_module("environment", shared=("steplib", "envmodel", "expiry"))
    assert tuple(step.REAPER_ACTIONS) == REAPER_ACTIONS
    written = {*state_numbers([], NOW, None, PHASES), *(f"action_{a}" for a in REAPER_ACTIONS)}
    assert written == set(reaper_keys())
    for key in written:
        name = key.replace("_", "-")
        assert outputs[name] == {"path": f"/tmp/metric-{name}", "default": "0"}
    read = {re.sub(r"\{\{outputs\.parameters\.(.+)\}\}", r"\1", s["gauge" if "gauge" in s
                                                                  else "counter"]["value"])
            for s in reap["metrics"]["prometheus"]}
    assert read == {key.replace("_", "-") for key in written}


def _env(name, phase=None, created="2026-11-29T00:00:00Z", deleting=None, conditions=(), **extra):
    item = {"metadata": {"name": name, "creationTimestamp": created},
            "spec": {"demo": extra.pop("demo", False)}}
    if deleting:
        item["metadata"]["deletionTimestamp"] = deleting
    if extra.get("ttl"):
        item["metadata"]["annotations"] = {"argo-delivery.io/ttl": extra["ttl"]}
    if phase:
        item["status"] = {"phase": phase, "conditions": [
            {"type": t, "status": s, "lastTransitionTime": when} for t, s, when in conditions]}
    return item


def test_state_numbers_count_phases_their_oldest_age_and_the_most_overdue():
    numbers = state_numbers([
        _env("new", created="2026-11-29T11:59:00Z"),
        _env("vending", "Provisioning", conditions=[("Ready", "False", "2026-11-29T10:00:00Z")]),
        _env("ready", "Ready", ttl="24h", conditions=[("Ready", "True", "2026-11-29T01:00:00Z")]),
        _env("broken", "Failed", ttl="24h", conditions=[("Failed", "True", "2026-11-29T11:00:00Z"),
                                                        ("Ready", "False", "2026-11-29T01:00:00Z")]),
        _env("going", "Destroying", ttl="2h", deleting="2026-11-29T11:30:00Z"),
        _env("expired", "Ready", ttl="9h"),
        _env("demo", "Ready", demo=True),
    ], NOW, datetime.timedelta(hours=8), PHASES)
    assert numbers["phase_none"] == 1 and numbers["phase_ready"] == 3
    assert numbers["phase_provisioning"] == numbers["phase_failed"] == 1
    assert numbers["phase_pending"] == numbers["phase_deploying"] == 0
    assert numbers["age_provisioning"] == 7200
    assert numbers["age_failed"] == 3600          # since the Failed condition, not Ready's
    assert numbers["age_destroying"] == 1800      # since the delete began
    assert numbers["age_ready"] == 12 * 3600      # no Ready condition: since creation
    assert numbers["age_pending"] == 0
    # "going" expired at 02:00 (10h ago), "expired" at 09:00, "new" (8h default) not yet
    assert numbers["overdue"] == 10 * 3600


def test_the_readme_documents_every_metric():
    readme = (REPO_ROOT / "README.md").read_text()
    for metric in METRICS.values():
        row = re.search(rf"^\| `{exposed(metric.name)}` \| (\w+) \| ([^|]+) \|", readme, re.M)
        assert row, f"README: no row for {exposed(metric.name)}"
        assert row.group(1) == metric.kind
        assert [label.strip(" `") for label in row.group(2).split(",")] == list(metric.labels)
