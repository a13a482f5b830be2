"""The rendered `on-version` Sensors, run on Version events by Argo Events' own code.

`sensor-sim --type resource` builds each event as the resource EventSource does (ADD with
`oldBody: null`, UPDATE with both objects) and runs the Sensor's filters and triggers. The
Sensor must react to a change, never to the object alone: an EventSource restart replays
every Version as ADD and every status write is an UPDATE (Argo Events issue #760).
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from argo_delivery.bundle import build_bundle, write_bundle
from argo_delivery.config import default_config_text, parse_config
from argo_delivery.naming import ANNOTATION_RESTORED
from argo_delivery.promotion import RERUN_ANNOTATION
from tests.support import require_binary

pytestmark = pytest.mark.conformance

NO_TRIGGER = 3
NAME = "core-team-0123456789abcdef"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    config = parse_config(default_config_text())
    out = tmp_path_factory.mktemp("bundle")
    return write_bundle(build_bundle(config), out).path


@pytest.fixture(scope="module")
def sensor_sim() -> Path:
    return require_binary("sensor-sim")


def version(resource_version: str = "1", **status: Any) -> dict[str, Any]:
    doc = {"apiVersion": "argo-delivery.io/v1alpha1", "kind": "Version",
           "metadata": {"name": NAME, "namespace": "core-team",
                        "resourceVersion": resource_version},
           "spec": {"project": "core-team", "hash": "sha256:" + "0123456789abcdef" * 4,
                    "components": [{"name": "api", "repo": "https://github.com/acme-platform/api",
                                    "commit": "a" * 40}]}}
    if status:
        doc["status"] = status
    return doc


def changed(old: dict[str, Any], edit) -> dict[str, Any]:
    new = copy.deepcopy(old)
    edit(new)
    new["metadata"]["resourceVersion"] = str(int(old["metadata"]["resourceVersion"]) + 1)
    return new


def simulate(sensor_sim: Path, bundle: Path, tmp_path: Path, event: dict[str, Any]) -> list[dict]:
    path = tmp_path / f"event-{len(list(tmp_path.glob('event-*')))}.json"
    path.write_text(json.dumps(event))
    sensor = bundle / "namespaces/argo-delivery/sensor/on-version-core-team.yaml"
    proc = subprocess.run([str(sensor_sim), "--sensor", str(sensor), "--eventsource", "versions",
                           "--event", "versions-core-team", "--type", "resource",
                           "--payload", str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, NO_TRIGGER), proc.stderr
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def params(workflow: dict[str, Any]) -> dict[str, str]:
    assert workflow["metadata"]["namespace"] == "core-team"
    return {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]}


def test_a_new_version_runs_alpha_once(sensor_sim, rendered, tmp_path):
    [workflow] = simulate(sensor_sim, rendered, tmp_path, {"type": "ADD", "body": version()})
    assert workflow["spec"]["workflowTemplateRef"] == {"name": "run-stream"}
    assert params(workflow) == {"stream": "alpha", "version": NAME, "trigger": "created"}
    # the EventSource restarts: every Version comes again as ADD, with its status
    assert simulate(sensor_sim, rendered, tmp_path,
                    {"type": "ADD", "body": version(stream="nightly")}) == []


def test_status_writes_trigger_nothing(sensor_sim, rendered, tmp_path):
    old = version(stream="alpha", streams={"alpha": {"phase": "Running"}})
    new = changed(old, lambda v: v["status"].update(stream="nightly"))
    assert simulate(sensor_sim, rendered, tmp_path,
                    {"type": "UPDATE", "body": new, "oldBody": old}) == []
    # not even on an approved Version: the approval is not new
    approved = changed(new, lambda v: v["spec"].update(
        approval={"approvedBy": "po", "approvedAt": "2026-11-29T00:00:00Z"}))
    released = changed(approved, lambda v: v["status"].update(stream="released",
                                                              releasedAt="2026-11-29T00:01:00Z"))
    assert simulate(sensor_sim, rendered, tmp_path,
                    {"type": "UPDATE", "body": released, "oldBody": approved}) == []


@pytest.mark.parametrize("stream", ["alpha", "nightly"])
def test_a_rerun_request_runs_its_stream_once(sensor_sim, rendered, tmp_path, stream):
    key = RERUN_ANNOTATION.format(stream=stream)
    old = version(stream="failed")
    new = changed(old, lambda v: v["metadata"].setdefault("annotations", {}).update({key: "r1"}))
    [workflow] = simulate(sensor_sim, rendered, tmp_path,
                          {"type": "UPDATE", "body": new, "oldBody": old})
    assert params(workflow) == {"stream": stream, "version": NAME, "trigger": "rerun"}
    # the run's own status write keeps the annotation: no second run
    later = changed(new, lambda v: v["status"].update(stream="alpha"))
    assert simulate(sensor_sim, rendered, tmp_path,
                    {"type": "UPDATE", "body": later, "oldBody": new}) == []
    # a second request (a new value) runs it again; removing it does not
    again = changed(later, lambda v: v["metadata"]["annotations"].update({key: "r2"}))
    assert len(simulate(sensor_sim, rendered, tmp_path,
                        {"type": "UPDATE", "body": again, "oldBody": later})) == 1
    removed = changed(again, lambda v: v["metadata"].pop("annotations"))
    assert simulate(sensor_sim, rendered, tmp_path,
                    {"type": "UPDATE", "body": removed, "oldBody": again}) == []


def test_a_released_version_is_never_rerun(sensor_sim, rendered, tmp_path):
    key = RERUN_ANNOTATION.format(stream="alpha")
    old = version(stream="released", releasedAt="2026-11-29T00:00:00Z")
    new = changed(old, lambda v: v["metadata"].setdefault("annotations", {}).update({key: "r1"}))
    assert simulate(sensor_sim, rendered, tmp_path,
                    {"type": "UPDATE", "body": new, "oldBody": old}) == []


def test_an_approval_releases_once(sensor_sim, rendered, tmp_path):
    old = version(stream="candidate")
    new = changed(old, lambda v: v["spec"].update(
        approval={"approvedBy": "po", "approvedAt": "2026-11-29T00:00:00Z"}))
    [workflow] = simulate(sensor_sim, rendered, tmp_path,
                          {"type": "UPDATE", "body": new, "oldBody": old})
    assert workflow["spec"]["workflowTemplateRef"] == {"name": "release"}
    assert params(workflow) == {"version": NAME}
    # an ADD of an approved Version (EventSource restart) does not release it again
    assert simulate(sensor_sim, rendered, tmp_path, {"type": "ADD", "body": new}) == []


def test_the_workflows_pass_argo_lint_against_the_bundle(sensor_sim, rendered, tmp_path):
    lint = require_binary("argo-workflows-lint")
    out = tmp_path / "workflows"
    out.mkdir()
    old = version(stream="candidate")
    events = [
        {"type": "ADD", "body": version()},
        {"type": "UPDATE", "oldBody": old, "body": changed(old, lambda v: v["spec"].update(
            approval={"approvedBy": "po", "approvedAt": "2026-11-29T00:00:00Z"}))},
        {"type": "UPDATE", "oldBody": old, "body": changed(old, lambda v: v["metadata"].update(
            annotations={RERUN_ANNOTATION.format(stream="nightly"): "x"}))},
    ]
    for index, event in enumerate(events):
        [workflow] = simulate(sensor_sim, rendered, tmp_path, event)
        (out / f"wf-{index}.yaml").write_text(yaml.safe_dump(workflow))
    proc = subprocess.run([str(lint), str(out), str(rendered)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"argo-workflows-lint:\n{proc.stdout}{proc.stderr}"


def restored(doc: dict[str, Any]) -> dict[str, Any]:
    doc["metadata"].setdefault("annotations", {})[ANNOTATION_RESTORED] = "2026-11-29T00:00:00Z"
    return doc


def test_a_restored_version_runs_nothing(sensor_sim, rendered, tmp_path):
    """`state import` creates a Version with the restored annotation and no status (a CREATE
    cannot set it), then writes its status: neither event runs a stream; a new Version still
    does, and a rerun request on a restored one still runs its stream."""
    created = restored(version())
    assert simulate(sensor_sim, rendered, tmp_path, {"type": "ADD", "body": created}) == []
    with_status = changed(created, lambda v: v.update(status={"stream": "candidate"}))
    assert simulate(sensor_sim, rendered, tmp_path,
                    {"type": "UPDATE", "body": with_status, "oldBody": created}) == []
    # an approved one restored (spec.approval in the CREATE): the status write releases nothing
    approved = restored(version())
    approved["spec"]["approval"] = {"approvedBy": "po", "approvedAt": "2026-11-29T00:00:00Z"}
    assert simulate(sensor_sim, rendered, tmp_path, {"type": "ADD", "body": approved}) == []
    released = changed(approved, lambda v: v.update(status={"stream": "released"}))
    assert simulate(sensor_sim, rendered, tmp_path,
                    {"type": "UPDATE", "body": released, "oldBody": approved}) == []
    # any other annotation is no restore
    other = version()
    other["metadata"]["annotations"] = {"example.com/restored": "yes"}
    assert len(simulate(sensor_sim, rendered, tmp_path, {"type": "ADD", "body": other})) == 1
    key = RERUN_ANNOTATION.format(stream="alpha")
    rerun = changed(with_status, lambda v: v["metadata"]["annotations"].update({key: "r1"}))
    [workflow] = simulate(sensor_sim, rendered, tmp_path,
                          {"type": "UPDATE", "body": rerun, "oldBody": with_status})
    assert params(workflow) == {"stream": "alpha", "version": NAME, "trigger": "rerun"}
