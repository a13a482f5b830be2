"""WorkflowTemplate `generate-version` (flow F1): from a push to a Version.

One pod resolves every component's head commit with `git ls-remote` in parallel (no
clones), computes the version hash and creates the Version if it is new. An existing
Version with the same hash is success: the step is idempotent.
"""

from __future__ import annotations

from hera.workflows import (
    EmptyDirVolume,
    Env,
    Parameter,
    RetryStrategy,
    Script,
    SecretVolume,
    WorkflowTemplate,
)
from hera.workflows import models as m

from argo_delivery.config import PlatformConfig, Project
from argo_delivery.naming import GROUP, LABEL_PROJECT
from argo_delivery.security import container_security_context, step_resources, workflow_defaults
from argo_delivery.tenancy import EXECUTOR_SA, VERSION_WRITER_SA

from ._steps import step_source

__all__ = ["TRIGGER_PARAMETERS", "generate_version"]

NAME = "generate-version"
CREDENTIALS_DIR = "/etc/argo-delivery/git-credentials"
# Workflow parameter -> the step's environment variable. Values come from webhook payloads,
# base64-encoded by the Sensor (so Argo never reads them as `{{...}}` expressions); they
# reach the script only as environment variables, never as source or shell text.
TRIGGER_PARAMETERS = {
    "repo": "AD_TRIGGER_REPO",
    "branch": "AD_TRIGGER_BRANCH",
    "commit": "AD_TRIGGER_COMMIT",
    "sender": "AD_TRIGGER_SENDER",
}


def generate_version(project: Project, config: PlatformConfig) -> WorkflowTemplate:
    """The `generate-version` WorkflowTemplate of one project, in the project's namespace."""
    volumes = [EmptyDirVolume(name="tmp", mount_path="/tmp", size_limit="64Mi")]
    env = [
        Env(name="AD_PROJECT", value=project.name),
        Env(name="AD_NAMESPACE", value="{{workflow.namespace}}"),
        Env(name="AD_OUTPUT", value="/tmp/version-name"),
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
        name=NAME,
        namespace=project.namespace,
        labels={LABEL_PROJECT: project.name},
        annotations={
            f"{GROUP}/description": "Resolve every component's head commit and create the "
                                    "Version for this exact set of commits.",
            f"{GROUP}/flow": "F1",
            "workflows.argoproj.io/description": "Push -> Version (idempotent).",
            "workflows.argoproj.io/version": ">= 4.0.0",
        },
        entrypoint=NAME,
        arguments=[Parameter(name=param, value="",
                             description=f"base64 of the push's {param} (set by the on-push "
                                         "Sensor; empty for a manual run)")
                   for param in TRIGGER_PARAMETERS],
        **workflow_defaults(VERSION_WRITER_SA, EXECUTOR_SA, deadline_seconds=900),
    ) as template:
        Script(
            name=NAME,
            image=config.images.git,
            command=["python3"],
            source=step_source("generate_version", with_versionhash=True),
            env=env,
            volumes=volumes,
            resources=step_resources(cpu="200m", memory="128Mi", cpu_limit="1",
                                     memory_limit="512Mi"),
            security_context=container_security_context(),
            automount_service_account_token=True,
            active_deadline_seconds=600,
            retry_strategy=RetryStrategy(limit=2, retry_policy="OnError",
                                         backoff=m.Backoff(duration="10s", factor=2,
                                                           max_duration="2m")),
            outputs=[Parameter(name="version", value_from=m.ValueFrom(path="/tmp/version-name"))],
        )
    return template
