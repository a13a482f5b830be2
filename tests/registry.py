"""A real container registry on loopback for the air-gap tests: Debian's `docker-registry`
(the CNCF distribution registry, v2.8), started by PID in its own folder and stopped by PID.

Also builds small test images: an OCI image layout written here (deterministic, no network)
with layers that images can share, pushed to a registry with skopeo.

    with Registry(tmp_path / "src") as source:
        push_images(source, {"team/app:1.0": [BASE, app_layer]})
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
import urllib3

from tests.gitrepos import free_port

REGISTRY_BIN = "docker-registry"


def need(tool: str, package: str) -> str:
    exe = shutil.which(tool)
    if exe is None:
        pytest.fail(f"`{tool}` is not installed: `apt-get install -y {package}` (or `make debs`)")
    return exe


class Registry:
    """One `docker-registry serve` on 127.0.0.1 (or `host`), storage under `workdir`."""

    def __init__(self, workdir: Path, host: str = "127.0.0.1", port: int | None = None,
                 htpasswd: Path | None = None):
        self.workdir = Path(workdir)
        self.bind = host
        self.port = port or free_port()
        self.htpasswd = htpasswd
        self.proc: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"{self.bind}:{self.port}"

    def start(self) -> Registry:
        exe = need(REGISTRY_BIN, "docker-registry")
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": False}},
            "storage": {"filesystem": {"rootdirectory": str(self.workdir / "data")},
                        "delete": {"enabled": True}},
            "http": {"addr": self.host},
        }
        if self.htpasswd:
            config["auth"] = {"htpasswd": {"realm": "test", "path": str(self.htpasswd)}}
        (self.workdir / "config.yml").write_text(json.dumps(config))
        with open(self.workdir / "registry.log", "ab") as log:
            self.proc = subprocess.Popen([exe, "serve", str(self.workdir / "config.yml")],
                                         stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        http = urllib3.PoolManager(retries=False, timeout=2.0)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                pytest.fail(f"docker-registry exited ({self.proc.returncode}):\n{self.log()}")
            try:
                if http.request("GET", f"http://{self.host}/v2/").status in (200, 401):
                    return self
            except urllib3.exceptions.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"docker-registry did not answer on {self.host} within 20s:\n{self.log()}")

    def log(self) -> str:
        path = self.workdir / "registry.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Registry:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # what the registry holds, through its API (the test's own view, not skopeo's)
    def _get(self, path: str, accept: str = "", creds: str | None = None) -> urllib3.BaseHTTPResponse:
        headers = {"Accept": accept} if accept else {}
        if creds:
            headers.update(urllib3.make_headers(basic_auth=creds))
        return urllib3.PoolManager(retries=False, timeout=5.0).request(
            "GET", f"http://{self.host}{path}", headers=headers)

    def repositories(self) -> list[str]:
        return json.loads(self._get("/v2/_catalog").data).get("repositories") or []

    def manifest_digest(self, repository: str, reference: str,
                        creds: str | None = None) -> str | None:
        """The digest of the manifest `repository:reference` names (None if absent)."""
        accept = ", ".join(MEDIA_TYPES)
        response = self._get(f"/v2/{repository}/manifests/{reference}", accept, creds)
        if response.status == 404:
            return None
        assert response.status == 200, (response.status, response.data[:300])
        return "sha256:" + hashlib.sha256(response.data).hexdigest()

    def has_blob(self, repository: str, digest: str) -> bool:
        return self._get(f"/v2/{repository}/blobs/{digest}").status == 200


MEDIA_TYPES = ("application/vnd.oci.image.manifest.v1+json",
               "application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.v2+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")


# --- test images ------------------------------------------------------------------------------

def layer(files: dict[str, bytes]) -> bytes:
    """An uncompressed layer tar holding `files` (deterministic)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write_layout(folder: Path, images: dict[str, list[bytes]]) -> dict[str, str]:
    """An OCI image layout holding each image (ref name -> its layers); returns ref -> digest."""
    blobs = folder / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (folder / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))

    def blob(data: bytes, media_type: str) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    manifests, digests = [], {}
    for ref, layers in images.items():
        descs = [blob(data, "application/vnd.oci.image.layer.v1.tar") for data in layers]
        config = {"architecture": "amd64", "os": "linux",
                  "config": {"Entrypoint": ["/bin/true"], "Labels": {"test.image": ref}},
                  "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descs]}}
        config_desc = blob(json.dumps(config, sort_keys=True).encode(),
                           "application/vnd.oci.image.config.v1+json")
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": config_desc, "layers": descs}
        desc = blob(json.dumps(manifest, sort_keys=True).encode(),
                    "application/vnd.oci.image.manifest.v1+json")
        manifests.append({**desc, "annotations": {"org.opencontainers.image.ref.name": ref}})
        digests[ref] = desc["digest"]
    (folder / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": manifests}))
    return digests


def htpasswd(path: Path, user: str, password: str) -> Path:
    """An htpasswd file (bcrypt, as the registry requires) with one user."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # libxcrypt's bcrypt: no extra package

        hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))
    path.write_text(f"{user}:{hashed}\n")
    return path


def push_images(registry: Registry, images: dict[str, list[bytes]], workdir: Path,
                docker_format: tuple[str, ...] = (), creds: str | None = None) -> dict[str, str]:
    """Build each image (`repo:tag` -> layers) and push it to `registry`; images named in
    `docker_format` are pushed as Docker schema 2. Returns `repo:tag` -> the registry's digest
    of it (read back through the registry's API)."""
    exe = need("skopeo", "skopeo")
    layout = workdir / f"layout-{os.getpid()}-{time.monotonic_ns()}"
    names = {ref: f"img{i}" for i, ref in enumerate(images)}
    write_layout(layout, {names[ref]: layers for ref, layers in images.items()})
    policy = workdir / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    digests = {}
    for ref, name in names.items():
        fmt = ["--format", "v2s2"] if ref in docker_format else []
        if creds:
            fmt += ["--dest-creds", creds]
        subprocess.run([exe, "--policy", str(policy), "copy", "-q", *fmt,
                        "--dest-tls-verify=false", f"oci:{layout}:{name}",
                        f"docker://{registry.host}/{ref}"], check=True, capture_output=True)
        repository, _, tag = ref.rpartition(":")
        digests[ref] = registry.manifest_digest(repository, tag, creds)
    shutil.rmtree(layout)
    return digests
