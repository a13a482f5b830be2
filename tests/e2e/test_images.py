"""Images built for the cluster, run as our rendered steps run: Pod Security `restricted`,
uid 65532, a read-only root filesystem and an emptyDir at /tmp."""

from __future__ import annotations

import json
import subprocess

import pytest

from argo_delivery import __version__
from argo_delivery.security import container_security_context, pod_security_context
from tests.e2e.images import BIN, REPO_ROOT, airgap_image

pytestmark = pytest.mark.e2e

MANIFEST = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      initContainers:
      - {name: init, image: "busybox@sha256:%s"}
      containers:
      - {name: web, image: registry.example/web:1.2.3}
""" % ("0" * 64)
KUSTOMIZATION = """resources: [app.yaml]
images:
- {name: registry.example/web, newTag: 2.0.0}
"""
# A one-layer OCI image layout at argv[1], tagged v1; prints the manifest's digest.
MAKE_LAYOUT = """
import hashlib, io, json, os, sys, tarfile
out = sys.argv[1]
os.makedirs(os.path.join(out, "blobs", "sha256"))
def put(data, media_type):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(out, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as tar:
    body = b"packed in the cluster\\n"
    info = tarfile.TarInfo("hello.txt")
    info.size = len(body)
    tar.addfile(info, io.BytesIO(body))
layer = put(buf.getvalue(), "application/vnd.oci.image.layer.v1.tar")
config = put(json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}).encode(),
             "application/vnd.oci.image.config.v1+json")
manifest = put(json.dumps({"schemaVersion": 2, "config": config, "layers": [layer],
                           "mediaType": "application/vnd.oci.image.manifest.v1+json"}).encode(),
               "application/vnd.oci.image.manifest.v1+json")
manifest["annotations"] = {"org.opencontainers.image.ref.name": "v1"}
with open(os.path.join(out, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [manifest]}, f)
with open(os.path.join(out, "oci-layout"), "w") as f:
    f.write('{"imageLayoutVersion": "1.0.0"}')
print(manifest["digest"])
"""
IMAGES = ("python3 -c 'import json, sys; "
          "print(json.dumps([i[\"image\"] for i in json.load(sys.stdin)[\"images\"]]))'")
# One `key: value` line per check; `set -e` fails the pod (and the test, with its log) at the
# first command that fails.
SCRIPT = f"""set -eu
echo "id: $(id)"
echo "module: $(python3 -m argo_delivery --version)"
echo "script: $(argo-delivery --version) at $(command -v argo-delivery)"
mkdir -p /tmp/m/plain /tmp/m/overlay
printf '%s' "$MANIFEST" > /tmp/m/plain/app.yaml
printf '%s' "$MANIFEST" > /tmp/m/overlay/app.yaml
printf '%s' "$KUSTOMIZATION" > /tmp/m/overlay/kustomization.yaml
echo "find: $(argo-delivery images find /tmp/m/plain -o json | {IMAGES})"
echo "find-kustomize: $(argo-delivery images find /tmp/m/overlay -o json | {IMAGES})"
echo "skopeo: $(skopeo --version)"
echo "git: $(git --version)"
echo "kustomize: $(kustomize version)"
if command -v helm >/dev/null; then echo "helm: $(helm version --short)"; else echo "helm: none"; fi
# skopeo as argo_delivery/skopeo.py calls it (a --policy file of its own; no XDG_RUNTIME_DIR
# set): copy an OCI image byte for byte
echo "layout: $(python3 -c "$MAKE_LAYOUT" /tmp/src)"
printf '{{"default": [{{"type": "insecureAcceptAnything"}}]}}' > /tmp/policy.json
skopeo --policy /tmp/policy.json copy -q --preserve-digests oci:/tmp/src:v1 oci:/tmp/copy:v1
echo "copied: $(python3 -c 'import json
print(json.load(open("/tmp/copy/index.json"))["manifests"][0]["digest"])')"
# what `airgap pack --sign-key` runs
ssh-keygen -q -t ed25519 -N '' -C e2e -f /tmp/key
ssh-keygen -q -Y sign -f /tmp/key -n airgap /tmp/m/plain/app.yaml
cd /tmp/m/plain
echo "signature: $(ssh-keygen -Y check-novalidate -n airgap -s app.yaml.sig < app.yaml)"
"""


def _lines(logs: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in logs.splitlines() if ": " in line)


def test_airgap_image_runs_argo_delivery_skopeo_git_and_kustomize(cluster, namespace):
    """The air-gap image (what `airgap pack` needs in a pod): the CLI both ways, the image
    finder with and without kustomize, skopeo copying an OCI image, git, ssh-keygen signing."""
    image = airgap_image().name
    assert image == f"e2e.local/airgap:{__version__}"
    env = {"HOME": "/tmp", "MANIFEST": MANIFEST, "KUSTOMIZATION": KUSTOMIZATION,
           "MAKE_LAYOUT": MAKE_LAYOUT}
    cluster.kube.apply([{
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "airgap", "namespace": namespace},
        "spec": {"restartPolicy": "Never", "automountServiceAccountToken": False,
                 "securityContext": pod_security_context(),
                 "containers": [{"name": "main", "image": image, "imagePullPolicy": "Never",
                                 "command": ["sh", "-c", SCRIPT],
                                 "env": [{"name": k, "value": v} for k, v in env.items()],
                                 "securityContext": container_security_context(),
                                 "resources": {"limits": {"cpu": "1", "memory": "256Mi"}},
                                 "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]}],
                 "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]}}])
    cluster.wait_pod(namespace, "airgap", timeout=120)
    logs = cluster.pod_logs(namespace, "airgap")
    out = _lines(logs)

    assert out["id"].startswith("uid=65532(nonroot) gid=65532(nonroot)"), logs
    assert out["module"] == f"argo-delivery, version {__version__}"
    assert out["script"] == f"argo-delivery, version {__version__} at /usr/local/bin/argo-delivery"
    busybox = "docker.io/library/busybox@sha256:" + "0" * 64
    assert json.loads(out["find"]) == [busybox, "registry.example/web:1.2.3"]
    assert json.loads(out["find-kustomize"]) == [busybox, "registry.example/web:2.0.0"]
    assert out["skopeo"].startswith("skopeo version 1.")
    assert out["git"].startswith("git version 2.")
    host_kustomize = subprocess.run([str(BIN / "kustomize"), "version"], capture_output=True,
                                    text=True, check=True).stdout.strip()
    assert out["kustomize"] == host_kustomize
    if (REPO_ROOT / "tools" / "helm" / "go.mod").exists():
        assert out["helm"].startswith("v"), logs
    else:
        assert out["helm"] == "none"
    assert out["layout"].startswith("sha256:")
    assert out["copied"] == out["layout"]
    assert out["signature"].startswith('Good "airgap" signature'), logs
