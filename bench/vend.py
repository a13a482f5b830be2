"""Vend overhead on the real single-node cluster: Environment Ready time against a bare
`tofu init && tofu apply` of the same module, median of N each.

The platform has one project whose environments use tests/tofu-modules/fakecloud-env (served
by `git daemon` on the node IP) on the fake cloud (this cluster), with one component whose
deploy path holds a ConfigMap. Each round creates an Environment (as a developer), waits
until it is Ready and takes Ready minus its creation; then deletes it and waits until it is
gone (not measured). The baseline, in the same run against the same cluster: the module
copied to a temporary directory and `tofu init` + `tofu apply` run on this host with local
state (the same OpenTofu, the same provider from the same mirror, the same cloud
credentials), timed, then destroyed. The overhead is what the pipeline adds around the
apply: the Sensor, the Workflow's pods (prepare, clone, apply, deploy), the artifact hand-over
through S3, the kubernetes backend, the deploy.

Run with `make bench` (root, `make e2e-tools` and `make debs` built, no other cluster
running), or alone: `.venv/bin/python bench/vend.py --rounds 5`.
"""

from __future__ import annotations

import argparse
import calendar
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from argo_delivery.config import default_config_text  # noqa: E402
from argo_delivery.versionhash import version_hash, version_name  # noqa: E402
from tests.e2e.cluster import Cluster  # noqa: E402
from tests.e2e.images import python_git_image, tofu_image  # noqa: E402
from tests.gitrepos import GitDaemon, commit_files, make_repo  # noqa: E402
from tests.tofu import MODULE_DIR, cloud_rbac, fakecloud_env, run_tofu, tofu_env  # noqa: E402

NS, PROJECT = "bench-envs", "bench-envs"
ENVS = f"/apis/argo-delivery.io/v1alpha1/namespaces/{NS}/environments"
DEVELOPER = ("bench-dev", ["bench:devs"])
CLOUD_NS, CLOUD_SA, DISKS = "fakecloud-system", "fakecloud", "fakecloud-disks"


def stamp(text: str) -> float:
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def config(module: str, component_repo: str) -> str:
    data = yaml.safe_load(default_config_text())
    data["components"] = [{"name": "api", "repo": component_repo, "branch": "main",
                           "deployPath": "deploy"}]
    data["images"]["terraform"] = tofu_image().name
    data["projects"] = [{
        "name": PROJECT, "type": "internal", "namespace": NS, "components": ["api"],
        "members": {"developers": ["bench:devs"], "productOwners": ["bench:owners"]},
        "environments": {"terraformModule": f"git::{module}//env?ref=main",
                         "defaultTTL": "1h", "maxTTL": "2h", "variables": {"disk_count": "2"},
                         "credentialsSecret": "fakecloud-credentials"}}]
    data.pop("schedules", None)
    return yaml.safe_dump(data, sort_keys=False)


def _running(cluster: Cluster, prefix: str) -> bool:
    return any(p["metadata"]["name"].startswith(prefix) and p["status"].get("phase") == "Running"
               for p in cluster.kube.request("GET", "/api/v1/namespaces/argo-delivery/pods")["items"])


def vend_once(cluster: Cluster, version: str, index: int) -> float:
    name = f"bench-{index}"
    created = cluster.kube.request("POST", ENVS, {
        "apiVersion": "argo-delivery.io/v1alpha1", "kind": "Environment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"project": PROJECT, "version": version, "owner": DEVELOPER[0]}},
        as_user=DEVELOPER)

    def ready():
        env = cluster.kube.request("GET", f"{ENVS}/{name}")
        phase = (env.get("status") or {}).get("phase")
        if phase == "Failed":
            raise RuntimeError(f"{name} failed: {env['status'].get('message')}")
        return env if phase == "Ready" else None
    cluster.wait_for(f"{name} Ready", ready, 600, interval=0.5)
    took = time.time() - stamp(created["metadata"]["creationTimestamp"])
    cluster.kube.request("DELETE", f"{ENVS}/{name}")
    cluster.wait_for(f"{name} gone", lambda: not [
        e for e in cluster.kube.request("GET", ENVS)["items"] if e["metadata"]["name"] == name],
        600)
    return took


def bare_once(cluster: Cluster, fakecloud: dict[str, str], index: int, work: Path) -> float:
    root = work / f"bare-{index}"
    shutil.copytree(MODULE_DIR, root)
    (root / "bench.auto.tfvars.json").write_text(
        f'{{"name": "bare-{index}", "disk_count": 2}}')
    env = tofu_env(root, fakecloud=fakecloud)
    t0 = time.monotonic()
    run_tofu(["init", "-input=false", "-no-color"], root, env)
    run_tofu(["apply", "-input=false", "-no-color", "-auto-approve"], root, env)
    took = time.monotonic() - t0
    run_tofu(["destroy", "-input=false", "-no-color", "-auto-approve"], root, env)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    cluster = Cluster()
    try:
        cluster.start(extra_images=[python_git_image(), tofu_image()])
        cluster.start_argo_events()
        with tempfile.TemporaryDirectory() as tmp, \
                GitDaemon(Path(tmp), host=cluster.node_ip) as daemon:
            work = Path(tmp)
            infra = make_repo(work, "infra", {"main": 1})
            commit_files(infra, "main", {f"env/{p.name}": p.read_text()
                                         for p in sorted(MODULE_DIR.glob("*.tf"))}, "module")
            api = make_repo(work, "api", {"main": 1})
            commit_files(api, "main", {"deploy/config.yaml": "apiVersion: v1\nkind: ConfigMap\n"
                                       "metadata: {name: api}\ndata: {a: b}\n"}, "deploy")
            cluster.kube.apply([{"apiVersion": "v1", "kind": "Namespace",
                                 "metadata": {"name": CLOUD_NS}},
                                *cloud_rbac(CLOUD_NS, CLOUD_SA, DISKS)], field_manager="bench")
            token = cluster.kube.token_for(CLOUD_NS, CLOUD_SA, expiration_seconds=6 * 3600)
            bundle = cluster.render_bundle(work / "dist", config(daemon.url(infra),
                                                                 daemon.url(api)))
            cluster.apply_bundle(bundle)
            cluster.artifact_credentials(NS)
            host = f"https://{cluster.node_ip}:6443"
            ca = cluster.kube.ca_file.read_text()
            cluster.kube.apply([{"apiVersion": "v1", "kind": "Secret",
                                 "metadata": {"name": "fakecloud-credentials", "namespace": NS},
                                 "stringData": {"FAKECLOUD_HOST": host, "FAKECLOUD_TOKEN": token,
                                                "FAKECLOUD_CA_CERT": ca,
                                                "FAKECLOUD_DISK_NAMESPACE": DISKS}}],
                               field_manager="bench")
            for prefix in ("environments-eventsource", f"on-environment-{PROJECT}-sensor"):
                cluster.wait_for(f"{prefix} running", lambda p=prefix: _running(cluster, p), 300)
            cluster.wait_for("the Sensor subscribed", lambda: any(
                "Subscribing to subject" in cluster.pod_logs("argo-delivery", p["metadata"]["name"])
                for p in cluster.kube.request("GET", "/api/v1/namespaces/argo-delivery/pods")["items"]
                if p["metadata"]["name"].startswith(f"on-environment-{PROJECT}-sensor")), 300)
            components = [{"name": "api", "repo": daemon.url(api), "commit": api.heads["main"]}]
            digest = version_hash(PROJECT, components)
            version = version_name(PROJECT, digest)
            cluster.kube.request("POST", f"/apis/argo-delivery.io/v1alpha1/namespaces/{NS}/versions", {
                "apiVersion": "argo-delivery.io/v1alpha1", "kind": "Version",
                "metadata": {"name": version},
                "spec": {"project": PROJECT, "hash": digest, "components": components}},
                token=cluster.kube.token_for(NS, "argo-delivery-version-writer"))
            fakecloud = fakecloud_env(host, token, ca_cert=ca, disk_namespace=DISKS)
            bare, vend = [], []
            for index in range(args.rounds):
                bare.append(bare_once(cluster, fakecloud, index, work))
                vend.append(vend_once(cluster, version, index))
                print(f"round {index + 1}: bare init+apply {bare[-1]:5.1f} s, "
                      f"Environment Ready {vend[-1]:5.1f} s", flush=True)
        base, ready = statistics.median(bare), statistics.median(vend)
        print(f"median of {args.rounds}: bare tofu init+apply {base:.1f} s, Environment Ready "
              f"{ready:.1f} s, vend overhead {ready - base:.1f} s, ratio {ready / base:.1f}")
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
