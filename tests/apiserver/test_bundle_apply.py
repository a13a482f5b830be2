"""The whole default bundle on a real API server: server-side apply, idempotence, RBAC matrix."""

from __future__ import annotations

import pytest

from tests.kube_server import ApiError

pytestmark = pytest.mark.apiserver

NAMESPACES = ("argo-delivery", "core-team", "partner-northwind")


@pytest.fixture(scope="module")
def applied(kube, default_bundle):
    resources = default_bundle.resources
    # A dry run cannot place objects in Namespaces that only this batch would create.
    namespaces = [r for r in resources if r["kind"] in ("Namespace", "CustomResourceDefinition")]
    kube.apply(namespaces)
    # ... nor an Environment whose admission policy reads the Project this batch would create
    # (refused "no params found" once an earlier test installed the policy)
    checkable = [r for r in resources if r["kind"] != "Environment"]
    dry = kube.apply(checkable, dry_run=True)
    assert [d["kind"] for d in dry] == [r["kind"] for r in checkable]
    with pytest.raises(ApiError, match="404"):
        kube.request("GET", kube.path_for("argoproj.io/v1alpha1", "Sensor", "on-push-core-team",
                                          "argo-delivery"))
    first = kube.apply(resources)
    return resources, first


def test_whole_bundle_applies_and_a_second_apply_changes_nothing(kube, applied):
    resources, first = applied
    second = kube.apply(resources)
    assert [o["metadata"]["resourceVersion"] for o in second] == \
        [o["metadata"]["resourceVersion"] for o in first]
    for resource in resources:
        meta = resource["metadata"]
        stored = kube.request("GET", kube.path_for(resource["apiVersion"], resource["kind"],
                                                   meta["name"], meta.get("namespace")))
        assert stored["metadata"]["labels"]["argo-delivery.io/bundle"] == "acme-platform"


def can(kube, user: str, groups: list[str], verb: str, resource: str, namespace: str,
        group: str = "") -> bool:
    resource, _, subresource = resource.partition("/")
    review = kube.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": user, "groups": groups, "resourceAttributes": {
            "verb": verb, "group": group, "resource": resource, "subresource": subresource,
            "namespace": namespace}}})
    return review["status"].get("allowed", False)


def sa(namespace: str, name: str) -> tuple[str, list[str]]:
    return (f"system:serviceaccount:{namespace}:{name}",
            ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"])


AD, ARGO = "argo-delivery.io", "argoproj.io"
ON_PUSH = sa("argo-delivery", "argo-delivery-sensor-on-push-core-team")
PARTNER_ON_PUSH = sa("argo-delivery", "argo-delivery-sensor-on-push-northwind")
EVENTSOURCE = sa("argo-delivery", "argo-delivery-eventsource")
WRITER = sa("core-team", "argo-delivery-version-writer")
EXECUTOR = sa("core-team", "argo-delivery-executor")
ON_VERSION = sa("argo-delivery", "argo-delivery-sensor-on-version-core-team")
VERSIONS_SOURCE = sa("argo-delivery", "argo-delivery-eventsource-versions")
RECORDER = sa("core-team", "argo-delivery-stream-recorder")
SUITE = sa("core-team", "argo-delivery-test-suite")
CORE_DEV = ("alice", ["acme:core-developers", "system:authenticated"])
CORE_PO = ("olivia", ["acme:product-owners", "system:authenticated"])
PARTNER_DEV = ("nico", ["northwind:engineers", "system:authenticated"])

# (who, verb, group, resource, namespace, allowed): written out by hand, not derived from
# the RBAC data it checks.
MATRIX = [
    (ON_PUSH, "create", ARGO, "workflows", "core-team", True),
    (ON_PUSH, "create", ARGO, "workflows", "partner-northwind", False),
    (PARTNER_ON_PUSH, "create", ARGO, "workflows", "partner-northwind", True),
    (PARTNER_ON_PUSH, "create", ARGO, "workflows", "core-team", False),
    (ON_PUSH, "create", ARGO, "workflows", "argo-delivery", False),
    (ON_PUSH, "create", ARGO, "workflows", "kube-system", False),
    (ON_PUSH, "get", ARGO, "workflows", "core-team", False),
    (ON_PUSH, "list", ARGO, "workflows", "core-team", False),
    (ON_PUSH, "delete", ARGO, "workflows", "core-team", False),
    (ON_PUSH, "create", AD, "versions", "core-team", False),
    (ON_PUSH, "get", "", "secrets", "argo-delivery", False),
    (EVENTSOURCE, "get", "", "secrets", "argo-delivery", False),
    (EVENTSOURCE, "create", ARGO, "workflows", "core-team", False),
    (WRITER, "get", AD, "projects", "core-team", True),
    (WRITER, "create", AD, "versions", "core-team", True),
    (WRITER, "get", AD, "versions", "core-team", True),
    (WRITER, "update", AD, "versions", "core-team", False),
    (WRITER, "delete", AD, "versions", "core-team", False),
    (WRITER, "list", AD, "projects", "core-team", False),
    (WRITER, "get", AD, "projects", "partner-northwind", False),
    (WRITER, "create", AD, "versions", "partner-northwind", False),
    (WRITER, "create", ARGO, "workflows", "core-team", False),
    (WRITER, "get", "", "secrets", "core-team", False),
    (EXECUTOR, "create", ARGO, "workflowtaskresults", "core-team", True),
    (EXECUTOR, "patch", ARGO, "workflowtaskresults", "core-team", True),
    (EXECUTOR, "create", ARGO, "workflowtaskresults", "partner-northwind", False),
    (EXECUTOR, "get", AD, "projects", "core-team", False),
    (CORE_DEV, "create", AD, "environments", "core-team", True),
    (CORE_DEV, "delete", AD, "environments", "core-team", True),
    (CORE_DEV, "list", AD, "versions", "core-team", True),
    (CORE_DEV, "patch", AD, "versions", "core-team", True),   # a re-run request
    (CORE_DEV, "approve", AD, "versions", "core-team", False),
    (CORE_DEV, "update", AD, "versions/status", "core-team", False),
    (CORE_DEV, "create", AD, "environments", "partner-northwind", False),
    (CORE_DEV, "create", ARGO, "workflows", "core-team", False),
    (CORE_PO, "patch", AD, "versions", "core-team", True),
    (CORE_PO, "create", AD, "environments", "core-team", True),
    (CORE_PO, "demo", AD, "environments", "core-team", True),
    (CORE_PO, "demo", AD, "environments", "partner-northwind", False),
    (CORE_DEV, "demo", AD, "environments", "core-team", False),
    # patch: to extend their own (argo-delivery-environment-lifecycle refuses anyone else's)
    (CORE_DEV, "patch", AD, "environments", "core-team", True),
    (CORE_DEV, "manage", AD, "environments", "core-team", False),
    (CORE_DEV, "finalize", AD, "environments", "core-team", False),
    (CORE_PO, "manage", AD, "environments", "core-team", True),
    (CORE_PO, "finalize", AD, "environments", "core-team", True),
    (CORE_PO, "finalize", AD, "environments", "partner-northwind", False),
    (CORE_PO, "patch", AD, "versions", "partner-northwind", False),
    (CORE_PO, "approve", AD, "versions", "core-team", True),
    (CORE_PO, "approve", AD, "versions", "partner-northwind", False),
    (CORE_PO, "update", AD, "versions/status", "core-team", False),
    (PARTNER_DEV, "approve", AD, "versions", "partner-northwind", False),
    (ON_VERSION, "create", ARGO, "workflows", "core-team", True),
    (ON_VERSION, "create", ARGO, "workflows", "partner-northwind", False),
    (ON_VERSION, "get", AD, "versions", "core-team", False),
    (VERSIONS_SOURCE, "watch", AD, "versions", "core-team", True),
    (VERSIONS_SOURCE, "watch", AD, "versions", "partner-northwind", True),
    (VERSIONS_SOURCE, "patch", AD, "versions", "core-team", False),
    (VERSIONS_SOURCE, "create", ARGO, "workflows", "core-team", False),
    (VERSIONS_SOURCE, "list", AD, "environments", "core-team", False),
    (RECORDER, "update", AD, "versions/status", "core-team", True),
    (RECORDER, "get", AD, "versions", "core-team", True),
    (RECORDER, "get", ARGO, "workflows", "core-team", True),
    (RECORDER, "update", AD, "versions", "core-team", False),
    (RECORDER, "patch", AD, "versions", "core-team", False),
    (RECORDER, "create", AD, "versions", "core-team", False),
    (RECORDER, "create", ARGO, "workflows", "core-team", False),
    (RECORDER, "update", AD, "versions/status", "partner-northwind", False),
    (RECORDER, "get", "", "secrets", "core-team", False),
    (SUITE, "get", AD, "versions", "core-team", False),
    (SUITE, "get", ARGO, "workflows", "core-team", False),
    (SUITE, "get", "", "secrets", "core-team", False),
    (WRITER, "update", AD, "versions/status", "core-team", False),
    (PARTNER_DEV, "create", AD, "environments", "partner-northwind", True),
    (PARTNER_DEV, "get", AD, "projects", "core-team", False),
    (PARTNER_DEV, "list", AD, "versions", "core-team", False),
]


@pytest.mark.parametrize("who, verb, group, resource, namespace, allowed", MATRIX,
                         ids=[f"{w[0].split(':')[-1]}-{v}-{r}-{n}" for w, v, g, r, n, a in MATRIX])
def test_rbac_matrix(kube, applied, who, verb, group, resource, namespace, allowed):
    user, groups = who
    assert can(kube, user, groups, verb, resource, namespace, group) is allowed


def test_no_service_account_can_do_anything_cluster_wide(kube, applied, default_bundle):
    accounts = [(r["metadata"]["namespace"], r["metadata"]["name"]) for r in default_bundle.resources
                if r["kind"] == "ServiceAccount"]
    assert accounts
    for namespace, name in accounts:
        user, groups = sa(namespace, name)
        for verb, group, resource in (("list", "", "secrets"), ("create", ARGO, "workflows"),
                                      ("list", AD, "versions"), ("create", "", "pods")):
            for target in ("kube-system", "default"):
                assert not can(kube, user, groups, verb, resource, target, group), \
                    (namespace, name, verb, resource, target)
