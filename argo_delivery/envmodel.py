"""An Environment's names and the objects a vend makes for it: pure functions.

Standard library only: the vend, destroy and reaper steps run this very file (prepended to
their source, see templates/_steps.py), and the CLI and the tests import it, so a name is
written once.

What one Environment `NAME` in a project namespace owns (each created by its vend, removed
by its destroy, or by the garbage collector through an owner reference):
- the finalizer `argo-delivery.io/environment`, added before anything is created and removed
  only when the destroy and the leak sweep are done;
- the Terraform state: Secret `tfstate-default-NAME` and Lease `lock-tfstate-default-NAME`
  (the `kubernetes` backend with `secret_suffix` NAME; destroy empties the state but leaves
  both, so the destroy removes them);
- Secret `NAME-outputs`: every Terraform output (the kubeconfig and the sensitive ones);
  the non-sensitive ones are also in `status.outputs`;
- Role and RoleBinding `NAME-outputs-reader`: the owner may `get` that one Secret and no other.
"""

from __future__ import annotations

import datetime
import json

GROUP = "argo-delivery.io"
API = "/apis/argo-delivery.io/v1alpha1"
FINALIZER = "argo-delivery.io/environment"
LABEL_ENVIRONMENT = "argo-delivery.io/environment"
LABEL_PROJECT = "argo-delivery.io/project"
RETRY_DESTROY_ANNOTATION = "argo-delivery.io/retry-destroy"
# Set by the reaper on an Environment no vend ever picked up (its ADD event was lost).
RETRY_VEND_ANNOTATION = "argo-delivery.io/retry-vend"
UNCLAIMED_SECONDS = 120   # an Environment with no phase this long after creation: not picked up
PHASES = ("Pending", "Provisioning", "Deploying", "Ready", "Destroying", "Failed")
# Condition types: Ready (vended and deployed), Failed (the last vend or destroy failed:
# reason and message say why), ExpiringSoon (the reaper's warning).
READY, FAILED, EXPIRING_SOON = "Ready", "Failed", "ExpiringSoon"
KUBECONFIG_KEY = "kubeconfig"


def environment_path(namespace, name=None):
    base = f"{API}/namespaces/{namespace}/environments"
    return base if name is None else f"{base}/{name}"


def state_secret(name):
    return f"tfstate-default-{name}"


def state_lease(name):
    return f"lock-tfstate-default-{name}"


def outputs_secret(name):
    return f"{name}-outputs"


def reader_name(name):
    return f"{name}-outputs-reader"


def owner_reference(environment):
    meta = environment["metadata"]
    return {"apiVersion": f"{GROUP}/v1alpha1", "kind": "Environment", "name": meta["name"],
            "uid": meta["uid"], "blockOwnerDeletion": False}


def _labels(environment):
    meta = environment["metadata"]
    return {LABEL_ENVIRONMENT: meta["name"],
            LABEL_PROJECT: (environment.get("spec") or {}).get("project", ""),
            "app.kubernetes.io/managed-by": "argo-delivery"}


def outputs_secret_manifest(environment, outputs):
    """Secret NAME-outputs with every output (from `tofu output -json`: name -> {value,
    sensitive, type}); a non-string value is stored as JSON."""
    meta = environment["metadata"]
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": outputs_secret(meta["name"]), "namespace": meta["namespace"],
                     "labels": _labels(environment),
                     "ownerReferences": [owner_reference(environment)]},
        "stringData": {key: output_text(item.get("value")) for key, item in outputs.items()},
    }


def output_text(value):
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def public_outputs(outputs):
    """The non-sensitive outputs, as status.outputs (strings)."""
    return {key: output_text(item.get("value")) for key, item in sorted(outputs.items())
            if not item.get("sensitive")}


def reader_manifests(environment):
    """Role + RoleBinding NAME-outputs-reader: the owner may get Secret NAME-outputs, and
    nothing else (RBAC names the one Secret; the developer Role has no Secret rule at all)."""
    meta = environment["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    common = {"name": reader_name(name), "namespace": namespace, "labels": _labels(environment),
              "ownerReferences": [owner_reference(environment)]}
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": dict(common),
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"],
                       "resourceNames": [outputs_secret(name)]}]}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": dict(common),
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                           "name": reader_name(name)},
               "subjects": [_subject(environment["spec"]["owner"])]}
    return [role, binding]


def _subject(user):
    prefix = "system:serviceaccount:"
    if user.startswith(prefix) and user.count(":") == 3:
        namespace, name = user[len(prefix):].split(":")
        return {"kind": "ServiceAccount", "name": name, "namespace": namespace}
    return {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}


def now_text(now=None):
    moment = now or datetime.datetime.now(datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def with_condition(conditions, kind, status, reason, message, now=None):
    """`conditions` with condition `kind` set; its lastTransitionTime moves only when its
    status changes."""
    result, previous = [], None
    for condition in conditions or []:
        if condition.get("type") == kind:
            previous = condition
        else:
            result.append(condition)
    moment = now_text(now)
    if previous is not None and previous.get("status") == status:
        moment = previous.get("lastTransitionTime", moment)
    result.append({"type": kind, "status": status, "reason": reason, "message": message[:32000],
                   "lastTransitionTime": moment})
    return sorted(result, key=lambda c: c["type"])


def condition(environment, kind):
    for item in (environment.get("status") or {}).get("conditions") or []:
        if item.get("type") == kind:
            return item
    return None


def is_deleting(environment):
    return bool((environment.get("metadata") or {}).get("deletionTimestamp"))


def has_finalizer(environment):
    return FINALIZER in ((environment.get("metadata") or {}).get("finalizers") or [])
