"""Flows F5-F7 for real: Environments vended with a real OpenTofu (built here), a real provider
of our own (the fake cloud: a namespace, an admin ServiceAccount and a kubeconfig in this very
cluster, and "persistent disks" it leaks on purpose), the state in the project namespace (the
`kubernetes` backend), the module handed over as an Argo artifact through the cluster's S3
artifact repository, the Version's components deployed with kubectl; destroyed, swept and
reaped, on the real cluster with the real Argo controllers.

core-team's components carry deploy manifests (plain YAML and a kustomization); its infra
repository holds the module (tests/tofu-modules/fakecloud-env) under `env/`. The fake cloud's
credentials are a ServiceAccount token of this cluster in Secret `fakecloud-credentials`.
"""

from __future__ import annotations

import base64
import time
import uuid
from pathlib import Path

import pytest

from argo_delivery import envmodel
from tests.e2e.images import PAUSE_IMAGE, python_git_image, tofu_image
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
from tests.gitrepos import commit_files, make_repo
from tests.kube_server import ApiError
from tests.tofu import MODULE_DIR, cloud_rbac

pytestmark = pytest.mark.e2e

ENVS = "/apis/argo-delivery.io/v1alpha1/namespaces/{ns}/environments"
DEVELOPER = ("e2e-env-dev", ["acme:core-developers"])
OTHER_DEVELOPER = ("e2e-env-dev2", ["acme:core-developers"])
PARTNER_DEVELOPER = ("e2e-env-partner", ["northwind:engineers"])
PRODUCT_OWNER = ("e2e-env-po", ["acme:product-owners"])
CLOUD_NS, CLOUD_SA, DISKS_NS = "fakecloud-system", "fakecloud", "fakecloud-disks"
CREDENTIALS = "fakecloud-credentials"
ORCHESTRATOR = "argo-delivery"

# Deploy manifests of core-team's components: plain YAML (api, worker) and a kustomization (web).
API_DEPLOY = f"""apiVersion: v1
kind: ConfigMap
metadata: {{name: api-config}}
data: {{component: api}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: api}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: api}}}}
  template:
    metadata: {{labels: {{app: api}}}}
    spec:
      automountServiceAccountToken: false
      containers:
        - name: api
          image: {PAUSE_IMAGE}
          resources: {{limits: {{cpu: 50m, memory: 32Mi}}}}
"""
WEB_KUSTOMIZATION = """apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
configMapGenerator:
  - name: web-config
    literals: [component=web]
generatorOptions: {disableNameSuffixHash: true}
"""
WORKER_DEPLOY = """apiVersion: v1
kind: ConfigMap
metadata: {name: worker-config}
data: {component: worker}
"""


# The leak sweep lists and deletes a cluster's disks with the cloud's credentials.
SWEEPER = [
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
     "metadata": {"name": "disk-sweeper", "namespace": DISKS_NS},
     "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list", "delete"]}]},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
     "metadata": {"name": "disk-sweeper", "namespace": DISKS_NS},
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "disk-sweeper"},
     "subjects": [{"kind": "ServiceAccount", "name": CLOUD_SA, "namespace": CLOUD_NS}]},
]


def _edit(module_source: str):
    def edit(data: dict) -> None:
        image = tofu_image().name
        data["images"]["terraform"] = image
        data["environments"] = {"engine": "tofu", "expiryWarning": "1h", "applyTimeout": "10m"}
        for component in data["components"]:
            component["deployPath"] = "deploy"
        for project in data["projects"]:
            quick = {"name": "quick", "image": python_git_image().name,
                     "command": ["python3", "-c", "print('ok')"], "timeout": "2m"}
            project["testSuites"] = {"alpha": [quick], "nightly": [quick]}
            if project["name"] != "core-team":
                continue
            project["environments"] = {
                "terraformModule": f"git::{module_source}//env?ref=main",
                "variables": {"disk_count": "2"},
                "defaultTTL": "1h", "maxTTL": "2h",
                "credentialsSecret": CREDENTIALS,
                "leakSweep": {
                    "image": image, "command": ["kubectl"],
                    "args": ["delete", "configmaps", "-n", DISKS_NS,
                             "-l", "fakecloud.example/cluster=$(AD_ENVIRONMENT)",
                             "--server=$(FAKECLOUD_HOST)", "--token=$(FAKECLOUD_TOKEN)",
                             "--insecure-skip-tls-verify=true", "--ignore-not-found"],
                    "timeout": "2m"}}
            project["demoEnvironments"] = [{"name": "demo-core", "owner": PRODUCT_OWNER[0]}]
    return edit


@pytest.fixture(scope="module")
def platform(cluster, events_controller, served, tmp_path_factory):  # noqa: F811
    """The platform with core-team's environments on the fake cloud, and one Version whose
    components carry deploy manifests."""
    daemon, repos = served
    root = Path(daemon.base) / "acme-platform"
    infra = make_repo(root, "infra", {"main": 1})
    commit_files(infra, "main", {f"env/{p.name}": p.read_text()
                                 for p in sorted(Path(MODULE_DIR).glob("*.tf"))}, "module")
    cluster.kube.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": CLOUD_NS}},
                        *cloud_rbac(CLOUD_NS, CLOUD_SA, DISKS_NS), *SWEEPER],
                       field_manager="e2e-cloud")
    token = cluster.kube.token_for(CLOUD_NS, CLOUD_SA, expiration_seconds=6 * 3600)
    bundle = install(cluster, served, tmp_path_factory, edit=_edit(daemon.url(infra)))
    cluster.artifact_credentials(CORE)   # the artifact repository's key, as an operator adds it
    cluster.kube.apply([{"apiVersion": "v1", "kind": "Secret",
                         "metadata": {"name": CREDENTIALS, "namespace": CORE},
                         "stringData": {"FAKECLOUD_HOST": f"https://{cluster.node_ip}:6443",
                                        "FAKECLOUD_TOKEN": token,
                                        "FAKECLOUD_CA_CERT": cluster.kube.ca_file.read_text(),
                                        "FAKECLOUD_DISK_NAMESPACE": DISKS_NS}}],
                       field_manager="e2e-operator")
    for prefix in ("environments-eventsource", "on-environment-core-team-sensor"):
        cluster.wait_for(f"{prefix} ready", lambda p=prefix: _running(cluster, p), 240,
                         logs=["kubelet"])
    cluster.wait_for("on-environment Sensor subscribed", lambda: any(
        "Subscribing to subject" in cluster.pod_logs(ORCHESTRATOR, p["metadata"]["name"])
        for p in _pods(cluster, ORCHESTRATOR, "on-environment-core-team-sensor")), 120)
    # a Version whose three components carry deploy manifests
    for name, branch, files in (("api", "main", {"deploy/app.yaml": API_DEPLOY}),
                                ("web", "main", {"deploy/kustomization.yaml": WEB_KUSTOMIZATION}),
                                ("worker", "release", {"deploy/config.yaml": WORKER_DEPLOY})):
        commit_files(repos[name], branch, files, f"deploy manifests of {name}")
    before = {v["metadata"]["name"] for v in versions(cluster, CORE)}
    body = payload("acme-platform", "api", "main", repos["api"].heads["main"])
    assert deliver(cluster, body, sign(body)) == "200"
    version = cluster.wait_for("the Version with deploy manifests", lambda: next(
        (v for v in versions(cluster, CORE) if v["metadata"]["name"] not in before), None), 180,
        logs=["workflow-controller"])
    yield {"bundle": bundle, "version": version["metadata"]["name"], "repos": repos}
    # Leave the projects as found: every Environment destroyed through its finalizer while this
    # module's templates are installed, then the Versions (the later modules count theirs).
    for env in cluster.kube.request("GET", ENVS.format(ns=CORE))["items"]:
        cluster.kube.request("DELETE", ENVS.format(ns=CORE) + "/" + env["metadata"]["name"])
    cluster.wait_for("every Environment destroyed", lambda: not cluster.kube.request(
        "GET", ENVS.format(ns=CORE))["items"], 600, logs=["workflow-controller"])
    for namespace in (CORE, PARTNER):
        for version in versions(cluster, namespace):
            cluster.kube.request("DELETE", "/apis/argo-delivery.io/v1alpha1/namespaces/"
                                           f"{namespace}/versions/{version['metadata']['name']}")


def _pods(cluster, namespace: str, prefix: str) -> list[dict]:
    return [p for p in cluster.kube.request("GET", f"/api/v1/namespaces/{namespace}/pods")["items"]
            if p["metadata"]["name"].startswith(prefix)]


def _running(cluster, prefix: str) -> bool:
    return any((p.get("status") or {}).get("phase") == "Running"
               for p in _pods(cluster, ORCHESTRATOR, prefix))


def request_env(cluster, user, name: str, version: str, *, ttl: str | None = None,
                variables: dict | None = None) -> dict:
    body = {"apiVersion": "argo-delivery.io/v1alpha1", "kind": "Environment",
            "metadata": {"name": name, "namespace": CORE},
            "spec": {"project": "core-team", "version": version, "owner": user[0]}}
    if ttl:
        body["metadata"]["annotations"] = {"argo-delivery.io/ttl": ttl}
    if variables:
        body["spec"]["infrastructure"] = {"variables": variables}
    return cluster.kube.request("POST", ENVS.format(ns=CORE), body, as_user=user)


def get_env(cluster, name: str) -> dict | None:
    try:
        return cluster.kube.request("GET", ENVS.format(ns=CORE) + "/" + name)
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def wait_phase(cluster, name: str, phases: tuple[str, ...], timeout: float = 300) -> dict:
    def reached():
        found = get_env(cluster, name)
        return found if found and (found.get("status") or {}).get("phase") in phases else None
    try:
        return cluster.wait_for(f"Environment {name} in {'/'.join(phases)}", reached, timeout,
                                logs=["workflow-controller"])
    except Exception:
        print(cluster.dump_namespace(CORE))
        raise


def wait_gone(cluster, name: str, timeout: float = 300) -> None:
    try:
        cluster.wait_for(f"Environment {name} gone", lambda: get_env(cluster, name) is None,
                         timeout, logs=["workflow-controller"])
    except Exception:
        print(get_env(cluster, name))
        print(cluster.dump_namespace(CORE))
        raise


def disks(cluster, name: str) -> list[str]:
    items = cluster.kube.request(
        "GET", f"/api/v1/namespaces/{DISKS_NS}/configmaps?labelSelector="
               f"fakecloud.example/cluster%3D{name}")["items"]
    return sorted(i["metadata"]["name"] for i in items)


def exists(cluster, path: str) -> bool:
    try:
        cluster.kube.request("GET", path)
        return True
    except ApiError as exc:
        if exc.status == 404:
            return False
        raise


def state_objects(cluster, name: str) -> dict[str, bool]:
    return {"secret": exists(cluster, f"/api/v1/namespaces/{CORE}/secrets/"
                                      f"{envmodel.state_secret(name)}"),
            "lease": exists(cluster, f"/apis/coordination.k8s.io/v1/namespaces/{CORE}/leases/"
                                     f"{envmodel.state_lease(name)}")}


def cloud_namespace_gone(cluster, name: str) -> bool:
    try:
        ns = cluster.kube.request("GET", f"/api/v1/namespaces/fc-{name}")
    except ApiError as exc:
        return exc.status == 404
    return bool(ns["metadata"].get("deletionTimestamp"))


def reap_now(cluster, dry_run: bool = False) -> dict:
    """Run the reaper now, as its CronWorkflow would (its workflowSpec)."""
    cron = cluster.kube.request(
        "GET", f"/apis/argoproj.io/v1alpha1/namespaces/{CORE}/cronworkflows/reaper")
    spec = cron["spec"]["workflowSpec"]
    spec["arguments"] = {"parameters": [{"name": "dry-run", "value": str(dry_run).lower()}]}
    workflow = cluster.kube.request(
        "POST", f"/apis/argoproj.io/v1alpha1/namespaces/{CORE}/workflows",
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
         "metadata": {"generateName": "reaper-", "namespace": CORE}, "spec": spec})
    return cluster.wait_workflow(CORE, workflow["metadata"]["name"], timeout=240)


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:5]}"


# --------------------------------------------------------------------------- the proofs
def test_a_developer_gets_a_ready_environment_running_the_version(cluster, platform):
    name = _name("dev")
    t0 = time.monotonic()
    created = request_env(cluster, DEVELOPER, name, platform["version"], ttl="90m")
    assert created["spec"]["owner"] == DEVELOPER[0]
    ready = wait_phase(cluster, name, ("Ready", "Failed"), timeout=420)
    elapsed = time.monotonic() - t0
    assert ready["status"]["phase"] == "Ready", ready["status"]
    print(f"Environment {name} Ready in {elapsed:.1f} s")
    status = ready["status"]
    assert status["deployedVersion"] == platform["version"]
    assert envmodel.FINALIZER in ready["metadata"]["finalizers"]
    assert status["outputs"]["namespace"] == f"fc-{name}"
    assert "kubeconfig" not in status["outputs"]                 # sensitive: only in the Secret
    assert status["expiresAt"]
    # the outputs Secret, owned by the Environment, with the kubeconfig
    secret = cluster.kube.request("GET", f"/api/v1/namespaces/{CORE}/secrets/{name}-outputs")
    assert secret["metadata"]["ownerReferences"][0]["uid"] == ready["metadata"]["uid"]
    kubeconfig = base64.b64decode(secret["data"]["kubeconfig"]).decode()
    assert f"fc-{name}" in kubeconfig
    # the Version's components run in it, at its commits
    cluster.wait_for("the api Deployment available", lambda: (cluster.kube.request(
        "GET", f"/apis/apps/v1/namespaces/fc-{name}/deployments/api").get("status") or {})
        .get("availableReplicas") == 1, 120, logs=["kubelet"])
    for config in ("api-config", "web-config", "worker-config"):
        assert cluster.kube.request("GET", f"/api/v1/namespaces/fc-{name}/configmaps/{config}")
    # the state in the project namespace, one per Environment
    assert state_objects(cluster, name) == {"secret": True, "lease": True}
    assert disks(cluster, name) == [f"{name}-disk-0", f"{name}-disk-1"]
    # the owner reads the kubeconfig; another developer of the project and the partner's may not
    path = f"/api/v1/namespaces/{CORE}/secrets/{name}-outputs"
    assert cluster.kube.request("GET", path, as_user=DEVELOPER)["data"]["kubeconfig"]
    for intruder in (OTHER_DEVELOPER, PARTNER_DEVELOPER):
        with pytest.raises(ApiError) as refused:
            cluster.kube.request("GET", path, as_user=intruder)
        assert refused.value.status == 403
    with pytest.raises(ApiError) as other:
        cluster.kube.request("GET", f"/api/v1/namespaces/{CORE}/secrets/{CREDENTIALS}",
                             as_user=DEVELOPER)
    assert other.value.status == 403
    # exactly one vend Workflow for it
    vends = [w for w in workflows(cluster, CORE, "vend-environment")
             if w["spec"]["arguments"]["parameters"][0]["value"] == name]
    assert len(vends) == 1
    platform["ready"] = name


def test_admission_refuses_a_long_ttl_and_a_forged_owner_and_the_vend_an_unknown_version(
        cluster, platform):
    with pytest.raises(ApiError, match="is more than project core-team allows"):
        request_env(cluster, DEVELOPER, _name("long"), platform["version"], ttl="5h")
    body = {"apiVersion": "argo-delivery.io/v1alpha1", "kind": "Environment",
            "metadata": {"name": _name("forged"), "namespace": CORE},
            "spec": {"project": "core-team", "version": platform["version"],
                     "owner": OTHER_DEVELOPER[0]}}
    with pytest.raises(ApiError, match="spec.owner must be you"):
        cluster.kube.request("POST", ENVS.format(ns=CORE), body, as_user=DEVELOPER)
    name = _name("unknown")
    request_env(cluster, DEVELOPER, name, "core-team-0000000000000000")
    failed = wait_phase(cluster, name, ("Failed", "Ready"), timeout=180)
    assert failed["status"]["phase"] == "Failed"
    reason = envmodel.condition(failed, envmodel.FAILED)
    assert reason["reason"] == "VersionNotFound"
    assert "core-team-0000000000000000 does not exist" in reason["message"]
    assert envmodel.FINALIZER not in (failed["metadata"].get("finalizers") or [])
    assert state_objects(cluster, name) == {"secret": False, "lease": False}
    assert disks(cluster, name) == [] and cloud_namespace_gone(cluster, name)
    cluster.kube.request("DELETE", ENVS.format(ns=CORE) + "/" + name, as_user=DEVELOPER)
    wait_gone(cluster, name, timeout=30)   # no finalizer: gone at once


def test_the_reaper_destroys_an_expired_environment_and_sweeps_its_disks(cluster, platform):
    name = _name("ttl")
    request_env(cluster, DEVELOPER, name, platform["version"], ttl="1m")
    ready = wait_phase(cluster, name, ("Ready", "Failed"), timeout=420)
    assert ready["status"]["phase"] == "Ready", ready["status"]
    assert disks(cluster, name) == [f"{name}-disk-0", f"{name}-disk-1"]
    # a dry run reports and changes nothing
    expires = ready["status"]["expiresAt"]
    cluster.wait_for("the TTL to pass", lambda: time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime()) > expires, 90)
    dry = reap_now(cluster, dry_run=True)
    assert get_env(cluster, name)["metadata"].get("deletionTimestamp") is None
    assert dry["status"]["phase"] == "Succeeded"
    t0 = time.monotonic()
    reap_now(cluster)
    wait_gone(cluster, name, timeout=420)
    print(f"reaped, destroyed and swept in {time.monotonic() - t0:.1f} s")
    assert disks(cluster, name) == []                          # the leak sweep removed them
    assert state_objects(cluster, name) == {"secret": False, "lease": False}
    assert cloud_namespace_gone(cluster, name)
    assert not exists(cluster, f"/api/v1/namespaces/{CORE}/secrets/{name}-outputs")


def test_a_failed_destroy_keeps_the_finalizer_and_is_retried_after_the_fix(cluster, platform):
    name = platform.get("ready")
    assert name, "needs the Ready environment of the first test"
    cluster.kube.request("PATCH", f"/api/v1/namespaces/fc-{name}", {"metadata": {"annotations": {
        "fakecloud.example/deletion-protection": "true"}}},
        content_type="application/merge-patch+json")
    cluster.kube.request("DELETE", ENVS.format(ns=CORE) + "/" + name, as_user=DEVELOPER)
    failed = wait_phase(cluster, name, ("Failed",), timeout=600)
    reason = envmodel.condition(failed, envmodel.FAILED)
    assert reason["reason"] == "DestroyFailed", reason
    assert "deletion-protection" in reason["message"]
    assert envmodel.FINALIZER in failed["metadata"]["finalizers"]
    assert failed["metadata"]["deletionTimestamp"]
    assert not cloud_namespace_gone(cluster, name)            # its resources still exist
    assert state_objects(cluster, name)["secret"]
    # a developer may not drop the finalizer (cloud resources may remain)
    with pytest.raises(ApiError, match="may not remove the finalizer"):
        cluster.kube.request("PATCH", ENVS.format(ns=CORE) + "/" + name,
                             {"metadata": {"finalizers": []}},
                             content_type="application/merge-patch+json", as_user=DEVELOPER)
    # the fix, then the reaper retries the destroy
    cluster.kube.request("PATCH", f"/api/v1/namespaces/fc-{name}", {"metadata": {"annotations": {
        "fakecloud.example/deletion-protection": None}}},
        content_type="application/merge-patch+json")
    reap_now(cluster)
    wait_gone(cluster, name, timeout=420)
    assert cloud_namespace_gone(cluster, name) and disks(cluster, name) == []
    assert state_objects(cluster, name) == {"secret": False, "lease": False}


def test_a_delete_during_the_vend_waits_for_it_then_cleans_everything(cluster, platform):
    name = _name("slow")
    request_env(cluster, DEVELOPER, name, platform["version"],
                variables={"create_delay": "25s"})
    wait_phase(cluster, name, ("Provisioning",), timeout=180)
    cluster.wait_for("the apply step running", lambda: any(
        (p.get("status") or {}).get("phase") == "Running" and "apply" in p["metadata"]["name"]
        for p in cluster.kube.request("GET", f"/api/v1/namespaces/{CORE}/pods")["items"]), 180)
    cluster.kube.request("DELETE", ENVS.format(ns=CORE) + "/" + name, as_user=DEVELOPER)
    destroy = cluster.wait_for("a destroy Workflow", lambda: next(
        (w for w in workflows(cluster, CORE, "destroy-environment")
         if w["spec"]["arguments"]["parameters"][0]["value"] == name), None), 60)
    # it waits on the Environment's mutex while the vend runs
    waiting = cluster.wait_for("the destroy waiting on the mutex", lambda: (cluster.kube.request(
        "GET", f"/apis/argoproj.io/v1alpha1/namespaces/{CORE}/workflows/"
               f"{destroy['metadata']['name']}").get("status") or {}).get("synchronization"), 60)
    assert "environment-" + name in str(waiting)
    wait_gone(cluster, name, timeout=600)
    assert cloud_namespace_gone(cluster, name) and disks(cluster, name) == []
    assert state_objects(cluster, name) == {"secret": False, "lease": False}


def test_an_apply_killed_mid_apply_is_retried_past_its_lock_and_the_destroy_cleans_everything(
        cluster, platform):
    """Issue 15, fault 6: the apply pod's processes SIGKILLed while the create is in flight,
    then the pod deleted. The state lock stays in its Lease; Argo runs the step again in a new
    pod, which releases the dead step's lock (the Environment's mutex: no other step of ours can hold
    it) instead of waiting `-lock-timeout` (10 min) in vain; the apply converges, and a later
    destroy removes the cloud cluster, its disks, the state and the lock."""
    name = _name("killed")
    request_env(cluster, DEVELOPER, name, platform["version"], variables={"create_delay": "30s"})
    vend = cluster.wait_for("the vend Workflow", lambda: next(
        (w["metadata"]["name"] for w in workflows(cluster, CORE, "vend-environment")
         if w["spec"]["arguments"]["parameters"][0]["value"] == name), None), 60)
    lease = (f"/apis/coordination.k8s.io/v1/namespaces/{CORE}/leases/"
             f"{envmodel.state_lease(name)}")

    def apply_pod_holding_the_lock():
        pods = [p for p in cluster.kube.request(
            "GET", f"/api/v1/namespaces/{CORE}/pods?labelSelector="
                   f"workflows.argoproj.io/workflow%3D{vend}")["items"]
            if "apply" in p["metadata"]["name"] and (p.get("status") or {}).get("phase") == "Running"]
        if pods and exists(cluster, lease) and \
                cluster.kube.request("GET", lease)["spec"].get("holderIdentity"):
            return pods[0]["metadata"]["name"]
        return None
    pod = cluster.wait_for("the apply pod holding the state lock", apply_pod_holding_the_lock,
                           240, interval=0.5)
    holder = cluster.kube.request("GET", lease)["spec"]["holderIdentity"]
    killed = cluster.kube.request("GET", f"/api/v1/namespaces/{CORE}/pods/{pod}")["metadata"]["uid"]
    cluster.kill_container(CORE, pod)
    cluster.kube.request("DELETE", f"/api/v1/namespaces/{CORE}/pods/{pod}")
    assert cluster.kube.request("GET", lease)["spec"]["holderIdentity"] == holder  # left behind

    # Argo starts the step again in a new pod (the deleted one's node was not finished), whose
    # step finds the lock of a pod of ours that is gone, and releases it
    def released_by_the_next_pod():
        for p in cluster.kube.request(
                "GET", f"/api/v1/namespaces/{CORE}/pods?labelSelector="
                       f"workflows.argoproj.io/workflow%3D{vend}")["items"]:
            if "apply" in p["metadata"]["name"] and p["metadata"]["uid"] != killed:
                log = cluster.pod_logs(CORE, p["metadata"]["name"], "main")
                if '"event": "stale-lock"' in log and holder in log:
                    return log
        return None
    cluster.wait_for("the next apply pod releasing the dead one's lock", released_by_the_next_pod,
                     240, logs=["workflow-controller"], interval=1)
    ready = wait_phase(cluster, name, ("Ready", "Failed"), timeout=420)
    assert ready["status"]["phase"] == "Ready", ready["status"]
    assert not cluster.kube.request("GET", lease)["spec"].get("holderIdentity")
    assert envmodel.FINALIZER in ready["metadata"]["finalizers"]
    assert disks(cluster, name) == [f"{name}-disk-0", f"{name}-disk-1"]

    cluster.kube.request("DELETE", ENVS.format(ns=CORE) + "/" + name, as_user=DEVELOPER)
    wait_gone(cluster, name, timeout=420)
    assert cloud_namespace_gone(cluster, name) and disks(cluster, name) == []
    assert state_objects(cluster, name) == {"secret": False, "lease": False}


def test_the_workflow_controller_killed_mid_vend_then_the_environment_is_ready_and_destroyed(
        cluster, platform):
    """Issue 15, fault 3 on a vend: the workflow controller SIGKILLed while the apply step runs
    (its finalizer taken, the cloud cluster being created), started again 15 s later. The vend
    finishes Ready in its one Workflow, the finalizer held all along; the destroy cleans
    everything."""
    from tests.e2e.test_reliability import crash_workflow_controller

    name = _name("ctrl")
    request_env(cluster, DEVELOPER, name, platform["version"], variables={"create_delay": "20s"})
    vend = cluster.wait_for("the vend Workflow", lambda: next(
        (w["metadata"]["name"] for w in workflows(cluster, CORE, "vend-environment")
         if w["spec"]["arguments"]["parameters"][0]["value"] == name), None), 60)
    cluster.wait_for("the apply step running", lambda: any(
        "apply" in p["metadata"]["name"] and (p.get("status") or {}).get("phase") == "Running"
        for p in cluster.kube.request(
            "GET", f"/api/v1/namespaces/{CORE}/pods?labelSelector="
                   f"workflows.argoproj.io/workflow%3D{vend}")["items"]), 240, interval=0.5)
    assert envmodel.FINALIZER in get_env(cluster, name)["metadata"]["finalizers"]
    crash_workflow_controller(cluster, down_seconds=15)
    assert envmodel.FINALIZER in get_env(cluster, name)["metadata"]["finalizers"]

    ready = wait_phase(cluster, name, ("Ready", "Failed"), timeout=420)
    assert ready["status"]["phase"] == "Ready", ready["status"]
    assert envmodel.FINALIZER in ready["metadata"]["finalizers"]
    assert [w["metadata"]["name"] for w in workflows(cluster, CORE, "vend-environment")
            if w["spec"]["arguments"]["parameters"][0]["value"] == name] == [vend]
    assert disks(cluster, name) == [f"{name}-disk-0", f"{name}-disk-1"]
    cluster.kube.request("DELETE", ENVS.format(ns=CORE) + "/" + name, as_user=DEVELOPER)
    wait_gone(cluster, name, timeout=420)
    assert cloud_namespace_gone(cluster, name) and disks(cluster, name) == []
    assert state_objects(cluster, name) == {"secret": False, "lease": False}


def _release(cluster, platform, name: str | None = None) -> str:
    """Version `name` (None: a new one, from a new commit of api) through alpha and nightly to
    candidate, approved: released."""
    from tests.e2e.test_streams import _approve, _nightly_now, wait_stream

    if name is None:
        repos = platform["repos"]
        commit_files(repos["api"], "main", {"deploy/extra.yaml": WORKER_DEPLOY.replace(
            "worker-config", "extra-config")}, "one more ConfigMap")
        before = {v["metadata"]["name"] for v in versions(cluster, CORE)}
        body = payload("acme-platform", "api", "main", repos["api"].heads["main"])
        assert deliver(cluster, body, sign(body)) == "200"
        name = cluster.wait_for("a new Version", lambda: next(
            (v["metadata"]["name"] for v in versions(cluster, CORE)
             if v["metadata"]["name"] not in before), None), 180)
    assert wait_stream(cluster, CORE, name, ("nightly", "failed"))["status"]["stream"] == "nightly"
    _nightly_now(cluster, CORE)
    assert wait_stream(cluster, CORE, name, ("candidate",))["status"]["stream"] == "candidate"
    _approve(cluster, CORE, name, PRODUCT_OWNER)
    wait_stream(cluster, CORE, name, ("released",), timeout=180)
    return name


def test_a_demo_environment_follows_the_releases_and_survives_the_reaper(cluster, platform):
    demo = get_env(cluster, "demo-core")
    assert demo["spec"]["demo"] is True and "version" not in demo["spec"]
    assert demo["spec"]["owner"] == PRODUCT_OWNER[0]
    first = _release(cluster, platform, platform["version"])
    ready = cluster.wait_for("demo-core Ready on the first release", lambda: (
        lambda e: e if e and (e.get("status") or {}).get("phase") == "Ready"
        and e["status"].get("deployedVersion") == first else None)(get_env(cluster, "demo-core")),
        420, logs=["workflow-controller"])
    assert ready["spec"]["version"] == first and "expiresAt" not in ready["status"]
    cloud = cluster.kube.request("GET", "/api/v1/namespaces/fc-demo-core")["metadata"]["uid"]
    report = reap_now(cluster)
    assert report["status"]["phase"] == "Succeeded"
    assert get_env(cluster, "demo-core")["metadata"].get("deletionTimestamp") is None
    # a second release: redeployed, not re-vended (same cloud namespace, no apply step ran)
    second = _release(cluster, platform)
    moved = cluster.wait_for("demo-core on the second release", lambda: (
        lambda e: e if e and (e.get("status") or {}).get("phase") == "Ready"
        and e["status"].get("deployedVersion") == second else None)(get_env(cluster, "demo-core")),
        420, logs=["workflow-controller"])
    assert moved["spec"]["version"] == second
    assert cluster.kube.request("GET", "/api/v1/namespaces/fc-demo-core")["metadata"]["uid"] == cloud
    assert cluster.kube.request("GET", "/api/v1/namespaces/fc-demo-core/configmaps/extra-config")
    # the deploy step wrote Ready; its Workflow finishes a moment later
    redeploy = cluster.wait_workflow(CORE, moved["status"]["workflow"], timeout=120)
    nodes = {n["displayName"]: n["phase"] for n in redeploy["status"]["nodes"].values()}
    assert nodes["apply"] == "Skipped" and nodes["deploy"] == "Succeeded", nodes
