#!/usr/bin/env python3
"""Write a one-layer OCI image archive from a root filesystem directory (stdlib only).

The end-to-end test cluster (tests/e2e) has no registry: its images are built on this machine
and loaded with `ctr -n k8s.io images import ARCHIVE`, which registers the image under the
name given here (index.json carries it as `io.containerd.image.name`).

The archive is an OCI image layout (oci-layout, index.json, blobs/sha256/...) in a plain tar:
one uncompressed layer holding every file under ROOTFS (owners and modes as on disk,
modification times set to 0 so equal inputs give an equal layer), an image config with the
given entrypoint/cmd/env/user/workdir, and a manifest. The contents of dev/, proc/ and sys/
are left out (the runtime mounts those).

Usage:
    python3 tools/images/mkimage.py ROOTFS OUT.tar NAME [--entrypoint JSON] [--cmd JSON]
        [--env K=V ...] [--user UID[:GID]] [--workdir DIR]

Example:
    python3 tools/images/mkimage.py rootfs/ pause.tar e2e.local/pause:1 --entrypoint '["/pause"]'
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

SKIP_CONTENTS = ("dev", "proc", "sys")


def _layer(rootfs: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add(path: Path, arcname: str) -> None:
            info = tar.gettarinfo(str(path), arcname)
            info.mtime = 0
            info.uname = info.gname = ""
            if info.isreg():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            elif info.isdir() or info.issym() or info.islnk():
                tar.addfile(info)
            # device nodes, fifos and sockets are not part of an image layer

        def walk(rel: str) -> None:
            for name in sorted(os.listdir(rootfs / rel if rel else rootfs)):
                child = f"{rel}/{name}" if rel else name
                full = rootfs / child
                add(full, child)
                if full.is_dir() and not full.is_symlink() and not (
                        not rel and name in SKIP_CONTENTS):
                    walk(child)

        walk("")
    return buf.getvalue()


def _blob(tar: tarfile.TarFile, data: bytes, media_type: str) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    info = tarfile.TarInfo(f"blobs/sha256/{digest}")
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}


def _file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def build(rootfs: Path, out: Path, name: str, *, entrypoint: list[str] | None = None,
          cmd: list[str] | None = None, env: list[str] | None = None, user: str = "",
          workdir: str = "", arch: str = "amd64") -> str:
    """Write the archive; returns the manifest digest."""
    layer = _layer(Path(rootfs))
    layer_digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    config: dict = {"Env": env or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}
    if entrypoint:
        config["Entrypoint"] = entrypoint
    if cmd:
        config["Cmd"] = cmd
    if user:
        config["User"] = user
    if workdir:
        config["WorkingDir"] = workdir
    image_config = {
        "architecture": arch, "os": "linux", "config": config,
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created_by": "tools/images/mkimage.py"}],
    }
    tmp = out.with_suffix(out.suffix + ".tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        _file(tar, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        layer_desc = _blob(tar, layer, "application/vnd.oci.image.layer.v1.tar")
        config_desc = _blob(tar, json.dumps(image_config, sort_keys=True).encode(),
                            "application/vnd.oci.image.config.v1+json")
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": config_desc, "layers": [layer_desc]}
        manifest_desc = _blob(tar, json.dumps(manifest, sort_keys=True).encode(),
                              "application/vnd.oci.image.manifest.v1+json")
        tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else "latest"
        manifest_desc["annotations"] = {"io.containerd.image.name": name,
                                        "org.opencontainers.image.ref.name": tag}
        manifest_desc["platform"] = {"architecture": arch, "os": "linux"}
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                 "manifests": [manifest_desc]}
        _file(tar, "index.json", json.dumps(index, sort_keys=True).encode())
    tmp.replace(out)
    return manifest_desc["digest"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rootfs", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("name", help="full image name, e.g. e2e.local/busybox:1.35.0")
    ap.add_argument("--entrypoint", type=json.loads)
    ap.add_argument("--cmd", type=json.loads)
    ap.add_argument("--env", action="append")
    ap.add_argument("--user", default="")
    ap.add_argument("--workdir", default="")
    a = ap.parse_args()
    digest = build(a.rootfs, a.out, a.name, entrypoint=a.entrypoint, cmd=a.cmd, env=a.env,
                   user=a.user, workdir=a.workdir)
    print(f"{a.out}: {a.name} {digest}")


if __name__ == "__main__":
    main()
