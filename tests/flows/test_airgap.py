"""Air-gap: lock, pack and unpack against two real registries (Debian's docker-registry) and
real git repositories: a source registry loaded with images built here (sharing a base layer;
one pushed as Docker schema 2), a site registry, and component repos whose deploy paths hold
plain YAML and a kustomization that moves an image with its `images:` transformer.

The drill in a network namespace with no route out is tests/flows/test_airgap_drill.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from argo_delivery import airgap as ag
from argo_delivery.cli import main
from argo_delivery.imagefinder import find_images
from argo_delivery.imagelock import ImagesLock
from argo_delivery.images import mirror_component, parse_image
from argo_delivery.skopeo import Skopeo
from argo_delivery.versionhash import version_hash, version_name
from tests.gitrepos import commit_files, make_repo
from tests.registry import Registry, htpasswd, layer, need, push_images

BASE = layer({"bin/base": b"base layer shared by every image\n" * 2000})


def app_layer(name: str, revision: int = 1) -> bytes:
    return layer({f"app/{name}": f"{name} revision {revision}\n".encode() * 50})


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("source-registry")
    with Registry(work / "registry") as registry:
        registry.digests = push_images(registry, {
            "team/web:1.0": [BASE, app_layer("web")],
            "team/worker:2.1": [BASE, app_layer("worker")],
            "team/migrate:0.3": [BASE, app_layer("migrate")],
            "team/cache:7": [BASE, app_layer("cache")],
        }, work, docker_format=("team/migrate:0.3",))
        yield registry


@pytest.fixture
def site(tmp_path: Path):
    with Registry(tmp_path / "site-registry") as registry:
        yield registry


def deployment(name: str, image: str, init: str | None = None) -> dict:
    spec: dict = {"containers": [{"name": name, "image": image}]}
    if init:
        spec["initContainers"] = [{"name": "migrate", "image": init}]
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}}


@pytest.fixture(scope="module")
def repos(source: Registry, tmp_path_factory: pytest.TempPathFactory):
    """Three components: `web` (plain YAML: a Deployment with an init container, a CronJob),
    `api` (a kustomization whose `images:` turns a placeholder into the worker image) and
    `chart` (a Helm chart whose image is only in its values)."""
    root = tmp_path_factory.mktemp("repos")
    src = source.host
    web = make_repo(root, "web", {"main": 1})
    cronjob = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "report"},
               "spec": {"schedule": "0 1 * * *", "jobTemplate": {"spec": {"template": {"spec": {
                   "restartPolicy": "Never",
                   "containers": [{"name": "report", "image": f"{src}/team/worker:2.1"}]}}}}}}
    web_commit = commit_files(web, "main", {
        "deploy/web.yaml": yaml.safe_dump(deployment("web", f"{src}/team/web:1.0",
                                                     init=f"{src}/team/migrate:0.3")),
        "deploy/jobs/report.yaml": yaml.safe_dump(cronjob),
        "deploy/config.yaml": yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                                              "metadata": {"name": "web"}, "data": {"a": "b"}}),
    })
    api = make_repo(root, "api", {"main": 1})
    api_commit = commit_files(api, "main", {
        "deploy/kustomization.yaml": yaml.safe_dump({
            "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "resources": ["api.yaml"],
            "images": [{"name": "placeholder/api", "newName": f"{src}/team/worker",
                        "newTag": "2.1"}]}),
        "deploy/api.yaml": yaml.safe_dump(deployment("api", "placeholder/api:dev")),
    })
    chart = make_repo(root, "chart", {"main": 1})
    chart_commit = commit_files(chart, "main", {
        "deploy/Chart.yaml": "apiVersion: v2\nname: cache\nversion: 0.1.0\n",
        "deploy/values.yaml": yaml.safe_dump({"image": {"repository": f"{src}/team/cache",
                                                        "tag": "7"}}),
        "deploy/templates/deployment.yaml": yaml.safe_dump(
            deployment("cache", "IMAGE")).replace(
                "IMAGE", '"{{ .Values.image.repository }}:{{ .Values.image.tag }}"'),
    })
    return {"web": (web, web_commit), "api": (api, api_commit),
            "chart": (chart, chart_commit)}


def version_object(repos: dict, namespace: str = "shop") -> dict:
    components = [{"name": name, "repo": repo.url, "commit": commit}
                  for name, (repo, commit) in sorted(repos.items())]
    digest = version_hash("shop", components)
    return {"apiVersion": "argo-delivery.io/v1alpha1", "kind": "Version",
            "metadata": {"name": version_name("shop", digest), "namespace": namespace},
            "spec": {"project": "shop", "hash": digest, "components": components},
            "status": {"stream": "released"}}


def pack_version(repos: dict, source: Registry, out: Path, namespace: str = "shop",
                 **kwargs) -> ag.PackResult:
    with Skopeo(insecure=[source.host]) as skopeo:
        return ag.pack(ag.stage_version(version_object(repos, namespace), {}), out,
                       skopeo=skopeo, **kwargs)


def expected_images(source: Registry) -> dict[str, str]:
    return {f"{source.host}/{ref}": digest for ref, digest in source.digests.items()}


def archive_names(path: Path) -> list[str]:
    with tarfile.open(path) as tar:
        return tar.getnames()


# --- lock --------------------------------------------------------------------------------------

def test_lock_resolves_every_tag_to_the_source_registrys_digest(source, repos, tmp_path):
    manifests = tmp_path / "manifests"
    for name, (repo, commit) in repos.items():
        ag._git_tree(repo.url, commit, tmp_path / "trees" / name, name)
        ag.render_component(tmp_path / "trees" / name / "deploy", manifests / name, name)
    lock_file = tmp_path / "images.lock.yaml"
    result = CliRunner().invoke(main, ["images", "lock", str(manifests), "-o", str(lock_file),
                                       "--insecure-registry", source.host])
    assert result.exit_code == 0, result.output
    lock = ImagesLock.read(lock_file)
    assert {image: entry.digest for image, entry in lock.images.items()} == \
        expected_images(source)
    migrate = lock.images[f"{source.host}/team/migrate:0.3"]
    assert migrate.media_type == "application/vnd.docker.distribution.manifest.v2+json"
    # run again: the file keeps what it locked (no --update), byte for byte
    before = lock_file.read_bytes()
    result = CliRunner().invoke(main, ["images", "lock", str(manifests), "-o", str(lock_file),
                                       "--insecure-registry", source.host])
    assert result.exit_code == 0, result.output
    assert "4 kept from it" in result.output
    assert lock_file.read_bytes() == before


def test_lock_reports_an_image_the_registry_does_not_have(source, tmp_path):
    (tmp_path / "pod.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": f"{source.host}/team/nothing:9"}]}}))
    result = CliRunner().invoke(main, ["images", "lock", str(tmp_path), "-o",
                                       str(tmp_path / "lock.yaml"), "--insecure-registry",
                                       source.host])
    assert result.exit_code == 1
    assert f"{source.host}/team/nothing:9" in result.output
    assert "the lock was not written" in result.output
    assert not (tmp_path / "lock.yaml").exists()


def test_lock_uses_the_registry_credentials_of_the_usual_docker_config(tmp_path, monkeypatch):
    """A source registry that wants a password: refused without credentials, locked with the
    ones in ~/.docker/config.json (what `docker login` writes)."""
    user, password = "ci", "s3cret-" + os.urandom(4).hex()
    with Registry(tmp_path / "private", htpasswd=htpasswd(tmp_path / "htpasswd", user,
                                                          password)) as private:
        creds = f"{user}:{password}"
        digests = push_images(private, {"team/secret:1": [BASE, app_layer("secret")]}, tmp_path,
                              creds=creds)
        (tmp_path / "pod.yaml").write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": f"{private.host}/team/secret:1"}]}}))
        home = tmp_path / "home"
        home.mkdir()
        for name in ("REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "DOCKER_CONFIG"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HOME", str(home))
        argv = ["images", "lock", str(tmp_path / "pod.yaml"), "-o", str(tmp_path / "lock.yaml"),
                "--insecure-registry", private.host]
        refused = CliRunner().invoke(main, argv)
        assert refused.exit_code == 1, refused.output
        assert "authentication required" in refused.output.lower() or \
            "unauthorized" in refused.output.lower(), refused.output
        (home / ".docker").mkdir()
        (home / ".docker" / "config.json").write_text(json.dumps({"auths": {private.host: {
            "auth": base64.b64encode(creds.encode()).decode()}}}))
        locked = CliRunner().invoke(main, argv)
        assert locked.exit_code == 0, locked.output
        assert ImagesLock.read(tmp_path / "lock.yaml").images[
            f"{private.host}/team/secret:1"].digest == digests["team/secret:1"]


def test_a_tag_moved_after_locking_changes_nothing_that_is_packed(source, repos, tmp_path):
    locked = pack_version(repos, source, tmp_path / "first.tar")
    lock = ImagesLock.loads(json.dumps(_lock_of(tmp_path / "first.tar")))
    web = f"{source.host}/team/web:1.0"
    old = lock.images[web].digest
    assert old == source.digests["team/web:1.0"]
    # someone pushes a new image under the same tag
    moved = push_images(source, {"team/web:1.0": [BASE, app_layer("web", 2)]}, tmp_path)
    try:
        assert moved["team/web:1.0"] != old
        again = pack_version(repos, source, tmp_path / "locked.tar", lock=lock)
        assert {i["image"]: i["digest"] for i in again.images}[web] == old
        assert {i["image"]: i["digest"] for i in locked.images}[web] == old
        fresh = pack_version(repos, source, tmp_path / "fresh.tar")
        assert {i["image"]: i["digest"] for i in fresh.images}[web] == moved["team/web:1.0"]
    finally:
        push_images(source, {"team/web:1.0": [BASE, app_layer("web")]}, tmp_path)
    assert source.manifest_digest("team/web", "1.0") == old


def _lock_of(archive: Path) -> dict:
    with tarfile.open(archive) as tar:
        return yaml.safe_load(tar.extractfile(ag.LOCK).read())


# --- pack ---------------------------------------------------------------------------------------

def test_pack_holds_manifests_images_lock_index_and_sums(source, repos, tmp_path):
    result = pack_version(repos, source, tmp_path / "v.tar")
    names = archive_names(tmp_path / "v.tar")
    assert names == sorted(names)
    for name in (ag.INDEX, ag.LOCK, ag.SUMS, "oci/index.json", "oci/oci-layout",
                 "manifests/web/web.yaml", "manifests/web/jobs/report.yaml",
                 "manifests/api/rendered.yaml", "manifests/chart/rendered.yaml"):
        assert name in names
    index = result.index
    assert {i["image"]: i["digest"] for i in index["images"]} == expected_images(source)
    assert index["source"]["version"] == version_object(repos)["metadata"]["name"]
    assert [c["name"] for c in index["source"]["components"]] == ["api", "chart", "web"]
    # the image only a Helm value names
    cache = next(i for i in index["images"] if i["image"].endswith("team/cache:7"))
    assert [(loc["file"], loc["object"]) for loc in cache["locations"]] == \
        [("manifests/chart/rendered.yaml", "Deployment cache")]
    # where each image is used: the kustomize override is found in the rendered api manifests
    worker = next(i for i in index["images"] if i["image"].endswith("team/worker:2.1"))
    assert {(loc["file"], loc["path"]) for loc in worker["locations"]} == {
        ("manifests/api/rendered.yaml", "spec.template.spec.containers[0].image"),
        ("manifests/web/jobs/report.yaml",
         "spec.jobTemplate.spec.template.spec.containers[0].image")}
    # the shared base layer is stored once: fewer bytes than the images' sum
    # (the registry holds the layers gzip-compressed, as skopeo pushed them: the same bytes
    # for the same base)
    with tarfile.open(tmp_path / "v.tar") as tar:
        def blob(digest: str) -> bytes:
            return tar.extractfile(ag.BLOBS + digest.removeprefix("sha256:")).read()

        bases = {json.loads(blob(i["packedDigest"]))["layers"][0]["digest"]
                 for i in index["images"]}
        assert len(bases) == 1
        base_size = len(blob(bases.pop()))
    blob_names = [n for n in names if n.startswith(ag.BLOBS)]
    # 4 images of 4 blobs each (manifest, config, base, app layer); the base is stored once
    assert len(blob_names) == len(set(blob_names)) == 4 * 4 - 3
    totals = index["totals"]
    assert totals["imageBytes"] - totals["blobBytes"] == 3 * base_size
    # SHA256SUMS lists every other file
    with tarfile.open(tmp_path / "v.tar") as tar:
        sums = tar.extractfile(ag.SUMS).read().decode()
        files = {m.name for m in tar.getmembers() if m.isfile()} - {ag.SUMS}
    listed = [line.split("  ", 1)[1] for line in sums.splitlines()]
    assert listed == sorted(files)


def test_pack_is_deterministic(source, repos, tmp_path):
    first = pack_version(repos, source, tmp_path / "new" / "a.tar").archive.read_bytes()
    second = pack_version(repos, source, tmp_path / "b.tar").archive.read_bytes()
    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(second).hexdigest()
    with tarfile.open(tmp_path / "new" / "a.tar") as tar:
        for member in tar.getmembers():
            assert (member.mtime, member.uid, member.gid, member.uname, member.gname) == \
                (0, 0, 0, "", "")


def test_pack_refuses_manifests_it_cannot_scan(source, tmp_path):
    repo = make_repo(tmp_path, "broken", {"main": 1})
    commit = commit_files(repo, "main", {"deploy/bad.yaml": "kind: [unclosed\n"})
    version = version_object({"broken": (repo, commit)})
    with Skopeo(insecure=[source.host]) as skopeo, pytest.raises(ag.AirgapError) as caught:
        ag.pack(ag.stage_version(version, {}), tmp_path / "x.tar", skopeo=skopeo)
    assert "manifests/broken/bad.yaml" in str(caught.value)
    assert "nothing was packed" in str(caught.value)
    assert not (tmp_path / "x.tar").exists()


def test_the_cli_packs_a_released_version_read_from_the_cluster(kube, source, repos, tmp_path):
    """`airgap pack --version NAME -n NS`: the Version from the API server, the deploy paths
    from the platform config; a Version that is not released is refused."""
    from argo_delivery.config import default_config_text

    namespace = "airgap-shop"
    kube.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                "metadata": {"name": namespace}}, ok=(409,))
    version = version_object(repos, namespace)
    status = version.pop("status")
    name = version["metadata"]["name"]
    path = f"/apis/argo-delivery.io/v1alpha1/namespaces/{namespace}/versions"
    created = kube.request("POST", path, version)
    data = yaml.safe_load(default_config_text())
    # the config gives each component's deploy path; the clone is from the repository and
    # commit the Version records (here file:// ones, which a config refuses for the cluster)
    data["components"] = [{"name": name, "repo": f"https://github.com/shop/{name}.git",
                           "branch": "main", "deployPath": "deploy"}
                          for name in ("web", "api", "chart")]
    data["projects"] = [{**data["projects"][0], "name": "shop", "namespace": namespace,
                         "components": ["web", "api", "chart"]}]
    for key in ("environments", "demoEnvironments"):
        data["projects"][0].pop(key, None)
    data.pop("schedules", None)
    config = tmp_path / "platform.yaml"
    config.write_text(yaml.safe_dump(data))
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", "admin", kube.admin_token)
    argv = ["airgap", "pack", "--config", str(config), "--version", name, "-n", namespace,
            "--kubeconfig", str(kubeconfig), "--insecure-registry", source.host,
            "-o", str(tmp_path / "v.tar")]
    refused = CliRunner().invoke(main, argv)
    assert refused.exit_code == 1, refused.output
    assert f"Version {namespace}/{name} is new, not released" in refused.output
    assert not (tmp_path / "v.tar").exists()
    kube.request("PUT", f"{path}/{name}/status", {**created, "status": status})
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 0, result.output
    assert "4 images" in result.output
    with tarfile.open(tmp_path / "v.tar") as tar:
        index = json.loads(tar.extractfile(ag.INDEX).read())
    assert index["source"]["version"] == name and index["source"]["stream"] == "released"
    assert {c["name"]: c["commit"] for c in index["source"]["components"]} == \
        {name: commit for name, (_, commit) in repos.items()}
    # the same Version packed through the library gives the same bytes, and so does the CLI
    # from a file with every deploy path given (no cluster, no config: the export's way)
    assert ag.sha256_file(tmp_path / "v.tar") == ag.sha256_file(
        pack_version(repos, source, tmp_path / "lib.tar", namespace=namespace).archive)
    (tmp_path / "version.json").write_text(json.dumps(
        kube.request("GET", f"{path}/{name}")))
    offline = CliRunner().invoke(main, [
        "airgap", "pack", "--version-file", str(tmp_path / "version.json"),
        *(a for c in repos for a in ("--deploy-path", f"{c}=deploy")),
        "--insecure-registry", source.host, "-o", str(tmp_path / "file.tar"),
        "--summary", str(tmp_path / "summary.json")], env={"ARGO_DELIVERY_CONFIG": ""})
    assert offline.exit_code == 0, offline.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["sha256"] == ag.sha256_file(tmp_path / "v.tar")
    assert summary["size"] == (tmp_path / "v.tar").stat().st_size and summary["images"] == 4
    kube.request("DELETE", f"{path}/{name}")


# --- unpack -------------------------------------------------------------------------------------

def unpack(archive: Path, site: Registry, out: Path, key: Path | None = None) -> ag.UnpackResult:
    with Skopeo(insecure=[site.host]) as skopeo:
        return ag.unpack(archive, f"{site.host}/platform", out, skopeo=skopeo, key=key)


def test_unpack_pushes_every_image_by_digest_and_rewrites_the_manifests(source, repos, site,
                                                                          tmp_path):
    packed = pack_version(repos, source, tmp_path / "v.tar")
    result = unpack(tmp_path / "v.tar", site, tmp_path / "site")
    # every image is on the site registry under <site>/platform/<source registry>/<repo>,
    # with the digest it had at the source
    for image in packed.images:
        ref = parse_image(image["image"])
        repository = f"platform/{mirror_component(ref.registry)}/{ref.repository}"
        assert site.manifest_digest(repository, image["packedDigest"]) == image["packedDigest"]
        assert site.manifest_digest(repository, ref.tag) == image["packedDigest"]
    # OCI images keep the source's digest; the Docker schema 2 one is carried as OCI
    # (skopeo 1.9 cannot read a Docker manifest back out of an OCI layout)
    kept = {i["image"].rsplit("/", 1)[1]: i["packedDigest"] == i["digest"] for i in packed.images}
    assert kept == {"web:1.0": True, "worker:2.1": True, "cache:7": True, "migrate:0.3": False}
    # the rewritten manifests name only the site registry, by digest
    found = find_images([tmp_path / "site" / "manifests"])
    assert found.ok, found.problems
    digests = {i["image"]: i["packedDigest"] for i in packed.images}
    prefix = f"platform/{mirror_component(source.host)}/"
    places = 0
    for image in found.images:
        ref = parse_image(image.image)
        assert ref.registry == site.host and ref.repository.startswith(prefix)
        original = f"{source.host}/{ref.repository.removeprefix(prefix)}:{ref.tag}"
        assert ref.digest == digests[original]
        places += len(image.locations)
    assert places == result.rewritten == 5
    # a file without images is carried byte for byte
    with tarfile.open(tmp_path / "v.tar") as tar:
        packed_config = tar.extractfile("manifests/web/config.yaml").read()
    assert (tmp_path / "site" / "manifests" / "web" / "config.yaml").read_bytes() == packed_config
    site_lock = ImagesLock.read(tmp_path / "site" / ag.LOCK)
    assert {e.digest for e in site_lock.images.values()} == set(digests.values())


def test_unpack_refuses_an_output_folder_that_is_not_empty(source, repos, site, tmp_path):
    pack_version(repos, source, tmp_path / "v.tar")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(ag.AirgapError, match="is not empty"):
        unpack(tmp_path / "v.tar", site, tmp_path / "out")
    assert site.repositories() == []
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


# --- tampering ----------------------------------------------------------------------------------

def _keypair(folder: Path, name: str) -> Path:
    need("ssh-keygen", "openssh-client")
    key = folder / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)],
                   check=True)
    return key


def _retar(folder: Path, out: Path) -> None:
    """An archive of `folder` as pack writes one (the attacker's copy)."""
    ag._write_tar(folder, out, ag._quiet)


def _tampered(archive: Path, work: Path, change) -> Path:
    folder = work / "unpacked"
    ag._extract(archive, folder)
    what = change(folder)
    out = work / "tampered.tar"
    _retar(folder, out)
    return out, what


def _flip_blob(folder: Path) -> str:
    blobs = sorted((folder / "oci/blobs/sha256").iterdir(), key=lambda p: p.stat().st_size)
    victim = blobs[-1]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    return f"oci/blobs/sha256/{victim.name}"


def _remove_blob(folder: Path) -> str:
    victim = sorted((folder / "oci/blobs/sha256").iterdir())[0]
    victim.unlink()
    return f"oci/blobs/sha256/{victim.name}"


def _edit_manifest(folder: Path) -> str:
    path = folder / "manifests/web/web.yaml"
    path.write_text(path.read_text().replace("team/web:1.0", "evil/web:1.0"))
    return "manifests/web/web.yaml"


def _edit_and_reseal(folder: Path) -> str:
    """An edited manifest with SHA256SUMS recomputed: only the signature can catch it."""
    _edit_manifest(folder)
    ag._write_sums(folder)
    return ag.SIGNATURE


def _drop_signature(folder: Path) -> str:
    (folder / ag.SIGNATURE).unlink()
    return ag.SIGNATURE


@pytest.mark.parametrize("change", [_flip_blob, _remove_blob, _edit_manifest, _edit_and_reseal,
                                    _drop_signature],
                         ids=["flipped-byte-in-blob", "removed-blob", "edited-manifest",
                              "edited-and-resummed", "signature-removed"])
def test_a_tampered_archive_is_refused_with_the_file_named_and_nothing_pushed(
        source, repos, site, tmp_path, change):
    key = _keypair(tmp_path, "release")
    pack_version(repos, source, tmp_path / "v.tar", sign_key=key)
    archive, what = _tampered(tmp_path / "v.tar", tmp_path, change)
    with pytest.raises(ag.AirgapError) as caught:
        unpack(archive, site, tmp_path / "site", key=key.with_suffix(".pub"))
    assert what in str(caught.value)
    assert site.repositories() == []
    assert not (tmp_path / "site").exists()


def test_a_signature_by_another_key_is_refused(source, repos, site, tmp_path):
    key = _keypair(tmp_path, "release")
    other = _keypair(tmp_path, "someone-else")
    pack_version(repos, source, tmp_path / "v.tar", sign_key=key)
    result = CliRunner().invoke(main, ["airgap", "unpack", str(tmp_path / "v.tar"),
                                       "--registry", site.host, "--insecure-registry", site.host,
                                       "--key", str(other.with_suffix(".pub")),
                                       "--out", str(tmp_path / "site")])
    assert result.exit_code == 1, result.output
    assert f"{ag.SIGNATURE}: not a signature of {ag.SUMS}" in result.output
    assert site.repositories() == []
    # the right key: verified and unpacked
    result = CliRunner().invoke(main, ["airgap", "unpack", str(tmp_path / "v.tar"),
                                       "--registry", site.host, "--insecure-registry", site.host,
                                       "--key", str(key.with_suffix(".pub")),
                                       "--out", str(tmp_path / "site")])
    assert result.exit_code == 0, result.output
    assert len(site.repositories()) == 4


def test_an_archive_with_a_path_outside_is_refused(site, tmp_path):
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        info = tarfile.TarInfo("../outside.txt")
        info.size = 0
        tar.addfile(info)
    with pytest.raises(ag.AirgapError, match=r"\.\./outside\.txt: refused"):
        unpack(evil, site, tmp_path / "site")
    assert not (tmp_path.parent / "outside.txt").exists()


# --- the bundle ---------------------------------------------------------------------------------

def test_pack_and_unpack_an_orchestrator_bundle(default_bundle_dir, source, site, tmp_path):
    """The default bundle's images are not in any registry here: the bundle is re-rendered
    with every image moved to the source registry (registry.mirror), which is loaded with one
    small image per reference."""
    from argo_delivery.bundle import build_bundle, write_bundle
    from argo_delivery.config import default_config_text, parse_config

    data = yaml.safe_load(default_config_text())
    data.setdefault("registry", {})["mirror"] = f"{source.host}/mirror"
    bundle = build_bundle(parse_config(yaml.safe_dump(data), "mirrored.yaml"))
    folder = write_bundle(bundle, tmp_path / "dist").path
    images = {image.removeprefix(f"{source.host}/"): [BASE, app_layer(image)]
              for image in bundle.images}
    push_images(source, images, tmp_path)
    out = tmp_path / "orchestrator.airgap.tar"
    result = CliRunner().invoke(main, ["airgap", "pack", "--bundle", str(folder), "-o", str(out),
                                       "--insecure-registry", source.host])
    assert result.exit_code == 0, result.output
    index = json.loads(tarfile.open(out).extractfile(ag.INDEX).read())
    assert sorted(i["image"] for i in index["images"]) == sorted(bundle.images)
    result = CliRunner().invoke(main, ["airgap", "unpack", str(out), "--registry",
                                       f"{site.host}/site", "--insecure-registry", site.host,
                                       "--out", str(tmp_path / "site")])
    assert result.exit_code == 0, result.output
    # the executor's image is chosen by the workflow controller: unpack says where it went
    executor = next(i for i in bundle.images if "argoexec" in i)
    assert f"set in the controllers' config: {executor} -> {site.host}/site/" in result.output
    from argo_delivery.bundle import verify_bundle

    unpacked = tmp_path / "site" / "bundle"
    assert verify_bundle(unpacked) == []
    listed = (unpacked / "images.txt").read_text().split()
    assert listed and all(image.startswith(f"{site.host}/site/") and "@sha256:" in image
                          for image in listed)
    found = find_images([unpacked / p["path"] for p in
                         json.loads((unpacked / "bundle.json").read_text())["resources"]])
    direct = [image.image for image in found.images
              if any(not loc.via for loc in image.locations)]
    assert direct and all(image.startswith(f"{site.host}/site/") and "@sha256:" in image
                          for image in direct)


# --- the drill: unpack and apply in a network namespace with no route out -----------------------

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def netns():
    """A network namespace with only `lo` (up), removed afterwards, also when the test fails."""
    if os.geteuid() != 0:
        pytest.fail("the drill needs root to make a network namespace (`ip netns add`); run the "
                    "suite as root as CI does")
    ip = need("ip", "iproute2")
    name = f"argo-delivery-drill-{os.getpid()}"
    subprocess.run([ip, "netns", "add", name], check=True, capture_output=True)
    try:
        subprocess.run([ip, "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run([ip, "netns", "del", name], check=True)


def test_drill_unpack_and_apply_in_a_namespace_with_no_route_out(source, repos, netns, tmp_path):
    key = _keypair(tmp_path, "release")
    packed = pack_version(repos, source, tmp_path / "v.tar", sign_key=key)
    work = tmp_path / "inside"
    work.mkdir()
    proc = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-m",
                           "tests.airgap_drill", str(tmp_path / "v.tar"), str(work),
                           str(key.with_suffix(".pub"))],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((work / "report.json").read_text())
    assert "error" not in report, report["error"]
    # the namespace: one interface, loopback, and no route anywhere but to itself
    links = report["links"].strip().splitlines()
    assert len(links) == 1 and ": lo:" in links[0], report["links"]
    routes = [line for line in report["routes"].splitlines() if line.strip()]
    assert routes and all(line.split()[0] in ("local", "broadcast") and " dev lo " in line
                          for line in routes), report["routes"]
    assert report["routes6"].strip() in ("", ), report["routes6"]
    # the unpack and apply worked
    unpack = report["unpack"]
    assert unpack["exit"] == 0, unpack["stdout"] + unpack["stderr"]
    assert "4 images pushed" in unpack["stdout"] and "applied 5 objects" in unpack["stdout"]
    assert "signature checked" in unpack["stderr"]
    assert report["applied"] == ["CronJob/report", "Deployment/api", "Deployment/cache",
                                 "Deployment/web"]
    # every pod image of what was applied names the site registry by digest, and is there
    site_digests = {i["packedDigest"] for i in packed.images}
    assert len(report["images"]) == 4
    for image in report["images"]:
        assert image["inSiteRegistry"], image
        assert parse_image(image["image"]).digest in site_digests
    # nothing tried to leave: no packet met "no route" while unpacking and applying ...
    before, after = report["before"], report["after"]
    assert after["IpOutNoRoutes"] == before["IpOutNoRoutes"]
    assert after["Ip6OutNoRoutes"] == before["Ip6OutNoRoutes"]
    assert after["TcpActiveOpens"] > before["TcpActiveOpens"]  # it did talk, on loopback
    # ... and the counter does count an attempt to leave (the control)
    control = report["control"]
    assert control["error"] and "unreachable" in control["error"].lower(), control
    assert control["after"]["IpOutNoRoutes"] > control["before"]["IpOutNoRoutes"]
