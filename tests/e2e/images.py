"""The images of the end-to-end cluster, built on this machine (no registry).

Each image is a recipe: a root filesystem put together from files built here (.cache/bin,
`make e2e-tools`) or installed from Debian (busybox-static, mmdebstrap), written as a one-layer
OCI archive by tools/images/mkimage.py into .cache/e2e/images/, and imported into the
cluster's containerd with `ctr -n k8s.io images import`. An archive is rebuilt only when the
recipe's inputs (the recipe itself, each input file's size and modification time) change; the
key is kept beside the archive as NAME.key.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = REPO_ROOT / ".cache" / "bin"
IMAGE_CACHE = REPO_ROOT / ".cache" / "e2e" / "images"
sys.path.insert(0, str(REPO_ROOT / "tools" / "images"))
import mkimage  # noqa: E402

BUSYBOX = Path("/bin/busybox")
# Users of the images: root, Argo's executor (8737, as in upstream's argoexec image), the
# non-root uid every pod we render runs as (65532) and nobody.
PASSWD = """root:x:0:0:root:/root:/bin/sh
argo:x:8737:8737:argo:/home/argo:/bin/sh
nonroot:x:65532:65532:nonroot:/home/nonroot:/bin/sh
argo-events:x:9731:9731:argo-events:/home/argo-events:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""
GROUP = """root:x:0:
argo:x:8737:
nonroot:x:65532:
argo-events:x:9731:
nogroup:x:65534:
"""
# Recipe revision: bump when a build function changes in a way its inputs do not show.
RECIPE_REVISION = "2"


class MissingInput(Exception):
    """An input of a recipe is not built or installed; the message says how to get it."""


@dataclass
class Image:
    name: str
    build: Callable[[Path], None]
    inputs: list[Path] = field(default_factory=list)
    fix: str = "make e2e-tools"
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    user: str = ""
    workdir: str = ""
    env: list[str] | None = None
    extra_key: str = ""
    revision: str = RECIPE_REVISION

    @property
    def archive(self) -> Path:
        return IMAGE_CACHE / (re.sub(r"[^A-Za-z0-9_.-]+", "_", self.name) + ".tar")

    def key(self) -> str:
        h = hashlib.sha256()
        h.update(json.dumps([self.revision, self.name, self.entrypoint, self.cmd, self.user,
                             self.workdir, self.env, self.extra_key]).encode())
        for p in self.inputs:
            if not p.exists():
                raise MissingInput(f"{_rel(p)} is missing for image {self.name}: run `{self.fix}`")
            st = p.stat()
            # relative to the checkout: worktrees sharing one image cache agree on the key
            h.update(f"{_rel(p)}:{st.st_size}:{st.st_mtime_ns}".encode())
        return h.hexdigest()

    def ensure(self) -> tuple[Path, bool]:
        """The archive, built if missing or stale; returns (path, rebuilt)."""
        key = self.key()
        keyfile = self.archive.with_suffix(".key")
        if self.archive.exists() and keyfile.exists() and keyfile.read_text() == key:
            return self.archive, False
        IMAGE_CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="e2e-image-", dir=IMAGE_CACHE) as tmp:
            rootfs = Path(tmp) / "rootfs"
            rootfs.mkdir()
            self.build(rootfs)
            mkimage.build(rootfs, self.archive, self.name, entrypoint=self.entrypoint,
                          cmd=self.cmd, env=self.env, user=self.user, workdir=self.workdir)
        keyfile.write_text(key)
        return self.archive, True


def _rel(p: Path) -> str:
    try:
        return str(p.relative_to(REPO_ROOT))
    except ValueError:
        return str(p)


def _install(src: Path, rootfs: Path, dest: str, mode: int = 0o755) -> None:
    target = rootfs / dest.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, target)
    target.chmod(mode)


def _base_files(rootfs: Path) -> None:
    """/etc/passwd, /etc/group, /tmp and home folders."""
    (rootfs / "etc").mkdir(exist_ok=True)
    for name, text in (("passwd", PASSWD), ("group", GROUP)):
        path = rootfs / "etc" / name
        if path.exists():
            have = {line.split(":")[0] for line in path.read_text().splitlines() if line}
            extra = [line for line in text.splitlines() if line.split(":")[0] not in have]
            path.write_text(path.read_text().rstrip("\n") + "\n" + "\n".join(extra) + "\n")
        else:
            path.write_text(text)
    (rootfs / "tmp").mkdir(exist_ok=True)
    (rootfs / "tmp").chmod(0o1777)
    for user, uid in (("argo", 8737), ("nonroot", 65532), ("argo-events", 9731)):
        home = rootfs / "home" / user
        home.mkdir(parents=True, exist_ok=True)
        shutil.chown(home, uid, uid)
    for d in ("dev", "proc", "sys", "etc/ssl/certs"):
        (rootfs / d).mkdir(parents=True, exist_ok=True)
    (rootfs / "etc" / "hosts").touch()
    nss = rootfs / "etc" / "nsswitch.conf"
    if not nss.exists():
        nss.write_text("passwd: files\ngroup: files\nhosts: files dns\n")
    (rootfs / "etc" / "resolv.conf").touch()


def _busybox_rootfs(rootfs: Path) -> None:
    if not BUSYBOX.exists():
        raise MissingInput("/bin/busybox is missing: run `make debs` (busybox-static)")
    _install(BUSYBOX, rootfs, "/bin/busybox")
    applets = subprocess.run([str(BUSYBOX), "--list-full"], check=True, capture_output=True,
                             text=True).stdout.split()
    for applet in applets:
        link = rootfs / applet
        if applet.endswith("/busybox") or link.exists():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/bin/busybox")
    _base_files(rootfs)


def busybox_version() -> str:
    if not BUSYBOX.exists():
        raise MissingInput("/bin/busybox is missing: run `make debs` (busybox-static)")
    out = subprocess.run([str(BUSYBOX)], capture_output=True, text=True).stdout
    m = re.search(r"BusyBox v(\d+\.\d+\.\d+)", out)
    return m.group(1) if m else "unknown"


def go_pin(rel_gomod: str, module: str) -> str:
    text = (REPO_ROOT / rel_gomod).read_text()
    m = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", text, re.M)
    if not m:
        raise MissingInput(f"{rel_gomod} does not require {module}")
    return m.group(1)


# ------------------------------------------------------------------ recipes
PAUSE_IMAGE = "e2e.local/pause:1"


def pause_image() -> Image:
    src = BIN / "e2e-pause"
    return Image(PAUSE_IMAGE, lambda r: (_install(src, r, "/pause"), _base_files(r)),
                 inputs=[src], entrypoint=["/pause"], user="65535")


def busybox_image() -> Image:
    return Image(f"e2e.local/busybox:{busybox_version()}", _busybox_rootfs, inputs=[BUSYBOX],
                 fix="make debs", cmd=["sh"])


def argoexec_image() -> Image:
    version = go_pin("tools/e2e/argo-workflows/go.mod", "github.com/argoproj/argo-workflows/v4")
    src = BIN / "argoexec"

    def build(rootfs: Path) -> None:
        _busybox_rootfs(rootfs)
        _install(src, rootfs, "/bin/argoexec")

    return Image(f"quay.io/argoproj/argoexec:{version}", build, inputs=[src, BUSYBOX],
                 entrypoint=["argoexec"], user="8737")


PYTHON_GIT_PACKAGES = ["python3", "git", "ca-certificates"]
# The air-gap image's Debian part: skopeo (with its dependencies, as Debian has them) copies
# images; ssh-keygen (openssh-client) signs an archive (`airgap pack --sign-key`).
AIRGAP_PACKAGES = [*PYTHON_GIT_PACKAGES, "skopeo", "openssh-client"]


def _mmdebstrap() -> str | None:
    return shutil.which("mmdebstrap")


def _debian_rootfs(rootfs: Path, packages: list[str], log_name: str) -> None:
    """mmdebstrap bookworm minbase plus `packages` into `rootfs` (no docs, man pages or
    locales; apt's caches emptied), then the passwd entries; the log goes to
    IMAGE_CACHE/<log_name>.mmdebstrap.log."""
    mmdebstrap = _mmdebstrap()
    if not mmdebstrap:
        raise MissingInput("mmdebstrap is missing: run `make debs`")
    log = IMAGE_CACHE / f"{log_name}.mmdebstrap.log"
    with open(log, "w") as out:
        proc = subprocess.run(
            [mmdebstrap, "--variant=minbase", "--mode=root",
             f"--include={','.join(packages)}",
             "--dpkgopt=path-exclude=/usr/share/doc/*",
             "--dpkgopt=path-exclude=/usr/share/man/*",
             "--dpkgopt=path-exclude=/usr/share/locale/*",
             "bookworm", str(rootfs)], stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise RuntimeError(f"mmdebstrap failed (exit {proc.returncode}); see {log}")
    for cache in ("var/cache/apt", "var/lib/apt/lists"):
        shutil.rmtree(rootfs / cache, ignore_errors=True)
        (rootfs / cache).mkdir(parents=True, exist_ok=True)
    _base_files(rootfs)


def _debian_image(name: str, packages: list[str], log_name: str, cmd: list[str],
                  revision: str) -> Image:
    mmdebstrap = _mmdebstrap()
    return Image(name, lambda rootfs: _debian_rootfs(rootfs, packages, log_name),
                 inputs=[Path(mmdebstrap)] if mmdebstrap else [Path("/usr/bin/mmdebstrap")],
                 fix="make debs", extra_key=",".join(packages), cmd=cmd, revision=revision)


def python_git_image() -> Image:
    """Debian bookworm's python3 and git (mmdebstrap minbase), with a passwd entry for 65532."""
    # its own revision: a 3-minute rebuild; Debian's rootfs brings nsswitch.conf
    return _debian_image("e2e.local/python-git:bookworm", PYTHON_GIT_PACKAGES, "python-git",
                         cmd=["python3"], revision="1")


def airgap_base_image() -> Image:
    """python-git plus skopeo and openssh-client: a second mmdebstrap run. Only the base of
    the air-gap image (kept as its own archive, so a change to argo-delivery's source does not
    run mmdebstrap again); not imported into the cluster."""
    return _debian_image("e2e.local/airgap-base:bookworm", AIRGAP_PACKAGES, "airgap-base",
                         cmd=["skopeo", "--version"], revision="1")


def _unpack_image(archive: Path, rootfs: Path) -> None:
    """Unpack the one layer of an archive written by mkimage into `rootfs` (owners, modes,
    links and setuid bits as they were: the archive is our own)."""
    with tarfile.open(archive) as outer:
        def blob(digest: str):
            return outer.extractfile(f"blobs/sha256/{digest.split(':', 1)[1]}")

        index = json.load(outer.extractfile("index.json"))
        manifest = json.load(blob(index["manifests"][0]["digest"]))
        (layer,) = manifest["layers"]
        with tarfile.open(fileobj=blob(layer["digest"])) as inner:
            inner.extractall(rootfs, numeric_owner=True, filter="fully_trusted")


TOFU_MIRROR_IN_IMAGE = "/usr/share/tofu/mirror"


def tofu_image() -> Image:
    """The python-git image plus OpenTofu, kubectl and the fakecloud provider as a filesystem
    mirror, with a CLI config (/etc/tofurc) that installs providers from that mirror only.

    Built on the python-git image's archive (unpacked, not a second mmdebstrap run), so its
    key includes that image's key. Tagged with the OpenTofu version tools/tofu/go.mod pins.
    """
    from tests.tofu import TOFU, cli_config, provider_binary

    base = python_git_image()
    version = go_pin("tools/tofu/go.mod", "github.com/opentofu/opentofu").lstrip("v")
    kubectl = BIN / "kubectl"
    provider = provider_binary()
    in_mirror = provider_binary(Path(TOFU_MIRROR_IN_IMAGE))
    tofurc = cli_config(TOFU_MIRROR_IN_IMAGE)

    def build(rootfs: Path) -> None:
        archive, _ = base.ensure()
        _unpack_image(archive, rootfs)
        _install(TOFU, rootfs, "/usr/local/bin/tofu")
        _install(kubectl, rootfs, "/usr/local/bin/kubectl")
        _install(provider, rootfs, str(in_mirror))
        (rootfs / "etc" / "tofurc").write_text(tofurc)

    return Image(f"e2e.local/tofu:{version}", build,
                 inputs=[TOFU, kubectl, provider, *base.inputs], fix="make e2e-tools",
                 cmd=["tofu", "version"],
                 env=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                      "TF_CLI_CONFIG_FILE=/etc/tofurc", "TF_IN_AUTOMATION=1"],
                 extra_key=base.key() + tofurc)


def _package_sources() -> tuple[list[Path], Path]:
    """What a build of the argo-delivery package reads: pyproject.toml and every file of its
    package folders (pyproject's tool.setuptools.package-dir), caches left out; and the
    readme, which only becomes the package's long description (so it is left out of the
    image's key: most commits touch it)."""
    import tomllib

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    folders = sorted(set(project["tool"]["setuptools"]["package-dir"].values()))
    files = [REPO_ROOT / "pyproject.toml"]
    for folder in folders:
        files += sorted(p for p in (REPO_ROOT / folder).rglob("*") if p.is_file()
                        and "__pycache__" not in p.parts and p.suffix != ".pyc")
    return files, REPO_ROOT / project["project"]["readme"]


def _sources_digest(files: list[Path]) -> str:
    h = hashlib.sha256()
    for path in files:
        data = path.read_bytes()
        h.update(f"{_rel(path)}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def _host_pins() -> str:
    """`name==version` of every distribution the building interpreter has but argo-delivery
    and the build tools (a pip constraints file): the image gets the dependency versions this
    checkout's tests run with, not whatever is newest on the index that day."""
    from importlib.metadata import distributions

    pins = {}
    for dist in distributions():
        name = re.sub(r"[-_.]+", "-", dist.metadata["Name"] or "").lower()
        if name and name not in ("argo-delivery", "pip", "setuptools", "wheel"):
            pins[name] = dist.version
    return "".join(f"{name}=={version}\n" for name, version in sorted(pins.items()))


# `argo-delivery` on PATH: the package's console script as pip would write it, with the
# image's own interpreter (pip --target writes the building interpreter's path instead).
ARGO_DELIVERY_SCRIPT = """#!/usr/bin/python3
import sys

from argo_delivery.cli import main

sys.exit(main(prog_name="argo-delivery"))
"""
SITE_PACKAGES = "/usr/local/lib/python3.11/dist-packages"


def airgap_image() -> Image:
    """What a site's vetted image for `argo-delivery airgap pack` holds: the airgap-base image
    (Debian's python3, git, ca-certificates, skopeo, openssh-client), argo-delivery and its
    Python dependencies (pip --target into the image's dist-packages, from a copy of this
    checkout's package sources, the dependencies at the versions the building interpreter
    has), kustomize, and helm once tools/helm exists. Tagged with argo-delivery's version; the
    key includes a digest of the package sources and those versions, so an edit to
    argo_delivery/ (or templates/, sensors/, eventsources/, pyproject.toml) rebuilds it.

    The dependencies are the wheels pip picks for the building interpreter, so that must be a
    CPython 3.11 like bookworm's (this machine's is; the build checks by running the
    installed CLI with the image's python3 in a chroot).
    """
    import argo_delivery

    base = airgap_base_image()
    tools = [BIN / "kustomize"]
    if (REPO_ROOT / "tools" / "helm" / "go.mod").exists():
        tools.append(BIN / "helm")
    sources, readme = _package_sources()
    pins = _host_pins()

    def build(rootfs: Path) -> None:
        if sys.version_info[:2] != (3, 11):
            raise MissingInput(f"the airgap image installs argo-delivery with pip for bookworm's "
                               f"python3.11; this is Python {sys.version.split()[0]}")
        archive, _ = base.ensure()
        _unpack_image(archive, rootfs)
        for tool in tools:
            _install(tool, rootfs, f"/usr/local/bin/{tool.name}")
        with tempfile.TemporaryDirectory(prefix="argo-delivery-src-", dir=rootfs.parent) as src:
            for path in [*sources, readme]:
                target = Path(src) / path.relative_to(REPO_ROOT)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
            constraints = Path(src) / "host-pins.txt"
            constraints.write_text(pins)
            site = rootfs / SITE_PACKAGES.lstrip("/")
            subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                            "--disable-pip-version-check", "--no-compile", "--target", str(site),
                            "--constraint", str(constraints), src], check=True)
        # console scripts of the package and its dependencies, with this machine's interpreter
        shutil.rmtree(site / "bin", ignore_errors=True)
        script = rootfs / "usr" / "local" / "bin" / "argo-delivery"
        script.write_text(ARGO_DELIVERY_SCRIPT)
        script.chmod(0o755)
        proc = subprocess.run(["chroot", str(rootfs), "/usr/local/bin/argo-delivery", "--version"],
                              capture_output=True, text=True,
                              env={"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"})
        if proc.returncode != 0 or argo_delivery.__version__ not in proc.stdout:
            raise RuntimeError(f"argo-delivery does not run in the airgap image: "
                               f"{proc.stdout}{proc.stderr}")

    return Image(f"e2e.local/airgap:{argo_delivery.__version__}", build,
                 inputs=[*tools, *base.inputs], fix="make e2e-tools", user="65532",
                 cmd=["python3", "-m", "argo_delivery", "--version"],
                 extra_key=base.key() + _sources_digest(sources) + pins + ARGO_DELIVERY_SCRIPT)


def _static_binary_image(name: str, binary: str, dest: str, user: str,
                         entrypoint: list[str] | None = None) -> Image:
    src = BIN / binary

    def build(rootfs: Path) -> None:
        _busybox_rootfs(rootfs)
        _install(src, rootfs, dest)

    return Image(name, build, inputs=[src, BUSYBOX], entrypoint=entrypoint or [dest], user=user)


def coredns_image() -> Image:
    version = go_pin("tools/e2e/coredns/go.mod", "github.com/coredns/coredns")
    return _static_binary_image(f"e2e.local/coredns:{version}", "coredns", "/coredns", "65532")


def argo_events_image() -> Image:
    """The image of Argo Events' controller, EventSource and Sensor pods (one binary)."""
    version = go_pin("tools/e2e/argo-events/go.mod", "github.com/argoproj/argo-events")
    return _static_binary_image(f"quay.io/argoproj/argo-events:{version}", "argo-events",
                                "/bin/argo-events", "9731")


def nats_image() -> Image:
    """nats-server at the version Argo Events' controller config names (startCommand /nats-server)."""
    version = go_pin("tools/e2e/nats-server/go.mod", "github.com/nats-io/nats-server/v2")
    return _static_binary_image(f"docker.io/library/nats:{version.lstrip('v')}", "nats-server",
                                "/nats-server", "65532")


# Stand-ins for the EventBus sidecars: natsio/nats-server-config-reloader and
# natsio/prometheus-nats-exporter are not available as Go modules here. They take the
# arguments Argo Events' controller gives the upstream images and do the least that keeps
# the StatefulSet honest: the reloader signals nats-server (SIGHUP) when its config changes,
# the exporter answers on the metrics port without metrics.
RELOADER_SCRIPT = """#!/bin/sh
# Stand-in for natsio/nats-server-config-reloader (see tests/e2e/images.py).
pid=/var/run/nats/nats.pid; config=""
while [ $# -gt 0 ]; do
  case "$1" in -pid) pid=$2; shift 2;; -config) config="$config $2"; shift 2;; *) shift;; esac
done
sums() { for f in $config; do md5sum "$f" 2>/dev/null; done; }
last=$(sums)
echo "reloader stand-in: watching$config, signalling the pid in $pid"
while sleep 2; do
  now=$(sums)
  if [ "$now" != "$last" ] && [ -s "$pid" ]; then
    echo "config changed: SIGHUP to $(cat "$pid")"; kill -HUP "$(cat "$pid")"
  fi
  last=$now
done
"""
EXPORTER_SCRIPT = """#!/bin/sh
# Stand-in for natsio/prometheus-nats-exporter (see tests/e2e/images.py): serves an empty
# /metrics on the exporter's port (from the image: works with a read-only root filesystem);
# the arguments are ignored.
exec httpd -f -v -p 7777 -h /srv/www
"""


def _script_image(name: str, script: str) -> Image:
    def build(rootfs: Path) -> None:
        _busybox_rootfs(rootfs)
        path = rootfs / "bin" / "stand-in"
        path.write_text(script)
        path.chmod(0o755)
        www = rootfs / "srv" / "www"
        www.mkdir(parents=True)
        (www / "metrics").write_text("# stand-in: no NATS metrics\n")

    return Image(name, build, inputs=[BUSYBOX], entrypoint=["/bin/stand-in"], user="65532",
                 extra_key=hashlib.sha256(script.encode()).hexdigest(), fix="make debs")


def reloader_image() -> Image:
    return _script_image("e2e.local/nats-config-reloader:stand-in", RELOADER_SCRIPT)


def exporter_image() -> Image:
    return _script_image("e2e.local/nats-metrics-exporter:stand-in", EXPORTER_SCRIPT)


def events_images() -> list[Image]:
    return [argo_events_image(), nats_image(), reloader_image(), exporter_image()]


def base_images() -> list[Image]:
    """What every cluster needs: the sandbox image, a test image and Argo's executor."""
    return [pause_image(), busybox_image(), argoexec_image(), coredns_image()]


def build_all(images: list[Image]) -> dict[str, tuple[Path, float, bool]]:
    """Ensure every archive; returns name -> (archive, seconds, rebuilt)."""
    out = {}
    for image in images:
        t0 = time.monotonic()
        path, rebuilt = image.ensure()
        out[image.name] = (path, time.monotonic() - t0, rebuilt)
    return out


if __name__ == "__main__":
    for name, (path, secs, rebuilt) in build_all(
            base_images() + [python_git_image(), tofu_image(), airgap_image()]).items():
        print(f"{name}: {_rel(path)} ({'built' if rebuilt else 'cached'}, {secs:.1f} s)")
