"""The rendered run-stream and release steps, run as Argo would, against the real API server.

Each step authenticates with a token of the stream recorder's ServiceAccount. A Workflow
object stands in for the stream's Workflow (its node statuses are what the watcher reads), so
every way a suite ends can be played here; the end-to-end suite runs the same steps with
real suites on the real controllers (tests/e2e/test_streams.py).
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time

import pytest
import yaml

from argo_delivery.bundle import build_bundle
from argo_delivery.config import default_config_text, parse_config
from argo_delivery.versionhash import version_name
from tests.stepscripts import run_step, script_template, step_environment

pytestmark = pytest.mark.apiserver

NS = "core-team"
VERSIONS = f"/apis/argo-delivery.io/v1alpha1/namespaces/{NS}/versions"
WORKFLOWS = f"/apis/argoproj.io/v1alpha1/namespaces/{NS}/workflows"
RECORDER = "argo-delivery-stream-recorder"
WRITER = "argo-delivery-version-writer"
SUITES = ["passes", "exits", "slow", "no-image", "oom"]


@pytest.fixture(scope="module")
def bundle():
    data = yaml.safe_load(default_config_text())
    for project in data["projects"]:
        if project["name"] == NS:
            project["testSuites"]["alpha"] = [
                {"name": name, "image": "docker.io/library/python:3.12", "timeout": "90s",
                 "command": ["python3", "-c", "pass"]} for name in SUITES]
    return build_bundle(parse_config(yaml.safe_dump(data), "streams.yaml"))


@pytest.fixture(scope="module")
def installed(kube, bundle):
    kube.apply(bundle.resources)
    return bundle


class Steps:
    def __init__(self, kube, bundle, tmp_path):
        self.kube, self.tmp_path = kube, tmp_path
        stream = yaml.safe_load(bundle.files[f"namespaces/{NS}/workflowtemplate/run-stream.yaml"])
        release = yaml.safe_load(bundle.files[f"namespaces/{NS}/workflowtemplate/release.yaml"])
        self.scripts = {name: script_template(stream, name)
                        for name in ("start", "alpha-watch", "finish")}
        self.scripts["release"] = script_template(release, "release")
        self.token_file = tmp_path / "token"
        self.token_file.write_text(kube.token_for(NS, RECORDER))

    def env(self, workdir):
        return {"AD_API_SERVER": self.kube.server, "AD_TOKEN_FILE": str(self.token_file),
                "AD_CA_FILE": str(self.kube.ca_file), "AD_OUTPUT": str(workdir / "runs.json"),
                "AD_STREAM_OUTPUT": str(workdir / "stream"), "HOME": str(workdir),
                "AD_POLL_SECONDS": "0.3"}

    def values(self, workflow, **params):
        values = {"workflow.namespace": NS, "workflow.name": workflow,
                  "workflow.status": params.pop("status", "Failed"),
                  "workflow.failures": params.pop("failures", "")}
        values.update({f"workflow.parameters.{k}": v for k, v in params.items()})
        values["inputs.parameters.version"] = params.get("version", "")
        values["node.name"] = f"{workflow}.alpha(0:x).watch"
        return values

    def run(self, step, workflow, **params):
        workdir = self.tmp_path / f"{step}-{workflow}"
        workdir.mkdir(exist_ok=True)
        result = run_step(self.scripts[step], self.values(workflow, **params), self.env(workdir),
                          workdir)
        runs = workdir / "runs.json"
        return result, (json.loads(runs.read_text()) if runs.exists() else None)

    def popen(self, step, workflow, **params):
        workdir = self.tmp_path / f"{step}-{workflow}"
        workdir.mkdir(exist_ok=True)
        (workdir / "script").write_text(self.scripts[step]["source"])
        env = {"PATH": "/usr/bin:/bin",
               **step_environment(self.scripts[step], self.values(workflow, **params)),
               **self.env(workdir)}
        return subprocess.Popen([sys.executable, str(workdir / "script")], env=env, cwd=workdir,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def steps(kube, installed, tmp_path):
    return Steps(kube, installed, tmp_path)


def new_version(kube) -> str:
    """A Version created as the generate-version step creates it (its writer's token)."""
    digest = "sha256:" + secrets.token_hex(32)
    name = version_name(NS, digest)
    kube.request("POST", VERSIONS, {
        "apiVersion": "argo-delivery.io/v1alpha1", "kind": "Version", "metadata": {"name": name},
        "spec": {"project": NS, "hash": digest, "components": [
            {"name": n, "repo": f"https://github.com/acme-platform/{n}", "commit": secrets.token_hex(20)}
            for n in ("api", "web", "worker")]}}, token=kube.token_for(NS, WRITER))
    return name


def get(kube, name):
    return kube.request("GET", f"{VERSIONS}/{name}")


def conditions(version):
    return {c["type"]: c["status"] for c in version["status"]["conditions"]}


def workflow(kube, name, nodes):
    """The stream's Workflow as the watcher reads it: node statuses by node name."""
    body = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"workflowTemplateRef": {"name": "run-stream"}},
            "status": {"phase": "Running", "nodes": {
                f"{name}-{i}": {"id": f"{name}-{i}", "name": f"{name}.alpha(0:x).suite-{suite}",
                                "displayName": f"suite-{suite}", "type": "Pod", **node}
                for i, (suite, node) in enumerate(nodes.items())}}}
    existing = kube.request("GET", f"{WORKFLOWS}/{name}", ok=(404,))
    if existing.get("kind") == "Workflow":
        body["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
        return kube.request("PUT", f"{WORKFLOWS}/{name}", body)
    return kube.request("POST", WORKFLOWS, body)


def test_start_claims_the_run_once(kube, steps):
    name = new_version(kube)
    result, runs = steps.run("start", "wf-a1", stream="alpha", version=name, trigger="created")
    assert result.returncode == 0, result.stdout + result.stderr
    [run] = runs
    version = get(kube, name)
    assert run["version"] == name and run["hash"] == version["spec"]["hash"]
    assert run["components"] == [{k: c[k] for k in ("name", "repo", "commit")}
                                 for c in version["spec"]["components"]]
    assert run["commit-api"] == version["spec"]["components"][0]["commit"]
    alpha = version["status"]["streams"]["alpha"]
    assert (alpha["phase"], alpha["workflow"], alpha["request"]) == ("Running", "wf-a1", "created")
    assert [(r["suite"], r["phase"]) for r in alpha["results"]] == [(s, "Pending") for s in SUITES]
    assert version["status"]["stream"] == "alpha"
    assert conditions(version) == {"AlphaPassed": "Unknown", "NightlyPassed": "Unknown",
                                   "Approved": "False", "Released": "False"}
    # the same event delivered again (or a second Sensor replica): nothing to do
    result, runs = steps.run("start", "wf-a2", stream="alpha", version=name, trigger="created")
    assert result.returncode == 0 and runs == [], result.stdout
    assert "already ran or runs" in result.stdout
    assert get(kube, name)["status"]["streams"]["alpha"]["workflow"] == "wf-a1"


@pytest.mark.parametrize("params, message", [
    ({"stream": "beta", "version": "x", "trigger": "created"}, "unknown stream 'beta'"),
    ({"stream": "alpha", "version": "x'; rm -rf /", "trigger": "created"}, "is not a Version name"),
    ({"stream": "alpha", "version": "", "trigger": "created"}, "needs a Version name"),
    ({"stream": "alpha", "version": "nope", "trigger": "created"}, "Version nope does not exist"),
])
def test_start_refuses_bad_input(steps, params, message):
    result, runs = steps.run("start", "wf-bad", **params)
    assert result.returncode == 2, result.stdout
    assert message in result.stdout and runs is None


def test_watch_records_every_way_a_suite_ends(kube, steps):
    name = new_version(kube)
    steps.run("start", "wf-w1", stream="alpha", version=name, trigger="created")
    started = "2026-11-29T10:00:00Z"
    workflow(kube, "wf-w1", {
        "passes": {"phase": "Running", "startedAt": started},
        "exits": {"phase": "Running", "startedAt": started},
        "slow": {"phase": "Running", "startedAt": started},
        "no-image": {"phase": "Pending", "startedAt": started,
                     "message": 'ImagePullBackOff: Back-off pulling image "nope:1"'},
        "oom": {"phase": "Running", "startedAt": started}})
    watcher = steps.popen("alpha-watch", "wf-w1", version=name)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:   # progress is written while the suites run
        results = (get(kube, name)["status"]["streams"]["alpha"].get("results") or [])
        if any(r["phase"] == "Running" for r in results):
            break
        time.sleep(0.2)
    else:
        watcher.kill()
        pytest.fail("the watcher wrote no progress: " + "".join(watcher.communicate()))
    done = {"startedAt": started, "finishedAt": "2026-11-29T10:01:00Z"}
    workflow(kube, "wf-w1", {
        "passes": {"phase": "Succeeded", **done, "outputs": {"exitCode": "0"}},
        "exits": {"phase": "Failed", **done, "message": "Error (exit code 3)",
                  "outputs": {"exitCode": "3"}},
        "slow": {"phase": "Failed", **done,
                 "message": "Pod was active on the node longer than the specified deadline"},
        "no-image": {"phase": "Failed", **done, "message": "timeout"},
        "oom": {"phase": "Failed", **done, "message": "OOMKilled (exit code 137)",
                "outputs": {"exitCode": "137"}}})
    out, err = watcher.communicate(timeout=60)
    assert watcher.returncode == 0, out + err
    version = get(kube, name)
    alpha = version["status"]["streams"]["alpha"]
    results = {r["suite"]: r for r in alpha["results"]}
    assert {s: (r["phase"], r["reason"]) for s, r in results.items()} == {
        "passes": ("Succeeded", "Completed"), "exits": ("Failed", "ExitCode"),
        "slow": ("Failed", "Timeout"), "no-image": ("Failed", "ImageError"),
        "oom": ("Failed", "OOMKilled")}
    assert results["exits"]["exitCode"] == 3 and "exited with code 3" in results["exits"]["message"]
    assert "90s" in results["slow"]["message"]
    assert 'pulling image "nope:1"' in results["no-image"]["message"]
    assert results["passes"]["finishedAt"] == "2026-11-29T10:01:00Z"
    assert (alpha["phase"], alpha["reason"]) == ("Failed", "SuitesFailed")
    assert "4 of 5 suites failed" in alpha["message"]
    assert version["status"]["stream"] == "failed"
    assert conditions(version)["AlphaPassed"] == "False"

    # a re-run request: a new run replaces the result, the old one goes to the history
    kube.request("PATCH", f"{VERSIONS}/{name}",
                 {"metadata": {"annotations": {"argo-delivery.io/rerun-alpha": "r1"}}},
                 content_type="application/merge-patch+json")
    result, runs = steps.run("start", "wf-w2", stream="alpha", version=name, trigger="rerun")
    assert result.returncode == 0 and len(runs) == 1, result.stdout
    alpha = get(kube, name)["status"]["streams"]["alpha"]
    assert (alpha["workflow"], alpha["request"], alpha["phase"]) == ("wf-w2", "r1", "Running")
    assert [h["workflow"] for h in alpha["history"]] == ["wf-w1"]
    assert get(kube, name)["status"]["stream"] == "alpha"
    # the same request again (a redelivered event) starts nothing
    result, runs = steps.run("start", "wf-w3", stream="alpha", version=name, trigger="rerun")
    assert runs == [] and "already taken" in result.stdout


def test_finish_records_a_run_the_watcher_could_not_finish(kube, steps):
    name = new_version(kube)
    steps.run("start", "wf-f1", stream="alpha", version=name, trigger="created")
    failures = json.dumps([{"displayName": "alpha(0:x)", "message": "Step exceeded its deadline"}])
    result, _ = steps.run("finish", "wf-f1", status="Failed", failures=failures)
    assert result.returncode == 0, result.stdout + result.stderr
    alpha = get(kube, name)["status"]["streams"]["alpha"]
    assert (alpha["phase"], alpha["reason"]) == ("Error", "WorkflowFailed")
    assert "Step exceeded its deadline" in alpha["message"]
    assert {r["phase"] for r in alpha["results"]} == {"Error"}
    assert get(kube, name)["status"]["stream"] == "failed"
    # another Workflow's finish leaves a run it does not own alone
    other = new_version(kube)
    steps.run("start", "wf-f2", stream="alpha", version=other, trigger="created")
    steps.run("finish", "wf-f3", status="Failed")
    assert get(kube, other)["status"]["streams"]["alpha"]["phase"] == "Running"


def test_release_needs_an_approved_candidate(kube, steps):
    name = new_version(kube)
    result, _ = steps.run("release", "wf-r0", version=name)
    assert result.returncode == 2 and "has no approval" in result.stdout
    # the stream recorder writes the status (only it may); a candidate is approved by a user
    # the authorizer allows `approve` (the admin here), in their own name
    version = get(kube, name)
    passed = {"phase": "Succeeded", "reason": "AllSuitesPassed", "workflow": "wf-x"}
    version["status"] = {"stream": "candidate", "streams": {"alpha": passed, "nightly": passed}}
    kube.request("PUT", f"{VERSIONS}/{name}/status", version,
                 token=steps.token_file.read_text())
    kube.request("PATCH", f"{VERSIONS}/{name}", {"spec": {"approval": {
        "approvedBy": "admin", "approvedAt": "2026-11-29T12:00:00Z"}}},
        content_type="application/merge-patch+json")
    result, _ = steps.run("release", "wf-r1", version=name)
    assert result.returncode == 0, result.stdout + result.stderr
    released = get(kube, name)
    assert released["status"]["stream"] == "released" and released["status"]["releasedAt"]
    assert conditions(released)["Released"] == "True" and conditions(released)["Approved"] == "True"
    again, _ = steps.run("release", "wf-r2", version=name)
    assert again.returncode == 0 and "already-released" in again.stdout
    # and a released Version is never re-run
    result, runs = steps.run("start", "wf-r3", stream="alpha", version=name, trigger="manual")
    assert runs == [] and "never re-run" in result.stdout
