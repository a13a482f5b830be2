"""Attacks with the restore marker: `argo-delivery state import` creates Versions and
Environments with the annotation `argo-delivery.io/restored`, which the Sensors' ADD filters
skip (no alpha run, no vend), and an Environment restored by an admin names its owner, not the
admin. Nobody but a user the authorizer allows the custom verb `restore` (cluster admins) may
use that: a developer cannot skip the vend or the owner rule with it, the Version writer cannot
skip alpha or bring an approval with it, a developer cannot add it to an existing object.

core-team of the default platform is rendered by the bundle's own tenancy code into a
namespace of this module, with the bundle's Version and Environment policies; people are
impersonated by the admin (who holds every verb, `restore` included).
"""

from __future__ import annotations

import time

import pytest

from argo_delivery.config import default_config_text, parse_config
from argo_delivery.naming import ANNOTATION_RESTORED, GROUP_VERSION
from argo_delivery.tenancy import project_resources
from tests.kube_server import ApiError

pytestmark = pytest.mark.apiserver

PROJECT, NS = "core-team", "secrs-core"
ENVS = f"/apis/{GROUP_VERSION}/namespaces/{NS}/environments"
VERSIONS = f"/apis/{GROUP_VERSION}/namespaces/{NS}/versions"
POLICIES = ("argo-delivery-environment-requests", "argo-delivery-environment-lifecycle",
            "argo-delivery-versions", "argo-delivery-version-approval")
DEV = ("rs-dev", ["acme:core-developers"])
PO = ("rs-po", ["acme:product-owners"])
WRITER = (f"system:serviceaccount:{NS}:argo-delivery-version-writer",
          ["system:serviceaccounts", f"system:serviceaccounts:{NS}"])
ADMIN = None   # the test's admin: system:masters
MERGE = "application/merge-patch+json"
HASH = "sha256:" + "cd" * 32
RESTORED = {ANNOTATION_RESTORED: "2026-11-29T00:00:00Z"}


@pytest.fixture(scope="module")
def installed(kube):
    from argo_delivery.templates.environments import lifecycle_policy, request_policy
    from argo_delivery.templates.generate_version import version_policy
    from argo_delivery.templates.release import approval_policy

    text = default_config_text().replace("namespace: core-team", f"namespace: {NS}")
    config = parse_config(text, "secrs-platform.yaml")
    [core] = [p for p in config.projects if p.name == PROJECT]
    existed = {name: kube.request("GET", "/apis/admissionregistration.k8s.io/v1/"
                                  f"validatingadmissionpolicies/{name}", ok=(404,)).get("kind")
               for name in POLICIES}
    kube.apply(project_resources(core, config), field_manager="secrs-test")
    # the writer's right to create Versions (the bundle's Role; here the bare rule)
    kube.apply([
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "secrs-writer", "namespace": NS},
         "rules": [{"apiGroups": ["argo-delivery.io"], "resources": ["versions"],
                    "verbs": ["create", "get"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "secrs-writer", "namespace": NS},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                     "name": "secrs-writer"},
         "subjects": [{"kind": "ServiceAccount", "name": "argo-delivery-version-writer",
                       "namespace": NS}]}], field_manager="secrs-test")
    kube.apply([*request_policy(config), *lifecycle_policy(config), *version_policy(config),
                *approval_policy(config)], field_manager="argo-delivery")
    refused(lambda: send(kube, "POST", ENVS, DEV, environment("someone-else"), dry_run=True))
    refused(lambda: send(kube, "POST", VERSIONS, ADMIN, version(), dry_run=True))
    yield
    for name, kind in existed.items():
        if not kind:
            for plural in ("validatingadmissionpolicybindings", "validatingadmissionpolicies"):
                kube.request("DELETE", f"/apis/admissionregistration.k8s.io/v1/{plural}/{name}",
                             ok=(404,))


def send(kube, method: str, path: str, user, body=None, *, dry_run: bool = False,
         content_type: str = "application/json"):
    """One request as `user` (impersonated; None: the admin); (status, answer or message)."""
    try:
        return 200, kube.request(method, path, body, as_user=user, content_type=content_type,
                                 query={"dryRun": "All"} if dry_run else None)
    except ApiError as exc:
        return exc.status, exc.message


def refused(request) -> None:
    """Policies act once the API server's informers have them: wait for the first 422."""
    deadline = time.monotonic() + 60
    while request()[0] != 422:
        assert time.monotonic() < deadline, "the policies never took effect"
        time.sleep(0.5)


def environment(owner: str, *, annotations: dict | None = None, ttl: str | None = None) -> dict:
    meta: dict = {"generateName": "rs-", "annotations": dict(annotations or {})}
    if ttl:
        meta["annotations"]["argo-delivery.io/ttl"] = ttl
    return {"apiVersion": GROUP_VERSION, "kind": "Environment", "metadata": meta,
            "spec": {"project": PROJECT, "owner": owner, "demo": False,
                     "version": f"{PROJECT}-0123456789abcdef"}}


def version(*, annotations: dict | None = None, approval: bool = False) -> dict:
    spec: dict = {"project": PROJECT, "hash": HASH, "components": [
        {"name": "api", "repo": "https://github.com/acme-platform/api", "commit": "a" * 40}]}
    if approval:
        spec["approval"] = {"approvedBy": "rs-po", "approvedAt": "2026-11-29T00:00:00Z"}
    return {"apiVersion": GROUP_VERSION, "kind": "Version",
            "metadata": {"name": f"{PROJECT}-{HASH[7:23]}", "annotations": dict(annotations or {})},
            "spec": spec}


def test_a_developer_cannot_mark_an_environment_restored(kube, installed):
    """The marker would skip the vend: a developer's own request with it is refused."""
    status, message = send(kube, "POST", ENVS, DEV, environment(DEV[0], annotations=RESTORED),
                           dry_run=True)
    assert status == 422 and (f"rs-dev may not set the annotation {ANNOTATION_RESTORED}: only a "
                              "restore does") in message, message
    # nor a product owner (demo, manage and finalize are not restore)
    status, message = send(kube, "POST", ENVS, PO, environment(PO[0], annotations=RESTORED),
                           dry_run=True)
    assert status == 422 and "rs-po may not set the annotation" in message, message
    # without it, the developer's own request passes
    assert send(kube, "POST", ENVS, DEV, environment(DEV[0]), dry_run=True)[0] == 200


def test_the_marker_does_not_open_the_owner_rule(kube, installed):
    status, message = send(kube, "POST", ENVS, DEV, environment("victim", annotations=RESTORED),
                           dry_run=True)
    assert status == 422, message
    # the admin restores one owned by someone else: only with the marker
    status, answer = send(kube, "POST", ENVS, ADMIN, environment(DEV[0], annotations=RESTORED),
                          dry_run=True)
    assert status == 200 and answer["spec"]["owner"] == DEV[0], answer
    status, message = send(kube, "POST", ENVS, ADMIN, environment(DEV[0]), dry_run=True)
    assert status == 422 and "spec.owner must be you" in message, message
    # every other rule holds for a restore: the project's maxTTL (24h in the default config)
    status, message = send(kube, "POST", ENVS, ADMIN,
                           environment(DEV[0], annotations=RESTORED, ttl="900h"), dry_run=True)
    assert status == 422 and "is more than project core-team allows" in message, message


def test_a_developer_cannot_add_the_marker_later(kube, installed):
    status, created = send(kube, "POST", ENVS, DEV, environment(DEV[0], ttl="8h"))
    assert status == 200, created
    path = f"{ENVS}/{created['metadata']['name']}"
    status, message = send(kube, "PATCH", path, DEV, {"metadata": {"annotations": RESTORED}},
                           dry_run=True, content_type=MERGE)
    assert status == 422 and "rs-dev may not set the annotation" in message, message
    # a restored one keeps its marker through the owner's own changes
    status, restored = send(kube, "POST", ENVS, ADMIN, environment(DEV[0], annotations=RESTORED))
    assert status == 200, restored
    path = f"{ENVS}/{restored['metadata']['name']}"
    status, answer = send(kube, "PATCH", path, DEV, {"metadata": {"labels": {"team": "a"}}},
                          dry_run=True, content_type=MERGE)
    assert status == 200, answer
    status, message = send(kube, "PATCH", path, DEV, {"metadata": {"annotations": {
        ANNOTATION_RESTORED: "2027-01-01T00:00:00Z"}}}, dry_run=True, content_type=MERGE)
    assert status == 422 and "rs-dev may not set the annotation" in message, message


def test_the_version_writer_cannot_skip_alpha(kube, installed):
    """The writer creates Versions, but not restored ones (its Sensor would run no alpha)."""
    assert send(kube, "POST", VERSIONS, WRITER, version(), dry_run=True)[0] == 200
    status, message = send(kube, "POST", VERSIONS, WRITER, version(annotations=RESTORED),
                           dry_run=True)
    assert status == 422 and "may not create a Version with the annotation" in message, message
    # nor bring an approval, marked or not
    status, message = send(kube, "POST", VERSIONS, WRITER,
                           version(annotations=RESTORED, approval=True), dry_run=True)
    assert status == 422, message
    status, message = send(kube, "POST", VERSIONS, WRITER, version(approval=True), dry_run=True)
    assert status == 422 and "born unapproved" in message, message


def test_an_admin_restores_an_approved_version(kube, installed):
    status, answer = send(kube, "POST", VERSIONS, ADMIN,
                          version(annotations=RESTORED, approval=True), dry_run=True)
    assert status == 200 and answer["spec"]["approval"]["approvedBy"] == "rs-po", answer
    # without the marker the admin is no Version writer
    status, message = send(kube, "POST", VERSIONS, ADMIN, version(), dry_run=True)
    assert status == 422 and "creates Versions in secrs-core" in message, message


def test_a_developer_cannot_mark_a_version_restored(kube, installed):
    status, created = send(kube, "POST", VERSIONS, WRITER, version())
    assert status == 200, created
    path = f"{VERSIONS}/{created['metadata']['name']}"
    try:
        status, message = send(kube, "PATCH", path, DEV, {"metadata": {"annotations": RESTORED}},
                               dry_run=True, content_type=MERGE)
        assert status == 422 and "rs-dev may not set or change the annotation" in message, message
        status, answer = send(kube, "PATCH", path, ADMIN, {"metadata": {"annotations": RESTORED}},
                              dry_run=True, content_type=MERGE)
        assert status == 200, answer
    finally:
        kube.request("DELETE", path, ok=(404,))
