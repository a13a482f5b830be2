"""ValidatingAdmissionPolicies: what the API server enforces, whatever a token holder sends.

RBAC can only say a Sensor may `create workflows`, and the workflow controller builds pods
with its own rights, so that alone would mean "run any pod as any ServiceAccount". The
policy for Sensor-created Workflows is derived from the capabilities' `SensorTrigger`
declarations: a Sensor's account may create a Workflow only from a WorkflowTemplate one of
its triggers names (in the Workflow's own namespace, never cluster-scoped), setting nothing
but `workflowTemplateRef` and `arguments`, and only the declared parameters. Capabilities
add policies of their own (Versions: see templates/generate_version.py) with
`validating_policy`.
"""

from __future__ import annotations

import json
from typing import Any

from argo_delivery.capability import Registry
from argo_delivery.config import PlatformConfig

__all__ = ["sensor_workflow_policy", "service_account_user", "validating_policy"]

_API = "admissionregistration.k8s.io/v1"
# Every field of an Argo Workflows v4.1.4 Workflow spec (its full CRD; a conformance test
# compares this list with the pinned release). Written out because a policy must work with
# both of Argo's CRD flavours: on the full CRDs `spec` is a typed object, which CEL cannot
# iterate, so "nothing but these two keys" is "none of the others".
WORKFLOW_SPEC_FIELDS = (
    "activeDeadlineSeconds", "affinity", "archiveLogs", "arguments", "artifactGC",
    "artifactRepositoryRef", "automountServiceAccountToken", "dnsConfig", "dnsPolicy",
    "entrypoint", "executor", "executorPlugins", "hooks", "hostAliases", "hostNetwork",
    "imagePullSecrets", "metrics", "nodeSelector", "onExit", "parallelism",
    "podDisruptionBudget", "podGC", "podMetadata", "podPriorityClassName", "podResources",
    "podSpecPatch", "priority", "resourceClaims", "retryStrategy", "schedulerName",
    "securityContext", "serviceAccountName", "shutdown", "suspend", "synchronization",
    "templateDefaults", "templates", "tolerations", "ttlStrategy", "volumeClaimGC",
    "volumeClaimTemplates", "volumes", "workflowMetadata", "workflowTemplateRef",
)
SENSOR_SETTABLE = ("arguments", "workflowTemplateRef")
# Fields of a parameter other than name and value (a Sensor passes values, nothing else).
PARAMETER_EXTRAS = ("default", "description", "enum", "globalName", "valueFrom")


def service_account_user(namespace: str, name: str) -> str:
    """The username a ServiceAccount's token authenticates as."""
    return f"system:serviceaccount:{namespace}:{name}"


def _cel(value: Any) -> str:
    """A CEL literal for strings, lists and maps of them (JSON's syntax is CEL's)."""
    return json.dumps(value, sort_keys=True)


def validating_policy(name: str, description: str, *, resources: list[dict[str, Any]],
                      validations: list[dict[str, str]], variables: list[dict[str, str]] = (),
                      match_conditions: list[dict[str, str]] = (),
                      namespace_selector: dict[str, Any] | None = None,
                      param_kind: dict[str, str] | None = None,
                      param_ref: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """A ValidatingAdmissionPolicy and its binding (Deny), failing closed; `param_kind` and
    `param_ref` give the policy a parameter resource (`params` in CEL)."""
    spec: dict[str, Any] = {
        "failurePolicy": "Fail",
        "matchConstraints": {"resourceRules": resources},
        "validations": validations,
    }
    if param_kind:
        spec["paramKind"] = dict(param_kind)
    if variables:
        spec["variables"] = list(variables)
    if match_conditions:
        spec["matchConditions"] = list(match_conditions)
    return [
        {"apiVersion": _API, "kind": "ValidatingAdmissionPolicy",
         "metadata": {"name": name, "annotations": {"argo-delivery.io/description": description}},
         "spec": spec},
        {"apiVersion": _API, "kind": "ValidatingAdmissionPolicyBinding",
         "metadata": {"name": name},
         "spec": {"policyName": name, "validationActions": ["Deny"],
                  **({"paramRef": param_ref} if param_ref else {}),
                  **({"matchResources": {"namespaceSelector": namespace_selector}}
                     if namespace_selector else {})}},
    ]


def sensor_workflow_policy(capabilities: Registry, config: PlatformConfig) -> list[dict[str, Any]]:
    """The policy on Workflows created by any Sensor account of the registry's triggers."""
    # user -> namespace -> template -> parameters (CEL map literals must be homogeneous, so the
    # allowed values are a flat map of their own: "user|namespace|template|parameter" -> values;
    # a parameter without an entry takes any value)
    allowed: dict[str, dict[str, dict[str, list[str]]]] = {}
    values: dict[str, list[str]] = {}
    free: set[str] = set()
    for trigger in capabilities.triggers():
        for project in config.projects:
            account = trigger.account.for_project(project.name)
            user = service_account_user(config.orchestrator_namespace, account.name)
            names = allowed.setdefault(user, {}).setdefault(project.namespace, {}).setdefault(
                trigger.template, [])
            for name, fixed in trigger.allowed_values().items():
                if name not in names:
                    names.append(name)
                key = "|".join((user, project.namespace, trigger.template, name))
                # two triggers of one template: a parameter is free if either leaves it free
                if not fixed or key in free:
                    free.add(key)
                    values.pop(key, None)
                else:
                    values[key] = sorted({*values.get(key, []), *fixed})
    if not allowed:
        return []
    ref = "object.spec.workflowTemplateRef"
    return validating_policy(
        "argo-delivery-sensor-workflows",
        "Workflows a Sensor creates: only from the templates its capability declares, with only "
        "the declared parameters, nothing else set.",
        resources=[{"apiGroups": ["argoproj.io"], "apiVersions": ["*"],
                    "operations": ["CREATE", "UPDATE"], "resources": ["workflows"]}],
        match_conditions=[{"name": "created-by-a-sensor",
                           "expression": f"request.userInfo.username in {_cel(sorted(allowed))}"}],
        variables=[
            {"name": "namespaces", "expression": f"{_cel(allowed)}[request.userInfo.username]"},
            {"name": "templates", "expression":
                "request.namespace in variables.namespaces ? "
                "variables.namespaces[request.namespace] : {}"},
            {"name": "parameters", "expression":
                "has(object.spec.arguments) && has(object.spec.arguments.parameters) ? "
                "object.spec.arguments.parameters : []"},
            {"name": "values", "expression": _cel(values)},
        ],
        validations=[
            {"expression": "request.namespace in variables.namespaces",
             "messageExpression": "'this Sensor may create Workflows only in ' + "
                                  "variables.namespaces.map(n, n).join(', ')"},
            {"expression": " && ".join(f"!has(object.spec.{key})" for key in WORKFLOW_SPEC_FIELDS
                                       if key not in SENSOR_SETTABLE),
             "message": "a Sensor may set only spec.workflowTemplateRef and spec.arguments"},
            {"expression": f"has({ref}) && has({ref}.name) && "
                           f"!(has({ref}.clusterScope) && {ref}.clusterScope)",
             "message": "a Sensor's Workflow must reference a WorkflowTemplate of its own "
                        "namespace (never a ClusterWorkflowTemplate)"},
            {"expression": f"!has({ref}.name) || {ref}.name in variables.templates",
             "messageExpression": "'this Sensor may only create Workflows from ' + "
                                  "variables.templates.map(t, t).join(', ') + ' in ' + "
                                  "request.namespace"},
            {"expression": "!has(object.spec.arguments) || !has(object.spec.arguments.artifacts)",
             "message": "a Sensor's Workflow may pass parameters only (no artifacts)"},
            {"expression": "variables.parameters.all(p, "
                           + " && ".join(f"!has(p.{key})" for key in PARAMETER_EXTRAS) + ")",
             "message": "a Sensor's Workflow parameters may carry a name and a value, nothing else"},
            {"expression": f"!has({ref}.name) || !({ref}.name in variables.templates) || "
                           "variables.parameters.all(p, p.name in "
                           f"variables.templates[{ref}.name])",
             "messageExpression": "'the parameters of ' + object.spec.workflowTemplateRef.name + "
                                  "' a Sensor may set are: ' + "
                                  "variables.templates[object.spec.workflowTemplateRef.name]"
                                  ".join(', ')"},
            {"expression": f"!has({ref}.name) || variables.parameters.all(p, !((request.userInfo"
                           f".username + '|' + request.namespace + '|' + {ref}.name + '|' + p.name)"
                           " in variables.values) || (has(p.value) && p.value in variables.values["
                           f"request.userInfo.username + '|' + request.namespace + '|' + {ref}.name"
                           " + '|' + p.name]))",
             "message": "a Sensor's Workflow sets a parameter to a value its trigger does not "
                        "declare (a fixed parameter such as the stream may only take its "
                        "declared values)"},
        ],
    )
