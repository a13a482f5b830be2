"""Flows F2-F4 for real: a push -> a Version -> its alpha suites as real containers -> the
nightly stream (run from the CronWorkflow as `argo cron` would) -> a product owner's sign-off
through the API server's admission policy -> the release, on the real cluster with the real
Argo controllers.

The platform is the default one with suites that say something on this cluster: core-team's
alpha suites pass (one checks every fact a suite is promised, and that it has no API token);
northwind's fail in each way a suite can fail (an exit code, a timeout, an image that does
not exist, memory beyond its limit), so its Version is `failed` and the nightly run does not pick it.
"""

from __future__ import annotations

import statistics
import time

import pytest

from tests.e2e.images import python_git_image
from tests.e2e.test_push_to_version import (
    CORE,
    PARTNER,
    deliver,
    install,
    payload,
    served,  # noqa: F401 (a fixture)
    sign,
    versions,
    workflows,
)
from tests.gitrepos import push_commit
from tests.kube_server import ApiError

pytestmark = pytest.mark.e2e

GROUP = "/apis/argo-delivery.io/v1alpha1/namespaces"
DEVELOPER = ("e2e-dev", ["acme:core-developers"])
PRODUCT_OWNER = ("e2e-po", ["acme:product-owners"])
PARTNER_MANAGER = ("e2e-partner-manager", ["acme:partner-managers"])

# Runs in core-team's `env-check` suite: every promised fact is there, and no API token.
ENV_CHECK = r"""
import json, os, re, sys
env = os.environ
problems = []
expect = {"AD_PROJECT": "core-team", "AD_STREAM": "alpha", "AD_VERSION": r"core-team-[0-9a-f]{16}",
          "AD_VERSION_HASH": r"sha256:[0-9a-f]{64}"}
problems += [key for key, pattern in expect.items() if not re.fullmatch(pattern, env.get(key, ""))]
components = {c["name"]: c for c in json.loads(env.get("AD_COMPONENTS", "[]"))}
if sorted(components) != ["api", "web", "worker"]:
    problems.append("AD_COMPONENTS")
for name, component in components.items():
    key = "AD_COMPONENT_" + name.upper()
    if env.get(key + "_COMMIT") != component["commit"] or not re.fullmatch(
            "[0-9a-f]{40}", component["commit"]):
        problems.append(key + "_COMMIT")
    if env.get(key + "_REPO") != component["repo"]:
        problems.append(key + "_REPO")
if os.path.exists("/var/run/secrets/kubernetes.io/serviceaccount/token"):
    problems.append("an API token is mounted")
print(json.dumps({"version": env.get("AD_VERSION"), "problems": problems}))
sys.exit(1 if problems else 0)
"""

def _suite(name: str, code: str, timeout: str, image: str | None = None) -> dict:
    return {"name": name, "image": image or python_git_image().name,
            "command": ["python3", "-c", code], "timeout": timeout}


def _edit(data: dict) -> None:
    for project in data["projects"]:
        if project["name"] == "core-team":
            project["testSuites"] = {
                "alpha": [_suite("env-check", ENV_CHECK, "2m"),
                          _suite("quick", "print('quick suite passed')", "2m")],
                "nightly": [_suite("nightly-smoke", "print('nightly suite passed')", "2m")]}
        else:
            project["testSuites"] = {
                "alpha": [_suite("exits-3", "import sys; print('failing on purpose'); sys.exit(3)", "2m"),
                          _suite("too-slow", "import time; time.sleep(600)", "8s"),
                          _suite("no-image", "print('never runs')", "30s",
                                 image="e2e.local/no-such-image:1"),
                          {**_suite("oom", "x = bytearray(512 * 1024 * 1024); print(len(x))", "2m"),
                           "resources": {"requests": {"memory": "32Mi"},
                                         "limits": {"memory": "48Mi"}}}],
                "nightly": [_suite("nightly-smoke", "print('nightly')", "2m")]}


@pytest.fixture(scope="module")
def platform(cluster, events_controller, served, tmp_path_factory):  # noqa: F811
    return install(cluster, served, tmp_path_factory, edit=_edit)


def version(cluster, namespace: str, name: str) -> dict:
    return cluster.kube.request("GET", f"{GROUP}/{namespace}/versions/{name}")


def wait_stream(cluster, namespace: str, name: str, streams: tuple[str, ...], timeout: float = 240):
    def reached():
        found = version(cluster, namespace, name)
        return found if (found.get("status") or {}).get("stream") in streams else None
    return cluster.wait_for(f"Version {name} in stream {'/'.join(streams)}", reached, timeout,
                            logs=["workflow-controller"])


def runs_of(cluster, namespace: str, template: str, name: str) -> list[dict]:
    return [w for w in workflows(cluster, namespace, template)
            if any(p["name"] == "version" and p.get("value") == name
                   for p in w["spec"]["arguments"]["parameters"])]


def suite_logs(cluster, namespace: str, run: dict) -> dict[str, str]:
    """The logs of a run's failed suites whose pods are still there (podGC keeps failed ones)."""
    found = {}
    for pod in cluster.kube.request("GET", f"/api/v1/namespaces/{namespace}/pods")["items"]:
        name = pod["metadata"]["name"]
        if name.startswith(run.get("workflow", "?")) and "-suite-" in name:
            found[name] = cluster.pod_logs(namespace, name, "main")[-2000:]
    return found


def condition(doc: dict, kind: str) -> str:
    return {c["type"]: c["status"] for c in doc["status"]["conditions"]}[kind]


@pytest.fixture(scope="module")
def pushed(cluster, platform, served):  # noqa: F811
    """One push to `api` (a component of both projects): a new Version in each."""
    daemon, repos = served
    before = {ns: {v["metadata"]["name"] for v in versions(cluster, ns)} for ns in (CORE, PARTNER)}
    commit = push_commit(repos["api"], "main")
    body = payload("acme-platform", "api", "main", commit)
    assert deliver(cluster, body, sign(body)) == "200"

    def created(ns):
        fresh = [v for v in versions(cluster, ns) if v["metadata"]["name"] not in before[ns]]
        return fresh[0] if fresh else None
    return {ns: cluster.wait_for(f"a new Version in {ns}", lambda ns=ns: created(ns), 180,
                                 logs=["workflow-controller"])["metadata"]["name"]
            for ns in (CORE, PARTNER)}


def test_alpha_suites_pass_and_the_version_moves_to_nightly(cluster, pushed):
    name = pushed[CORE]
    found = wait_stream(cluster, CORE, name, ("nightly", "failed"))
    alpha = found["status"]["streams"]["alpha"]
    if found["status"]["stream"] != "nightly":
        for pod, log in suite_logs(cluster, CORE, alpha).items():
            print(f"--- {pod}\n{log}")
    assert found["status"]["stream"] == "nightly", alpha
    assert alpha["phase"] == "Succeeded" and alpha["reason"] == "AllSuitesPassed"
    assert {r["suite"]: (r["phase"], r["reason"]) for r in alpha["results"]} == {
        "env-check": ("Succeeded", "Completed"), "quick": ("Succeeded", "Completed")}
    assert all(r["startedAt"] <= r["finishedAt"] for r in alpha["results"])
    assert condition(found, "AlphaPassed") == "True"
    assert condition(found, "NightlyPassed") == "Unknown"
    [run] = runs_of(cluster, CORE, "run-stream", name)   # exactly one alpha Workflow
    assert alpha["workflow"] == run["metadata"]["name"]


def test_each_way_a_suite_fails_is_reported(cluster, pushed):
    name = pushed[PARTNER]
    found = wait_stream(cluster, PARTNER, name, ("failed", "nightly"), timeout=300)
    alpha = found["status"]["streams"]["alpha"]
    assert found["status"]["stream"] == "failed", alpha
    assert alpha["phase"] == "Failed" and alpha["reason"] == "SuitesFailed"
    results = {r["suite"]: r for r in alpha["results"]}
    assert (results["exits-3"]["reason"], results["exits-3"].get("exitCode")) == ("ExitCode", 3), \
        results["exits-3"]
    assert "exited with code 3" in results["exits-3"]["message"]
    assert results["too-slow"]["reason"] == "Timeout", results["too-slow"]
    assert "8s" in results["too-slow"]["message"]
    assert results["no-image"]["reason"] == "ImageError", results["no-image"]
    assert "no-such-image" in results["no-image"]["message"]
    assert (results["oom"]["reason"], results["oom"].get("exitCode")) == ("OOMKilled", 137), \
        results["oom"]
    assert "out of memory" in results["oom"]["message"]
    assert condition(found, "AlphaPassed") == "False"


def _nightly_now(cluster, namespace: str) -> dict:
    """Run the CronWorkflow now, as `argo cron trigger`/`argo submit --from cronwf/` do: a
    Workflow with the CronWorkflow's workflowSpec."""
    cron = cluster.kube.request(
        "GET", f"/apis/argoproj.io/v1alpha1/namespaces/{namespace}/cronworkflows/nightly")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    workflow = cluster.kube.request(
        "POST", f"/apis/argoproj.io/v1alpha1/namespaces/{namespace}/workflows",
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
         "metadata": {"generateName": "nightly-", "namespace": namespace,
                      "labels": {"workflows.argoproj.io/cron-workflow": "nightly"}},
         "spec": cron["spec"]["workflowSpec"]})
    return cluster.wait_workflow(namespace, workflow["metadata"]["name"], timeout=300)


def test_nightly_makes_a_candidate_and_skips_failed_versions(cluster, pushed):
    assert wait_stream(cluster, CORE, pushed[CORE], ("nightly", "failed"))["status"]["stream"] \
        == "nightly"
    assert wait_stream(cluster, PARTNER, pushed[PARTNER], ("failed", "nightly"),
                       timeout=300)["status"]["stream"] == "failed"
    done = _nightly_now(cluster, CORE)
    assert done["status"]["phase"] == "Succeeded"
    found = wait_stream(cluster, CORE, pushed[CORE], ("candidate", "failed"))
    assert found["status"]["stream"] == "candidate", found["status"]
    nightly = found["status"]["streams"]["nightly"]
    assert nightly["workflow"] == done["metadata"]["name"]
    assert [(r["suite"], r["phase"]) for r in nightly["results"]] == [("nightly-smoke", "Succeeded")]
    assert condition(found, "NightlyPassed") == "True"
    # the partner's failed Version is not picked: its nightly run finds nothing to do
    done = _nightly_now(cluster, PARTNER)
    assert done["status"]["phase"] == "Succeeded"
    failed = version(cluster, PARTNER, pushed[PARTNER])
    assert failed["status"]["stream"] == "failed" and "nightly" not in failed["status"]["streams"]


def _approve(cluster, namespace: str, name: str, user, approved_by: str | None = None,
             comment: str = "e2e"):
    body = {"spec": {"approval": {"approvedBy": approved_by or user[0],
                                  "approvedAt": "2026-11-29T12:00:00Z", "comment": comment}}}
    return cluster.kube.request("PATCH", f"{GROUP}/{namespace}/versions/{name}", body,
                                content_type="application/merge-patch+json", as_user=user)


def _refused(call) -> str:
    with pytest.raises(ApiError) as caught:
        call()
    assert caught.value.status in (403, 422), caught.value
    return caught.value.body.get("message", "")


def test_sign_off_is_enforced_by_the_api_server_and_releases_once(cluster, pushed):
    name = pushed[CORE]
    assert wait_stream(cluster, CORE, name, ("candidate", "released", "failed"))["status"][
        "stream"] == "candidate"
    # a developer may patch Versions (to ask for a re-run) but not approve one
    message = _refused(lambda: _approve(cluster, CORE, name, DEVELOPER))
    assert "e2e-dev may not approve Versions in core-team" in message, message
    # a product owner of another project holds `approve` only there
    message = _refused(lambda: _approve(cluster, CORE, name, PARTNER_MANAGER))
    assert "argo-delivery-product-owner" in message or "forbidden" in message.lower(), message
    # a product owner cannot approve in someone else's name
    message = _refused(lambda: _approve(cluster, CORE, name, PRODUCT_OWNER, approved_by="e2e-boss"))
    assert "must be your own user name, e2e-po" in message, message
    # nor approve a Version that is not a candidate
    message = _refused(lambda: _approve(cluster, PARTNER, pushed[PARTNER], PARTNER_MANAGER))
    assert "only a candidate Version can be approved" in message and "failed" in message, message
    assert not runs_of(cluster, CORE, "release", name)

    t0 = time.monotonic()
    _approve(cluster, CORE, name, PRODUCT_OWNER)
    released = wait_stream(cluster, CORE, name, ("released",), timeout=180)
    print(f"approval -> released in {time.monotonic() - t0:.1f} s")
    assert released["status"]["releasedAt"]
    assert condition(released, "Released") == "True" and condition(released, "Approved") == "True"
    assert released["spec"]["approval"]["approvedBy"] == "e2e-po"
    # the approval is final, even for its author
    message = _refused(lambda: _approve(cluster, CORE, name, PRODUCT_OWNER, comment="edited"))
    assert "never changed or withdrawn" in message, message
    # further updates (a label, a re-run request the Sensor ignores for a released Version)
    # start no second release
    cluster.kube.request("PATCH", f"{GROUP}/{CORE}/versions/{name}",
                         {"metadata": {"labels": {"e2e": "touched"},
                                       "annotations": {"argo-delivery.io/rerun-alpha": "x"}}},
                         content_type="application/merge-patch+json", as_user=DEVELOPER)
    time.sleep(10)
    [run] = runs_of(cluster, CORE, "release", name)
    assert run["status"]["phase"] == "Succeeded"
    assert len(runs_of(cluster, CORE, "run-stream", name)) == 1   # alpha only: no re-run


def test_a_rerun_replaces_the_result_and_keeps_the_history(cluster, pushed):
    name = pushed[PARTNER]
    before = version(cluster, PARTNER, name)["status"]["streams"]["alpha"]
    cluster.kube.request("PATCH", f"{GROUP}/{PARTNER}/versions/{name}",
                         {"metadata": {"annotations": {"argo-delivery.io/rerun-alpha": "e2e-1"}}},
                         content_type="application/merge-patch+json",
                         as_user=("e2e-partner-dev", ["northwind:engineers"]))

    def rerun_done():
        alpha = version(cluster, PARTNER, name)["status"]["streams"]["alpha"]
        return alpha if alpha["workflow"] != before["workflow"] and \
            alpha["phase"] in ("Succeeded", "Failed", "Error") else None
    alpha = cluster.wait_for("the re-run of alpha", rerun_done, 300, logs=["workflow-controller"])
    assert alpha["request"] == "e2e-1" and alpha["phase"] == "Failed"
    assert [h["workflow"] for h in alpha["history"]] == [before["workflow"]]
    assert len(runs_of(cluster, PARTNER, "run-stream", name)) == 2


def test_version_to_alpha_latency(cluster, platform, served):  # noqa: F811
    """Version created -> alpha Workflow created, five Versions (printed, not asserted): the
    test polls both every 50 ms from the moment it sent the push."""
    daemon, repos = served
    samples = []
    for _ in range(5):
        before = {v["metadata"]["name"] for v in versions(cluster, CORE)}
        commit = push_commit(repos["web"], "main")
        body = payload("acme-platform", "web", "main", commit)
        assert deliver(cluster, body, sign(body)) == "200"
        fresh = cluster.wait_for("a new Version", lambda before=before: [
            v for v in versions(cluster, CORE) if v["metadata"]["name"] not in before], 180,
            interval=0.05)[0]
        seen = time.monotonic()
        name = fresh["metadata"]["name"]
        cluster.wait_for("its alpha Workflow", lambda name=name: runs_of(
            cluster, CORE, "run-stream", name), 120, interval=0.05)
        samples.append(time.monotonic() - seen)
        wait_stream(cluster, CORE, name, ("nightly", "failed"))
    print(f"Version created -> alpha Workflow created: median {statistics.median(samples):.2f} s "
          f"over {len(samples)} (samples {', '.join(f'{s:.2f}' for s in samples)})")
