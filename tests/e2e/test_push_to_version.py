"""Flow F1 for real: a signed push webhook -> the EventSource -> the project's Sensor -> the
generate-version Workflow -> exactly one Version, on the real cluster with the real Argo
controllers, the bundle installed as its README tells an operator.

The component repositories are served by `git daemon` on the node IP (pods reach it over the
bridge); the push payload is GitHub's, signed with the webhook Secret, POSTed from a pod to
the EventSource Service by its DNS name.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import time
import uuid
from pathlib import Path

import pytest
import yaml

from argo_delivery.config import default_config_text
from argo_delivery.versionhash import version_hash, version_name
from tests.e2e.images import python_git_image
from tests.gitrepos import GitDaemon, make_repo, push_commit

pytestmark = pytest.mark.e2e

ORCHESTRATOR, CORE, PARTNER = "argo-delivery", "core-team", "partner-northwind"
SECRET = "e2e-webhook-secret"
PAYLOAD = Path(__file__).resolve().parents[1] / "conformance" / "payloads" / "github-push.json"
REPOS = {"acme-platform": ("api", "web", "worker"), "northwind-partners": ("billing-adapter",)}
CORE_BRANCHES = {"api": "main", "web": "main", "worker": "release"}
RESTRICTED = {"runAsNonRoot": True, "runAsUser": 65532, "allowPrivilegeEscalation": False,
              "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}

# Runs in a pod: POST the signed payload to the EventSource, retrying until it listens.
POST = """
import json, os, sys, time, urllib.error, urllib.request
for attempt in range(30):
    request = urllib.request.Request(os.environ["URL"], data=os.environ["BODY"].encode(),
                                     method="POST", headers=json.loads(os.environ["HEADERS"]))
    try:
        print(urllib.request.urlopen(request, timeout=5).status); sys.exit(0)
    except urllib.error.HTTPError as e:
        print(e.code); sys.exit(0)
    except OSError as e:
        print("retry:", e, flush=True); time.sleep(2)
sys.exit(1)
"""


@pytest.fixture(scope="module")
def served(cluster, tmp_path_factory):
    """The four component repos on a git daemon at the node IP, by their GitHub paths."""
    root = tmp_path_factory.mktemp("served")
    repos = {}
    for owner, names in REPOS.items():
        (root / owner).mkdir()
        for name in names:
            repos[name] = make_repo(root / owner, name, {"main": 1, "release": 1})
    with GitDaemon(root, host=cluster.node_ip) as daemon:
        yield daemon, repos


@pytest.fixture(scope="module")
def installed(cluster, events_controller, served, tmp_path_factory):
    """The default platform, its repos on the git daemon, installed as the bundle README says."""
    return install(cluster, served, tmp_path_factory)


def install(cluster, served, tmp_path_factory, edit=None) -> Path:
    """Render the default platform (changed by `edit(data)` when given) with its repos on the
    git daemon, install it as the bundle README says, wait for its Argo Events pods."""
    daemon, repos = served
    text = default_config_text()
    for owner, names in REPOS.items():
        for name in names:
            text = text.replace(f"https://github.com/{owner}/{name}.git", daemon.url(repos[name]))
    if edit is not None:
        data = yaml.safe_load(text)
        edit(data)
        text = yaml.safe_dump(data, sort_keys=False)
    bundle_dir = cluster.render_bundle(tmp_path_factory.mktemp("dist"), text)
    cluster.kube.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ORCHESTRATOR}},
                        {"apiVersion": "v1", "kind": "Secret",
                         "metadata": {"name": "git-webhook-secret", "namespace": ORCHESTRATOR},
                         "stringData": {"secret": SECRET}}], field_manager="e2e-operator")
    t0 = time.monotonic()
    cluster.apply_bundle(bundle_dir)
    sensors = [f"{kind}-{project}-sensor" for kind in ("on-push", "on-version")
               for project in ("core-team", "northwind")]
    for prefix in ("git-push-eventsource", "versions-eventsource", *sensors):
        cluster.wait_for(f"Deployment {prefix} ready", lambda p=prefix: _ready(cluster, p), 240,
                         logs=["kubelet"])
    for sensor in sensors:
        cluster.wait_for(f"{sensor} subscribed", lambda s=sensor: _subscribed(cluster, s), 120,
                         logs=["kubelet"])
    print(f"bundle applied, EventSources and Sensors ready in {time.monotonic() - t0:.1f} s")
    return bundle_dir


def _ready(cluster, prefix: str):
    for d in cluster.kube.request("GET", f"/apis/apps/v1/namespaces/{ORCHESTRATOR}/deployments")["items"]:
        if d["metadata"]["name"].startswith(prefix) and (d.get("status") or {}).get("readyReplicas"):
            return d
    return None


def _pods(cluster, namespace: str, prefix: str) -> list[dict]:
    return [p for p in cluster.kube.request("GET", f"/api/v1/namespaces/{namespace}/pods")["items"]
            if p["metadata"]["name"].startswith(prefix)]


def _subscribed(cluster, prefix: str) -> bool:
    # A Sensor only gets events published after it subscribed (see tests/e2e/README.md).
    return any("Subscribing to subject" in cluster.pod_logs(ORCHESTRATOR, p["metadata"]["name"])
               for p in _pods(cluster, ORCHESTRATOR, prefix))


def payload(owner: str, name: str, branch: str, commit: str) -> bytes:
    data = json.loads(PAYLOAD.read_text())
    data["ref"], data["after"] = f"refs/heads/{branch}", commit
    data["repository"].update(full_name=f"{owner}/{name}", name=name,
                              clone_url=f"https://github.com/{owner}/{name}.git")
    data["sender"]["login"] = "e2e-alice"
    return json.dumps(data).encode()


def deliver(cluster, body: bytes, signature: str | None, path: str = "/push") -> str:
    """POST a push from a pod (restricted, no token), as GitHub would; the HTTP status."""
    headers = {"Content-Type": "application/json", "X-GitHub-Event": "push",
               "X-GitHub-Delivery": str(uuid.uuid4())}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    name = f"push-{uuid.uuid4().hex[:8]}"
    url = f"http://git-push-eventsource-svc.{ORCHESTRATOR}.svc.cluster.local:12000{path}"
    cluster.kube.apply([{
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ORCHESTRATOR},
        "spec": {"restartPolicy": "Never", "automountServiceAccountToken": False,
                 "containers": [{"name": "main", "image": python_git_image().name,
                                 "command": ["python3", "-c", POST],
                                 "env": [{"name": "URL", "value": url},
                                         {"name": "BODY", "value": body.decode()},
                                         {"name": "HEADERS", "value": json.dumps(headers)}],
                                 "securityContext": RESTRICTED,
                                 "resources": {"limits": {"cpu": "200m", "memory": "64Mi"}}}]}}],
        field_manager="e2e-provider")
    cluster.wait_pod(ORCHESTRATOR, name, timeout=90)
    return cluster.pod_logs(ORCHESTRATOR, name).strip().splitlines()[-1]


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def workflows(cluster, namespace: str, template: str | None = "generate-version") -> list[dict]:
    """The Workflows in `namespace` made from `template` (None: all of them)."""
    found = cluster.kube.request(
        "GET", f"/apis/argoproj.io/v1alpha1/namespaces/{namespace}/workflows")["items"]
    return [w for w in found if template is None
            or (w["spec"].get("workflowTemplateRef") or {}).get("name") == template]


def versions(cluster, namespace: str) -> list[dict]:
    return cluster.kube.request(
        "GET", f"/apis/argo-delivery.io/v1alpha1/namespaces/{namespace}/versions")["items"]


def new_workflow(cluster, namespace: str, known: set[str], timeout: float = 90,
                 template: str | None = "generate-version") -> dict:
    def created():
        fresh = [w for w in workflows(cluster, namespace, template)
                 if w["metadata"]["name"] not in known]
        return fresh[0] if fresh else None
    return cluster.wait_for(f"a new Workflow in {namespace}", created, timeout,
                            logs=["workflow-controller"])


def expected(repos, daemon) -> tuple[str, str]:
    components = [{"name": n, "repo": daemon.url(repos[n]), "commit": repos[n].heads[b]}
                  for n, b in CORE_BRANCHES.items()]
    digest = version_hash("core-team", components)
    return digest, version_name("core-team", digest)


def test_push_creates_exactly_one_version(cluster, installed, served):
    daemon, repos = served
    known = {w["metadata"]["name"] for w in workflows(cluster, CORE)}
    commit = push_commit(repos["api"], "main")
    body = payload("acme-platform", "api", "main", commit)
    t0 = time.monotonic()
    assert deliver(cluster, body, sign(body)) == "200"
    workflow = new_workflow(cluster, CORE, known)
    done = cluster.wait_workflow(CORE, workflow["metadata"]["name"], timeout=240)
    latency = time.monotonic() - t0
    digest, name = expected(repos, daemon)
    [version] = versions(cluster, CORE)
    assert version["metadata"]["name"] == name and version["spec"]["hash"] == digest
    assert version["spec"]["trigger"]["commit"] == commit
    assert version["spec"]["trigger"]["sender"] == "e2e-alice"
    print(f"push -> Version in {latency:.1f} s")

    # each pod ran as the ServiceAccount meant for it, with a token only where it needs one
    [pod] = [p for p in cluster.kube.request("GET", f"/api/v1/namespaces/{CORE}/pods")["items"]
             if p["metadata"]["name"].startswith(done["metadata"]["name"])] or [None]
    if pod is not None:   # podGC deletes it on success; when it is still there, check it
        assert pod["spec"]["serviceAccountName"] == "argo-delivery-version-writer"
        assert pod["spec"]["automountServiceAccountToken"] is False
    [sensor_pod] = _pods(cluster, ORCHESTRATOR, "on-push-core-team-sensor")
    assert sensor_pod["spec"]["serviceAccountName"] == "argo-delivery-sensor-on-push-core-team"
    [source_pod] = _pods(cluster, ORCHESTRATOR, "git-push-eventsource")
    assert source_pod["spec"]["serviceAccountName"] == "argo-delivery-eventsource"
    assert not any("projected" in v for v in source_pod["spec"].get("volumes", [])), \
        "the EventSource pod has an API token"

    # the same push again: a Workflow runs, and no second Version appears
    known |= {workflow["metadata"]["name"]}
    assert deliver(cluster, body, sign(body)) == "200"
    again = new_workflow(cluster, CORE, known)
    cluster.wait_workflow(CORE, again["metadata"]["name"], timeout=240)
    assert [v["metadata"]["name"] for v in versions(cluster, CORE)] == [name]


@pytest.mark.parametrize("case", ["wrong-signature", "no-signature", "untracked-branch"])
def test_push_that_must_not_start_anything(cluster, installed, served, case):
    daemon, repos = served
    known = {w["metadata"]["name"] for w in workflows(cluster, CORE)}
    commit = push_commit(repos["web"], "main")
    if case == "untracked-branch":
        body = payload("acme-platform", "web", "feature", commit)
        assert deliver(cluster, body, sign(body)) == "200"
    else:
        body = payload("acme-platform", "web", "main", commit)
        signature = sign(body, "not-the-secret") if case == "wrong-signature" else None
        assert deliver(cluster, body, signature) != "200"
    # a signed push to a tracked branch right after it is handled: nothing in between started
    body = payload("acme-platform", "api", "main", repos["api"].heads["main"])
    assert deliver(cluster, body, sign(body)) == "200"
    first = new_workflow(cluster, CORE, known)
    cluster.wait_workflow(CORE, first["metadata"]["name"], timeout=240)
    time.sleep(5)
    started = [w for w in workflows(cluster, CORE) if w["metadata"]["name"] not in known]
    assert len(started) == 1, [w["metadata"]["name"] for w in started]


def push_with_the_repository_gone(cluster, served) -> dict:
    """Push to billing-adapter (the partner's) with its repository moved away until the
    generate-version run it starts has failed; that Workflow."""
    daemon, repos = served
    repo = repos["billing-adapter"]
    commit = push_commit(repo, "main")
    known = {w["metadata"]["name"] for w in workflows(cluster, PARTNER)}
    hidden = repo.path.with_name("moved-away.git")
    shutil.move(repo.path, hidden)
    try:
        body = payload("northwind-partners", "billing-adapter", "main", commit)
        assert deliver(cluster, body, sign(body)) == "200"
        workflow = new_workflow(cluster, PARTNER, known)
        return cluster.wait_workflow(PARTNER, workflow["metadata"]["name"],
                                     phases=("Failed", "Error"), timeout=240)
    finally:
        shutil.move(hidden, repo.path)


def test_a_missing_repository_fails_visibly(cluster, installed, served):
    """The partner's component repo disappears: its Workflow fails with the step's message and
    no Version is created for the push."""
    before = {v["metadata"]["name"] for v in versions(cluster, PARTNER)}
    failed = push_with_the_repository_gone(cluster, served)
    logs = "\n".join(cluster.pod_logs(PARTNER, p["metadata"]["name"], "main")
                     for p in _pods(cluster, PARTNER, failed["metadata"]["name"]))
    assert '"event": "failed", "message": "component billing-adapter: cannot read' in logs, logs
    assert {v["metadata"]["name"] for v in versions(cluster, PARTNER)} == before
    # exit 2 is permanent: no retry of the step
    retries = [n for n in failed["status"]["nodes"].values() if n.get("type") == "Pod"]
    assert len(retries) == 1, [n["displayName"] for n in retries]


def test_the_bundle_runs_under_pod_security_restricted(cluster, installed):
    for namespace in (CORE, PARTNER, ORCHESTRATOR):
        labels = cluster.get("v1", "Namespace", namespace)["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    # the Workflows above ran there; their pods were admitted (Argo's init and wait included)
    assert any((w.get("status") or {}).get("phase") == "Succeeded" for w in workflows(cluster, CORE))
    # and the pods Argo Events' controller built in the orchestrator namespace run there
    running = [p["metadata"]["name"] for p in _pods(cluster, ORCHESTRATOR, "")
               if p["status"].get("phase") == "Running"]
    for prefix in ("eventbus-default-js-", "git-push-eventsource-", "on-push-core-team-sensor-"):
        assert any(name.startswith(prefix) for name in running), (prefix, running)


def _decoded(workflow: dict) -> dict[str, str]:
    return {p["name"]: base64.b64decode(p["value"]).decode()
            for p in workflow["spec"]["arguments"]["parameters"]}


def test_the_sensor_workflow_carries_the_push(cluster, installed):
    [latest] = sorted(workflows(cluster, CORE), key=lambda w: w["metadata"]["creationTimestamp"])[-1:]
    assert _decoded(latest)["repo"].startswith("https://github.com/acme-platform/")
    assert latest["spec"]["workflowTemplateRef"] == {"name": "generate-version"}
    assert yaml.safe_dump(latest["spec"]).count("serviceAccountName") == 0   # nothing overridden
