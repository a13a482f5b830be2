"""Under load and faults, on the real cluster: nothing lost, nothing duplicated.

A project of its own (`load-team`, three components on a git daemon of its own, no test
suites, so each Version's alpha run is short) takes the load, so the other modules' projects
see none of it; its Sensors and namespace are removed at the end.

Load: tests/e2e/loadgen.py sends signed pushes from the host to the EventSource's Service
(ClusterIP, through kube-proxy), in rounds that each move one component's head, with exact
redeliveries and interleaved pushes of the other components' heads. Accounted for: every
delivery is answered 2xx and starts exactly one generate-version Workflow (traced by the
push's sender), every Workflow succeeds, the created ones equal the new Versions, every other
one found its Version existing, every Version's hash recomputes, and the final heads have
their Version.
"""

from __future__ import annotations

import base64
import collections
import time
from datetime import datetime

import pytest

from argo_delivery.versionhash import version_hash, version_name
from tests.e2e import loadgen
from tests.e2e.test_push_to_version import (
    ORCHESTRATOR,
    SECRET,
    _ready,
    _subscribed,
    install,
    served,  # noqa: F401 (a fixture)
    versions,
    workflows,
)
from tests.gitrepos import GitDaemon, make_repo, push_commit

pytestmark = pytest.mark.e2e

LOAD, LOAD_NS, OWNER = "load-team", "load-team", "acme-load"
COMPONENTS = [loadgen.Component(OWNER, name, "main") for name in ("load-a", "load-b", "load-c")]
SENSORS = (f"on-push-{LOAD}", f"on-version-{LOAD}")
GROUP = "/apis/argo-delivery.io/v1alpha1/namespaces"


@pytest.fixture(scope="module")
def load_repos(cluster, tmp_path_factory):
    root = tmp_path_factory.mktemp("load-served")
    (root / OWNER).mkdir()
    repos = {c.name: make_repo(root / OWNER, c.name, {"main": 1}) for c in COMPONENTS}
    with GitDaemon(root, host=cluster.node_ip) as daemon:
        yield daemon, repos


@pytest.fixture(scope="module")
def load_platform(cluster, events_controller, served, load_repos, tmp_path_factory):  # noqa: F811
    """The default platform plus load-team; removed (its Sensors, its namespace) afterwards."""
    daemon, repos = load_repos

    def edit(data):
        core = next(p for p in data["projects"] if p["name"] == "core-team")
        for c in COMPONENTS:
            data["components"].append({"name": c.name, "repo": daemon.url(repos[c.name]),
                                       "branch": c.branch, "deployPath": "deploy"})
        data["projects"].append({"name": LOAD, "namespace": LOAD_NS, "type": "internal",
                                 "members": core["members"],
                                 "components": [c.name for c in COMPONENTS],
                                 "testSuites": {"alpha": [], "nightly": []}})
    install(cluster, served, tmp_path_factory, edit=edit)
    # the EventSource's spec changed (three more repositories): wait for its new pod
    cluster.wait_for("the EventSource rolled out", lambda: _rolled_out(cluster, "git-push-eventsource"),
                     180, logs=["kubelet"])
    for sensor in SENSORS:
        cluster.wait_for(f"{sensor} ready", lambda s=sensor: _ready(cluster, f"{s}-sensor"), 180,
                         logs=["kubelet"])
        cluster.wait_for(f"{sensor} subscribed",
                         lambda s=sensor: _subscribed(cluster, f"{s}-sensor"), 120, logs=["kubelet"])
    yield daemon, repos
    for sensor in SENSORS:
        cluster.kube.request("DELETE", f"/apis/argoproj.io/v1alpha1/namespaces/{ORCHESTRATOR}"
                                       f"/sensors/{sensor}", ok=(404,))
    cluster.delete_namespace(LOAD_NS)


def _rolled_out(cluster, prefix: str) -> bool:
    found = [d for d in cluster.kube.request(
        "GET", f"/apis/apps/v1/namespaces/{ORCHESTRATOR}/deployments")["items"]
        if d["metadata"]["name"].startswith(prefix)]
    if not found:
        return False
    d = found[0]
    status = d.get("status") or {}
    replicas = d["spec"].get("replicas", 1)
    return (status.get("observedGeneration") == d["metadata"]["generation"]
            and status.get("updatedReplicas") == replicas == status.get("readyReplicas")
            and status.get("replicas") == replicas)


def push_url(cluster) -> str:
    service = cluster.kube.request(
        "GET", f"/api/v1/namespaces/{ORCHESTRATOR}/services/git-push-eventsource-svc")
    return f"http://{service['spec']['clusterIP']}:12000/push"


def _sender(workflow: dict) -> str:
    return next(base64.b64decode(p["value"]).decode()
                for p in workflow["spec"]["arguments"]["parameters"] if p["name"] == "sender")


def _result(workflow: dict) -> str | None:
    """generate-version's outcome (created, exists) from the step's output parameter."""
    for node in (workflow.get("status") or {}).get("nodes", {}).values():
        for p in (node.get("outputs") or {}).get("parameters") or []:
            if p["name"] == "result" and p.get("value") in ("created", "exists"):
                return p["value"]
    return None


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def account(cluster, result: loadgen.LoadResult, before: set[str], heads: dict[str, str],
            timeout: float = 900) -> dict:
    """Wait until every accepted delivery's Workflow has finished; what they made of it."""
    wanted = collections.Counter(d.sender for d in result.accepted)

    def finished():
        runs = [w for w in workflows(cluster, LOAD_NS) if w["metadata"]["name"] not in before]
        done = [w for w in runs if (w.get("status") or {}).get("phase") in
                ("Succeeded", "Failed", "Error")]
        return runs if len(done) == len(runs) >= sum(wanted.values()) else None
    runs = cluster.wait_for(f"{sum(wanted.values())} generate-version Workflows finished",
                            finished, timeout, logs=["workflow-controller"], interval=2)
    time.sleep(10)   # a late duplicate would show up here
    runs = [w for w in workflows(cluster, LOAD_NS) if w["metadata"]["name"] not in before]
    return {"runs": runs, "wanted": wanted,
            "started": collections.Counter(_sender(w) for w in runs)}


def check_versions(cluster, heads: dict[str, str], daemon, repos) -> list[dict]:
    """Every Version of load-team: its hash recomputes from its components, its name from its
    hash; the current heads have one."""
    found = versions(cluster, LOAD_NS)
    for v in found:
        components = [{"name": c["name"], "repo": c["repo"], "commit": c["commit"]}
                      for c in v["spec"]["components"]]
        digest = version_hash(LOAD, components)
        assert v["spec"]["hash"] == digest, v["metadata"]["name"]
        assert v["metadata"]["name"] == version_name(LOAD, digest)
    final = version_hash(LOAD, [{"name": c.name, "repo": daemon.url(repos[c.name]),
                                 "commit": heads[c.name]} for c in COMPONENTS])
    assert version_name(LOAD, final) in {v["metadata"]["name"] for v in found}, \
        "the final heads have no Version"
    return found


def latencies(result: loadgen.LoadResult, runs: list[dict]) -> list[float]:
    """Push -> its Workflow finished (the Version created or found), per delivery: the
    deliveries and Workflows of one sender paired in time order."""
    by_sender = collections.defaultdict(list)
    for w in runs:
        by_sender[_sender(w)].append(_epoch(w["status"]["finishedAt"]))
    out = []
    for sender, finished in by_sender.items():
        sent = sorted(d.sent_at for d in result.accepted if d.sender == sender)
        out += [f - s for s, f in zip(sent, sorted(finished), strict=False)]
    return out


def run_and_account(cluster, daemon, repos, *, pushes: int, rounds: int, seconds: float,
                    progress=print) -> dict:
    before = {w["metadata"]["name"] for w in workflows(cluster, LOAD_NS)}
    versions_before = {v["metadata"]["name"] for v in versions(cluster, LOAD_NS)}
    result = loadgen.run_load(
        push_url(cluster), SECRET, COMPONENTS,
        commit=lambda c: push_commit(repos[c.name], c.branch),
        heads=lambda c: repos[c.name].heads[c.branch],
        pushes=pushes, rounds=rounds, seconds=seconds, progress=progress)
    heads = {c.name: repos[c.name].heads[c.branch] for c in COMPONENTS}
    accounted = account(cluster, result, before, heads)
    found = check_versions(cluster, heads, daemon, repos)
    new = [v for v in found if v["metadata"]["name"] not in versions_before]
    runs = accounted["runs"]
    outcomes = collections.Counter(_result(w) for w in runs)
    times = latencies(result, runs)
    first = min(d.sent_at for d in result.deliveries)
    last_version = max((_epoch(v["metadata"]["creationTimestamp"]) for v in new), default=first)
    return {"result": result, "runs": runs, "new": new, "outcomes": outcomes,
            "wanted": accounted["wanted"], "started": accounted["started"],
            "latency": loadgen.percentiles(times),
            "versions_per_minute": round(len(new) / max(1.0, last_version - first) * 60, 1)}


def test_load_exactly_one_version_per_commit_set(cluster, load_platform):
    daemon, repos = load_platform
    report = run_and_account(cluster, daemon, repos, pushes=50, rounds=10, seconds=30)
    result = report["result"]
    kinds = collections.Counter("redelivery" if d.redelivery else "interleaved" if d.interleaved
                                else "push" for d in result.deliveries)
    print(f"\nload: {len(result.deliveries)} deliveries ({dict(kinds)}) in "
          f"{result.finished - result.started:.1f} s; {len(report['runs'])} Workflows; "
          f"outcomes {dict(report['outcomes'])}; {len(report['new'])} new Versions; "
          f"push -> Version {report['latency']} s; {report['versions_per_minute']} Versions/min")
    assert not result.stopped_early
    assert not result.refused, [(d.index, d.status, d.error) for d in result.refused]
    assert kinds["redelivery"] and kinds["interleaved"], "the plan has no duplicates"
    # each delivery, redeliveries included, started exactly one Workflow: nothing lost, and no
    # duplicate from the EventBus (JetStream's at-least-once did not deliver one twice here)
    assert report["started"] == report["wanted"]
    phases = collections.Counter(w["status"]["phase"] for w in report["runs"])
    assert phases == {"Succeeded": len(report["runs"])}, phases
    # the duplicates were resolved at the step: exactly one run created each new Version
    assert report["outcomes"]["created"] == len(report["new"])
    assert report["outcomes"]["exists"] == len(report["runs"]) - len(report["new"])
    assert 1 <= len(report["new"]) <= 10
    # one Version per commit set: no two Versions share their components' commits
    sets = [tuple(sorted((c["name"], c["commit"]) for c in v["spec"]["components"]))
            for v in versions(cluster, LOAD_NS)]
    assert len(sets) == len(set(sets))

