"""Sensor filter idioms for Version events, checked with Argo Events' own code.

`.cache/bin/sensor-sim --type resource` (tools/sensor-sim/resource.go) builds the event
the way Argo Events v1.9.11's resource EventSource does (events.ResourceEventData:
type, body, oldBody, group, version, resource, metadata; `"oldBody": null` for ADD and
DELETE) and runs a Sensor's filters and k8s triggers on it with upstream's code.

The Sensor below is hand-written: one dependency (and one trigger) per idiom the
project uses on Version events:

- `approved`: a possibly-missing field defaults to "" with a gjson multipath literal,
  `[oldBody.spec.approval.approvedBy,!""].0`; upstream's expr filter rejects the event
  outright when a field's path does not exist, so a plain `oldBody.spec...` path could
  never express "old has no approval".
- `rerun-alpha`: an annotation whose key has dots and a slash,
  `argo-delivery\\.io/rerun-alpha`, changed to a new non-empty value.
- `created-without-stream`: an ADD of a Version without `status.stream`.

Every trigger creates a Workflow whose first parameter is `body.metadata.name`.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import go_module_dir, pinned_version, require_binary

pytestmark = pytest.mark.conformance

EVENTSOURCE = "versions"
EVENT = "version"
NO_EVENT_OR_TRIGGER = 3
APPROVED_BY = '[{side}.spec.approval.approvedBy,!""].0'
RERUN_ALPHA = '[{side}.metadata.annotations.argo-delivery\\.io/rerun-alpha,!""].0'
STREAM = '[body.status.stream,!""].0'


def _trigger(name: str, dependency: str) -> dict[str, Any]:
    return {"template": {
        "name": name,
        "conditions": dependency,
        "k8s": {
            "operation": "create",
            "source": {"resource": {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Workflow",
                "metadata": {"generateName": f"{name}-", "namespace": "argo-delivery"},
                "spec": {
                    "workflowTemplateRef": {"name": name},
                    "arguments": {"parameters": [{"name": "version", "value": "overwritten"}]},
                },
            }},
            "parameters": [{
                "src": {"dependencyName": dependency, "dataKey": "body.metadata.name"},
                "dest": "spec.arguments.parameters.0.value",
            }],
        },
    }}


def _dependency(name: str, expr: str, **fields: str) -> dict[str, Any]:
    return {
        "name": name,
        "eventSourceName": EVENTSOURCE,
        "eventName": EVENT,
        "filters": {"exprs": [{
            "expr": expr,
            "fields": [{"name": k, "path": v} for k, v in fields.items()],
        }]},
    }


SENSOR = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Sensor",
    "metadata": {"name": "version-events", "namespace": "argo-delivery"},
    "spec": {
        "dependencies": [
            _dependency("approved", 'new != "" && old == ""',
                        new=APPROVED_BY.format(side="body"), old=APPROVED_BY.format(side="oldBody")),
            _dependency("rerun-alpha", 'new != "" && new != old',
                        new=RERUN_ALPHA.format(side="body"), old=RERUN_ALPHA.format(side="oldBody")),
            _dependency("created-without-stream", 'type == "ADD" && stream == ""',
                        type="type", stream=STREAM),
        ],
        "triggers": [
            _trigger("on-approved", "approved"),
            _trigger("on-rerun-alpha", "rerun-alpha"),
            _trigger("on-created-without-stream", "created-without-stream"),
        ],
    },
}

# The Sensor as a reader would write it: the literal paths, quoted as in a manifest.
SENSOR_YAML_CHECK = (
    "path: '[body.metadata.annotations.argo-delivery\\.io/rerun-alpha,!\"\"].0'",
    "path: '[oldBody.spec.approval.approvedBy,!\"\"].0'",
)


def version(name: str = "myapp-1-2-3", resource_version: str = "100", *,
            approved_by: str | None = None, rerun_alpha: str | None = None,
            stream: str | None = None) -> dict[str, Any]:
    """A Version object as the API server (and so the informer) has it."""
    obj: dict[str, Any] = {
        "apiVersion": "argo-delivery.io/v1alpha1",
        "kind": "Version",
        "metadata": {"name": name, "namespace": "argo-delivery", "resourceVersion": resource_version,
                     "uid": "6c1f0a64-93f5-4c1e-9a3e-0b7e8d0c4d11",
                     "annotations": {"argo-delivery.io/description": "a.b/c d"}},
        "spec": {"project": "myapp", "commit": "a" * 40},
    }
    if approved_by is not None:
        obj["spec"]["approval"] = {"approvedBy": approved_by, "approvedAt": "2025-01-02T03:04:05Z"}
    if rerun_alpha is not None:
        obj["metadata"]["annotations"]["argo-delivery.io/rerun-alpha"] = rerun_alpha
    if stream is not None:
        obj["status"] = {"stream": stream}
    return obj


def updated(old: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """`old` after an update: a new resourceVersion, then `changes` applied by `version()`."""
    new = copy.deepcopy(old)
    rv = str(int(old["metadata"]["resourceVersion"]) + 1)
    new["metadata"]["resourceVersion"] = rv
    if "approved_by" in changes:
        if changes["approved_by"] is None:
            new["spec"].pop("approval", None)
        else:
            new["spec"]["approval"] = {"approvedBy": changes["approved_by"],
                                       "approvedAt": "2025-01-02T03:04:05Z"}
    if "rerun_alpha" in changes:
        annotations = new["metadata"]["annotations"]
        if changes["rerun_alpha"] is None:
            annotations.pop("argo-delivery.io/rerun-alpha", None)
        else:
            annotations["argo-delivery.io/rerun-alpha"] = changes["rerun_alpha"]
    if "stream" in changes:
        new["status"] = {"stream": changes["stream"]}
    return new


def add(obj: dict[str, Any]) -> dict[str, Any]:
    return {"type": "ADD", "body": obj}


def update(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    return {"type": "UPDATE", "body": new, "oldBody": old}


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def workflows(self) -> list[dict[str, Any]]:
        return [doc for doc in yaml.safe_load_all(self.stdout) if doc]

    @property
    def fired(self) -> set[str]:
        """Names of the triggers that fired: each Workflow's generateName (this module's own
        triggers), or its name less the event's id (the bundle's, sensors/_triggers.py)."""
        return {wf["metadata"]["generateName"].removesuffix("-") if "generateName" in
                wf["metadata"] else re.sub(r"-[0-9a-f]{32}$", "",
                                           wf["metadata"]["name"])
                for wf in self.workflows}


@pytest.fixture(scope="session")
def sensor_sim() -> Path:
    return require_binary("sensor-sim")


@pytest.fixture(scope="session")
def sensor_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sensor") / "version-events.yaml"
    path.write_text(yaml.safe_dump(SENSOR, sort_keys=False))
    return path


def run_sim(sensor_sim: Path, tmp_path: Path, event: dict[str, Any], *args: str) -> Run:
    path = tmp_path / f"event-{len(list(tmp_path.glob('event-*')))}.json"
    path.write_text(json.dumps(event, indent=2))
    proc = subprocess.run([str(sensor_sim), "--eventsource", EVENTSOURCE, "--event", EVENT,
                           "--type", "resource", "--payload", str(path), *args],
                          capture_output=True, text=True, timeout=120)
    return Run(proc.returncode, proc.stdout, proc.stderr)


def simulate(sensor_sim: Path, sensor_path: Path, tmp_path: Path, event: dict[str, Any]) -> Run:
    run = run_sim(sensor_sim, tmp_path, event, "--sensor", str(sensor_path))
    assert run.returncode in (0, NO_EVENT_OR_TRIGGER), run.stderr
    assert (run.returncode == 0) == bool(run.workflows), run.stderr
    for wf in run.workflows:  # idiom 4, on every Workflow any trigger creates
        assert wf["spec"]["arguments"]["parameters"][0]["value"] == event["body"]["metadata"]["name"]
    return run


def event_data(sensor_sim: Path, tmp_path: Path, event: dict[str, Any], *args: str) -> dict[str, Any]:
    run = run_sim(sensor_sim, tmp_path, event, "--print-event", *args)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_sensor_manifest_spells_the_idioms(sensor_path: Path) -> None:
    text = sensor_path.read_text()
    for line in SENSOR_YAML_CHECK:
        assert line in text


# ---- 1. approval: a default for a possibly-missing field

def test_approval_fires_on_the_update_that_adds_it(sensor_sim, sensor_path, tmp_path) -> None:
    old = version()
    run = simulate(sensor_sim, sensor_path, tmp_path, update(old, updated(old, approved_by="alice")))
    assert run.fired == {"on-approved"}, run.stderr


def test_approval_does_not_fire_when_both_have_it(sensor_sim, sensor_path, tmp_path) -> None:
    old = version(approved_by="alice")
    run = simulate(sensor_sim, sensor_path, tmp_path, update(old, updated(old, stream="beta")))
    assert "on-approved" not in run.fired
    assert "dependency approved rejected the event" in run.stderr


def test_approval_does_not_fire_on_add(sensor_sim, sensor_path, tmp_path) -> None:
    run = simulate(sensor_sim, sensor_path, tmp_path, add(version()))
    assert "on-approved" not in run.fired
    assert "dependency approved rejected the event" in run.stderr


def test_approval_does_not_fire_on_unrelated_update(sensor_sim, sensor_path, tmp_path) -> None:
    old = version()
    run = simulate(sensor_sim, sensor_path, tmp_path, update(old, updated(old, stream="alpha")))
    assert run.fired == set(), run.stderr


def test_approval_idiom_alone_does_not_exclude_an_approved_add(sensor_sim, sensor_path, tmp_path) -> None:
    """On ADD oldBody is null, so `old` defaults to "": an ADD of an already approved
    Version passes `new != "" && old == ""`. A Sensor that must never fire on ADD needs
    `type == "UPDATE"` as well."""
    run = simulate(sensor_sim, sensor_path, tmp_path, add(version(approved_by="alice")))
    assert "on-approved" in run.fired


def test_a_missing_path_without_the_default_is_a_filter_error(sensor_sim, tmp_path) -> None:
    """Why the multipath literal: upstream's expr filter fails on a path that does not exist."""
    sensor = copy.deepcopy(SENSOR)
    sensor["spec"]["dependencies"] = [_dependency(
        "approved", 'new != "" && old == ""',
        new="body.spec.approval.approvedBy", old="oldBody.spec.approval.approvedBy")]
    sensor["spec"]["triggers"] = [_trigger("on-approved", "approved")]
    path = tmp_path / "plain-paths.yaml"
    path.write_text(yaml.safe_dump(sensor))
    old = version()
    run = run_sim(sensor_sim, tmp_path, update(old, updated(old, approved_by="alice")),
                  "--sensor", str(path))
    assert run.returncode == NO_EVENT_OR_TRIGGER, run.stderr
    assert "path 'oldBody.spec.approval.approvedBy' does not exist" in run.stderr


# ---- 2. an annotation key with dots and a slash

def test_rerun_fires_when_the_annotation_is_set(sensor_sim, sensor_path, tmp_path) -> None:
    old = version()
    run = simulate(sensor_sim, sensor_path, tmp_path, update(old, updated(old, rerun_alpha="1")))
    assert run.fired == {"on-rerun-alpha"}, run.stderr


def test_rerun_fires_when_the_annotation_changes(sensor_sim, sensor_path, tmp_path) -> None:
    old = version(rerun_alpha="2025-01-01T00:00:00Z")
    run = simulate(sensor_sim, sensor_path, tmp_path,
                   update(old, updated(old, rerun_alpha="2025-01-02T00:00:00Z")))
    assert run.fired == {"on-rerun-alpha"}, run.stderr


def test_rerun_does_not_fire_when_unchanged(sensor_sim, sensor_path, tmp_path) -> None:
    old = version(rerun_alpha="1")
    run = simulate(sensor_sim, sensor_path, tmp_path, update(old, updated(old, stream="alpha")))
    assert "on-rerun-alpha" not in run.fired
    assert "dependency rerun-alpha rejected the event" in run.stderr


def test_rerun_does_not_fire_when_removed(sensor_sim, sensor_path, tmp_path) -> None:
    old = version(rerun_alpha="1")
    run = simulate(sensor_sim, sensor_path, tmp_path, update(old, updated(old, rerun_alpha=None)))
    assert "on-rerun-alpha" not in run.fired
    assert "dependency rerun-alpha rejected the event" in run.stderr


def test_rerun_reads_only_its_own_annotation(sensor_sim, sensor_path, tmp_path) -> None:
    """The escaped dot matches the key `argo-delivery.io/rerun-alpha` only."""
    old = version()
    new = updated(old)
    new["metadata"]["annotations"]["argo-delivery.io/rerun-beta"] = "1"
    new["metadata"]["annotations"]["argo-delivery"] = {"io/rerun-alpha": "1"}  # not a real k8s shape
    run = simulate(sensor_sim, sensor_path, tmp_path, update(old, new))
    assert run.fired == set(), run.stderr


# ---- 3. an ADD without status.stream

def test_add_without_status_fires(sensor_sim, sensor_path, tmp_path) -> None:
    run = simulate(sensor_sim, sensor_path, tmp_path, add(version()))
    assert run.fired == {"on-created-without-stream"}, run.stderr


def test_add_with_a_stream_does_not_fire(sensor_sim, sensor_path, tmp_path) -> None:
    run = simulate(sensor_sim, sensor_path, tmp_path, add(version(stream="alpha")))
    assert run.fired == set()
    assert "dependency created-without-stream rejected the event" in run.stderr


def test_update_without_status_does_not_fire_the_add_trigger(sensor_sim, sensor_path, tmp_path) -> None:
    old = version()
    run = simulate(sensor_sim, sensor_path, tmp_path, update(old, updated(old)))
    assert run.fired == set()
    assert "dependency created-without-stream rejected the event" in run.stderr


# ---- 4. the trigger parameter (also checked on every Workflow in simulate())

def test_trigger_parameter_is_the_version_name(sensor_sim, sensor_path, tmp_path) -> None:
    run = simulate(sensor_sim, sensor_path, tmp_path, add(version(name="other-9-9-9")))
    (wf,) = run.workflows
    assert wf["kind"] == "Workflow"
    assert wf["spec"]["arguments"]["parameters"] == [{"name": "version", "value": "other-9-9-9"}]


# ---- the event data is upstream's ResourceEventData

def upstream_resource_event_data_keys() -> tuple[set[str], set[str]]:
    """(always present, omitted when empty) JSON keys of events.ResourceEventData."""
    module = "github.com/argoproj/argo-events"
    module_dir = go_module_dir(module, pinned_version("sensor-sim", module))
    src = module_dir / "pkg/eventsources/events/event-data.go"
    struct = re.search(r"^type ResourceEventData struct \{\n(.*?)^\}", src.read_text(), re.M | re.S)
    assert struct, f"no ResourceEventData in {src}"
    tags = re.findall(r'`json:"([^",]*)((?:,[a-z]+)*)"`', struct.group(1))
    always = {name for name, opts in tags if "omitempty" not in opts}
    optional = {name for name, opts in tags if "omitempty" in opts}
    assert always and len(tags) == struct.group(1).count("`json:")
    return always, optional


def test_event_data_has_upstreams_keys(sensor_sim, tmp_path) -> None:
    always, optional = upstream_resource_event_data_keys()
    assert always == {"type", "body", "oldBody", "group", "version", "resource"}
    assert optional == {"metadata"}

    obj = version()
    data = event_data(sensor_sim, tmp_path, add(obj))
    assert set(data) == always
    assert data["type"] == "ADD"
    assert data["oldBody"] is None  # processOne: OldBody points at a nil RawMessage -> null
    assert data["body"] == obj
    assert (data["group"], data["version"], data["resource"]) == ("argo-delivery.io", "v1alpha1", "versions")

    new = updated(obj, approved_by="alice")
    data = event_data(sensor_sim, tmp_path, update(obj, new))
    assert set(data) == always
    assert (data["type"], data["body"], data["oldBody"]) == ("UPDATE", new, obj)

    data = event_data(sensor_sim, tmp_path, {"type": "DELETE", "body": obj},
                      "--group", "g.example", "--version", "v2", "--resource", "things",
                      "--metadata", "team=qa", "--metadata", "x=a=b")
    assert set(data) == always | optional
    assert data["oldBody"] is None
    assert (data["group"], data["version"], data["resource"]) == ("g.example", "v2", "things")
    assert data["metadata"] == {"team": "qa", "x": "a=b"}


def test_event_data_is_marshalled_as_upstream_does(sensor_sim, tmp_path) -> None:
    """json.Marshal of the struct: fields in declaration order, compact, oldBody null;
    the object as the informer's *unstructured.Unstructured marshals it (sorted keys)."""
    run = run_sim(sensor_sim, tmp_path, add({"kind": "Version", "apiVersion": "argo-delivery.io/v1alpha1",
                                             "metadata": {"name": "v"}}), "--print-event")
    assert run.returncode == 0, run.stderr
    assert run.stdout == (
        '{"type":"ADD","body":{"apiVersion":"argo-delivery.io/v1alpha1","kind":"Version",'
        '"metadata":{"name":"v"}},"oldBody":null,"group":"argo-delivery.io","version":"v1alpha1",'
        '"resource":"versions"}\n')


def test_update_with_the_same_resource_version_is_dropped(sensor_sim, sensor_path, tmp_path) -> None:
    """The EventSource's UpdateFunc drops resyncs (identical resourceVersion): no event."""
    old = version()
    new = copy.deepcopy(old)
    new["spec"]["approval"] = {"approvedBy": "alice"}
    run = run_sim(sensor_sim, tmp_path, update(old, new), "--sensor", str(sensor_path))
    assert run.returncode == NO_EVENT_OR_TRIGGER
    assert run.stdout == ""
    assert "identical resource versions" in run.stderr


@pytest.mark.parametrize("event, message", [
    ({"type": "UPDATE", "body": version()}, "an UPDATE event needs oldBody"),
    ({"type": "ADD", "body": version(), "oldBody": version()}, "oldBody is only set for UPDATE"),
    ({"type": "ADDED", "body": version()}, 'type "ADDED" is not ADD, UPDATE or DELETE'),
    ({"type": "ADD", "body": {"metadata": {"name": "v"}}}, "Object 'Kind' is missing"),
    ({"type": "ADD", "object": version()}, "unknown field"),
], ids=["update-without-old", "add-with-old", "bad-type", "no-kind", "unknown-key"])
def test_malformed_resource_events_are_errors(sensor_sim, sensor_path, tmp_path, event, message) -> None:
    run = run_sim(sensor_sim, tmp_path, event, "--sensor", str(sensor_path))
    assert run.returncode == 1
    assert message in run.stderr
