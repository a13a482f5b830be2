"""Real OpenTofu with the project's fake cloud provider against the real API server.

An environment's whole life as the vend/destroy steps will live it: `tofu init` with the
`kubernetes` state backend (state Secret + Lease in a namespace, authenticated as a
ServiceAccount that holds only the backend's Role), `apply` of a root that calls the
fakecloud-env module with the cloud's least-privilege credentials (tests.tofu.cloud_rbac),
the kubeconfig it outputs used for real, a destroy refused by deletion protection (state
kept), then a destroy that leaves the persistent disks behind, as a real cloud does.

There is no controller-manager here: a deleted namespace stays Terminating, so deletion is
asserted by its deletionTimestamp.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.kube_server import ApiError
from tests.tofu import (
    CLUSTER_LABEL,
    DELETION_PROTECTION,
    MODULE_DIR,
    cloud_rbac,
    cloud_rules,
    fakecloud_env,
    require_tofu,
    run_tofu,
    state_rbac,
    tofu_env,
    tofu_version,
)

pytestmark = pytest.mark.apiserver

MERGE_PATCH = "application/merge-patch+json"


def hcl(value) -> str:
    """A Terraform expression for a string, number or map of strings (JSON is close enough)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {hcl(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def write_root(root: Path, args: dict, *, backend: bool) -> Path:
    """A root module like the vend step's: the module copied to ./module, called as env."""
    root.mkdir(parents=True)
    shutil.copytree(MODULE_DIR, root / "module")
    lines = ["terraform {", '  backend "kubernetes" {}', "}", ""] if backend else []
    lines.append('module "env" {')
    lines.append('  source = "./module"')
    lines += [f"  {k} = {hcl(v)}" for k, v in args.items()]
    lines.append("}")
    for name in ("endpoint", "namespace", "disks", "facts"):
        lines.append(f'output "{name}" {{\n  value = module.env.{name}\n}}')
    lines.append('output "kubeconfig" {\n  value     = module.env.kubeconfig\n'
                 "  sensitive = true\n}")
    (root / "main.tf").write_text("\n".join(lines) + "\n")
    return root


def aggregate_cluster_roles(kube) -> None:
    """Fill in the aggregated ClusterRoles (admin, edit, view) as kube-controller-manager's
    clusterrole-aggregation controller does: the API server bootstraps them with an
    aggregationRule and no rules, and no controller-manager runs here. Without it the
    clusters' RoleBinding to `admin` grants nothing."""
    roles_path = "/apis/rbac.authorization.k8s.io/v1/clusterroles"
    for _ in range(3):  # admin aggregates edit, which aggregates view
        roles = {r["metadata"]["name"]: r for r in kube.request("GET", roles_path)["items"]}
        changed = False
        for role in roles.values():
            selectors = (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
            rules: list[dict] = []
            for other in roles.values():
                other_labels = other["metadata"].get("labels") or {}
                if other is not role and any(
                        all(other_labels.get(k) == v for k, v in (sel.get("matchLabels") or
                                                                  {}).items())
                        for sel in selectors):
                    rules += [r for r in other.get("rules") or [] if r not in rules]
            if selectors and rules != (role.get("rules") or []):
                kube.request("PATCH", f"{roles_path}/{role['metadata']['name']}",
                             {"rules": rules}, content_type=MERGE_PATCH)
                changed = True
        if not changed:
            return


@pytest.fixture(scope="module")
def cloud(kube):
    """The fake cloud's credentials: a ServiceAccount with exactly cloud_rbac()'s rights."""
    require_tofu()
    aggregate_cluster_roles(kube)
    suffix = secrets.token_hex(3)
    namespace, disks = f"fakecloud-{suffix}", f"fakecloud-disks-{suffix}"
    kube.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}])
    kube.apply(cloud_rbac(namespace, "cloud", disks))
    token = kube.token_for(namespace, "cloud")
    return {"namespace": namespace, "disk_namespace": disks, "token": token,
            "env": fakecloud_env(kube.server, token, ca_cert=kube.ca_file.read_text(),
                                 disk_namespace=disks)}


def namespace_of(kube, name: str) -> dict:
    return kube.request("GET", f"/api/v1/namespaces/{name}")


def disks_of(kube, cloud, cluster: str) -> list[str]:
    listing = kube.request("GET", f"/api/v1/namespaces/{cloud['disk_namespace']}/configmaps",
                           query={"labelSelector": f"{CLUSTER_LABEL}={cluster}"})
    return sorted(item["metadata"]["name"] for item in listing["items"])


def stored_state(kube, namespace: str, suffix: str) -> dict:
    secret = kube.request("GET", f"/api/v1/namespaces/{namespace}/secrets/tfstate-default-{suffix}")
    return json.loads(gzip.decompress(base64.b64decode(secret["data"]["tfstate"])))


def test_vend_use_and_destroy_an_environment(kube, cloud, tmp_path):
    suffix = secrets.token_hex(3)
    name = f"env-{suffix}"
    ns = f"fc-{name}"

    # The state backend's identity: a ServiceAccount with only the backend's Role.
    state_ns = f"tofu-state-{suffix}"
    kube.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": state_ns}}])
    kube.apply(state_rbac(state_ns, "tofu"))
    backend_kubeconfig = kube.write_kubeconfig(
        tmp_path / "backend.kubeconfig", "tofu", kube.token_for(state_ns, "tofu"), state_ns)

    root = write_root(tmp_path / "root", {
        "name": name, "disk_count": 2, "labels": {"team": "core"},
        "project": "core-team", "version_name": "core-team-0123456789abcdef",
        "version_hash": "sha256:" + "ab" * 32, "owner": "ada"}, backend=True)
    env = tofu_env(tmp_path, fakecloud=cloud["env"])
    version = json.loads(run_tofu(["version", "-json"], root, env).stdout)
    assert version["terraform_version"] == tofu_version()  # a release build, not "-dev"

    init = run_tofu(["init", "-no-color", f"-backend-config=namespace={state_ns}",
                     f"-backend-config=secret_suffix={suffix}",
                     f"-backend-config=config_path={backend_kubeconfig}"], root, env)
    assert 'Successfully configured the backend "kubernetes"' in init.stdout
    assert "Installed example.invalid/test/fakecloud v0.1.0" in init.stdout
    apply = run_tofu(["apply", "-no-color", "-auto-approve"], root, env)
    assert "Apply complete! Resources: 1 added" in apply.stdout

    # The cluster: its namespace (labelled, baseline pod security), admin SA and RoleBinding.
    labels = namespace_of(kube, ns)["metadata"]["labels"]
    assert labels[CLUSTER_LABEL] == name
    assert labels["team"] == "core"
    assert labels["fakecloud.example/project"] == "core-team"
    assert labels["fakecloud.example/version"] == "core-team-0123456789abcdef"
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "baseline"
    kube.request("GET", f"/api/v1/namespaces/{ns}/serviceaccounts/admin")
    binding = kube.request(
        "GET", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings/admin")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io",
                                  "kind": "ClusterRole", "name": "admin"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "admin", "namespace": ns}]
    assert disks_of(kube, cloud, name) == [f"{name}-disk-0", f"{name}-disk-1"]

    # Outputs: the kubeconfig is sensitive, but -json carries it.
    outputs = json.loads(run_tofu(["output", "-no-color", "-json"], root, env).stdout)
    assert outputs["endpoint"] == {"sensitive": False, "type": "string", "value": kube.server}
    assert outputs["namespace"]["value"] == ns
    assert outputs["disks"]["value"] == [f"{name}-disk-0", f"{name}-disk-1"]
    assert outputs["facts"]["value"]["owner"] == "ada"
    assert outputs["kubeconfig"]["sensitive"] is True
    plain = run_tofu(["output", "-no-color"], root, env).stdout
    assert "kubeconfig = <sensitive>" in plain

    # The kubeconfig works as it is: admin in fc-<name> (its default namespace), nothing else.
    from kubernetes import client, config

    kubeconfig = tmp_path / "env.kubeconfig"
    kubeconfig.write_text(outputs["kubeconfig"]["value"])
    parsed = yaml.safe_load(kubeconfig.read_text())
    assert parsed["contexts"][0]["context"]["namespace"] == ns
    with config.new_client_from_config(config_file=str(kubeconfig)) as api_client:
        core = client.CoreV1Api(api_client)
        body = {"metadata": {"name": "hello"}, "data": {"from": "the env's kubeconfig"}}
        core.create_namespaced_config_map(ns, body)
        with pytest.raises(client.ApiException) as refused:
            core.create_namespaced_config_map(cloud["disk_namespace"], body)
        assert refused.value.status == 403
    assert kube.request("GET", f"/api/v1/namespaces/{ns}/configmaps/hello")["data"]

    # Nothing to change on a second plan.
    plan = run_tofu(["plan", "-no-color", "-detailed-exitcode"], root, env, check=False)
    assert plan.returncode == 0, plan.stdout + plan.stderr

    # Deletion protection: destroy fails, says what to remove, and the state keeps the cluster.
    kube.request("PATCH", f"/api/v1/namespaces/{ns}",
                 {"metadata": {"annotations": {DELETION_PROTECTION: "true"}}},
                 content_type=MERGE_PATCH)
    refused = run_tofu(["destroy", "-no-color", "-auto-approve"], root, env, check=False)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    message = " ".join(refused.stderr.split())
    assert f'Cannot delete fake cloud cluster "{name}"' in message
    assert f"namespace {ns} has the annotation {DELETION_PROTECTION}" in message
    assert "Remove the annotation" in message
    assert "module.env.fakecloud_cluster.this" in run_tofu(
        ["state", "list", "-no-color"], root, env).stdout
    assert "deletionTimestamp" not in namespace_of(kube, ns)["metadata"]
    assert len(stored_state(kube, state_ns, suffix)["resources"]) == 1

    # Without the annotation destroy deletes the namespace; the disks leak, as in a real cloud.
    kube.request("PATCH", f"/api/v1/namespaces/{ns}",
                 {"metadata": {"annotations": {DELETION_PROTECTION: None}}},
                 content_type=MERGE_PATCH)
    destroyed = run_tofu(["destroy", "-no-color", "-auto-approve"], root, env)
    assert "Destroy complete! Resources: 1 destroyed." in destroyed.stdout
    assert namespace_of(kube, ns)["metadata"].get("deletionTimestamp")
    assert disks_of(kube, cloud, name) == [f"{name}-disk-0", f"{name}-disk-1"]
    state = stored_state(kube, state_ns, suffix)
    assert state["resources"] == [] and state["outputs"] == {}

    # The backend leaves its Secret and Lease for the default workspace; the harness (here the
    # backend's own identity, which may delete both) removes them.
    token = kube.token_for(state_ns, "tofu")
    kube.request("DELETE", f"/api/v1/namespaces/{state_ns}/secrets/tfstate-default-{suffix}",
                 token=token)
    kube.request("DELETE", f"/apis/coordination.k8s.io/v1/namespaces/{state_ns}/leases/"
                 f"lock-tfstate-default-{suffix}", token=token)


def test_create_is_cancellable_needs_bind_and_converges_after_a_partial_apply(
        kube, cloud, tmp_path):
    """Local state. (1) An interrupt ends the create_delay sleep and nothing is created.
    (2) Credentials without `bind` on ClusterRole admin fail at the RoleBinding (the API
    server's escalation check), with the HTTP details; (3) once they have it, the same apply
    converges over what the failed one left."""
    suffix = secrets.token_hex(3)
    name = f"partial-{suffix}"
    ns = f"fc-{name}"
    root = write_root(tmp_path / "root", {"name": name, "create_delay": "60s"}, backend=False)
    env = tofu_env(tmp_path, fakecloud=cloud["env"])
    run_tofu(["init", "-no-color"], root, env)

    # the provider writes this file once its create is in flight: an interrupt before that
    # (tofu prints "Creating..." before it sends the request) would cancel nothing
    started = tmp_path / "delay-started"
    proc = subprocess.Popen([str(require_tofu()), "apply", "-no-color", "-auto-approve"],
                            cwd=root, env={**env, "FAKECLOUD_DELAY_STARTED_FILE": str(started)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.read_text() == f"{name}\n", proc.poll()
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert time.monotonic() - t0 < 10
    assert proc.returncode == 1, out + err
    assert "cancelled during create_delay 60s" in " ".join(err.split())
    with pytest.raises(ApiError) as gone:
        namespace_of(kube, ns)
    assert gone.value.status == 404

    # Credentials without bind: the RoleBinding is refused, what came before stays.
    weak_ns = f"fakecloud-weak-{suffix}"
    kube.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": weak_ns}}])
    no_bind = [r for r in cloud_rules() if "bind" not in r["verbs"]]
    kube.apply(cloud_rbac(weak_ns, "cloud", cloud["disk_namespace"], rules=no_bind))
    weak = {**cloud["env"], "FAKECLOUD_TOKEN": kube.token_for(weak_ns, "cloud")}
    root = write_root(tmp_path / "root2", {"name": name}, backend=False)
    run_tofu(["init", "-no-color"], root, env)
    failed = run_tofu(["apply", "-no-color", "-auto-approve"], root, {**env, **weak},
                      check=False)
    assert failed.returncode == 1
    message = " ".join(failed.stderr.split())
    assert (f"POST /apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings: "
            "HTTP 403 Forbidden:") in message
    assert "attempting to grant RBAC permissions not currently held" in message
    assert namespace_of(kube, ns)["metadata"]["labels"][CLUSTER_LABEL] == name
    kube.request("GET", f"/api/v1/namespaces/{ns}/serviceaccounts/admin")

    # The cloud's real credentials: the same apply converges.
    applied = run_tofu(["apply", "-no-color", "-auto-approve"], root, env)
    assert "Apply complete! Resources: 1 added" in applied.stdout
    kube.request("GET", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings/admin")
    run_tofu(["destroy", "-no-color", "-auto-approve"], root, env)
    assert namespace_of(kube, ns)["metadata"].get("deletionTimestamp")


def _killed_mid_apply(root: Path, env: dict[str, str], hostname: str, started: Path) -> None:
    """`tofu apply` as a pod named `hostname` would run it (its own UTS namespace: the lock's
    `Who` is user@hostname), SIGKILLed with its provider while the create is in flight: what
    a deleted or OOM-killed apply pod leaves behind."""
    argv = ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', hostname,
            str(require_tofu()), "apply", "-no-color", "-auto-approve"]
    proc = subprocess.Popen(argv, cwd=root, env={**env, "FAKECLOUD_DELAY_STARTED_FILE": str(started)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists(), proc.communicate(timeout=5) if proc.poll() is not None else ""
    finally:
        # the whole session (tofu and its provider plugin), by its id: nothing survives
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)


def test_a_lock_left_by_a_killed_apply_of_ours_is_broken_and_the_apply_converges(
        kube, cloud, tmp_path, monkeypatch):
    """Issue 15, fault 6, with the vend step's own code (break_stale_lock): the lock of an
    apply killed mid-apply stays in the backend's Lease; a lock whose holder is not one of our
    steps' pods (an operator's) is left alone; one of ours is released, then the same apply
    converges and the destroy removes everything."""
    from argo_delivery.templates._steps import step_module

    step = step_module("environment", shared=("steplib", "envmodel", "expiry"))
    suffix = secrets.token_hex(3)
    name = f"killed-{suffix}"
    state_ns = f"tofu-state-{suffix}"
    kube.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": state_ns}}])
    kube.apply(state_rbac(state_ns, "tofu"))
    token = kube.token_for(state_ns, "tofu")
    backend_kubeconfig = kube.write_kubeconfig(tmp_path / "backend.kubeconfig", "tofu", token,
                                               state_ns)
    root = write_root(tmp_path / "root", {"name": name, "disk_count": 2,
                                          "create_delay": "60s"}, backend=True)
    env = tofu_env(tmp_path, fakecloud=cloud["env"])
    run_tofu(["init", "-no-color", f"-backend-config=namespace={state_ns}",
              f"-backend-config=secret_suffix={name}",
              f"-backend-config=config_path={backend_kubeconfig}"], root, env)
    pod = f"vend-environment-{'0f' * 16}-apply-1234567890"[:63]
    _killed_mid_apply(root, env, pod, tmp_path / "started")

    lease_path = f"/apis/coordination.k8s.io/v1/namespaces/{state_ns}/leases/lock-tfstate-default-{name}"
    lease = kube.request("GET", lease_path)
    holder = lease["spec"]["holderIdentity"]
    info = json.loads(lease["metadata"]["annotations"][step.LOCK_INFO_ANNOTATION])
    assert info["ID"] == holder and info["Who"].endswith("@" + pod)
    locked = run_tofu(["apply", "-no-color", "-auto-approve", "-lock-timeout=1s"], root, env,
                      check=False)
    assert locked.returncode == 1 and "Error acquiring the state lock" in locked.stderr

    (tmp_path / "token").write_text(token)
    monkeypatch.setenv("AD_API_SERVER", kube.server)
    monkeypatch.setenv("AD_TOKEN_FILE", str(tmp_path / "token"))
    monkeypatch.setenv("AD_CA_FILE", str(kube.ca_file))
    monkeypatch.setattr(step, "ROOT_DIR", str(root))
    steps_kube = step.Kube()
    envs = step.Environments(steps_kube, state_ns, name)
    tofu = str(require_tofu())

    # an operator's lock (its Who is not one of our pods): left alone
    foreign = dict(info, Who="ada@laptop")
    kube.request("PATCH", lease_path, {"metadata": {"annotations": {
        step.LOCK_INFO_ANNOTATION: json.dumps(foreign)}}}, content_type=MERGE_PATCH)
    assert step.break_stale_lock(steps_kube, envs, tofu, env) is None
    assert kube.request("GET", lease_path)["spec"]["holderIdentity"] == holder

    # ours: released with `tofu force-unlock`, through the backend
    kube.request("PATCH", lease_path, {"metadata": {"annotations": {
        step.LOCK_INFO_ANNOTATION: json.dumps(info)}}}, content_type=MERGE_PATCH)
    assert step.break_stale_lock(steps_kube, envs, tofu, env) == holder
    assert not kube.request("GET", lease_path)["spec"].get("holderIdentity")
    assert step.break_stale_lock(steps_kube, envs, tofu, env) is None  # nothing to break

    write_root(tmp_path / "again", {"name": name, "disk_count": 2}, backend=True)
    (root / "main.tf").write_text((tmp_path / "again" / "main.tf").read_text())
    applied = run_tofu(["apply", "-no-color", "-auto-approve", "-lock-timeout=1s"], root, env)
    assert "Apply complete! Resources: 1 added" in applied.stdout
    assert namespace_of(kube, f"fc-{name}")["metadata"]["labels"][CLUSTER_LABEL] == name
    assert len(disks_of(kube, cloud, name)) == 2
    run_tofu(["destroy", "-no-color", "-auto-approve", "-lock-timeout=1s"], root, env)
    assert namespace_of(kube, f"fc-{name}")["metadata"].get("deletionTimestamp")
    assert stored_state(kube, state_ns, name)["resources"] == []
