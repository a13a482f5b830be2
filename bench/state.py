"""`argo-delivery state export` and `state import` of 10,000 Versions on the real API server,
against `kubectl get -o yaml` and `kubectl apply` of the same objects, in the same run.

Server A holds N Versions with status (alpha and nightly results) in 10 namespaces. Export:
`state export` (paged raw LISTs) vs `kubectl get versions -A -o yaml`. Import, onto a fresh
server B: `state import` (create, then the status subresource: two writes per Version, 16 at
a time) vs `kubectl apply -f` of the same Versions into other namespaces of B (one object at a
time, and no status: kubectl cannot write it). kubectl is .cache/bin/kubectl (`make tools`).

Run with `make bench` (it starts etcd and kube-apiserver from `make tools` on loopback and
stops them at the end).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from argo_delivery.crds import crd_manifests  # noqa: E402
from argo_delivery.state import (  # noqa: E402
    StateClient,
    export_state,
    import_state,
    plan_import,
    read_state_file,
    write_state_file,
)
from tests.kube_server import REPO_ROOT, KubeServer  # noqa: E402

NAMESPACES = 10
KUBECTL = REPO_ROOT / ".cache" / "bin" / "kubectl"
T0, T1 = "2026-11-29T08:00:00Z", "2026-11-29T08:10:00Z"


def version(index: int) -> tuple[dict, dict]:
    hex16 = f"{index:016x}"
    namespace = f"bench-{index % NAMESPACES}"
    doc = {"apiVersion": "argo-delivery.io/v1alpha1", "kind": "Version",
           "metadata": {"name": f"core-team-{hex16}", "namespace": namespace},
           "spec": {"project": "core-team", "hash": "sha256:" + hex16 * 4,
                    "components": [{"name": n, "repo": f"https://github.com/acme/{n}", "ref": "main",
                                    "commit": f"{index:040x}"} for n in ("api", "web", "worker")]}}
    run = {"phase": "Succeeded", "reason": "AllSuitesPassed", "startedAt": T0, "finishedAt": T1,
           "workflow": f"run-{hex16}", "results": [
               {"suite": s, "phase": "Succeeded", "startedAt": T0, "finishedAt": T1}
               for s in ("unit", "e2e")]}
    return doc, {"stream": "candidate", "streams": {"alpha": run, "nightly": run}}


def start(workdir: Path) -> KubeServer:
    kube = KubeServer(workdir).start(crds=False)
    crds = crd_manifests()
    kube.apply(crds)
    kube.wait_for_crds([c["metadata"]["name"] for c in crds])
    return kube


def populate(kube: KubeServer, count: int) -> None:
    client = StateClient(kube.api_client)
    for n in range(NAMESPACES):
        client.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                      "metadata": {"name": f"bench-{n}"}})

    def one(index: int) -> None:
        doc, status = version(index)
        path = f"/apis/argo-delivery.io/v1alpha1/namespaces/{doc['metadata']['namespace']}/versions"
        created = client.request("POST", path, doc)
        client.request("PUT", f"{path}/{doc['metadata']['name']}/status",
                       {**created, "status": status})

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(count)))


def timed(call) -> float:
    t0 = time.perf_counter()
    call()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--versions", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        a = b = None
        try:
            a = start(tmp_path / "a")
            b = start(tmp_path / "b")
            populate(a, args.versions)
            backup, kubectl_yaml = tmp_path / "state.json", tmp_path / "kubectl.yaml"
            client_a = StateClient(a.api_client)
            ours_export = timed(lambda: write_state_file(str(backup), export_state(client_a)))

            def kubectl_get() -> None:
                with open(kubectl_yaml, "w") as out:
                    subprocess.run([str(KUBECTL), "--kubeconfig", str(a.kubeconfig), "get",
                                    "versions.argo-delivery.io", "-A", "-o", "yaml"],
                                   stdout=out, check=True)
            kubectl_export = timed(kubectl_get)

            client_b = StateClient(b.api_client)
            document = read_state_file(str(backup))
            assert sum(1 for i in document["items"] if i["kind"] == "Version") == args.versions

            def ours() -> None:
                import_state(client_b, document, plan_import(client_b, document))
            ours_import = timed(ours)

            # the same Versions for kubectl, in namespaces of their own on B
            apply_file = tmp_path / "apply.json"
            items = []
            for item in document["items"]:
                obj = {k: v for k, v in item.items() if k != "status"}
                obj["metadata"] = {**item["metadata"],
                                   "namespace": item["metadata"]["namespace"] + "-k"}
                items.append(obj)
            apply_file.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
            for n in range(NAMESPACES):
                b.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                         "metadata": {"name": f"bench-{n}-k"}})
            kubectl_import = timed(lambda: subprocess.run(
                [str(KUBECTL), "--kubeconfig", str(b.kubeconfig), "apply", "-f", str(apply_file)],
                stdout=subprocess.DEVNULL, check=True))
            again = timed(lambda: import_state(client_b, document,
                                               plan_import(client_b, document)))
        finally:
            for server in (a, b):
                if server is not None:
                    server.stop()
    n = args.versions
    print(f"state export of {n} Versions: {ours_export:.1f} s; kubectl get -A -o yaml: "
          f"{kubectl_export:.1f} s; ratio {ours_export / kubectl_export:.2f}")
    print(f"state import of {n} Versions (create + status): {ours_import:.1f} s; kubectl apply "
          f"(create only, no status): {kubectl_import:.1f} s; ratio "
          f"{ours_import / kubectl_import:.2f}")
    print(f"state import again (nothing to write): {again:.1f} s")


if __name__ == "__main__":
    main()
