"""Registry and OCI image work through skopeo (Debian's `skopeo`, containers/image underneath).

Why skopeo: it is packaged by Debian (so a site's vetted base image has it too), it speaks to
registries with the usual credentials (`$REGISTRY_AUTH_FILE`, containers' auth.json, then
`~/.docker/config.json`), it writes and reads OCI image layouts with blobs shared between
images, and `--preserve-digests` makes it refuse any copy that would change a manifest. (A
Docker schema 2 image is the exception: see `Skopeo.to_layout`.) No registry HTTP is
written by hand here.

Every call is an argv list. Integrity is checked by digest (the lock, SHA256SUMS), not by
containers' signature policy: each call is given a policy that accepts any image, so a
machine's /etc/containers/policy.json cannot change what is packed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

__all__ = ["RegistryError", "Skopeo"]

_POLICY = {"default": [{"type": "insecureAcceptAnything"}]}
REF_NAME = "org.opencontainers.image.ref.name"
DOCKER_TYPES = frozenset({"application/vnd.docker.distribution.manifest.v2+json",
                          "application/vnd.docker.distribution.manifest.list.v2+json"})


class RegistryError(Exception):
    """A registry or layout operation failed; the message names the image and skopeo's reason."""


def _reason(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    text = lines[-1] if lines else "no message"
    # skopeo prints `time="..." level=fatal msg="..."`: keep the message
    if 'msg="' in text:
        text = text.split('msg="', 1)[1].rstrip('"')
    return text.replace('\\"', '"')


class Skopeo:
    """One skopeo, with the registries that are reached without TLS verification."""

    def __init__(self, insecure: Iterable[str] = (), authfile: str | None = None,
                 timeout: float = 600.0):
        exe = shutil.which("skopeo")
        if exe is None:
            raise RegistryError("skopeo is not installed: `apt-get install skopeo` "
                                "(`make debs` installs it)")
        self.exe = exe
        self.insecure = {host.rstrip("/") for host in insecure}
        self.authfile = authfile
        self.timeout = timeout
        self._tmp = tempfile.TemporaryDirectory(prefix="argo-delivery-skopeo-")
        self.policy = Path(self._tmp.name, "policy.json")
        self.policy.write_text(json.dumps(_POLICY))

    def close(self) -> None:
        self._tmp.cleanup()

    def __enter__(self) -> Skopeo:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _verify(self, registry: str, flag: str) -> list[str]:
        return [f"--{flag}=false"] if registry in self.insecure else []

    def _auth(self, flag: str) -> list[str]:
        return [f"--{flag}={self.authfile}"] if self.authfile else []

    def _run(self, argv: list[str], what: str) -> bytes:
        try:
            proc = subprocess.run([self.exe, "--policy", str(self.policy), *argv],
                                  capture_output=True, timeout=self.timeout, check=False,
                                  env={**os.environ, "LC_ALL": "C"})
        except subprocess.TimeoutExpired:
            raise RegistryError(f"{what}: skopeo gave no answer within {self.timeout:.0f}s") from None
        if proc.returncode != 0:
            raise RegistryError(f"{what}: {_reason(proc.stderr.decode(errors='replace'))}")
        return proc.stdout

    def raw_manifest(self, reference: str, registry: str) -> bytes:
        """The manifest (or index) bytes the registry serves for `reference`."""
        return self._run(["inspect", "--raw", *self._verify(registry, "tls-verify"),
                          *self._auth("authfile"), f"docker://{reference}"],
                         f"cannot read the manifest of {reference}")

    def digest(self, reference: str, registry: str) -> tuple[str, str, int]:
        """(sha256:..., media type, size) of what `reference` names on its registry."""
        raw = self.raw_manifest(reference, registry)
        try:
            media_type = json.loads(raw).get("mediaType") or ""
        except ValueError:
            raise RegistryError(f"{reference}: the registry served a manifest that is not JSON") from None
        return "sha256:" + hashlib.sha256(raw).hexdigest(), media_type, len(raw)

    def to_layout(self, reference: str, registry: str, layout: Path, name: str,
                  media_type: str) -> str:
        """Copy `reference` (by digest) into the OCI layout `layout` as `name`, every platform
        of an index; returns the digest it has there.

        An OCI image is copied byte for byte (the same digest). A Docker schema 2 image (or
        list) is converted to OCI: skopeo 1.9 writes a Docker manifest into an OCI layout but
        cannot read it back out (it only looks up OCI descriptors), so it would never reach the
        site. The conversion is deterministic: the same image always gets the same digest.
        """
        keep = ["--preserve-digests"] if media_type not in DOCKER_TYPES else ["--format", "oci"]
        self._run(["copy", "-q", "--all", *keep,
                   *self._verify(registry, "src-tls-verify"), *self._auth("src-authfile"),
                   f"docker://{reference}", f"oci:{layout}:{name}"],
                  f"cannot copy {reference} into the archive")
        index = json.loads((layout / "index.json").read_text())
        for descriptor in index.get("manifests") or []:
            if (descriptor.get("annotations") or {}).get(REF_NAME) == name:
                return descriptor["digest"]
        raise RegistryError(f"{reference}: skopeo wrote no {name!r} into {layout}")

    def from_layout(self, layout: Path, name: str, destination: str, registry: str) -> None:
        """Push image `name` of the layout to `destination` (a tag), manifests byte for byte."""
        self._run(["copy", "-q", "--all", "--preserve-digests",
                   *self._verify(registry, "dest-tls-verify"), *self._auth("dest-authfile"),
                   f"oci:{layout}:{name}", f"docker://{destination}"],
                  f"cannot push {destination}")

    def sync_to_dir(self, references: list[str], registry: str, folder: Path) -> None:
        """`skopeo sync` of each reference into `folder` (the benchmark's baseline)."""
        for reference in references:
            self._run(["sync", "--all", "--preserve-digests", "--src", "docker",
                       "--dest", "dir", "--scoped", *self._verify(registry, "src-tls-verify"),
                       reference, str(folder)], f"cannot sync {reference}")
