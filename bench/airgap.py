"""Air-gap pack throughput against `skopeo sync` of the same images, and archive size against
the sum of the images' sizes.

Source: a real registry on loopback (Debian's docker-registry) loaded with images the
end-to-end suite builds here (`make e2e-tools`: pause, busybox, argoexec, coredns, python-git,
the tofu image), and two application images whose base layer is python-git's (shared, as in
any real fleet). Manifests (one Deployment per image) reference them by tag.

Measured in the same run, best of N each:
- `argo-delivery airgap pack` of those manifests (find, lock, copy into one OCI layout,
  index, SHA256SUMS, deterministic tar), from a fresh output every round;
- the baseline: `skopeo sync --src docker --dest dir` of the same images into a fresh folder
  (what an operator would do by hand to get the bytes out of the registry).

Prints both times, the throughput (MB of image data per second) and the ratio pack/sync; then
the archive size against the images' summed sizes (layers stored once).

Run with `make bench`, or alone: `.venv/bin/python bench/airgap.py --rounds 3`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from argo_delivery import airgap as ag  # noqa: E402
from argo_delivery.skopeo import Skopeo  # noqa: E402
from tests.e2e.images import base_images, python_git_image, tofu_image  # noqa: E402
from tests.registry import Registry, layer, push_images  # noqa: E402


def _layer_of(archive: Path) -> bytes:
    """The one layer of an image archive written by tools/images/mkimage.py."""
    with tarfile.open(archive) as tar:
        index = json.load(tar.extractfile("index.json"))
        digest = index["manifests"][0]["digest"].removeprefix("sha256:")
        manifest = json.load(tar.extractfile(f"blobs/sha256/{digest}"))
        layer = manifest["layers"][0]["digest"].removeprefix("sha256:")
        return tar.extractfile(f"blobs/sha256/{layer}").read()


def load(registry: Registry, work: Path) -> list[str]:
    """Push every e2e image archive to the registry, and two application images built on
    python-git's layer (so that a base is shared); returns the references."""
    policy = work / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    references = []
    for image in [*base_images(), python_git_image(), tofu_image()]:
        archive, _ = image.ensure()
        name = image.name.split("/", 1)[1] if "." in image.name.split("/", 1)[0] else image.name
        reference = f"{registry.host}/{name}"
        subprocess.run(["skopeo", "--policy", str(policy), "copy", "-q",
                        "--dest-tls-verify=false", f"oci-archive:{archive}",
                        f"docker://{reference}"], check=True)
        references.append(reference)
    base = _layer_of(python_git_image().ensure()[0])
    apps = {f"apps/{name}:1": [base, layer({f"srv/{name}.py": f"print('{name}')\n".encode()})]
            for name in ("orders", "billing")}
    push_images(registry, apps, work)
    references += [f"{registry.host}/{ref}" for ref in apps]
    return references


def manifests(folder: Path, references: list[str]) -> None:
    folder.mkdir(parents=True)
    for index, reference in enumerate(references):
        name = f"app{index}"
        (folder / f"{name}.yaml").write_text(yaml.safe_dump({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": name}}, "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": name, "image": reference}]}}}}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-airgap-") as tmp:
        work = Path(tmp)
        with Registry(work / "registry") as registry:
            references = load(registry, work)
            source = work / "source"
            manifests(source / "deploy", references)

            def stage(root: Path) -> dict:
                shutil.copytree(source / "deploy", root / "manifests" / "bench")
                return {"bench": True}

            pack_times, sync_times = [], []
            result = None
            with Skopeo(insecure=[registry.host]) as skopeo:
                for round_ in range(args.rounds):
                    out = work / f"pack-{round_}.tar"
                    started = time.perf_counter()
                    result = ag.pack(stage, out, skopeo=skopeo)
                    pack_times.append(time.perf_counter() - started)
                    size = out.stat().st_size
                    out.unlink()
                    folder = work / f"sync-{round_}"
                    folder.mkdir()
                    started = time.perf_counter()
                    skopeo.sync_to_dir(references, registry.host, folder)
                    sync_times.append(time.perf_counter() - started)
                    synced = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
                    shutil.rmtree(folder)
    assert result is not None
    totals = result.index["totals"]
    pack_s, sync_s = min(pack_times), min(sync_times)
    megabytes = totals["imageBytes"] / 1e6
    print(f"images: {totals['images']}, {megabytes:.1f} MB as images "
          f"({totals['blobBytes'] / 1e6:.1f} MB of distinct blobs)")
    print(f"airgap pack     best of {args.rounds}: {pack_s:6.2f} s  "
          f"({megabytes / pack_s:6.1f} MB/s of images)")
    print(f"skopeo sync dir best of {args.rounds}: {sync_s:6.2f} s  "
          f"({megabytes / sync_s:6.1f} MB/s of images; {synced / 1e6:.1f} MB written)")
    print(f"ratio pack/sync: {pack_s / sync_s:.2f}")
    print(f"archive: {size / 1e6:.1f} MB = {size / totals['imageBytes']:.2f} of the images' sum "
          f"({totals['imageBytes'] / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
