"""What `airgap.export` renders: the export-release WorkflowTemplate and the release Workflow's
export step; nothing of it without the setting."""

from __future__ import annotations

import yaml

from argo_delivery.bundle import build_bundle
from argo_delivery.config import default_config_text, parse_config

NS = "core-team"
IMAGE = "registry.example.com/platform/argo-delivery:0.1.0"


def render(airgap: dict | None, image: str | None = IMAGE):
    data = yaml.safe_load(default_config_text())
    if airgap is not None:
        data["airgap"] = airgap
    if image:
        data["images"]["airgap"] = image
    bundle = build_bundle(parse_config(yaml.safe_dump(data), "airgap.yaml"))
    return {path: yaml.safe_load(text) for path, text in bundle.files.items()
            if path.endswith(".yaml")}


def templates(doc: dict) -> dict[str, dict]:
    return {t["name"]: t for t in doc["spec"]["templates"]}


def test_without_export_nothing_is_rendered_and_release_is_one_step():
    files = render(None, image=None)
    assert not [p for p in files if p.endswith("export-release.yaml")]
    release = files[f"namespaces/{NS}/workflowtemplate/release.yaml"]
    assert release["spec"]["entrypoint"] == "release"
    assert list(templates(release)) == ["release"]


def test_release_runs_export_release_after_the_release_step():
    files = render({"export": True, "artifactRepositoryRef": {"configMap": "store", "key": "s3"}})
    release = files[f"namespaces/{NS}/workflowtemplate/release.yaml"]
    assert release["spec"]["entrypoint"] == "main"
    main = templates(release)["main"]
    assert [[s["name"] for s in group] for group in main["steps"]] == [["release"], ["export"]]
    export = main["steps"][1][0]
    assert export["templateRef"] == {"name": "export-release", "template": "export"}
    assert export["arguments"]["parameters"] == [
        {"name": "version", "value": "{{workflow.parameters.version}}"}]
    # the archive goes where the config says, for the release Workflow and a manual export
    wanted = {"configMap": "store", "key": "s3"}
    assert release["spec"]["artifactRepositoryRef"] == wanted
    export_release = files[f"namespaces/{NS}/workflowtemplate/export-release.yaml"]
    assert export_release["spec"]["artifactRepositoryRef"] == wanted


def test_the_pack_step_runs_the_cli_with_no_token_and_stores_the_archive_at_a_fixed_key():
    files = render({"export": True, "insecureRegistries": ["registry.site:5000"],
                    "registryAuthSecret": "pull-secret",
                    "signingKeySecret": {"name": "release-key", "key": "id_ed25519"},
                    "timeout": "45m"})
    export = files[f"namespaces/{NS}/workflowtemplate/export-release.yaml"]
    steps = templates(export)
    assert [[s["name"] for s in group] for group in steps["export"]["steps"]] == \
        [["read"], ["pack"], ["record"]]
    assert steps["export"]["steps"][1][0]["continueOn"] == {"failed": True, "error": True}
    pack = steps["pack"]
    assert pack["container"]["image"] == IMAGE
    assert pack["serviceAccountName"] == "argo-delivery-airgap-exporter"
    assert pack["activeDeadlineSeconds"] == 45 * 60
    args = pack["container"]["args"]
    assert args[:5] == ["-m", "argo_delivery", "airgap", "pack", "--version-file"]
    pairs = set(zip(args, args[1:], strict=False))
    for pair in (("--insecure-registry", "registry.site:5000"),
                 ("--authfile", "/auth/.dockerconfigjson"),
                 ("--sign-key", "/signing/id_ed25519"),
                 ("--deploy-path", "worker=charts/worker")):
        assert pair in pairs, (pair, args)
    # no API token: neither a projected token volume nor the automount
    assert not any("projected" in v for v in pack["volumes"])
    assert export["spec"]["automountServiceAccountToken"] is False
    mounts = {m["name"]: m["mountPath"] for m in pack["container"]["volumeMounts"]}
    assert mounts["registry-auth"] == "/auth" and mounts["signing-key"] == "/signing"
    (artifact,) = pack["outputs"]["artifacts"]
    assert artifact["s3"] == {"key": "argo-delivery/airgap/{{workflow.namespace}}/"
                                     "{{inputs.parameters.version}}.airgap.tar"}
    assert artifact["archive"] == {"none": {}}
    # read and record run as the stream recorder (the only account that writes status)
    for name in ("read", "record"):
        assert steps[name]["serviceAccountName"] == "argo-delivery-stream-recorder"
        env = {e["name"]: e["value"] for e in steps[name]["script"]["env"]}
        assert env["AD_MODE"] == f"export-{name}"
