"""The image lock: every image a set of manifests runs, resolved from its tag to a digest.

The idea is kbld's (carvel): resolve once, against the registry, and from then on refer to
the image only by digest, so that a tag moved later changes nothing that was locked. The
file is YAML:

    apiVersion: argo-delivery.io/v1alpha1
    kind: ImagesLock
    images:
    - image: registry.example.com/team/app:1.4      # as found, Docker's defaults explicit
      digest: sha256:<64 hex>                        # of the manifest (or index) it named
      mediaType: application/vnd.oci.image.manifest.v1+json

`pin(reference)` gives `registry/repo:tag@sha256:...` for a locked image (a runtime pulls by
the digest; the tag stays for people). The lock is written sorted, so the same images give
the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from argo_delivery.images import ImageError, ImageRef, parse_image

__all__ = ["LOCK_API_VERSION", "LOCK_KIND", "ImagesLock", "LockedImage", "LockError", "resolve_lock"]

LOCK_API_VERSION = "argo-delivery.io/v1alpha1"
LOCK_KIND = "ImagesLock"


class LockError(Exception):
    """A lock file that cannot be read, or an image it does not hold."""


@dataclass(frozen=True)
class LockedImage:
    image: str       # canonical reference as found (tag, maybe a digest)
    digest: str
    media_type: str = ""

    @property
    def ref(self) -> ImageRef:
        return parse_image(self.image)

    @property
    def pinned(self) -> str:
        ref = self.ref
        return str(ImageRef(ref.registry, ref.repository, ref.tag, self.digest))

    @property
    def by_digest(self) -> str:
        ref = self.ref
        return f"{ref.registry}/{ref.repository}@{self.digest}"


@dataclass
class ImagesLock:
    images: dict[str, LockedImage] = field(default_factory=dict)

    def add(self, locked: LockedImage) -> None:
        self.images[locked.image] = locked

    def get(self, reference: str) -> LockedImage | None:
        return self.images.get(str(parse_image(reference)))

    def pin(self, reference: str) -> str:
        """The reference pinned by its locked digest; LockError if it is not in the lock."""
        canonical = str(parse_image(reference))
        locked = self.images.get(canonical)
        if locked is None:
            raise LockError(f"image {reference} is not in the lock; run `argo-delivery images lock` "
                            "again over the manifests that use it")
        return locked.pinned

    def to_dict(self) -> dict[str, Any]:
        return {"apiVersion": LOCK_API_VERSION, "kind": LOCK_KIND,
                "images": [{"image": i.image, "digest": i.digest,
                            **({"mediaType": i.media_type} if i.media_type else {})}
                           for _, i in sorted(self.images.items())]}

    def dumps(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=False)

    def write(self, path: str | Path) -> None:
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.dumps())
        tmp.replace(path)

    @classmethod
    def loads(cls, text: str, source: str = "lock") -> ImagesLock:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise LockError(f"{source}: invalid YAML: {' '.join(str(exc).split())}") from None
        if not isinstance(data, dict) or data.get("kind") != LOCK_KIND or \
                data.get("apiVersion") != LOCK_API_VERSION:
            raise LockError(f"{source}: not an image lock (apiVersion {LOCK_API_VERSION}, "
                            f"kind {LOCK_KIND})")
        lock = cls()
        entries = data.get("images")
        if not isinstance(entries, list):
            raise LockError(f"{source}: images must be a list")
        for index, entry in enumerate(entries):
            where = f"{source}: images[{index}]"
            if not isinstance(entry, dict) or not isinstance(entry.get("image"), str) or \
                    not isinstance(entry.get("digest"), str):
                raise LockError(f"{where}: needs image and digest")
            try:
                canonical = str(parse_image(entry["image"]))
                parse_image(f"x@{entry['digest']}")
            except ImageError as exc:
                raise LockError(f"{where}: {exc}") from None
            if canonical in lock.images:
                raise LockError(f"{where}: {canonical} is locked twice")
            lock.add(LockedImage(canonical, entry["digest"], str(entry.get("mediaType") or "")))
        return lock

    @classmethod
    def read(cls, path: str | Path) -> ImagesLock:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise LockError(f"{path}: cannot read: {exc.strerror or exc}") from None
        return cls.loads(text, str(path))


def resolve_lock(images: Iterable[str], resolve: Callable[[ImageRef, str], tuple[str, str]],
                 previous: ImagesLock | None = None,
                 progress: Callable[[str], None] | None = None) -> ImagesLock:
    """A lock for `images` (canonical references).

    An image written with a digest keeps it (it is checked with `resolve` all the same: it
    must exist); one in `previous` keeps its locked digest unless it is asked again;
    every other is resolved: `resolve(ref, shown)` -> (digest, media type).
    """
    lock = ImagesLock()
    for image in sorted(set(images)):
        ref = parse_image(image)
        if progress:
            progress(image)
        if previous and (kept := previous.images.get(image)):
            lock.add(kept)
            continue
        if ref.digest:
            digest, media_type = resolve(ImageRef(ref.registry, ref.repository, None, ref.digest), image)
            if digest != ref.digest:
                raise LockError(f"{image}: the registry serves {digest} for that digest")
        else:
            digest, media_type = resolve(ref, image)
        lock.add(LockedImage(image, digest, media_type))
    return lock
