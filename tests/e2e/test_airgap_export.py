"""Flow F8 for real: a push -> a Version -> alpha -> nightly -> a product owner's sign-off ->
the release Workflow, which runs export-release: the pack step (images.airgap: argo-delivery,
skopeo, git, kustomize and helm, with no token) clones the three components at the Version's
commits, renders plain YAML, a kustomization and a Helm chart, copies their images from a
real registry (Debian's docker-registry on the node IP) and stores the archive in the
cluster's S3 artifact repository; the record step writes status.export. Then
`argo-delivery airgap fetch` downloads it (its sha256 checked), `airgap unpack` pushes it into
a site registry, and a tampered object in the repository is refused by fetch.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading

import pytest
import yaml
from click.testing import CliRunner
from kubernetes import client as k8s
from kubernetes import watch

from argo_delivery import airgap as ag
from argo_delivery.cli import main
from tests.e2e.images import airgap_image, python_git_image
from tests.e2e.test_push_to_version import (
    CORE,
    PARTNER,
    deliver,
    install,
    payload,
    served,  # noqa: F401 (a fixture)
    sign,
    versions,
    workflows,
)
from tests.e2e.test_streams import PRODUCT_OWNER, _approve, _nightly_now, wait_stream
from tests.gitrepos import commit_files
from tests.registry import Registry, layer, push_images

pytestmark = pytest.mark.e2e

GROUP = "/apis/argo-delivery.io/v1alpha1/namespaces"
BASE = layer({"bin/base": b"a base layer every image shares\n" * 1000})


def deployment(name: str, image: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": name, "image": image}]}}}})


@pytest.fixture(scope="module")
def source(cluster, tmp_path_factory):
    """The registry the components' images come from, on the node IP (pods reach it)."""
    work = tmp_path_factory.mktemp("airgap-source")
    with Registry(work / "registry", host=cluster.node_ip) as registry:
        registry.digests = push_images(registry, {
            f"team/{name}:1.0": [BASE, layer({f"app/{name}": name.encode() * 100})]
            for name in ("api", "web", "worker")}, work)
        yield registry


def _edit(source: Registry):
    def edit(data: dict) -> None:
        quick = {"name": "quick", "image": python_git_image().name,
                 "command": ["python3", "-c", "print('ok')"], "timeout": "2m"}
        for project in data["projects"]:
            project["testSuites"] = {"alpha": [quick], "nightly": [quick]}
            # no demo Environment: it would follow the release and stay for the later modules
            project.pop("demoEnvironments", None)
        data["images"]["airgap"] = airgap_image().name
        data["airgap"] = {"export": True, "insecureRegistries": [source.host], "timeout": "10m"}
    return edit


@pytest.fixture(scope="module")
def platform(cluster, events_controller, served, source, tmp_path_factory):  # noqa: F811
    """The default platform with export on; core-team's components carry deploy manifests at
    their default deploy paths: plain YAML (api), a kustomization (web), a Helm chart (worker)."""
    daemon, repos = served
    src = source.host
    commit_files(repos["api"], "main", {
        "deploy/kubernetes/api.yaml": deployment("api", f"{src}/team/api:1.0")}, "api deploy")
    commit_files(repos["web"], "main", {
        "deploy/kubernetes/kustomization.yaml": yaml.safe_dump({
            "resources": ["web.yaml"],
            "images": [{"name": "web-image", "newName": f"{src}/team/web", "newTag": "1.0"}]}),
        "deploy/kubernetes/web.yaml": deployment("web", "web-image")}, "web deploy")
    commit_files(repos["worker"], "release", {
        "charts/worker/Chart.yaml": "apiVersion: v2\nname: worker\nversion: 0.1.0\n",
        "charts/worker/values.yaml": yaml.safe_dump({"image": f"{src}/team/worker:1.0"}),
        "charts/worker/templates/worker.yaml": deployment("worker", "IMAGE").replace(
            "IMAGE", "{{ .Values.image | quote }}")}, "worker chart")
    bundle = install(cluster, served, tmp_path_factory, edit=_edit(source))
    cluster.artifact_credentials(CORE)   # the artifact repository's key, as an operator adds it
    yield bundle
    for namespace in (CORE, PARTNER):
        for version in versions(cluster, namespace):
            cluster.kube.request("DELETE", f"{GROUP}/{namespace}/versions/"
                                           f"{version['metadata']['name']}")


@pytest.fixture(scope="module")
def exported(cluster, platform, served):  # noqa: F811
    """A push to api -> core-team's Version, through alpha and nightly, approved, released and
    exported; returns the Version, with `pack_pods`: the pack step's pods as they were made."""
    daemon, repos = served
    before = {v["metadata"]["name"] for v in versions(cluster, CORE)}
    body = payload("acme-platform", "api", "main", repos["api"].heads["main"])
    assert deliver(cluster, body, sign(body)) == "200"
    name = cluster.wait_for("the Version", lambda: next(
        (v["metadata"]["name"] for v in versions(cluster, CORE)
         if v["metadata"]["name"] not in before), None), 180, logs=["workflow-controller"])
    assert wait_stream(cluster, CORE, name, ("nightly", "failed"))["status"]["stream"] == "nightly"
    assert _nightly_now(cluster, CORE)["status"]["phase"] == "Succeeded"
    assert wait_stream(cluster, CORE, name, ("candidate", "failed"))["status"]["stream"] == \
        "candidate"
    # every pod of the namespace from now on, as created (a pod that succeeds is removed)
    core = k8s.CoreV1Api(cluster.kube.api_client)
    since = core.list_namespaced_pod(CORE).metadata.resource_version
    pack_pods: dict[str, object] = {}
    watcher = watch.Watch()

    def follow() -> None:
        for event in watcher.stream(core.list_namespaced_pod, CORE, resource_version=since,
                                    timeout_seconds=900):
            pod = event["object"]
            node = (pod.metadata.annotations or {}).get("workflows.argoproj.io/node-name", "")
            if ".pack" in node:
                pack_pods.setdefault(pod.metadata.name, pod)
    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    _approve(cluster, CORE, name, PRODUCT_OWNER)

    def export_done():
        found = cluster.kube.request("GET", f"{GROUP}/{CORE}/versions/{name}")
        phase = ((found.get("status") or {}).get("export") or {}).get("phase")
        return found if phase in ("Succeeded", "Failed") else None
    try:
        version = cluster.wait_for(f"Version {name} exported", export_done, 600,
                                   logs=["workflow-controller"])
    except Exception:
        print(cluster.dump_namespace(CORE))
        raise
    finally:
        watcher.stop()
        thread.join(15)
    return {**version, "pack_pods": list(pack_pods.values())}


def test_the_release_workflow_exports_the_released_version(cluster, exported, served):  # noqa: F811
    _, repos = served
    name = exported["metadata"]["name"]
    export = exported["status"]["export"]
    assert export["phase"] == "Succeeded", export
    assert exported["status"]["stream"] == "released"
    assert export["artifact"] == {"key": f"argo-delivery/airgap/{CORE}/{name}.airgap.tar"}
    assert export["images"] == 3 and export["size"] > 0 and len(export["sha256"]) == 64
    [run] = [w for w in workflows(cluster, CORE, "release")
             if any(p.get("value") == name for p in w["spec"]["arguments"]["parameters"])]
    done = cluster.wait_workflow(CORE, run["metadata"]["name"], timeout=120)
    assert done["status"]["phase"] == "Succeeded"
    steps = {n["displayName"]: n for n in done["status"]["nodes"].values()}
    assert {"release", "export", "read", "pack", "record"} <= set(steps)
    assert export["workflow"] == run["metadata"]["name"]


def test_fetch_downloads_the_archive_and_it_unpacks_into_a_site_registry(cluster, exported,
                                                                          source, tmp_path):
    name = exported["metadata"]["name"]
    export = exported["status"]["export"]
    archive = tmp_path / f"{name}.airgap.tar"
    result = CliRunner().invoke(main, ["airgap", "fetch", name, "-n", CORE, "-o", str(archive),
                                       "--kubeconfig", str(cluster.kubeconfig),
                                       "--workflows-namespace", cluster.ARGO_NAMESPACE])
    assert result.exit_code == 0, result.output
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == export["sha256"]
    with tarfile.open(archive) as tar:
        index = json.loads(tar.extractfile(ag.INDEX).read())
    # exactly the Version's commits, each deploy path rendered its way, every image by digest
    components = {c["name"]: c for c in index["source"]["components"]}
    assert {n: c["commit"] for n, c in components.items()} == \
        {c["name"]: c["commit"] for c in exported["spec"]["components"]}
    assert components["web"]["files"] == ["rendered.yaml"]      # the kustomization, built
    assert components["worker"]["files"] == ["rendered.yaml"]   # the chart, templated
    assert components["api"]["files"] == ["api.yaml"]
    assert {i["image"]: i["digest"] for i in index["images"]} == \
        {f"{source.host}/{ref}": digest for ref, digest in source.digests.items()}
    # the "USB stick": on the site, it unpacks into the site's registry
    with Registry(tmp_path / "site") as site:
        result = CliRunner().invoke(main, ["airgap", "unpack", str(archive), "--registry",
                                           f"{site.host}/platform", "--insecure-registry",
                                           site.host, "--out", str(tmp_path / "ready")])
        assert result.exit_code == 0, result.output
        assert len(site.repositories()) == 3


def test_fetch_refuses_an_archive_changed_in_the_repository(cluster, exported, tmp_path):
    """Someone with write access to the bucket replaces the object: the Version's status still
    holds the sha256 the export recorded, so fetch refuses it and keeps no file."""
    from minio import Minio

    name = exported["metadata"]["name"]
    key = exported["status"]["export"]["artifact"]["key"]
    client = Minio(cluster.s3_endpoint, access_key=cluster.s3_access,
                   secret_key=cluster.s3_secret, secure=False)
    original = client.get_object(cluster.S3_BUCKET, key).read()
    forged = bytearray(original)
    forged[len(forged) // 2] ^= 0xFF
    client.put_object(cluster.S3_BUCKET, key, io.BytesIO(bytes(forged)), len(forged))
    try:
        out = tmp_path / "forged.tar"
        result = CliRunner().invoke(main, ["airgap", "fetch", name, "-n", CORE, "-o", str(out),
                                           "--kubeconfig", str(cluster.kubeconfig),
                                           "--workflows-namespace", cluster.ARGO_NAMESPACE])
        assert result.exit_code == 1, result.output
        assert f"but Version {CORE}/{name} records" in result.output
        assert not out.exists() and not list(tmp_path.glob(".forged.tar*"))
    finally:
        client.put_object(cluster.S3_BUCKET, key, io.BytesIO(original), len(original))


def test_the_pack_pod_ran_as_the_exporter_without_a_token(exported):
    """The pack step's pod as the controller made it (seen by a watch while it existed: a pod
    that succeeds is removed): the exporter account (no role), and no token."""
    pods = exported["pack_pods"]
    assert pods, "no pack pod was seen"
    for pod in pods:
        assert pod.spec.service_account_name == "argo-delivery-airgap-exporter"
        assert pod.spec.automount_service_account_token is False
        assert not [v.name for v in pod.spec.volumes or [] if v.projected], pod.spec.volumes
        main = next(c for c in pod.spec.containers if c.name == "main")
        assert main.image == airgap_image().name
