"""Carry a released Version (or an orchestrator bundle) and every image it runs into a site
with no route out: `airgap pack` here, `airgap unpack` there.

The archive is one plain tar (the image layers are compressed already), deterministic: the
same inputs give the same bytes (entries sorted, mtime 0, owner 0:0 with no names, modes 0644
and 0755, no timestamps inside). It holds:

    airgap.json          the index: what (Version or bundle), its source, every image with
                         its digest, size and where the manifests use it, every file's size
    images.lock.yaml     the image lock (argo_delivery/imagelock.py)
    manifests/<component>/...   a Version's deploy manifests, rendered (plain YAML as it is,
                         a kustomization built, a Helm chart templated) at its exact commits
    bundle/...           or: the orchestrator bundle folder, as rendered
    oci/                 one OCI image layout holding every image; a blob shared by several
                         images is stored once
    SHA256SUMS           sha256 of every other file
    SHA256SUMS.sig       optional: `ssh-keygen -Y sign` of SHA256SUMS (namespace
                         argo-delivery-airgap)

Unpack checks everything before it pushes anything: the signature (when given a key), then
that the archive holds exactly the files SHA256SUMS lists, each with its checksum, then that
every blob is the digest it is named by and every image of the index is in the layout. Only
then are the images pushed (skopeo, digests preserved, each checked on the site registry
afterwards) and the manifests rewritten to `<site>/<source registry>/<repository>:<tag>@<digest>`
(the layout `registry.mirror` gives, so a bundle rendered for the site and an unpacked one
agree).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from argo_delivery.imagefinder import FinderResult, Location, find_images
from argo_delivery.imagelock import ImagesLock, LockedImage, LockError, resolve_lock
from argo_delivery.images import ImageError, ImageRef, parse_image, rewrite_image
from argo_delivery.skopeo import RegistryError, Skopeo

__all__ = ["FORMAT", "AirgapError", "PackResult", "UnpackResult", "pack", "render_component",
           "sha256_file", "unpack", "verify_archive"]

FORMAT = "argo-delivery.io/airgap/v1"
INDEX = "airgap.json"
LOCK = "images.lock.yaml"
SUMS = "SHA256SUMS"
SIGNATURE = "SHA256SUMS.sig"
SIGNING_NAMESPACE = "argo-delivery-airgap"
LAYOUT = "oci"
BLOBS = f"{LAYOUT}/blobs/sha256/"
RENDERED = "rendered.yaml"

Progress = Callable[[str, dict[str, Any]], None]  # (event, facts): see `pack` and `unpack`


class AirgapError(Exception):
    """Packing or unpacking stopped; the message names the file, image or component."""


def _quiet(_event: str, _facts: dict[str, Any]) -> None:
    pass


# --- rendering a component's deploy manifests ---------------------------------------------------

def _run(argv: list[str], what: str, timeout: float = 600, **kwargs: Any) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False,
                              stdin=subprocess.DEVNULL, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired:
        raise AirgapError(f"{what}: no answer within {timeout:.0f} s") from None
    except OSError as exc:
        raise AirgapError(f"{what}: cannot run {argv[0]}: {exc.strerror or exc}") from None
    if proc.returncode != 0:
        raise AirgapError(f"{what} failed (exit {proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def render_component(source: Path, out: Path, shown: str) -> list[str]:
    """Render the deploy folder `source` into `out`: a kustomization is built and a Helm chart
    templated into one `rendered.yaml`; plain YAML/JSON files are copied as they are. Returns
    the files written (relative to `out`)."""
    from argo_delivery.imagefinder import KUSTOMIZATION_FILES, MANIFEST_SUFFIXES

    if not source.is_dir():
        raise AirgapError(f"{shown}: no such folder")
    out.mkdir(parents=True, exist_ok=True)
    if (source / "Chart.yaml").is_file():
        from argo_delivery.imagefinder import HELM_TIMEOUT, FinderError, helm_failure, helm_template

        try:
            proc = helm_template(source)
        except FinderError as exc:
            raise AirgapError(str(exc)) from None
        except subprocess.TimeoutExpired:
            raise AirgapError(f"helm template {shown}: did not finish in {HELM_TIMEOUT} s") from None
        if proc.returncode != 0:
            raise AirgapError(f"helm template {shown} failed: {helm_failure(proc.stderr)}")
        (out / RENDERED).write_text(proc.stdout)
        return [RENDERED]
    if any((source / name).is_file() for name in KUSTOMIZATION_FILES):
        from argo_delivery.imagefinder import FinderError, built_tool

        try:
            kustomize = built_tool("kustomize")
        except FinderError as exc:
            raise AirgapError(str(exc)) from None
        text = _run([str(kustomize), "build", str(source)], f"kustomize build {shown}")
        (out / RENDERED).write_text(text)
        return [RENDERED]
    written = []
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file() or \
                path.is_symlink() or path.suffix not in MANIFEST_SUFFIXES:
            continue
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, out / rel)
        written.append(rel.as_posix())
    if not written:
        raise AirgapError(f"{shown}: no manifests (YAML or JSON files, a kustomization or a Helm "
                          "chart)")
    return written


def _git_tree(repo: str, commit: str, directory: Path, component: str) -> None:
    directory.mkdir(parents=True)
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    _run(["git", "init", "-q", str(directory)], "git init", env=env)
    _run(["git", "-C", str(directory), "fetch", "-q", "--depth", "1", repo, commit],
         f"component {component}: git fetch {repo} {commit}", env=env)
    _run(["git", "-C", str(directory), "checkout", "-q", "FETCH_HEAD"],
         f"component {component}: git checkout {commit}", env=env)
    head = _run(["git", "-C", str(directory), "rev-parse", "HEAD"], "git rev-parse").strip()
    if head != commit:
        raise AirgapError(f"component {component}: {repo} gave {head} for {commit}")


# --- the OCI layout -------------------------------------------------------------------------------

def _blob(layout: Path, digest: str) -> Path:
    algorithm, _, hexdigest = digest.partition(":")
    return layout / "blobs" / algorithm / hexdigest


def _image_blobs(layout: Path, digest: str) -> dict[str, int]:
    """Every blob (digest -> size) an image or index reaches, its own manifest included."""
    raw = _blob(layout, digest).read_bytes()
    found = {digest: len(raw)}
    manifest = json.loads(raw)
    for child in manifest.get("manifests") or []:
        found.update(_image_blobs(layout, child["digest"]))
    for desc in [manifest.get("config"), *(manifest.get("layers") or [])]:
        if isinstance(desc, dict):
            found[desc["digest"]] = int(desc["size"])
    return found


def _layout_name(digest: str) -> str:
    return digest.partition(":")[2]


# --- locations and rewriting --------------------------------------------------------------------

_PATH_PART = re.compile(r'\.?([A-Za-z0-9_$-]+)|\[([0-9]+)\]|\[("(?:[^"\\]|\\.)*")\]')


def split_path(text: str) -> list[str | int]:
    """Invert `imagefinder.format_path`: `a.b[0]["x.y"]` -> ["a", "b", 0, "x.y"]."""
    segments: list[str | int] = []
    pos = 0
    while pos < len(text):
        match = _PATH_PART.match(text, pos)
        if not match:
            raise ValueError(f"bad field path {text!r} at {pos}")
        name, index, quoted = match.groups()
        segments.append(name if name is not None else int(index) if index is not None
                        else json.loads(quoted))
        pos = match.end()
    return segments


def _set_at(value: Any, segments: list[str | int], old: str, new: str) -> Any:
    """`value` with the image `old` at `segments` replaced by `new`; a string met before the
    end is an embedded manifest (YAML), rewritten inside and written back."""
    if not segments:
        if value != old:
            raise AirgapError(f"expected image {old!r}, found {value!r}")
        return new
    if isinstance(value, str):
        inner = _set_at(yaml.safe_load(value), segments, old, new)
        return yaml.safe_dump(inner, sort_keys=False)
    head, rest = segments[0], segments[1:]
    value[head] = _set_at(value[head], rest, old, new)
    return value


def rewrite_file(path: Path, shown: str, locations: list[tuple[Location, str]]) -> None:
    """Replace each location's reference in the YAML/JSON file `path` by its new one."""
    text = path.read_text()
    documents = [json.loads(text)] if path.suffix == ".json" else list(yaml.safe_load_all(text))
    for location, new in locations:
        if location.document is None:
            raise AirgapError(f"{shown}: cannot place {location.reference} (no document number)")
        where = f"{shown} (document {location.document}) {location.path}"
        try:
            index = location.document - 1
            documents[index] = _set_at(documents[index], split_path(location.path),
                                       location.reference, new)
        except (AirgapError, ValueError, KeyError, IndexError, TypeError) as exc:
            raise AirgapError(f"{where}: cannot rewrite the image: {exc}") from None
    if path.suffix == ".json":
        path.write_text(json.dumps(documents[0], indent=2) + "\n")
    else:
        path.write_text(yaml.safe_dump_all(documents, sort_keys=False))


def _rewrite_tree(root: Path, result: FinderResult, new_reference: Callable[[str], str]) -> int:
    """Rewrite every image found under `root` (result's files are relative to root's parent
    as scanned) to `new_reference(canonical)`; returns how many places changed."""
    per_file: dict[str, list[tuple[Location, str]]] = {}
    for found in result.images:
        for location in found.locations:
            if location.via or not location.path:
                continue  # run by a controller: its image is set in the controller's config
            per_file.setdefault(location.file, []).append((location, new_reference(found.image)))
    for file, locations in sorted(per_file.items()):
        rewrite_file(Path(file), os.path.relpath(file, root.parent), locations)
    return sum(len(v) for v in per_file.values())


# --- archive ----------------------------------------------------------------------------------

def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _write_sums(root: Path) -> None:
    lines = [f"{sha256_file(root / name)}  {name}\n" for name in _files(root)
             if name not in (SUMS, SIGNATURE)]
    (root / SUMS).write_text("".join(lines))


def _write_tar(root: Path, out: Path, progress: Progress) -> None:
    """A deterministic tar of `root`'s files (and their folders)."""
    names = _files(root)
    folders = sorted({parent.as_posix() for name in names for parent in Path(name).parents
                      if parent.as_posix() != "."})
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        with tarfile.open(tmp, "w", format=tarfile.GNU_FORMAT) as tar:
            for name in sorted([*folders, *names]):
                path = root / name
                info = tarfile.TarInfo(name)
                info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
                if path.is_dir():
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
                    continue
                info.size, info.mode = path.stat().st_size, 0o644
                with open(path, "rb") as f:
                    tar.addfile(info, f)
                progress("archive-file", {"name": name, "bytes": info.size})
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)


def _sign(root: Path, key: Path) -> None:
    exe = shutil.which("ssh-keygen")
    if exe is None:
        raise AirgapError("ssh-keygen is not installed (Debian's openssh-client): cannot sign")
    _run([exe, "-q", "-Y", "sign", "-f", str(key), "-n", SIGNING_NAMESPACE, str(root / SUMS)],
         f"signing with {key}")


# --- pack --------------------------------------------------------------------------------------

@dataclass
class Source:
    """One set of manifests to carry: a component at its commit, or a bundle folder."""

    name: str           # manifests/<name>/ (a component) or "bundle"
    path: Path          # the folder, already rendered into the staging area
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class PackResult:
    archive: Path
    index: dict[str, Any]

    @property
    def images(self) -> list[dict[str, Any]]:
        return self.index["images"]


def _locations(result: FinderResult, stage: Path) -> dict[str, list[dict[str, Any]]]:
    shown: dict[str, list[dict[str, Any]]] = {}
    for found in result.images:
        shown[found.image] = [
            {"file": loc.file, "document": loc.document,
             "object": f"{loc.kind} {loc.namespace + '/' if loc.namespace else ''}{loc.name}",
             "path": loc.path, **({"via": loc.via} if loc.via else {})}
            for loc in found.locations]
    return shown


def _scan_targets(root: Path, top: str) -> list[str]:
    """The files to scan, relative to `root`: a bundle's resource files (one object each, as
    bundle.json lists them; its kustomization.yaml is not built), or every manifest file."""
    from argo_delivery.imagefinder import MANIFEST_SUFFIXES

    if top == "bundle":
        listed = json.loads((root / "bundle" / "bundle.json").read_text())["resources"]
        return [f"bundle/{entry['path']}" for entry in listed]
    return [name for name in _files(root) if name.startswith("manifests/")
            and Path(name).suffix in MANIFEST_SUFFIXES]


def _find(stage: Path, top: str, custom_paths: Any) -> FinderResult:
    cwd = os.getcwd()
    os.chdir(stage)  # so that every location is relative to the archive's root
    try:
        result = find_images(_scan_targets(stage, top), custom_paths)
    finally:
        os.chdir(cwd)
    if result.problems:
        raise AirgapError("the manifests cannot be scanned for images; nothing was packed:\n"
                          + "\n".join(f"  {p}" for p in result.problems))
    return result


def _images_to_carry(stage: Path, top: str, result: FinderResult) -> list[str]:
    """A Version's: every image found. A bundle's: the images bundle.json lists, which hold
    what the controllers run as the bundle's config set them (the finder only knows their
    defaults); an image found at a field of the bundle must be among them."""
    found = [f.image for f in result.images]
    if top != "bundle":
        return found
    listed = json.loads((stage / "bundle" / "bundle.json").read_text()).get("images") or []
    images = sorted({str(parse_image(image)) for image in listed})
    for image in result.images:
        direct = [loc for loc in image.locations if not loc.via]
        if direct and image.image not in images:
            raise AirgapError(f"{direct[0].file}: image {image.image} is not in bundle.json's "
                              "images: the bundle was not rendered by argo-delivery as it is")
    return images


def pack(stage_sources: Callable[[Path], dict[str, Any]], out: Path, *, skopeo: Skopeo,
         lock: ImagesLock | None = None, custom_paths: Any = None, sign_key: Path | None = None,
         progress: Progress = _quiet) -> PackResult:
    """Pack what `stage_sources(stage)` lays out under `stage` (manifests/ or bundle/; it
    returns the index's `source` facts) with every image it runs into the archive `out`.

    With `lock`, its digests are used for the images it holds (a tag moved since changes
    nothing); every other image is resolved against its registry now.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="argo-delivery-pack-", dir=out.parent) as tmp:
        stage = Path(tmp, "stage")
        stage.mkdir()
        source = stage_sources(stage)
        top = "bundle" if (stage / "bundle").is_dir() else "manifests"
        result = _find(stage, top, custom_paths)
        images = _images_to_carry(stage, top, result)
        progress("found", {"images": len(images)})

        def resolve(ref: ImageRef, shown: str) -> tuple[str, str]:
            digest, media_type, _ = skopeo.digest(str(ref), ref.registry)
            progress("resolved", {"image": shown, "digest": digest})
            return digest, media_type

        try:
            locked = resolve_lock(images, resolve, previous=lock)
        except (RegistryError, LockError) as exc:
            raise AirgapError(f"{exc}; nothing was packed") from None
        (stage / LOCK).write_text(locked.dumps())

        layout = stage / LAYOUT
        sizes: dict[str, dict[str, int]] = {}
        progress("copy-start", {"images": len(locked.images)})
        packed: dict[str, str] = {}  # the source's digest -> the digest in the layout
        for image, entry in sorted(locked.images.items()):
            name = _layout_name(entry.digest)
            if entry.digest not in packed:
                try:
                    packed[entry.digest] = skopeo.to_layout(entry.by_digest, entry.ref.registry,
                                                            layout, name, entry.media_type)
                except RegistryError as exc:
                    raise AirgapError(f"{exc}; nothing was packed") from None
                sizes[entry.digest] = _image_blobs(layout, packed[entry.digest])
            progress("copied", {"image": image, "bytes": sum(sizes[entry.digest].values())})

        where = _locations(result, stage)
        blobs: dict[str, int] = {}
        for found in sizes.values():
            blobs.update(found)
        index = {
            "format": FORMAT,
            "kind": "bundle" if top == "bundle" else "version",
            "source": source,
            "images": [{"image": image, "digest": entry.digest, "mediaType": entry.media_type,
                        "packedDigest": packed[entry.digest],
                        "layoutName": _layout_name(entry.digest),
                        "size": sum(sizes[entry.digest].values()),
                        "locations": where.get(image, [])}
                       for image, entry in sorted(locked.images.items())],
            "totals": {"images": len(locked.images),
                       "imageBytes": sum(sum(sizes[e.digest].values())
                                         for e in locked.images.values()),
                       "blobs": len(blobs), "blobBytes": sum(blobs.values())},
            "notes": [str(note) for note in result.notes],
        }
        index["files"] = {name: (stage / name).stat().st_size for name in _files(stage)}
        (stage / INDEX).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
        _write_sums(stage)
        if sign_key:
            _sign(stage, sign_key)
        _write_tar(stage, out, progress)
    return PackResult(out, index)


def stage_version(version: dict[str, Any], deploy_paths: dict[str, str],
                  progress: Progress = _quiet) -> Callable[[Path], dict[str, Any]]:
    """The `stage_sources` of a Version: each component's deploy folder at its exact commit,
    rendered under manifests/<component>/."""
    meta, spec = version["metadata"], version["spec"]

    def stage(root: Path) -> dict[str, Any]:
        components = []
        with tempfile.TemporaryDirectory(prefix="argo-delivery-git-") as checkouts:
            for component in spec["components"]:
                name, commit = component["name"], component["commit"]
                deploy_path = deploy_paths.get(name, "deploy")
                progress("clone", {"component": name, "commit": commit})
                tree = Path(checkouts, name)
                _git_tree(component["repo"], commit, tree, name)
                files = render_component(tree / deploy_path, root / "manifests" / name,
                                         f"component {name}: {deploy_path} at {commit[:12]}")
                components.append({"name": name, "repo": component["repo"], "commit": commit,
                                   "deployPath": deploy_path, "files": files})
        return {"version": meta["name"], "namespace": meta.get("namespace"),
                "project": spec.get("project"), "hash": spec.get("hash"),
                "stream": (version.get("status") or {}).get("stream"),
                "releasedAt": (version.get("status") or {}).get("releasedAt"),
                "components": components}

    return stage


def stage_bundle(folder: Path) -> Callable[[Path], dict[str, Any]]:
    """The `stage_sources` of an orchestrator bundle folder (checked against its SHA256SUMS)."""
    from argo_delivery.bundle import BundleError, verify_bundle

    def stage(root: Path) -> dict[str, Any]:
        try:
            problems = verify_bundle(folder)
        except BundleError as exc:
            raise AirgapError(str(exc)) from None
        if problems:
            raise AirgapError(f"{folder} is not as rendered: "
                              + "; ".join(str(p) for p in problems))
        shutil.copytree(folder, root / "bundle", symlinks=False)
        meta = json.loads((folder / "bundle.json").read_text())
        return {"bundle": meta.get("name"), "version": meta.get("version"),
                "digest": meta.get("digest")}

    return stage


# --- verify and unpack ------------------------------------------------------------------------

def _safe_members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    for member in tar:
        name = member.name
        if name.startswith("/") or ".." in Path(name).parts or not (member.isfile() or member.isdir()):
            raise AirgapError(f"{name}: refused (an absolute path, `..`, a link or a device "
                              "has no place in an archive)")
        yield member


def _extract(archive: Path, into: Path) -> None:
    try:
        with tarfile.open(archive, "r:") as tar:
            for member in _safe_members(tar):
                target = into / member.name
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None
                with open(target, "wb") as f:
                    shutil.copyfileobj(source, f, 1 << 20)
    except (tarfile.TarError, OSError) as exc:
        raise AirgapError(f"{archive}: not a readable archive: {exc}") from None


def _check_signature(root: Path, key: Path) -> None:
    exe = shutil.which("ssh-keygen")
    if exe is None:
        raise AirgapError("ssh-keygen is not installed (Debian's openssh-client): cannot check "
                          "the signature")
    if not (root / SIGNATURE).is_file():
        raise AirgapError(f"{SIGNATURE}: missing, and --key asks for a signed archive")
    try:
        public = key.read_text().split()
    except OSError as exc:
        raise AirgapError(f"--key {key}: cannot read: {exc.strerror or exc}") from None
    if len(public) < 2:
        raise AirgapError(f"--key {key}: not an SSH public key")
    signers = root.parent / "allowed_signers"
    signers.write_text(f"airgap {public[0]} {public[1]}\n")
    with open(root / SUMS, "rb") as data:
        proc = subprocess.run([exe, "-Y", "verify", "-f", str(signers), "-I", "airgap",
                               "-n", SIGNING_NAMESPACE, "-s", str(root / SIGNATURE)],
                              stdin=data, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise AirgapError(f"{SIGNATURE}: not a signature of {SUMS} by --key {key} "
                          f"({(proc.stderr or proc.stdout).strip()})")


def verify_archive(root: Path, key: Path | None = None) -> dict[str, Any]:
    """Check an extracted archive; AirgapError naming the first file that is wrong. Returns
    the index."""
    if not (root / SUMS).is_file():
        raise AirgapError(f"{SUMS}: missing: not an argo-delivery air-gap archive")
    if key is not None:
        _check_signature(root, key)
    listed: dict[str, str] = {}
    for number, line in enumerate((root / SUMS).read_text().splitlines(), 1):
        digest, sep, name = line.partition("  ")
        if not sep or not re.fullmatch(r"[0-9a-f]{64}", digest) or not name:
            raise AirgapError(f"{SUMS}: line {number} is malformed: {line!r}")
        listed[name] = digest
    present = set(_files(root)) - {SUMS, SIGNATURE}
    for name in sorted(set(listed) - present):
        raise AirgapError(f"{name}: listed in {SUMS} but missing from the archive")
    for name in sorted(present - set(listed)):
        raise AirgapError(f"{name}: in the archive but not in {SUMS}")
    for name, digest in sorted(listed.items()):
        if sha256_file(root / name) != digest:
            raise AirgapError(f"{name}: its sha256 is not the one in {SUMS}: the file was changed "
                              "after packing")
        if name.startswith(BLOBS) and name[len(BLOBS):] != digest:
            raise AirgapError(f"{name}: the blob's content is not the digest it is named by")
    try:
        index = json.loads((root / INDEX).read_text())
    except (OSError, ValueError) as exc:
        raise AirgapError(f"{INDEX}: unreadable: {exc}") from None
    if index.get("format") != FORMAT:
        raise AirgapError(f"{INDEX}: format {index.get('format')!r}; this argo-delivery reads "
                          f"{FORMAT}")
    layout = root / LAYOUT
    for image in index["images"]:
        try:
            blobs = _image_blobs(layout, image["packedDigest"])
        except (OSError, ValueError, KeyError) as exc:
            raise AirgapError(f"{INDEX}: image {image['image']} ({image.get('packedDigest')}) is "
                              f"not complete in {LAYOUT}/: {exc}") from None
        for digest in blobs:
            if not _blob(layout, digest).is_file():
                raise AirgapError(f"{BLOBS}{_layout_name(digest)}: missing, needed by image "
                                  f"{image['image']}")
    return index


@dataclass
class UnpackResult:
    folder: Path
    index: dict[str, Any]
    pushed: list[dict[str, str]]
    rewritten: int


def site_reference(image: str, digest: str, registry: str) -> str:
    """`<site>/<source registry>/<repository>:<tag>@<digest>`."""
    ref = parse_image(rewrite_image(image, mirror=registry))
    return str(ImageRef(ref.registry, ref.repository, ref.tag, digest))


def unpack(archive: Path, registry: str, out: Path, *, skopeo: Skopeo, key: Path | None = None,
           progress: Progress = _quiet, custom_paths: Any = None) -> UnpackResult:
    """Verify `archive`, push its images to `registry`, write the rewritten manifests to `out`.

    Nothing is pushed unless every check passes; `out` is written only after every push.
    """
    registry = registry.rstrip("/")
    try:
        site_host = parse_image(f"{registry}/x").registry
    except ImageError as exc:
        raise AirgapError(f"--registry {registry}: {exc}") from None
    if out.exists() and any(out.iterdir()):
        raise AirgapError(f"{out} exists and is not empty; choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="argo-delivery-unpack-", dir=out.parent) as tmp:
        root = Path(tmp, "archive")
        root.mkdir()
        progress("extract", {"archive": str(archive)})
        _extract(archive, root)
        index = verify_archive(root, key)
        progress("verified", {"images": len(index["images"]), "signed": key is not None})

        top = "bundle" if index["kind"] == "bundle" else "manifests"
        sites = {i["image"]: site_reference(i["image"], i["packedDigest"], registry)
                 for i in index["images"]}
        result = _find(root, top, custom_paths)
        for found in result.images:
            direct = [loc for loc in found.locations if not loc.via]
            if direct and found.image not in sites:
                raise AirgapError(f"{direct[0].file}: image {found.image} is used but not in "
                                  f"{INDEX}: the archive is inconsistent")
        # rewritten here, before anything is pushed: an archive whose manifests use an image
        # it does not carry stops now
        cwd = os.getcwd()
        os.chdir(root)
        try:
            rewritten = _rewrite_tree(Path(top), result, lambda image: sites[image])
        finally:
            os.chdir(cwd)
        if top == "bundle":
            _reseal_bundle(root / "bundle", registry, sites)

        pushed = []
        layout = root / LAYOUT
        progress("push-start", {"images": len(index["images"]),
                                "bytes": sum(i["size"] for i in index["images"])})
        for image in index["images"]:
            target = sites[image["image"]]
            ref = parse_image(target)
            tag = ImageRef(ref.registry, ref.repository, ref.tag or "airgap", None)
            try:
                skopeo.from_layout(layout, image["layoutName"], str(tag), site_host)
                digest, _, _ = skopeo.digest(f"{ref.registry}/{ref.repository}@{ref.digest}",
                                             site_host)
            except RegistryError as exc:
                raise AirgapError(str(exc)) from None
            if digest != ref.digest:
                raise AirgapError(f"{target}: the site registry serves {digest}")
            pushed.append({"image": image["image"], "site": target})
            progress("pushed", {"image": image["image"], "site": target, "bytes": image["size"]})

        lock = ImagesLock()
        for image in index["images"]:
            lock.add(LockedImage(str(parse_image(sites[image["image"]])).split("@")[0],
                                 image["packedDigest"]))
        staged = Path(tmp, "out")
        shutil.copytree(root / top, staged / top)
        (staged / LOCK).write_text(lock.dumps())
        site_index = {**index, "site": {"registry": registry, "images": pushed}}
        (staged / INDEX).write_text(json.dumps(site_index, indent=2, sort_keys=True) + "\n")
        if out.exists():
            out.rmdir()
        shutil.move(str(staged), str(out))
    return UnpackResult(out, index, pushed, rewritten)


def _reseal_bundle(folder: Path, registry: str, sites: dict[str, str]) -> None:
    """A bundle whose images were rewritten gets its image list, SHA256SUMS and digest again,
    and bundle.json says where it was unpacked."""
    from argo_delivery.bundle import NOT_DIGESTED, content_digest

    listed = (folder / "images.txt").read_text().split()
    images = sorted(sites.get(str(parse_image(line)), line) for line in listed)
    (folder / "images.txt").write_text("".join(f"{image}\n" for image in images))
    files = {name: (folder / name).read_bytes() for name in _files(folder)}
    digest = content_digest({k: v for k, v in files.items() if k not in NOT_DIGESTED})
    meta = json.loads(files["bundle.json"])
    meta.update(digest=digest, images=images,
                airgap={"registry": registry, "packedDigest": meta.get("digest")})
    (folder / "bundle.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    lines = [f"{sha256_file(folder / name)}  {name}\n" for name in _files(folder)
             if name != "SHA256SUMS"]
    (folder / "SHA256SUMS").write_text("".join(lines))


def read_index(archive: Path) -> dict[str, Any]:
    """The index of an archive, unverified (for `airgap show`)."""
    with tarfile.open(archive, "r:") as tar:
        member = tar.getmember(INDEX)
        data = tar.extractfile(member)
        assert data is not None
        return json.load(io.TextIOWrapper(data))


def manifest_documents(folder: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(file, object) for every object of an unpacked Version's manifests/, in file order."""
    from argo_delivery.imagefinder import MANIFEST_SUFFIXES

    for name in _files(folder):
        path = folder / name
        if path.suffix not in MANIFEST_SUFFIXES:
            continue
        text = path.read_text()
        documents = [json.loads(text)] if path.suffix == ".json" else yaml.safe_load_all(text)
        for document in documents:
            if isinstance(document, dict) and document.get("kind", "").endswith("List") and \
                    isinstance(document.get("items"), list):
                yield from ((name, item) for item in document["items"])
            elif document:
                yield name, document


def apply_unpacked(folder: Path, cluster: Any, namespace: str,
                   progress: Callable[[str], None] = lambda _: None) -> int:
    """Apply an unpacked folder with argo-delivery's apply: a bundle as `argo-delivery apply`
    does (phases, ApplySet), a Version's manifests object by object (server-side apply; a
    namespaced object without a namespace goes to `namespace`). Returns the objects applied."""
    from argo_delivery.apply import ApplyError, apply_bundle, read_bundle

    try:
        if (folder / "bundle").is_dir():
            report = apply_bundle(read_bundle(folder / "bundle"), cluster, progress=progress)
            return len(report.applied)
        count = 0
        objects = list(manifest_documents(folder / "manifests"))
        # namespaces and CRDs first, as the bundle apply does
        objects.sort(key=lambda item: (item[1].get("kind") != "Namespace",
                                       item[1].get("kind") != "CustomResourceDefinition"))
        for name, document in objects:
            resource = cluster.resource(document["apiVersion"], document["kind"])
            meta = document.setdefault("metadata", {})
            if resource.namespaced and not meta.get("namespace"):
                meta["namespace"] = namespace
            cluster.apply(document)
            progress(f"applied {document['kind']} {meta.get('namespace', '')}/{meta['name']} "
                     f"({name})")
            count += 1
        return count
    except ApplyError as exc:
        raise AirgapError(f"apply: {exc}") from None


# --- fetch: the exported archive of a Version, from the artifact repository ---------------------

DEFAULT_REPOSITORIES = "artifact-repositories"  # Argo's default ConfigMap for a ref
DEFAULT_REPOSITORY_ANNOTATION = "workflows.argoproj.io/default-artifact-repository"
CONTROLLER_CONFIGMAP = "workflow-controller-configmap"


def _read_configmap(core: Any, name: str, namespace: str) -> Any:
    from kubernetes.client.exceptions import ApiException

    try:
        return core.read_namespaced_config_map(name, namespace)
    except ApiException as exc:
        raise AirgapError(f"cannot read ConfigMap {namespace}/{name} (the artifact repository's "
                          f"settings): HTTP {exc.status} {exc.reason}") from None


def artifact_repository(core: Any, namespace: str, ref: dict[str, str] | None,
                        controller_namespace: str) -> tuple[dict[str, Any], str]:
    """(the repository's settings, where they were read) as Argo resolves them: the ConfigMap
    key `ref` names in `namespace`, else the workflow controller's default repository."""
    if ref:
        name = ref.get("configMap") or DEFAULT_REPOSITORIES
        config_map = _read_configmap(core, name, namespace)
        key = ref.get("key") or (config_map.metadata.annotations or {}).get(
            DEFAULT_REPOSITORY_ANNOTATION)
        where = f"ConfigMap {namespace}/{name} key {key}"
        text = (config_map.data or {}).get(key or "")
    else:
        config_map = _read_configmap(core, CONTROLLER_CONFIGMAP, controller_namespace)
        where = f"ConfigMap {controller_namespace}/{CONTROLLER_CONFIGMAP} key artifactRepository"
        text = (config_map.data or {}).get("artifactRepository")
    if not text:
        raise AirgapError(f"{where}: no artifact repository there")
    return yaml.safe_load(text) or {}, where


def _secret_value(core: Any, namespace: str, selector: dict[str, str] | None, what: str) -> str:
    import base64

    from kubernetes.client.exceptions import ApiException

    if not selector:
        raise AirgapError(f"the artifact repository names no {what} Secret")
    try:
        secret = core.read_namespaced_secret(selector["name"], namespace)
    except ApiException as exc:
        raise AirgapError(f"cannot read Secret {namespace}/{selector['name']} (the artifact "
                          f"repository's {what}): HTTP {exc.status} {exc.reason}") from None
    value = (secret.data or {}).get(selector["key"])
    if value is None:
        raise AirgapError(f"Secret {namespace}/{selector['name']} has no key {selector['key']!r}")
    return base64.b64decode(value).decode()


def fetch(version: dict[str, Any], out: Path, api_client: Any, *,
          controller_namespace: str = "argo", endpoint: str | None = None,
          progress: Progress = _quiet) -> dict[str, Any]:
    """Download the archive `status.export` of `version` names into `out` (atomically), its
    sha256 and size checked against the status. Returns status.export."""
    import urllib3
    from kubernetes import client as k8s
    from minio import Minio
    from minio.error import MinioException, S3Error

    meta = version["metadata"]
    shown = f"{meta.get('namespace')}/{meta['name']}"
    export = (version.get("status") or {}).get("export") or {}
    if export.get("phase") != "Succeeded":
        state = export.get("phase") or "not exported"
        message = f": {export['message']}" if export.get("message") else ""
        raise AirgapError(f"Version {shown} is {state}{message} (airgap.export packs a released "
                          "Version after its release step)")
    artifact = export.get("artifact") or {}
    core = k8s.CoreV1Api(api_client)
    repository, where = artifact_repository(core, meta["namespace"], artifact.get("repositoryRef"),
                                            controller_namespace)
    s3 = repository.get("s3")
    if not isinstance(s3, dict):
        raise AirgapError(f"{where}: not an S3-compatible repository (airgap fetch reads S3)")
    access = _secret_value(core, meta["namespace"], s3.get("accessKeySecret"), "access key")
    secret = _secret_value(core, meta["namespace"], s3.get("secretKeySecret"), "secret key")
    server = endpoint or s3.get("endpoint") or "s3.amazonaws.com"
    client = Minio(server, access_key=access, secret_key=secret,
                   secure=not s3.get("insecure", False), region=s3.get("region"))
    tmp = out.with_name(f".{out.name}.part")
    digest = hashlib.sha256()
    size = 0
    try:
        response = client.get_object(s3["bucket"], artifact["key"])
        try:
            progress("fetch-start", {"bytes": export.get("size"), "key": artifact["key"]})
            with open(tmp, "wb") as f:
                for chunk in response.stream(1 << 20):
                    f.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    progress("fetched", {"bytes": len(chunk)})
        finally:
            response.close()
            response.release_conn()
        if digest.hexdigest() != export.get("sha256") or size != export.get("size"):
            raise AirgapError(f"s3://{s3['bucket']}/{artifact['key']}: {size} bytes with sha256 "
                              f"{digest.hexdigest()}, but Version {shown} records "
                              f"{export.get('size')} bytes with sha256 {export.get('sha256')}")
        tmp.replace(out)
    except S3Error as exc:
        raise AirgapError(f"s3://{s3['bucket']}/{artifact['key']} on {server}: {exc.code}: "
                          f"{exc.message}") from None
    except (MinioException, OSError, urllib3.exceptions.HTTPError) as exc:
        raise AirgapError(f"cannot download s3://{s3['bucket']}/{artifact['key']} from "
                          f"{server}: {exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return export
