"""Overhead of the stream machinery on the real single-node cluster: N trivial suites.

Three projects run their alpha stream on a new Version each: 1, 10 and 50 suites that do
nothing (`python3 -c pass`). The overhead of a run is the Workflow's wall time minus its
longest suite (what the suites themselves cost when they run in parallel): the start step,
the watcher and the exit handler, pod start-up, the controller's scheduling. The baseline is
the 1-suite run, measured in the same run on the same cluster; the report gives each
overhead and its ratio to the baseline. Suites run in parallel, so the overhead must not grow
linearly with N (50 suites at the 1-suite overhead each would be a ratio of 50).

Run with `make bench` (root, `make e2e-tools` and `make debs` built, no other cluster
running); it starts the e2e cluster (tests/e2e/cluster.py) and stops it at the end.
Workflow and node times are the controller's (RFC 3339, whole seconds), so each figure is
+-1 s.
"""

from __future__ import annotations

import argparse
import calendar
import secrets
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from argo_delivery.config import default_config_text  # noqa: E402
from argo_delivery.versionhash import version_name  # noqa: E402
from tests.e2e.cluster import Cluster  # noqa: E402
from tests.e2e.images import python_git_image  # noqa: E402

WRITER = "argo-delivery-version-writer"
# Small requests so that the scheduler places all 50 suites on the 2-core node at once (with
# the defaults, 150m a pod, it would queue them); limits that do not throttle a container
# (a 200m / 64Mi limit made 50 argoexec + python pods thrash for minutes).
SMALL = {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}}


def config(sizes: list[int]) -> str:
    data = yaml.safe_load(default_config_text())
    suite = {"image": python_git_image().name, "command": ["python3", "-c", "pass"],
             "timeout": "10m", "resources": SMALL}
    data["projects"] = [{
        "name": f"bench-{n}", "type": "internal", "namespace": f"bench-{n}", "components": ["api"],
        "members": {"developers": ["bench:devs"], "productOwners": ["bench:owners"]},
        "quota": {"pods": n + 10, "requests.cpu": "4", "limits.cpu": str(2 * n + 10),
                  "limits.memory": f"{n + 10}Gi"},
        "testSuites": {"alpha": [{"name": f"s{i}", **suite} for i in range(n)], "nightly": []},
    } for n in sizes]
    data["components"] = [c for c in data["components"] if c["name"] == "api"]
    data["isolation"] = {"containerDefaults": SMALL}
    data.pop("schedules", None)
    return yaml.safe_dump(data, sort_keys=False)


def _pods(cluster: Cluster, prefix: str) -> list[str]:
    """Running pods of the orchestrator namespace whose name starts with `prefix`."""
    return [p["metadata"]["name"] for p in cluster.kube.request(
        "GET", "/api/v1/namespaces/argo-delivery/pods")["items"]
        if p["metadata"]["name"].startswith(prefix) and p["status"].get("phase") == "Running"]


def stamp(text: str) -> float:
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def run_alpha(cluster: Cluster, namespace: str, project: str) -> dict:
    """Create a Version as the generate-version step would; the on-version Sensor starts the
    alpha stream; wait for its Workflow to finish."""
    digest = "sha256:" + secrets.token_hex(32)
    name = version_name(project, digest)
    cluster.kube.request("POST", f"/apis/argo-delivery.io/v1alpha1/namespaces/{namespace}/versions", {
        "apiVersion": "argo-delivery.io/v1alpha1", "kind": "Version", "metadata": {"name": name},
        "spec": {"project": project, "hash": digest, "components": [
            {"name": "api", "repo": "https://github.com/acme-platform/api",
             "commit": secrets.token_hex(20)}]}},
        token=cluster.kube.token_for(namespace, WRITER))

    def workflow():
        for w in cluster.kube.request(
                "GET", f"/apis/argoproj.io/v1alpha1/namespaces/{namespace}/workflows")["items"]:
            if any(p.get("value") == name for p in w["spec"]["arguments"]["parameters"]):
                return w
        return None
    try:
        started = cluster.wait_for(f"the alpha Workflow of {name}", workflow, 120)
    except Exception:
        for prefix in ("versions-eventsource", f"on-version-{project}-sensor"):
            for pod in _pods(cluster, prefix):
                print(f"--- {pod}\n{cluster.pod_logs('argo-delivery', pod)[-3000:]}")
        raise
    done = cluster.wait_workflow(namespace, started["metadata"]["name"], timeout=900)
    version = cluster.kube.request(
        "GET", f"/apis/argo-delivery.io/v1alpha1/namespaces/{namespace}/versions/{name}")
    assert version["status"]["stream"] == "nightly", version["status"]
    return done


def overhead(workflow: dict) -> tuple[float, float, float]:
    """(wall time, longest suite, overhead) of a finished stream Workflow, in seconds."""
    status = workflow["status"]
    wall = stamp(status["finishedAt"]) - stamp(status["startedAt"])
    suites = [stamp(n["finishedAt"]) - stamp(n["startedAt"]) for n in status["nodes"].values()
              if n.get("displayName", "").startswith("suite-")]
    longest = max(suites)
    return wall, longest, wall - longest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1,10,50")
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    cluster = Cluster()
    try:
        cluster.start(extra_images=[python_git_image()])
        cluster.start_argo_events()
        with tempfile.TemporaryDirectory() as out:
            bundle = cluster.render_bundle(Path(out), config(sizes))
            cluster.apply_bundle(bundle)
        for prefix in ["versions-eventsource", *(f"on-version-bench-{n}-sensor" for n in sizes)]:
            cluster.wait_for(f"{prefix} running", lambda p=prefix: _pods(cluster, p), 300)
        for n in sizes:   # a Sensor gets only the events published after it subscribed
            cluster.wait_for(f"on-version-bench-{n} subscribed", lambda n=n: any(
                "Subscribing to subject" in cluster.pod_logs("argo-delivery", pod)
                for pod in _pods(cluster, f"on-version-bench-{n}-sensor")), 300)
        results = {}
        for n in sizes:
            results[n] = overhead(run_alpha(cluster, f"bench-{n}", f"bench-{n}"))
        base = results[sizes[0]][2]
        print(f"stream overhead (wall time minus the longest suite), baseline {sizes[0]} suite(s):")
        for n, (wall, longest, extra) in results.items():
            ratio = extra / base if base else float("nan")
            print(f"  {n:3d} suites: wall {wall:5.0f} s, longest suite {longest:4.0f} s, "
                  f"overhead {extra:5.0f} s, ratio to baseline {ratio:4.2f}")
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
