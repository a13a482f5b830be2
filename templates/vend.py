"""WorkflowTemplates `vend-environment` and `destroy-environment` (flows F5, F6).

An Environment's life, each stage a step of templates/steps/environment.py:

vend-environment (the on-environment Sensor, when an Environment is created, or a demo one's
Version changes):
- `prepare` checks what admission cannot see (the Version exists in the project and has not
  failed; an `expires` instant within maxTTL; the module is the project's), failing the
  Environment at once with a condition and creating nothing; then adds the finalizer before
  anything is created and computes the variables (project defaults < the Environment's
  variables < the facts: name, namespace, project, version_name, version_hash, owner);
- `clone` fetches the project's module (git::REPO//PATH?ref=REF) and hands it on as an Argo
  artifact, through the artifact repository (`environments.artifactRepositoryRef`, else the
  controller's default);
- `apply` runs `init` and `apply` (engine: tofu or terraform, from images.terraform) with the
  state in the project namespace (the `kubernetes` backend, one state per Environment; a lock
  left by a killed step of ours is released first, and a killed apply is tried again), the
  variables as a tfvars JSON file; every output goes to Secret NAME-outputs (owned by the
  Environment), the non-sensitive ones to status, and the owner gets a Role to read that one
  Secret;
- `deploy` applies each component's deploy manifests at the Version's exact commits onto the
  new environment with its kubeconfig output; then `Ready`. A demo environment whose Version
  changed skips clone and apply: it is redeployed, not re-vended.

destroy-environment (the Sensor, when an Environment with our finalizer is being deleted, or
the reaper asks for a failed destroy to run again): `destroy` with the same state, then the
project's leak sweep, then the state Secret and Lease are removed, then the finalizer. A
failed step is retried with backoff; a destroy that still fails leaves the finalizer and a
`Failed` Environment (the exit handler says why).

Both hold the same mutex, one per Environment (Argo synchronization): a vend and a destroy of
one Environment never overlap, a delete during a vend waits for it.
"""

from __future__ import annotations

import json

from hera.workflows import DAG, Artifact, EmptyDirVolume, Env, Parameter, Task, WorkflowTemplate
from hera.workflows import models as m

from argo_delivery.config import PlatformConfig, Project
from argo_delivery.durations import go_duration, parse_duration
from argo_delivery.metrics import step_metrics
from argo_delivery.naming import GROUP
from argo_delivery.rbac import Account, Role, Rule
from argo_delivery.security import container_step, script_step, step_resources, workflow_defaults
from argo_delivery.tenancy import EXECUTOR

from ._steps import step_source, template_metadata
from .run_stream import step_image

__all__ = ["DESTROY", "DESTROYER", "STEP_ACCOUNT", "VEND", "VENDOR", "destroy_environment",
           "vend_environment"]

VEND = "vend-environment"
DESTROY = "destroy-environment"
SHARED = ("steplib", "envmodel", "expiry")
WORK = EmptyDirVolume(name="scratch", mount_path="/scratch", size_limit="2Gi")

# The Terraform state backend (measured: secrets get/list/create/update/delete, leases
# get/create/update/delete), the outputs Secret and the owner's Role to read it.
_STATE = (Rule("", ("secrets",), ("get", "list", "create", "update", "delete")),
          Rule("coordination.k8s.io", ("leases",), ("get", "create", "update", "delete")))
_VENDOR_ROLE = Role(
    "argo-delivery-environment-vendor",
    "vend-environment: read Environments and Versions, add the finalizer, write Environment "
    "status, keep the Terraform state (Secrets, Leases), write the outputs Secret and the "
    "owner's Role to read it. It holds every Secret of the project namespace (the state "
    "backend lists them): the namespace is the tenant boundary.",
    (Rule(GROUP, ("environments",), ("get", "patch")),
     Rule(GROUP, ("environments/status",), ("get", "update")),
     Rule(GROUP, ("versions",), ("get",)),
     *_STATE,
     Rule("rbac.authorization.k8s.io", ("roles", "rolebindings"), ("get", "create", "update"))))
VENDOR = Account(_VENDOR_ROLE.name, _VENDOR_ROLE.description, _VENDOR_ROLE)
_DESTROYER_ROLE = Role(
    "argo-delivery-environment-destroyer",
    "destroy-environment: read Environments and Versions, write Environment status, destroy "
    "with the Terraform state and remove it, and drop the finalizer (the custom verb finalize).",
    (Rule(GROUP, ("environments",), ("get", "patch", "finalize")),
     Rule(GROUP, ("environments/status",), ("get", "update")),
     Rule(GROUP, ("versions",), ("get",)),
     *_STATE))
DESTROYER = Account(_DESTROYER_ROLE.name, _DESTROYER_ROLE.description, _DESTROYER_ROLE)
# The clone and leak-sweep steps: no rights in the cluster and no token.
STEP_ACCOUNT = Account("argo-delivery-environment-step",
                       "The clone and leak-sweep steps of environments: no rights, no token.")

_RETRY = m.RetryStrategy(limit="3", retry_policy="Always",
                         backoff=m.Backoff(duration="15s", factor="2", max_duration="10m"))
# The apply runs again only when it was killed (its pod deleted or lost: Error; its processes
# killed: 137), never when Terraform failed: the next try releases the dead one's state lock
# (the step's break_stale_lock) and converges over what it created.
_APPLY_RETRY = m.RetryStrategy(
    limit="2", retry_policy="Always",
    expression="lastRetry.status == 'Error' || asInt(lastRetry.exitCode) == 137",
    backoff=m.Backoff(duration="15s", factor="2", max_duration="2m"))


def _seconds(duration: str) -> int:
    return int(parse_duration(duration).total_seconds())


def _common_env(project: Project) -> list[Env]:
    return [Env(name="AD_PROJECT", value=project.name),
            Env(name="AD_NAMESPACE", value="{{workflow.namespace}}"),
            Env(name="AD_WORKFLOW", value="{{workflow.name}}"),
            Env(name="AD_ENVIRONMENT", value="{{workflow.parameters.environment}}"),
            Env(name="HOME", value="/tmp")]


def _step(name: str, image: str, mode: str, project: Project, account: Account,
          env: list[Env] = (), *, api: bool = True, heavy: bool = False, **kwargs) -> object:
    resources = (step_resources(cpu="200m", memory="256Mi", cpu_limit="1", memory_limit="1Gi")
                 if heavy else
                 step_resources(cpu="50m", memory="64Mi", cpu_limit="500m", memory_limit="256Mi"))
    return script_step(
        name=name, image=image, command=["python3"],
        source=step_source("environment", shared=SHARED),
        env=[Env(name="AD_MODE", value=mode), *_common_env(project), *env],
        resources=resources, api_access=api, service_account_name=account.name,
        volumes=[WORK] if heavy else [], **kwargs)


def _credentials(project: Project) -> list[m.EnvFromSource]:
    secret = project.environments.credentials_secret if project.environments else None
    return [m.EnvFromSource(secret_ref=m.SecretEnvSource(name=secret))] if secret else []


def _defaults(project: Project, config: PlatformConfig, name: str, description: str,
              summary: str, flow: str, deadline: int) -> dict:
    settings = config.environments
    extra = {}
    if settings.artifact_repository_ref:
        extra["artifact_repository_ref"] = m.ArtifactRepositoryRef(
            config_map=settings.artifact_repository_ref.get("configMap"),
            key=settings.artifact_repository_ref.get("key"))
    return {
        **template_metadata(name, project, description=description, flow=flow, summary=summary),
        "entrypoint": "main",
        "arguments": [Parameter(name="environment", value="",
                                description="the Environment (its namespace: this one)")],
        "synchronization": m.Synchronization(mutexes=[
            m.Mutex(name="environment-{{workflow.parameters.environment}}")]),
        **workflow_defaults(STEP_ACCOUNT, EXECUTOR, deadline_seconds=deadline),
        **extra,
    }


def _clone(project: Project, config: PlatformConfig) -> object:
    return _step("clone", config.images.git, "clone", project, STEP_ACCOUNT,
                 [Env(name="AD_MODULE", value=project.environments.terraform_module)],
                 api=False, active_deadline_seconds=600, retry_strategy=_RETRY,
                 outputs=[Artifact(name="module", path="/tmp/module"),
                          Parameter(name="commit",
                                    value_from=m.ValueFrom(path="/tmp/module-commit"))])


def _terraform_env(project: Project, config: PlatformConfig) -> list[Env]:
    env = project.environments
    return [Env(name="AD_ENGINE", value=config.environments.engine),
            Env(name="AD_APPLY_TIMEOUT_SECONDS", value=str(_seconds(config.environments.apply_timeout))),
            Env(name="AD_DEFAULT_TTL", value=go_duration(parse_duration(env.default_ttl))),
            Env(name="AD_MAX_TTL", value=go_duration(parse_duration(env.max_ttl))),
            Env(name="AD_MODULE", value=env.terraform_module),
            Env(name="AD_DEFAULT_VARIABLES", value=json.dumps(env.variables, sort_keys=True))]


def _finish(name: str, mode: str, project: Project, config: PlatformConfig,
            account: Account) -> object:
    return _step(name, step_image(config), mode, project, account,
                 [Env(name="AD_WORKFLOW_STATUS", value="{{workflow.status}}"),
                  Env(name="AD_FAILURES", value="{{workflow.failures}}")],
                 active_deadline_seconds=300)


def _module_input() -> list[object]:
    return [Artifact(name="module", path="/scratch/module")]


def _module_from_clone() -> list[m.Artifact]:
    return [m.Artifact(name="module", from_="{{tasks.clone.outputs.artifacts.module}}")]


def vend_environment(project: Project, config: PlatformConfig) -> list[WorkflowTemplate]:
    """The project's vend-environment WorkflowTemplate (none without `environments`)."""
    if project.environments is None:
        return []
    terraform_image = config.images.terraform or ""
    timeout = _seconds(config.environments.apply_timeout)
    with WorkflowTemplate(
        **_defaults(project, config, VEND,
                    "Vend an Environment: check, finalizer, module, Terraform apply with the "
                    "state in the namespace, outputs, deploy the Version; Ready.",
                    "Environment -> Terraform -> deployed Version.", "F5",
                    deadline=3 * timeout + 3600),  # the apply and its two tries again
        on_exit="finish",
    ) as template:
        deploy_paths = json.dumps({c.name: c.deploy_path for c in project.components},
                                  sort_keys=True)
        prepare = _step(
            "prepare", step_image(config), "prepare", project, VENDOR,
            [*_terraform_env(project, config), Env(name="AD_DEPLOY_PATHS", value=deploy_paths)],
            active_deadline_seconds=300,
            outputs=[Parameter(name=key, value_from=m.ValueFrom(path=f"/tmp/out-{key}"))
                     for key in ("skip", "apply", "tfvars", "components")])
        clone = _clone(project, config)
        apply = _step("apply", terraform_image, "apply", project, VENDOR,
                      [*_terraform_env(project, config),
                       Env(name="AD_TFVARS", value="{{inputs.parameters.tfvars}}")],
                      heavy=True, env_from=_credentials(project),
                      inputs=[Parameter(name="tfvars"), *_module_input()],
                      active_deadline_seconds=timeout + 300, retry_strategy=_APPLY_RETRY)
        deploy = _step("deploy", terraform_image, "deploy", project, VENDOR,
                       [Env(name="AD_COMPONENTS", value="{{inputs.parameters.components}}")],
                       heavy=True, inputs=[Parameter(name="components")],
                       active_deadline_seconds=1800)
        _finish("finish", "vend-finish", project, config, VENDOR)
        with DAG(name="main"):
            first = Task(name="prepare", template=prepare)
            proceed = "{{tasks.prepare.outputs.parameters.skip}} == false"
            fresh = "{{tasks.prepare.outputs.parameters.apply}} == true"
            get = Task(name="clone", template=clone, when=fresh)
            run = Task(name="apply", template=apply, when=fresh, arguments=[
                Parameter(name="tfvars", value="{{tasks.prepare.outputs.parameters.tfvars}}"),
                *_module_from_clone()])
            ship = Task(name="deploy", template=deploy, when=proceed, arguments={
                "components": "{{tasks.prepare.outputs.parameters.components}}"})
            first >> get >> run >> ship
    return [template]


def destroy_environment(project: Project, config: PlatformConfig) -> list[WorkflowTemplate]:
    """The project's destroy-environment WorkflowTemplate (none without `environments`)."""
    if project.environments is None:
        return []
    terraform_image = config.images.terraform or ""
    timeout = _seconds(config.environments.apply_timeout)
    sweep = project.environments.leak_sweep
    with WorkflowTemplate(
        **_defaults(project, config, DESTROY,
                    "Destroy an Environment: Terraform destroy with its state, the leak sweep, "
                    "the state removed, then the finalizer.",
                    "Environment -> destroyed, swept, gone.", "F6",
                    deadline=4 * timeout + 3600),
        on_exit="finish",
    ) as template:
        start = _step("start", step_image(config), "destroy-start", project, DESTROYER,
                      _terraform_env(project, config), active_deadline_seconds=300,
                      outputs=[Parameter(name=key, value_from=m.ValueFrom(path=f"/tmp/out-{key}"))
                               for key in ("skip", "tfvars", "labels")])
        clone = _clone(project, config)
        destroy = _step("destroy", terraform_image, "destroy", project, DESTROYER,
                        [*_terraform_env(project, config),
                         Env(name="AD_TFVARS", value="{{inputs.parameters.tfvars}}")],
                        heavy=True, env_from=_credentials(project),
                        inputs=[Parameter(name="tfvars"), *_module_input()],
                        active_deadline_seconds=timeout + 300, retry_strategy=_RETRY)
        sweeper = None
        if sweep is not None:
            sweeper = container_step(
                name="leak-sweep", image=sweep.image, command=list(sweep.command) or None,
                args=list(sweep.args) or None, env_from=_credentials(project),
                env=[*_common_env(project),
                     Env(name="AD_LABELS", value="{{inputs.parameters.labels}}")],
                inputs=[Parameter(name="labels")],
                service_account_name=STEP_ACCOUNT.name,
                resources=step_resources(cpu="50m", memory="64Mi", cpu_limit="500m",
                                         memory_limit="256Mi"),
                active_deadline_seconds=_seconds(sweep.timeout), retry_strategy=_RETRY,
                metrics=step_metrics("delivery_leak_sweeps_total", project.name))
        release = _step("release", step_image(config), "release", project, DESTROYER,
                        active_deadline_seconds=300, retry_strategy=_RETRY)
        _finish("finish", "destroy-finish", project, config, DESTROYER)
        with DAG(name="main"):
            first = Task(name="start", template=start)
            proceed = "{{tasks.start.outputs.parameters.skip}} == false"
            get = Task(name="clone", template=clone, when=proceed)
            gone = Task(name="destroy", template=destroy, when=proceed, arguments=[
                Parameter(name="tfvars", value="{{tasks.start.outputs.parameters.tfvars}}"),
                *_module_from_clone()])
            last = Task(name="release", template=release, when=proceed)
            chain = first >> get >> gone
            if sweeper is not None:
                swept = Task(name="leak-sweep", template=sweeper, when=proceed, arguments={
                    "labels": "{{tasks.start.outputs.parameters.labels}}"})
                chain >> swept >> last
            else:
                chain >> last
    return [template]
