"""Image references: normalise, rewrite to a mirror, require digests, collect from manifests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["ImageError", "ImageRef", "collect_images", "mirror_component", "parse_image",
           "rewrite_image"]

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class ImageError(ValueError):
    """An image reference that breaks the platform's image policy."""


@dataclass(frozen=True)
class ImageRef:
    """A parsed image reference with Docker's defaults made explicit."""

    registry: str
    repository: str
    tag: str | None
    digest: str | None

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_image(reference: str) -> ImageRef:
    """Parse `[registry/]repo[:tag][@digest]`; docker.io and library/ are made explicit."""
    rest, _, digest = reference.partition("@")
    if digest and not _DIGEST.match(digest):
        raise ImageError(f"image {reference!r}: digest must be sha256:<64 hex>, found {digest!r}")
    name, tag = rest, None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = rest.rsplit(":", 1)
    first, _, remainder = name.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, remainder
    else:
        registry, repository = "docker.io", name
    if registry == "docker.io" and "/" not in repository:
        repository = f"library/{repository}"
    if not repository:
        raise ImageError(f"image {reference!r} has no repository")
    return ImageRef(registry, repository, tag or (None if digest else "latest"), digest or None)


def rewrite_image(reference: str, mirror: str | None = None, require_digest: bool = False) -> str:
    """The reference the cluster pulls: fully qualified, moved under `mirror` if one is set.

    The mirror keeps the source registry as the first path segment
    (`mirror/docker.io/library/python:3.12`; `mirror/registry.example.com__5000/app:1` for a
    registry with a port, see `mirror_component`), so images from two registries with the
    same repository name cannot collide on the mirror.
    """
    image = parse_image(reference)
    if require_digest and not image.digest:
        raise ImageError(f"image {reference!r} is not pinned by digest; registry.requireDigests "
                         "is on, so write it as name:tag@sha256:<digest>")
    if mirror:
        image = ImageRef(mirror.rstrip("/"), f"{mirror_component(image.registry)}/{image.repository}",
                         image.tag, image.digest)
    return str(image)


def mirror_component(registry: str) -> str:
    """The source registry as the first path component on a mirror: lower case, and a port
    written `__PORT` (a `:` is not allowed in a repository path; no host name holds `__`, so
    `host:5000` and a host named `host-5000` cannot meet)."""
    host, _, port = registry.lower().partition(":")
    return f"{host}__{port}" if port else host


def _containers(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        if isinstance(value.get("image"), str):
            yield value
        for item in value.values():
            yield from _containers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _containers(item)


def collect_images(resources: list[dict[str, Any]]) -> list[str]:
    """Every image any container in `resources` runs, sorted and unique."""
    return sorted({c["image"] for resource in resources for c in _containers(resource)})
