"""Push -> Version under load on the real single-node cluster (issue 15).

The platform is the default one plus `load-team` (tests/e2e/test_reliability.py: three
components on a git daemon of their own, no suites), with the default quota (20 pods,
8 CPUs of limits: about 7 generate-version pods at once) unless `--quota-pods` raises it.
tests/e2e/loadgen.py sends the signed pushes from the host to the EventSource's Service.

- baseline: 5 pushes one at a time, each waiting for its Workflow: push -> Version idle;
- N = 50 (10 commit sets, 30 s) and N = 200 (40 commit sets, 120 s), with redeliveries and
  interleaved pushes: p50, p95 and max of push -> Version (the push's Workflow finished,
  creating its Version or finding it), Workflows finished per minute, each run accounted
  for as the test does (every delivery one Workflow, all Succeeded, hashes recomputed);
- saturation: constant offered rates (pushes a minute), each for `--step` seconds, every
  push a new commit set; the saturation point is the first rate at which pushes queue: its
  median push -> Version is more than twice the idle one.

Ratios are to the baseline's p50, measured in the same run. Run with `make bench` or
`.venv/bin/python bench/load.py` (root, `make e2e-tools debs`, no other cluster running);
it starts the e2e cluster and stops it at the end. Times are the controller's (whole
seconds) against the sender's clock: each figure is +-1 s.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e import loadgen  # noqa: E402
from tests.e2e.cluster import Cluster  # noqa: E402
from tests.e2e.images import python_git_image  # noqa: E402
from tests.e2e.test_push_to_version import REPOS, SECRET, workflows  # noqa: E402
from tests.e2e.test_reliability import (  # noqa: E402
    COMPONENTS,
    LOAD_NS,
    _epoch,
    install_load_platform,
    push_url,
    run_and_account,
)
from tests.gitrepos import GitDaemon, make_repo, push_commit  # noqa: E402


def baseline(cluster: Cluster, repos, count: int = 5) -> list[float]:
    """One push at a time: each waits for its Workflow to finish."""
    out = []
    for i in range(count):
        component = COMPONENTS[i % len(COMPONENTS)]
        known = {w["metadata"]["name"] for w in workflows(cluster, LOAD_NS)}
        commit = push_commit(repos[component.name], component.branch)
        sent = time.time()
        assert loadgen.post(push_url(cluster), loadgen.payload(component, commit, f"base-{i}"),
                            SECRET, f"base-{i}") == 200
        run = cluster.wait_for("the baseline push's Workflow", lambda known=known: [
            w for w in workflows(cluster, LOAD_NS) if w["metadata"]["name"] not in known
            and (w.get("status") or {}).get("phase") == "Succeeded"], 300, interval=0.5)[0]
        out.append(_epoch(run["status"]["finishedAt"]) - sent)
    return out


def sweep(cluster: Cluster, daemon, repos, rates: list[int], step: float) -> list[dict]:
    rows = []
    for rate in rates:
        pushes = max(2, int(rate * step / 60))
        report = run_and_account(cluster, daemon, repos, pushes=pushes, rounds=pushes,
                                 seconds=step, progress=lambda _: None)
        runs = report["runs"]
        first = min(d.sent_at for d in report["result"].deliveries)
        last = max(_epoch(w["status"]["finishedAt"]) for w in runs)
        rows.append({"rate_per_min": rate, "pushes": pushes,
                     "finished_per_min": round(len(runs) / max(1.0, last - first) * 60, 1),
                     "latency_s": report["latency"]})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="50:10:30,200:40:120",
                        help="N:commit sets:seconds, comma-separated")
    parser.add_argument("--rates", default="6,12,24,48", help="pushes a minute, comma-separated")
    parser.add_argument("--step", type=float, default=120, help="seconds per rate")
    parser.add_argument("--quota-pods", type=int, default=0,
                        help="load-team's pod quota (0: the default quota)")
    args = parser.parse_args()
    cluster = Cluster()
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        root = Path(tmp)
        served_root, load_root = root / "served", root / "load"
        served_repos = {}
        for owner, names in REPOS.items():
            (served_root / owner).mkdir(parents=True)
            for name in names:
                served_repos[name] = make_repo(served_root / owner, name, {"main": 1, "release": 1})
        (load_root / COMPONENTS[0].owner).mkdir(parents=True)
        load_repos = {c.name: make_repo(load_root / c.owner, c.name, {"main": 1})
                      for c in COMPONENTS}
        counter = iter(range(1000))

        def mktemp(name):
            path = root / f"{name}-{next(counter)}"
            path.mkdir()
            return path
        try:
            cluster.start(argo_events=True, extra_images=[python_git_image()])
            with GitDaemon(served_root, host=cluster.node_ip) as served, \
                    GitDaemon(load_root, host=cluster.node_ip) as daemon:
                quota = ({"pods": str(args.quota_pods), "limits.cpu": str(args.quota_pods)}
                         if args.quota_pods else None)
                install_load_platform(cluster, (served, served_repos), (daemon, load_repos),
                                      mktemp, quota=quota)
                base = baseline(cluster, load_repos)
                results["baseline_s"] = loadgen.percentiles(base)
                print("baseline", json.dumps(results["baseline_s"]), flush=True)
                for size in args.sizes.split(","):
                    n, m, t = (float(x) for x in size.split(":"))
                    report = run_and_account(cluster, daemon, load_repos, pushes=int(n),
                                             rounds=int(m), seconds=t,
                                             progress=lambda _: None)
                    assert report["started"] == report["wanted"], "a delivery lost or doubled"
                    runs = report["runs"]
                    first = min(d.sent_at for d in report["result"].deliveries)
                    last = max(_epoch(w["status"]["finishedAt"]) for w in runs)
                    row = {"pushes": int(n), "commit_sets": int(m), "seconds": t,
                           "workflows": len(runs), "new_versions": len(report["new"]),
                           "outcomes": dict(report["outcomes"]),
                           "latency_s": report["latency"],
                           "ratio_p50_to_baseline": round(
                               report["latency"]["p50"] / results["baseline_s"]["p50"], 1),
                           "ratio_p95_to_baseline": round(
                               report["latency"]["p95"] / results["baseline_s"]["p50"], 1),
                           "workflows_per_min": round(len(runs) / max(1.0, last - first) * 60, 1),
                           "versions_per_min": report["versions_per_minute"]}
                    results[f"n{int(n)}"] = row
                    print(json.dumps(row), flush=True)
                rates = [int(r) for r in args.rates.split(",") if r]
                results["saturation"] = sweep(cluster, daemon, load_repos, rates, args.step)
                saturated = next((r["rate_per_min"] for r in results["saturation"]
                                  if r["latency_s"]["p50"] > 2 * results["baseline_s"]["p50"]),
                                 None)
                results["saturation_point_per_min"] = saturated
        finally:
            for line in cluster.stop():
                print(line, file=sys.stderr)
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
