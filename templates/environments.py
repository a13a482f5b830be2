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
  product owners, the platform's admins) asks for a `demo` one.

What admission cannot see (the Version exists in the project and has not failed) is for the
vend workflow, which is not built yet (issue 12).
"""

from __future__ import annotations

from argo_delivery.admission import validating_policy
from argo_delivery.capability import Capability
from argo_delivery.config import PlatformConfig
from argo_delivery.naming import ANNOTATION_EXPIRES, ANNOTATION_TTL, API_VERSION, GROUP, LABEL_PROJECT

__all__ = ["CAPABILITY", "POLICY", "request_policy"]

POLICY = "argo-delivery-environment-requests"
GO_DURATION = r"^([0-9]+(\\.[0-9]+)?(h|m|s|ms))+$"
RFC3339 = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$"


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
        variables=[{"name": "annotations", "expression": annotations}],
        validations=[
            {"expression": "object.spec.project == params.metadata.name",
             "messageExpression": "'spec.project must be ' + params.metadata.name + ', the project "
                                  "whose namespace this is'"},
            {"expression": "request.operation != 'CREATE' || "
                           "object.spec.owner == request.userInfo.username",
             "messageExpression": "'spec.owner must be you, ' + request.userInfo.username"},
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
            {"expression": "!(has(object.spec.demo) && object.spec.demo) || "
                           f"authorizer.group('{GROUP}').resource('environments')"
                           ".namespace(request.namespace).check('demo').allowed()",
             "messageExpression": "request.userInfo.username + ' may not ask for a demo "
                                  "environment in ' + request.namespace + ': that needs the verb "
                                  "demo on environments, which the product owners of the project "
                                  "hold (Role argo-delivery-product-owner)'"},
        ])


CAPABILITY = Capability(
    "environments", "F5-F7: Environment requests bounded at admission (vend, destroy and the "
                    "reaper are not built yet).",
    per_platform=request_policy,
)
