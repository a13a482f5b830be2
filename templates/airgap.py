"""Air-gap export (flow F8): a released Version, with every image it runs, packed into one
archive in the artifact repository.

With `airgap.export`, the release Workflow runs the `export` template of the project's
`export-release` WorkflowTemplate (templateRef) right after its release step; the same
WorkflowTemplate exports a Version by hand (`argo submit --from workflowtemplate/export-release
-p version=NAME`). Three steps:

  read    (the stream recorder: reads Versions, writes their status) hands the released
          Version over as JSON and sets status.export to Packing;
  pack    `argo-delivery airgap pack --version-file` in images.airgap, as an account with no
          rights and no token: it clones the components at their commits, renders their deploy
          paths, copies every image from its registry (skopeo) and writes the deterministic
          archive, stored as the output artifact at a fixed key
          (argo-delivery/airgap/<namespace>/<version>.airgap.tar) of the S3-compatible
          repository;
  record  (the recorder again) reads the pack step's summary from the Workflow and writes
          status.export: Succeeded with the key, sha256, size and image count, or Failed
          (the Workflow fails too); `argo-delivery airgap fetch VERSION` reads it.
"""

from __future__ import annotations

import json

from hera.workflows import (
    EmptyDirVolume,
    Env,
    NoneArchiveStrategy,
    Parameter,
    RawArtifact,
    S3Artifact,
    SecretVolume,
    Step,
    Steps,
    WorkflowTemplate,
)
from hera.workflows import models as m

from argo_delivery.capability import Capability
from argo_delivery.config import PlatformConfig, Project
from argo_delivery.durations import parse_duration
from argo_delivery.metrics import step_metrics
from argo_delivery.rbac import Account
from argo_delivery.security import container_step, script_step, step_resources, workflow_defaults
from argo_delivery.tenancy import EXECUTOR

from ._steps import step_source, template_metadata
from .run_stream import RECORDER, step_image

__all__ = ["ARTIFACT_KEY", "CAPABILITY", "EXPORTER", "NAME", "artifact_repository_ref",
           "export_release", "export_step"]

NAME = "export-release"
ENTRY = "export"
EXPORTER = Account("argo-delivery-airgap-exporter",
                   "Air-gap export's pack step: no rights in the cluster and no token mounted "
                   "(the Version comes from the step before it).")
ARTIFACT_KEY = "argo-delivery/airgap/{{workflow.namespace}}/{{inputs.parameters.version}}.airgap.tar"
SCRATCH = EmptyDirVolume(name="scratch", mount_path="/scratch", size_limit="20Gi")
ARCHIVE = "/scratch/out/archive.tar"
SUMMARY = "/scratch/out/summary.json"
_RETRY = m.RetryStrategy(limit="2", retry_policy="Always",
                         backoff=m.Backoff(duration="30s", factor="2", max_duration="10m"))


def artifact_repository_ref(config: PlatformConfig) -> dict:
    """The spec field naming the archive's repository (none: the controller's default)."""
    ref = config.airgap.artifact_repository_ref
    if not ref:
        return {}
    return {"artifact_repository_ref": m.ArtifactRepositoryRef(config_map=ref.get("configMap"),
                                                               key=ref.get("key"))}


def _recorder_step(name: str, mode: str, config: PlatformConfig, env: list[Env],
                   inputs: list[Parameter] = (), **kwargs: object) -> object:
    return script_step(
        name=name, image=step_image(config), command=["python3"],
        source=step_source("run_stream", shared=("steplib", "promotion")),
        env=[Env(name="AD_MODE", value=mode), Env(name="AD_NAMESPACE", value="{{workflow.namespace}}"),
             Env(name="AD_WORKFLOW", value="{{workflow.name}}"),
             Env(name="AD_VERSION", value="{{inputs.parameters.version}}"),
             Env(name="HOME", value="/tmp"), *env],
        inputs=[Parameter(name="version"), *inputs],
        resources=step_resources(cpu="50m", memory="64Mi", cpu_limit="500m", memory_limit="256Mi"),
        api_access=True, service_account_name=RECORDER.name, active_deadline_seconds=300,
        **kwargs)


def _pack_args(project: Project, config: PlatformConfig) -> list[str]:
    settings = config.airgap
    args = ["-m", "argo_delivery", "airgap", "pack", "--version-file", "/scratch/in/version.json",
            "-o", ARCHIVE, "--summary", SUMMARY]
    for component in project.components:
        args += ["--deploy-path", f"{component.name}={component.deploy_path}"]
    for registry in settings.insecure_registries:
        args += ["--insecure-registry", registry]
    if settings.registry_auth_secret:
        args += ["--authfile", "/auth/.dockerconfigjson"]
    if settings.signing_key_secret:
        args += ["--sign-key", f"/signing/{settings.signing_key_secret.key}"]
    return args


def _pack(project: Project, config: PlatformConfig) -> object:
    settings = config.airgap
    volumes: list[object] = [SCRATCH]
    if settings.registry_auth_secret:
        volumes.append(SecretVolume(name="registry-auth", mount_path="/auth",
                                    secret_name=settings.registry_auth_secret, read_only=True))
    if settings.signing_key_secret:
        volumes.append(SecretVolume(name="signing-key", mount_path="/signing", read_only=True,
                                    secret_name=settings.signing_key_secret.name,
                                    default_mode=0o400))
    return container_step(
        name="pack", image=config.images.airgap or "", command=["python3"],
        args=_pack_args(project, config),
        env=[Env(name="HOME", value="/scratch/home"), Env(name="TMPDIR", value="/scratch"),
             Env(name="XDG_RUNTIME_DIR", value="/scratch/run")],
        inputs=[Parameter(name="version"), Parameter(name="document"),
                RawArtifact(name="version-json", path="/scratch/in/version.json",
                            data="{{inputs.parameters.document}}")],
        outputs=[S3Artifact(name="airgap", path=ARCHIVE, key=ARTIFACT_KEY,
                            archive=NoneArchiveStrategy()),
                 Parameter(name="summary", value_from=m.ValueFrom(path=SUMMARY, default=""))],
        volumes=volumes, service_account_name=EXPORTER.name,
        resources=step_resources(cpu="200m", memory="256Mi", cpu_limit="2", memory_limit="2Gi"),
        active_deadline_seconds=int(parse_duration(settings.timeout).total_seconds()),
        retry_strategy=_RETRY, metrics=step_metrics("delivery_airgap_exports_total", project.name))


def _templates(project: Project, config: PlatformConfig) -> None:
    """read, pack, record and the `export` steps template, into the current WorkflowTemplate."""
    read = _recorder_step("read", "export-read", config,
                          [Env(name="AD_OUTPUT", value="/tmp/version.json")],
                          outputs=[Parameter(name="version-json",
                                             value_from=m.ValueFrom(path="/tmp/version.json"))])
    pack = _pack(project, config)
    ref = config.airgap.artifact_repository_ref
    record = _recorder_step(
        "record", "export-record", config,
        [Env(name="AD_PACK_PHASE", value="{{inputs.parameters.phase}}"),
         Env(name="AD_ARTIFACT_KEY", value=ARTIFACT_KEY),
         Env(name="AD_ARTIFACT_REPOSITORY_REF",
             value=json.dumps(ref, sort_keys=True) if ref else "")],
        inputs=[Parameter(name="phase")])
    with Steps(name=ENTRY, inputs=[Parameter(name="version")]):
        Step(name="read", template=read, arguments={"version": "{{inputs.parameters.version}}"})
        Step(name="pack", template=pack, continue_on=m.ContinueOn(failed=True, error=True),
             arguments={"version": "{{inputs.parameters.version}}",
                        "document": "{{steps.read.outputs.parameters.version-json}}"})
        Step(name="record", template=record, arguments={
            "version": "{{inputs.parameters.version}}",
            "phase": "{{steps.pack.status}}"})


def export_release(project: Project, config: PlatformConfig) -> list[WorkflowTemplate]:
    """The project's export-release WorkflowTemplate (none without airgap.export)."""
    if not config.airgap.export:
        return []
    timeout = int(parse_duration(config.airgap.timeout).total_seconds())
    with WorkflowTemplate(
        **template_metadata(NAME, project,
                            description="Pack a released Version and every image it runs into "
                                        "one air-gap archive in the artifact repository.",
                            flow="F8", summary="Released Version -> air-gap archive."),
        entrypoint=ENTRY,
        arguments=[Parameter(name="version", value="", description="the released Version")],
        **workflow_defaults(EXPORTER, EXECUTOR, deadline_seconds=3 * timeout + 900),
        **artifact_repository_ref(config),
    ) as template:
        _templates(project, config)
    return [template]


def export_step(config: PlatformConfig) -> dict:
    """The arguments of the release Workflow's `Step` that runs the export (empty without
    airgap.export)."""
    if not config.airgap.export:
        return {}
    return {"name": "export", "template_ref": m.TemplateRef(name=NAME, template=ENTRY),
            "arguments": {"version": "{{workflow.parameters.version}}"}}


CAPABILITY = Capability(
    "airgap", "F8: a released Version and every image it runs packed into one archive in the "
    "artifact repository (with airgap.export; `argo-delivery airgap fetch` downloads it).",
    per_project=export_release,
    accounts=(EXPORTER,),
)
