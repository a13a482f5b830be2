"""Environments (flows F5-F7): what the API server enforces on a request, today.

A developer asks for an Environment by creating one (kubectl, any API client). The
ValidatingAdmissionPolicy below decides what admission can see, with the namespace's Project
as the policy's parameter:

- `spec.project` is the project whose namespace this is;
- `spec.owner` is the requesting user (never a free string), and never changes;
- a TTL (annotation `argo-delivery.io/ttl`, a Go duration from creation) is at most the
  project's `maxTTL`; an `argo-delivery.io/expires` instant is an RFC 3339 timestamp (CEL has
  no clock: the vend workflow bounds it);
- only a user the authorizer allows the custom verb `demo` on environments (the project's
  product owners, the platform's admins) asks for a `demo` one;
- only a user the authorizer allows the custom verb `restore` on environments (cluster
  admins: `argo-delivery state import`) sets the annotation `argo-delivery.io/restored`, which
  keeps the Sensor from vending it again, and such a restore may name another owner (the one
  the Environment had); every other rule holds for a restore too.

What admission cannot see (the Version exists in the project and has not failed, an
`expires` instant within maxTTL) the vend workflow checks first (templates/vend.py). A second
policy bounds an Environment's life after its request (`lifecycle_policy`). The capability
also renders the vend and destroy templates, the reaper, the environments EventSource and the
on-environment Sensor, and the demo environments.
"""

from __future__ import annotations

from argo_delivery.admission import validating_policy
from argo_delivery.capability import Capability, SensorTrigger
from argo_delivery.config import PlatformConfig, Project
from argo_delivery.envmodel import FINALIZER as FINALIZER_ENVIRONMENT
from argo_delivery.eventsources import environments as environments_source
from argo_delivery.naming import (
    ANNOTATION_EXPIRES,
    ANNOTATION_RESTORED,
    ANNOTATION_TTL,
    API_VERSION,
    GROUP,
    LABEL_PROJECT,
    VERB_RESTORE,
)
from argo_delivery.sensors import on_environment

from . import reaper, vend

__all__ = ["CAPABILITY", "DESTROY_TRIGGER", "LIFECYCLE_POLICY", "POLICY", "VEND_TRIGGER",
           "demo_environments", "lifecycle_policy", "request_policy"]

POLICY = "argo-delivery-environment-requests"
LIFECYCLE_POLICY = "argo-delivery-environment-lifecycle"
GO_DURATION = r"^([0-9]+(\\.[0-9]+)?(h|m|s|ms))+$"
RFC3339 = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$"


def _may(verb: str) -> str:
    return (f"authorizer.group('{GROUP}').resource('environments')"
            f".namespace(request.namespace).check('{verb}').allowed()")


def request_policy(config: PlatformConfig) -> list[dict]:
    """The admission policy on Environments, with each namespace's Project as its parameter."""
    annotations = "(has(object.metadata.annotations) ? object.metadata.annotations : {})"
    ttl = f"variables.annotations['{ANNOTATION_TTL}']"
    expires = f"variables.annotations['{ANNOTATION_EXPIRES}']"
    has_max = "has(params.spec.environments) && has(params.spec.environments.maxTTL)"
    return validating_policy(
        POLICY,
        "An Environment request: for this namespace's project, owned by the requesting user, a "
        "TTL within the project's maxTTL, demo ones only by those allowed the verb demo.",
        resources=[{"apiGroups": [GROUP], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"],
                    "resources": ["environments"]}],
        namespace_selector={"matchExpressions": [{"key": LABEL_PROJECT, "operator": "Exists"}]},
        param_kind={"apiVersion": f"{GROUP}/{API_VERSION}", "kind": "Project"},
        # the Project in the request's own namespace; none there: refused
        param_ref={"selector": {"matchExpressions": [{"key": LABEL_PROJECT, "operator": "Exists"}]},
                   "parameterNotFoundAction": "Deny"},
        variables=[{"name": "annotations", "expression": annotations},
                   {"name": "oldRestored", "expression":
                    "request.operation == 'UPDATE' && has(oldObject.metadata.annotations) && "
                    f"'{ANNOTATION_RESTORED}' in oldObject.metadata.annotations ? "
                    f"oldObject.metadata.annotations['{ANNOTATION_RESTORED}'] : ''"}],
        validations=[
            {"expression": "object.spec.project == params.metadata.name",
             "messageExpression": "'spec.project must be ' + params.metadata.name + ', the project "
                                  "whose namespace this is'"},
            {"expression": f"!('{ANNOTATION_RESTORED}' in variables.annotations) || "
                           "(request.operation == 'UPDATE' && variables.oldRestored == "
                           f"variables.annotations['{ANNOTATION_RESTORED}']) || {_may(VERB_RESTORE)}",
             "messageExpression": f"request.userInfo.username + ' may not set the annotation "
                                  f"{ANNOTATION_RESTORED}: only a restore does (the verb "
                                  f"{VERB_RESTORE} on environments is needed)'"},
            {"expression": "request.operation != 'CREATE' || "
                           "object.spec.owner == request.userInfo.username || "
                           f"(has(object.spec.demo) && object.spec.demo && {_may('demo')}) || "
                           f"('{ANNOTATION_RESTORED}' in variables.annotations && "
                           f"{_may(VERB_RESTORE)})",
             "messageExpression": "'spec.owner must be you, ' + request.userInfo.username + "
                                  "' (only a demo environment, asked for by someone allowed the "
                                  "verb demo, names another owner)'"},
            {"expression": "request.operation != 'UPDATE' || object.spec.owner == oldObject.spec.owner",
             "message": "spec.owner of an Environment never changes"},
            {"expression": f"!('{ANNOTATION_TTL}' in variables.annotations) || "
                           f"{ttl}.matches('{GO_DURATION}')",
             "message": f"annotation {ANNOTATION_TTL} is a duration such as 8h or 90m"},
            {"expression": f"!('{ANNOTATION_TTL}' in variables.annotations) || "
                           f"!{ttl}.matches('{GO_DURATION}') || !({has_max}) || "
                           f"duration({ttl}) <= duration(params.spec.environments.maxTTL)",
             "messageExpression": f"'a TTL of ' + {ttl} + ' is more than project ' + "
                                  "params.metadata.name + ' allows (maxTTL ' + "
                                  "params.spec.environments.maxTTL + ')'"},
            {"expression": f"!('{ANNOTATION_EXPIRES}' in variables.annotations) || "
                           f"{expires}.matches('{RFC3339}')",
             "message": f"annotation {ANNOTATION_EXPIRES} is an RFC 3339 instant such as "
                        "2026-12-01T18:00:00Z"},
            {"expression": "request.operation != 'CREATE' || "
                           f"!(has(object.spec.demo) && object.spec.demo) || {_may('demo')}",
             "messageExpression": "request.userInfo.username + ' may not ask for a demo "
                                  "environment in ' + request.namespace + ': that needs the verb "
                                  "demo on environments, which the product owners of the project "
                                  "hold (Role argo-delivery-product-owner)'"},
        ])


def lifecycle_policy(config: PlatformConfig) -> list[dict]:
    """Who may extend, delete or give up an Environment (RBAC cannot see whose it is):

    - deleting one, or changing its TTL or expiry, is for its owner, or a user the authorizer
      allows the custom verb `manage` on environments (product owners, the reaper); any other
      change of someone else's (labels, annotations, finalizers) too, but for the project's
      own ServiceAccounts (the vend and destroy steps add and drop the finalizer);
    - removing the finalizer `argo-delivery.io/environment` (destroy not finished: cloud
      resources may still exist) needs the custom verb `finalize` (the destroy step, product
      owners: `argo-delivery envs delete --force`).

    The namespace and garbage collectors of kube-system delete what is in a namespace being
    deleted: they are not refused.
    """
    old_annotations = ("(has(oldObject.metadata.annotations) ? oldObject.metadata.annotations "
                       ": {})")
    new_annotations = "(has(object.metadata.annotations) ? object.metadata.annotations : {})"

    def same(key: str) -> str:
        return (f"(('{key}' in variables.old) == ('{key}' in variables.new) && "
                f"(!('{key}' in variables.old) || variables.old['{key}'] == variables.new['{key}']))")
    owner_or_manager = f"oldObject.spec.owner == request.userInfo.username || {_may('manage')}"
    fin = f"'{FINALIZER_ENVIRONMENT}'"
    return validating_policy(
        LIFECYCLE_POLICY,
        "An Environment's life after its request: only its owner, or those allowed the verb "
        "manage, delete it or change its expiry; only those allowed the verb finalize drop its "
        "finalizer.",
        resources=[{"apiGroups": [GROUP], "apiVersions": ["*"], "operations": ["UPDATE", "DELETE"],
                    "resources": ["environments"]}],
        namespace_selector={"matchExpressions": [{"key": LABEL_PROJECT, "operator": "Exists"}]},
        match_conditions=[{"name": "not-a-kube-system-controller",
                           "expression": "!request.userInfo.username.startsWith("
                                         "'system:serviceaccount:kube-system:')"}],
        variables=[{"name": "old", "expression": old_annotations},
                   {"name": "new", "expression": f"request.operation == 'DELETE' ? {{}} : "
                                                 f"{new_annotations}"}],
        validations=[
            {"expression": f"request.operation != 'DELETE' || {owner_or_manager}",
             "messageExpression": "request.userInfo.username + ' may not delete Environment ' + "
                                  "oldObject.metadata.name + ': it is ' + oldObject.spec.owner + "
                                  "\"'s (deleting someone else's needs the verb manage on "
                                  "environments, which the product owners hold)\""},
            {"expression": f"request.operation != 'UPDATE' || ({same(ANNOTATION_TTL)} && "
                           f"{same(ANNOTATION_EXPIRES)}) || {owner_or_manager}",
             "messageExpression": "request.userInfo.username + ' may not change the expiry of "
                                  "Environment ' + oldObject.metadata.name + ': it is ' + "
                                  "oldObject.spec.owner + \"'s (that needs the verb manage)\""},
            {"expression": "request.operation != 'UPDATE' || "
                           "(has(object.spec.version) == has(oldObject.spec.version) && "
                           "(!has(object.spec.version) || object.spec.version == "
                           f"oldObject.spec.version)) || {_may('manage')}",
             "messageExpression": "request.userInfo.username + ' may not move Environment ' + "
                                  "oldObject.metadata.name + ' to another Version: a demo "
                                  "environment follows the releases of its project (the verb "
                                  "manage is needed)'"},
            {"expression": f"request.operation != 'UPDATE' || "
                           f"!has(oldObject.metadata.finalizers) || "
                           f"!({fin} in oldObject.metadata.finalizers) || "
                           f"(has(object.metadata.finalizers) && {fin} in object.metadata.finalizers)"
                           f" || {_may('finalize')}",
             "messageExpression": "request.userInfo.username + ' may not remove the finalizer "
                                  f"{FINALIZER_ENVIRONMENT} of Environment ' + "
                                  "oldObject.metadata.name + ': its destroy has not finished and "
                                  "cloud resources may remain (the verb finalize is needed: "
                                  "argo-delivery envs delete --force)'"},
            {"expression": f"request.operation != 'UPDATE' || {owner_or_manager} || "
                           "request.userInfo.username.startsWith('system:serviceaccount:' + "
                           "request.namespace + ':')",
             "messageExpression": "request.userInfo.username + ' may not change Environment ' + "
                                  "oldObject.metadata.name + ': it is ' + oldObject.spec.owner + "
                                  "\"'s (labels, annotations and finalizers of someone else's "
                                  "need the verb manage, which the product owners hold)\""},
        ])


def demo_environments(project: Project, config: PlatformConfig) -> list[dict]:
    """`projects[].demoEnvironments` as Environments: demo (no TTL), no Version until the
    project's first release (the release step sets it; the bundle never does, so applying the
    bundle again does not move a demo environment back)."""
    return [{
        "apiVersion": f"{GROUP}/{API_VERSION}", "kind": "Environment",
        "metadata": {"name": demo.name, "namespace": project.namespace,
                     "labels": {LABEL_PROJECT: project.name}},
        "spec": {"project": project.name, "owner": demo.owner, "demo": True,
                 **({"infrastructure": {"variables": dict(demo.variables)}}
                    if demo.variables else {})},
    } for demo in project.demo_environments]


VEND_TRIGGER = SensorTrigger(vend.VEND, ("environment",), on_environment.ACCOUNT)
DESTROY_TRIGGER = SensorTrigger(vend.DESTROY, ("environment",), on_environment.ACCOUNT)

CAPABILITY = Capability(
    "environments", "F5-F7: Environment requests bounded at admission, vended and deployed "
                    "with Terraform, destroyed and swept, reaped when they expire; demo ones "
                    "follow the latest release.",
    per_platform=lambda config: [*request_policy(config), *lifecycle_policy(config),
                                 *environments_source.environments(config)],
    per_project=lambda project, config: [
        *vend.vend_environment(project, config),
        *vend.destroy_environment(project, config),
        *reaper.reaper(project, config),
        *on_environment.on_environment(project, config, VEND_TRIGGER, DESTROY_TRIGGER),
        *demo_environments(project, config),
    ],
    accounts=(vend.VENDOR, vend.DESTROYER, vend.STEP_ACCOUNT, reaper.REAPER,
              environments_source.ACCOUNT, on_environment.ACCOUNT),
    triggers=(VEND_TRIGGER, DESTROY_TRIGGER),
)
