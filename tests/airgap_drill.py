"""The air-gap drill's inside: run in a network namespace that has only a loopback interface
(`ip netns exec NS python -m tests.airgap_drill ARCHIVE WORKDIR [PUBLIC_KEY]`, by
tests/flows/test_airgap.py::test_drill_*).

It starts a site registry (docker-registry) and an API server (etcd + kube-apiserver) on the
namespace's loopback, runs `argo-delivery airgap unpack --apply [--key KEY]` as a site operator would,
reads back what was applied, and writes WORKDIR/report.json with:

- the namespace's links and routes, and its IP counters (nstat) before and after the unpack:
  a packet sent anywhere outside counts in IpOutNoRoutes / Ip6OutNoRoutes (there is no route),
- the unpack's exit code and output,
- every pod image of the applied objects, and whether the site registry holds it by digest,
- a control: one connection tried to an outside address after the unpack, which must fail
  and must be counted (so a zero above means nothing tried, not that nothing was counted).

Everything it starts is stopped by PID before it exits.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import traceback
from pathlib import Path

from argo_delivery.imagefinder import find_images
from argo_delivery.images import parse_image
from tests.kube_server import KubeServer
from tests.registry import Registry

COUNTERS = ("IpOutNoRoutes", "Ip6OutNoRoutes", "TcpActiveOpens", "UdpOutDatagrams")


def counters() -> dict[str, int]:
    out = subprocess.run(["nstat", "-asz", "--json"], capture_output=True, text=True, check=True)
    kernel = json.loads(out.stdout)["kernel"]
    return {name: int(kernel.get(name, 0)) for name in COUNTERS}


def control() -> dict:
    """Try to leave: TCP to a documentation address (TEST-NET-1, RFC 5737)."""
    before = counters()
    try:
        socket.create_connection(("192.0.2.1", 443), timeout=2).close()
        error = None
    except OSError as exc:
        error = f"{type(exc).__name__}: {exc}"
    return {"error": error, "before": before, "after": counters()}


def main(archive: str, workdir: str, key: str | None = None) -> int:
    work = Path(workdir)
    report: dict = {
        "links": subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout,
        "routes": subprocess.run(["ip", "route", "show", "table", "all"], capture_output=True,
                                 text=True).stdout,
        "routes6": subprocess.run(["ip", "-6", "route", "show", "table", "main"],
                                  capture_output=True, text=True).stdout,
    }
    site = Registry(work / "site-registry")
    kube = KubeServer(work / "kube")
    try:
        site.start()
        kube.start(crds=False)
        kube.request("POST", "/api/v1/namespaces",
                     {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "drill"}})
        report["before"] = counters()
        env = {**os.environ, "HOME": str(work / "home"), "KUBECONFIG": str(kube.kubeconfig)}
        proc = subprocess.run(
            [sys.executable, "-c", "from argo_delivery.cli import main; main()", "airgap",
             "unpack", archive, "--registry", f"{site.host}/site", "--insecure-registry",
             site.host, "--out", str(work / "ready"), "--apply", "-n", "drill",
             *(["--key", key] if key else [])],
            capture_output=True, text=True, env=env, timeout=600)
        report["after"] = counters()
        report["unpack"] = {"exit": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}
        applied = work / "applied"
        applied.mkdir()
        objects = []
        for api_version, kind, plural in (("apps/v1", "Deployment", "deployments"),
                                          ("batch/v1", "CronJob", "cronjobs")):
            for item in kube.request("GET", f"/apis/{api_version}/namespaces/drill/{plural}")["items"]:
                item.update(apiVersion=api_version, kind=kind)
                objects.append(f"{kind}/{item['metadata']['name']}")
                (applied / f"{kind}-{item['metadata']['name']}.json").write_text(json.dumps(item))
        report["applied"] = sorted(objects)
        found = find_images([applied])
        report["images"] = []
        for image in found.images:
            ref = parse_image(image.image)
            held = ref.registry == site.host and ref.digest is not None and \
                site.manifest_digest(ref.repository, ref.digest) == ref.digest
            report["images"].append({"image": image.image, "inSiteRegistry": held})
        report["control"] = control()
    except BaseException:  # pytest.fail (a tool missing) included: the report says why
        report["error"] = traceback.format_exc()
    finally:
        kube.stop()
        site.stop()
    (work / "report.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
