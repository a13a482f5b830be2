"""The reaper's decision over 10,000 Environments on the real API server: one LIST.

The reaper reads every Environment with one LIST across namespaces (paged by the API
server's own `limit`/`continue`) and decides with argo_delivery/expiry.py which to delete and
which to warn. The baseline, measured in the same run on the same server, is what a reaper
that checks each Environment on its own would do: one GET per Environment. Goal: the
decision in < 2 s.

Run with `make bench` (it starts etcd and kube-apiserver from `make tools` on loopback and
stops them at the end).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from argo_delivery.expiry import decide  # noqa: E402
from tests.kube_server import KubeServer  # noqa: E402

NAMESPACES = 10
PATH = "/apis/argo-delivery.io/v1alpha1"


def environment(index: int) -> dict:
    # a third expired by its TTL, some demo ones, the rest within their TTL
    annotations = {"argo-delivery.io/ttl": "1s" if index % 3 == 0 else "720h"}
    return {"apiVersion": "argo-delivery.io/v1alpha1", "kind": "Environment",
            "metadata": {"name": f"env-{index:05d}", "annotations": annotations},
            "spec": {"project": f"bench-{index % NAMESPACES}", "version": "v", "owner": "admin",
                     "demo": index % 50 == 0}}


def list_all(kube: KubeServer) -> list[dict]:
    items, token = [], None
    while True:
        query = {"limit": 5000, **({"continue": token} if token else {})}
        page = kube.request("GET", f"{PATH}/environments", query=query)
        items += page["items"]
        token = page["metadata"].get("continue")
        if not token:
            return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--environments", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        kube = KubeServer(Path(tmp) / "kube")
        try:
            kube.start()
            kube.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"bench-{n}"}}
                        for n in range(NAMESPACES)])
            t0 = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
                list(pool.map(lambda i: kube.request(
                    "POST", f"{PATH}/namespaces/bench-{i % NAMESPACES}/environments",
                    environment(i)), range(args.environments)))
            print(f"created {args.environments} Environments in {time.perf_counter() - t0:.1f} s")
            time.sleep(2)   # every TTL of 1 s has passed
            defaults = {f"bench-{n}": datetime.timedelta(hours=8) for n in range(NAMESPACES)}
            window = datetime.timedelta(hours=1)
            ours, baseline = [], []
            for _ in range(args.repeats):
                start = time.perf_counter()
                items = list_all(kube)
                decision = decide(items, datetime.datetime.now(datetime.timezone.utc), defaults,
                                  window)
                ours.append(time.perf_counter() - start)
                assert len(items) == args.environments
                start = time.perf_counter()
                one_by_one = [kube.request("GET", f"{PATH}/namespaces/{e['metadata']['namespace']}"
                                                  f"/environments/{e['metadata']['name']}")
                              for e in items]
                again = decide(one_by_one, datetime.datetime.now(datetime.timezone.utc), defaults,
                               window)
                baseline.append(time.perf_counter() - start)
                assert len(again["delete"]) == len(decision["delete"])
            expected = len([i for i in range(args.environments) if i % 3 == 0 and i % 50 != 0])
            assert len(decision["delete"]) == expected, (len(decision["delete"]), expected)
            mine, theirs = statistics.median(ours), statistics.median(baseline)
            print(f"reaper decision over {args.environments} Environments, median of "
                  f"{args.repeats}: one LIST + decide {mine:.2f} s (runs "
                  f"{', '.join(f'{t:.2f}' for t in ours)}); one GET each + decide {theirs:.2f} s "
                  f"(runs {', '.join(f'{t:.2f}' for t in baseline)}); {theirs / mine:.1f}x; "
                  f"{len(decision['delete'])} to delete, {decision['keep']} kept (demo ones "
                  "included)")
        finally:
            kube.stop()


if __name__ == "__main__":
    main()
