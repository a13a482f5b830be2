"""WorkflowTemplate `generate-version` (flow F1): from a push to a Version.

One pod resolves every component's head commit with `git ls-remote` in parallel (no
clones), computes the version hash and creates the Version if it is new. An existing
Version with the same hash is success: the step is idempotent.
"""

from __future__ import annotations

from hera.workflows import Env, Parameter, RetryStrategy, SecretVolume, WorkflowTemplate
from hera.workflows import models as m

from argo_delivery.admission import validating_policy
from argo_delivery.capability import Capability, SensorTrigger
from argo_delivery.config import (
    GENERATE_VERSION_DEADLINE_SECONDS,
    GIT_STEP_BACKOFF_SECONDS,
    GIT_STEP_DEADLINE_SECONDS,
    GIT_STEP_RETRIES,
    PlatformConfig,
    Project,
)
from argo_delivery.eventsources import git_push
from argo_delivery.metrics import VERSION_RESULT_FILE, VERSION_RESULT_OUTPUT, version_metrics
from argo_delivery.naming import ANNOTATION_RESTORED, GROUP, LABEL_PROJECT, VERB_RESTORE
from argo_delivery.rbac import Account, Role, Rule
from argo_delivery.security import script_step, step_resources, workflow_defaults
from argo_delivery.sensors import on_push
from argo_delivery.tenancy import EXECUTOR

from ._steps import step_source, template_metadata

__all__ = ["CAPABILITY", "NAME", "TRIGGER_PARAMETERS", "VERSION_WRITER", "generate_version"]

NAME = "generate-version"
CREDENTIALS_DIR = "/etc/argo-delivery/git-credentials"
EXIT_TRANSIENT = 3  # the step's exit code when the network still fails after its own retries
# Workflow parameter -> the step's environment variable. Values come from webhook payloads,
# base64-encoded by the Sensor (so Argo never reads them as `{{...}}` expressions); they
# reach the script only as environment variables, never as source or shell text.
TRIGGER_PARAMETERS = {
    "repo": "AD_TRIGGER_REPO",
    "branch": "AD_TRIGGER_BRANCH",
    "commit": "AD_TRIGGER_COMMIT",
    "sender": "AD_TRIGGER_SENDER",
}

_WRITER_ROLE = Role(
    "argo-delivery-version-writer",
    "generate-version: reads the Project, creates the Version if it is new.",
    (Rule(GROUP, ("projects",), ("get",)), Rule(GROUP, ("versions",), ("get", "create"))))
VERSION_WRITER = Account(_WRITER_ROLE.name, _WRITER_ROLE.description, _WRITER_ROLE)


def generate_version(project: Project, config: PlatformConfig) -> WorkflowTemplate:
    """The `generate-version` WorkflowTemplate of one project, in the project's namespace."""
    volumes = []
    env = [
        Env(name="AD_PROJECT", value=project.name),
        Env(name="AD_NAMESPACE", value="{{workflow.namespace}}"),
        Env(name="AD_OUTPUT", value="/tmp/version-name"),
        Env(name="AD_RESULT_OUTPUT", value=VERSION_RESULT_FILE),
        # gitProvider.timeout and attempts (config rule git_calls_fit_the_deadlines keeps them
        # inside the deadlines below)
        Env(name="AD_GIT_TIMEOUT", value=str(config.git_provider.git_timeout_seconds)),
        Env(name="AD_ATTEMPTS", value=str(config.git_provider.git_attempts)),
        Env(name="HOME", value="/tmp"),
        *(Env(name=var, value=f"{{{{workflow.parameters.{param}}}}}")
          for param, var in TRIGGER_PARAMETERS.items()),
    ]
    if config.git_provider.credentials_secret:
        volumes.append(SecretVolume(name="git-credentials", mount_path=CREDENTIALS_DIR,
                                    secret_name=config.git_provider.credentials_secret,
                                    optional=True, default_mode=0o440))
        env.append(Env(name="AD_GIT_CREDENTIALS", value=CREDENTIALS_DIR))
    with WorkflowTemplate(
        **template_metadata(NAME, project,
                            description="Resolve every component's head commit and create the "
                                        "Version for this exact set of commits.",
                            flow="F1", summary="Push -> Version (idempotent)."),
        entrypoint=NAME,
        arguments=[Parameter(name=param, value="",
                             description=f"base64 of the push's {param} (set by the on-push "
                                         "Sensor; empty for a manual run)")
                   for param in TRIGGER_PARAMETERS],
        **workflow_defaults(VERSION_WRITER, EXECUTOR,
                            deadline_seconds=GENERATE_VERSION_DEADLINE_SECONDS),
    ) as template:
        script_step(
            name=NAME,
            image=config.images.git,
            command=["python3"],
            source=step_source("generate_version", with_versionhash=True),
            env=env,
            volumes=volumes,
            resources=step_resources(cpu="200m", memory="128Mi", cpu_limit="1",
                                     memory_limit="512Mi"),
            api_access=True,
            active_deadline_seconds=GIT_STEP_DEADLINE_SECONDS,
            # Retry what may pass next time: a pod error (eviction, node loss) or the step's
            # own "network still failing" exit; a missing repo or branch fails at once.
            retry_strategy=RetryStrategy(
                limit=GIT_STEP_RETRIES, retry_policy="Always",
                expression=f"lastRetry.status == 'Error' || asInt(lastRetry.exitCode) == {EXIT_TRANSIENT}",
                backoff=m.Backoff(duration=f"{GIT_STEP_BACKOFF_SECONDS[0]}s", factor=2,
                                  max_duration="2m")),
            outputs=[Parameter(name="version", value_from=m.ValueFrom(path="/tmp/version-name")),
                     Parameter(name=VERSION_RESULT_OUTPUT,
                               value_from=m.ValueFrom(path=VERSION_RESULT_FILE, default="none"))],
            metrics=version_metrics(project.name),
        )
    return template


def version_policy(config: PlatformConfig) -> list[dict]:
    """Versions are born only from this template's account, named from their hash, in their
    project's namespace, and unapproved: a forged Version is refused by the API server.

    The one exception is a restore (`argo-delivery state import`): a Version carrying the
    annotation `argo-delivery.io/restored` (which its Sensor does not run) is created by
    anyone the authorizer allows the custom verb `restore` on versions (cluster admins), and
    may carry the approval it had; nobody else may set that annotation, not even this
    template's account, so it cannot be used to skip a Version's alpha run."""
    writer = f"'system:serviceaccount:' + request.namespace + ':{VERSION_WRITER.name}'"
    project = f"namespaceObject.metadata.labels['{LABEL_PROJECT}']"
    restoring = "variables.restored && variables.mayRestore"
    return validating_policy(
        "argo-delivery-versions", "Who may create a Version, and what it must look like.",
        resources=[{"apiGroups": [GROUP], "apiVersions": ["*"], "operations": ["CREATE"],
                    "resources": ["versions"]}],
        # project namespaces (labelled by the bundle, or by the operator where the site
        # manages namespaces itself)
        namespace_selector={"matchExpressions": [{"key": LABEL_PROJECT, "operator": "Exists"}]},
        variables=[
            {"name": "restored", "expression": "has(object.metadata.annotations) && "
                                               f"'{ANNOTATION_RESTORED}' in object.metadata.annotations"},
            {"name": "mayRestore", "expression": f"authorizer.group('{GROUP}').resource('versions')"
                                                 f".namespace(request.namespace).check('{VERB_RESTORE}')"
                                                 ".allowed()"},
        ],
        validations=[
            {"expression": f"request.userInfo.username == {writer} || {restoring}",
             "messageExpression": f"'only ' + {writer} + ' creates Versions in ' + request.namespace"},
            {"expression": f"has(namespaceObject.metadata.labels) && '{LABEL_PROJECT}' in "
                           f"namespaceObject.metadata.labels && object.spec.project == {project}",
             "message": "spec.project must be the project whose namespace this is"},
            {"expression": "object.metadata.name == object.spec.project + '-' + "
                           "object.spec.hash.substring(7, 23)",
             "message": "a Version is named <project>-<first 16 hex digits of spec.hash>"},
            {"expression": f"!has(object.spec.approval) || ({restoring})",
             "message": "a Version is born unapproved: spec.approval is set by a product owner later"},
            {"expression": "!variables.restored || variables.mayRestore",
             "messageExpression": f"request.userInfo.username + ' may not create a Version with the "
                                  f"annotation {ANNOTATION_RESTORED}: only a restore sets it (the "
                                  f"verb {VERB_RESTORE} on versions is needed)'"},
        ])


TRIGGER = SensorTrigger(NAME, tuple(TRIGGER_PARAMETERS), on_push.ACCOUNT)

CAPABILITY = Capability(
    "generate-version", "F1: a push to a tracked branch -> a Version of every project that "
    "uses the component.",
    per_platform=lambda config: [git_push.git_push(config), *version_policy(config)],
    per_project=lambda project, config: [generate_version(project, config),
                                         on_push.on_push(project, config, TRIGGER)],
    accounts=(VERSION_WRITER, on_push.ACCOUNT, git_push.ACCOUNT),
    triggers=(TRIGGER,),
)
