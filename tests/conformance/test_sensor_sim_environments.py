"""The rendered `on-environment` Sensors, run on Environment events by Argo Events' own code
(`sensor-sim --type resource`: ADD with `oldBody: null`, UPDATE with both objects). The
Sensor reacts to a change, never to the object alone: an EventSource restart replays every
Environment as ADD and every status write is an UPDATE."""

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
from argo_delivery.envmodel import RETRY_DESTROY_ANNOTATION, RETRY_VEND_ANNOTATION
from argo_delivery.naming import ANNOTATION_RESTORED
from tests.support import require_binary

pytestmark = pytest.mark.conformance

NO_TRIGGER = 3


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle")
    return write_bundle(build_bundle(parse_config(default_config_text())), out).path


@pytest.fixture(scope="module")
def sensor_sim() -> Path:
    return require_binary("sensor-sim")


def environment(demo: bool = False, version: str | None = "core-team-0123456789abcdef",
                **status: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"project": "core-team", "owner": "bob", "demo": demo}
    if version:
        spec["version"] = version
    doc = {"apiVersion": "argo-delivery.io/v1alpha1", "kind": "Environment",
           "metadata": {"name": "dev-1", "namespace": "core-team", "resourceVersion": "1"},
           "spec": spec}
    if status:
        doc["status"] = status
    return doc


def changed(old: dict[str, Any], edit) -> dict[str, Any]:
    new = copy.deepcopy(old)
    edit(new)
    new["metadata"]["resourceVersion"] = str(int(old["metadata"]["resourceVersion"]) + 1)
    return new


def simulate(sensor_sim: Path, bundle: Path, tmp_path: Path, event: dict[str, Any]) -> list[str]:
    """The WorkflowTemplates of the Workflows the Sensor creates for `event`."""
    path = tmp_path / f"event-{len(list(tmp_path.glob('event-*')))}.json"
    path.write_text(json.dumps(event))
    sensor = bundle / "namespaces/argo-delivery/sensor/on-environment-core-team.yaml"
    proc = subprocess.run([str(sensor_sim), "--sensor", str(sensor), "--eventsource",
                           "environments", "--event", "environments-core-team", "--type",
                           "resource", "--payload", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, NO_TRIGGER), proc.stderr
    workflows = [doc for doc in yaml.safe_load_all(proc.stdout) if doc]
    for workflow in workflows:
        assert workflow["metadata"]["namespace"] == "core-team"
        assert workflow["spec"]["arguments"]["parameters"] == [
            {"name": "environment", "value": "dev-1"}]
    return [w["spec"]["workflowTemplateRef"]["name"] for w in workflows]


def update(old, new):
    return {"type": "UPDATE", "body": new, "oldBody": old}


def test_a_new_environment_is_vended_once(sensor_sim, rendered, tmp_path):
    assert simulate(sensor_sim, rendered, tmp_path, {"type": "ADD", "body": environment()}) == [
        "vend-environment"]
    # replayed on an EventSource restart: it has a phase, nothing happens
    assert simulate(sensor_sim, rendered, tmp_path,
                    {"type": "ADD", "body": environment(phase="Ready")}) == []
    # a status write is no request
    old = environment(phase="Provisioning")
    assert simulate(sensor_sim, rendered, tmp_path, update(
        old, changed(old, lambda e: e["status"].update(phase="Ready")))) == []


def test_a_deletion_is_destroyed_and_a_retry_request_destroys_again(sensor_sim, rendered, tmp_path):
    old = environment(phase="Ready")
    deleting = changed(old, lambda e: e["metadata"].update(
        deletionTimestamp="2026-11-29T08:00:00Z", finalizers=["argo-delivery.io/environment"]))
    assert simulate(sensor_sim, rendered, tmp_path, update(old, deleting)) == [
        "destroy-environment"]
    # its own status writes while it is destroyed start nothing
    failed = changed(deleting, lambda e: e["status"].update(phase="Failed"))
    assert simulate(sensor_sim, rendered, tmp_path, update(deleting, failed)) == []
    retried = changed(failed, lambda e: e["metadata"].setdefault("annotations", {}).update(
        {RETRY_DESTROY_ANNOTATION: "2026-11-29T08:15:00Z"}))
    assert simulate(sensor_sim, rendered, tmp_path, update(failed, retried)) == [
        "destroy-environment"]


def test_the_reapers_retry_vend_vends_one_no_vend_took(sensor_sim, rendered, tmp_path):
    old = environment()
    asked = changed(old, lambda e: e["metadata"].setdefault("annotations", {}).update(
        {RETRY_VEND_ANNOTATION: "2026-11-29T08:15:00Z"}))
    assert simulate(sensor_sim, rendered, tmp_path, update(old, asked)) == ["vend-environment"]
    # one that has a phase is not vended again by it
    taken = environment(phase="Ready")
    asked = changed(taken, lambda e: e["metadata"].setdefault("annotations", {}).update(
        {RETRY_VEND_ANNOTATION: "2026-11-29T08:15:00Z"}))
    assert simulate(sensor_sim, rendered, tmp_path, update(taken, asked)) == []


def test_a_demo_environment_is_redeployed_when_its_version_moves(sensor_sim, rendered, tmp_path):
    old = environment(demo=True, version=None, phase="Pending")
    released = changed(old, lambda e: e["spec"].update(version="core-team-1111111111111111"))
    assert simulate(sensor_sim, rendered, tmp_path, update(old, released)) == ["vend-environment"]
    again = changed(released, lambda e: e["spec"].update(version="core-team-2222222222222222"))
    assert simulate(sensor_sim, rendered, tmp_path, update(released, again)) == [
        "vend-environment"]
    # a label on it is no release
    labelled = changed(again, lambda e: e["metadata"].update(labels={"a": "b"}))
    assert simulate(sensor_sim, rendered, tmp_path, update(again, labelled)) == []


def test_a_restored_environment_is_not_vended_again(sensor_sim, rendered, tmp_path):
    """`state import` creates the Environment with the restored annotation (no status: a CREATE
    cannot set it), then writes its status: no vend; its deletion still destroys it."""
    created = environment()
    created["metadata"]["annotations"] = {ANNOTATION_RESTORED: "2026-11-29T00:00:00Z"}
    created["metadata"]["finalizers"] = ["argo-delivery.io/environment"]
    assert simulate(sensor_sim, rendered, tmp_path, {"type": "ADD", "body": created}) == []
    ready = changed(created, lambda e: e.update(status={"phase": "Ready"}))
    assert simulate(sensor_sim, rendered, tmp_path, update(created, ready)) == []
    # a restored demo environment: its status write is no release either
    demo = environment(demo=True)
    demo["metadata"]["annotations"] = {ANNOTATION_RESTORED: "2026-11-29T00:00:00Z"}
    assert simulate(sensor_sim, rendered, tmp_path, {"type": "ADD", "body": demo}) == []
    deleting = changed(ready, lambda e: e["metadata"].update(
        deletionTimestamp="2026-11-29T08:00:00Z"))
    assert simulate(sensor_sim, rendered, tmp_path, update(ready, deleting)) == [
        "destroy-environment"]
    # a new one (no annotation) is still vended
    assert simulate(sensor_sim, rendered, tmp_path, {"type": "ADD", "body": environment()}) == [
        "vend-environment"]
