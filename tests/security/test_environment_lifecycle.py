"""Attacks on an Environment's life after its request, by the people of a project: each must be
refused by the API server (RBAC, or the bundle's admission policies
argo-delivery-environment-requests and argo-delivery-environment-lifecycle), while the owner's
own request, extension and deletion, and a product owner's, pass.

The project is core-team of the default platform, rendered by the bundle's own tenancy code
(Namespace, Project, the developer and product-owner Roles bound to its member groups) into a
namespace of this module; people are impersonated by the admin, in the groups of that config.
"""

from __future__ import annotations

import time

import pytest

from argo_delivery import envmodel
from argo_delivery.config import default_config_text, parse_config
from argo_delivery.naming import GROUP_VERSION
from argo_delivery.tenancy import project_resources
from tests.kube_server import ApiError

pytestmark = pytest.mark.apiserver

PROJECT, NS = "core-team", "seclc-core"
ENVS = f"/apis/{GROUP_VERSION}/namespaces/{NS}/environments"
POLICIES = ("argo-delivery-environment-requests", "argo-delivery-environment-lifecycle")
DEV = ("lc-dev", ["acme:core-developers"])
DEV2 = ("lc-dev2", ["acme:core-developers"])
PO = ("lc-po", ["acme:product-owners"])
PARTNER = ("lc-partner", ["northwind:engineers"])   # a developer of another project
KEEP = "example.com/keep"
MERGE = "application/merge-patch+json"


@pytest.fixture(scope="module")
def installed(kube):
    """core-team's tenancy in NS and the two policies (removed afterwards unless a bundle had
    installed them before); returns once both act."""
    from argo_delivery.templates.environments import lifecycle_policy, request_policy

    text = default_config_text().replace("namespace: core-team", f"namespace: {NS}")
    config = parse_config(text, "seclc-platform.yaml")
    [core] = [p for p in config.projects if p.name == PROJECT]
    with kube.policies_kept_as_found(POLICIES):
        kube.apply(project_resources(core, config), field_manager="seclc-test")
        kube.apply([*request_policy(config), *lifecycle_policy(config)], field_manager="argo-delivery")
        refused(lambda: send(kube, "POST", ENVS, DEV, environment("someone-else"), dry_run=True))
        probe = send(kube, "POST", ENVS, DEV2, environment(DEV2[0]))[1]
        refused(lambda: send(kube, "DELETE", f"{ENVS}/{probe['metadata']['name']}", DEV,
                             dry_run=True))
        yield


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


def environment(owner: str, *, demo: bool = False, ttl: str | None = None) -> dict:
    meta: dict = {"generateName": "lc-"}
    if ttl:
        meta["annotations"] = {"argo-delivery.io/ttl": ttl}
    spec: dict = {"project": PROJECT, "owner": owner, "demo": demo}
    if not demo:
        spec["version"] = f"{PROJECT}-0123456789abcdef"
    return {"apiVersion": GROUP_VERSION, "kind": "Environment", "metadata": meta, "spec": spec}


def owned_by(kube, user, ttl: str = "8h", finalizers: tuple[str, ...] = ()) -> str:
    """A real Environment `user` asked for; its path. Finalizers are added as admin (as the
    vend adds ours)."""
    status, created = send(kube, "POST", ENVS, user, environment(user[0], ttl=ttl))
    assert status == 200, created
    path = f"{ENVS}/{created['metadata']['name']}"
    if finalizers:
        kube.request("PATCH", path, {"metadata": {"finalizers": list(finalizers)}},
                         content_type=MERGE)
    return path


def annotate(kube, path: str, user, change: dict, dry_run: bool = True):
    return send(kube, "PATCH", path, user, {"metadata": {"annotations": change}},
                dry_run=dry_run, content_type=MERGE)


def test_a_forged_owner_is_refused(kube, installed):
    status, message = send(kube, "POST", ENVS, DEV, environment(DEV2[0]), dry_run=True)
    assert status == 422 and "spec.owner must be you, lc-dev" in message, message
    assert send(kube, "POST", ENVS, DEV, environment(DEV[0]), dry_run=True)[0] == 200
    # a product owner neither names another owner, but for a demo environment
    status, message = send(kube, "POST", ENVS, PO, environment(DEV[0]), dry_run=True)
    assert status == 422 and "spec.owner must be you, lc-po" in message, message


def test_demo_environments_with_another_owner(kube, installed):
    # a developer asks for no demo one, in his name or anyone's (the policy reports the first
    # rule that fails)
    status, message = send(kube, "POST", ENVS, DEV, environment(DEV[0], demo=True),
                           dry_run=True)
    assert status == 422 and "lc-dev may not ask for a demo environment in seclc-core" in message
    status, message = send(kube, "POST", ENVS, DEV, environment(PO[0], demo=True),
                           dry_run=True)
    assert status == 422 and "spec.owner must be you, lc-dev (only a demo environment, asked " \
        "for by someone allowed the verb demo, names another owner)" in message, message
    # a product owner may, for the team lead (the config's demoEnvironments name an owner)
    status, answer = send(kube, "POST", ENVS, PO, environment("lc-team-lead", demo=True),
                          dry_run=True)
    assert status == 200 and answer["spec"]["owner"] == "lc-team-lead", answer


def test_someone_elses_environment_is_not_deleted(kube, installed):
    path = owned_by(kube, DEV)
    status, message = send(kube, "DELETE", path, DEV2, dry_run=True)
    assert status == 422, message
    assert ("lc-dev2 may not delete Environment" in message and "it is lc-dev's (deleting "
            "someone else's needs the verb manage" in message)
    # another project's developer: RBAC, before admission
    status, message = send(kube, "DELETE", path, PARTNER, dry_run=True)
    assert status == 403 and 'cannot delete resource "environments"' in message
    # nor all at once: developers hold no deletecollection
    status, message = send(kube, "DELETE", ENVS, DEV2, dry_run=True)
    assert status == 403 and 'cannot deletecollection resource "environments"' in message
    assert send(kube, "DELETE", path, PO, dry_run=True)[0] == 200     # manage
    assert send(kube, "DELETE", path, DEV, dry_run=True)[0] == 200    # its owner


def test_someone_elses_expiry_is_not_changed(kube, installed):
    path = owned_by(kube, DEV)
    attacks = {
        "a longer TTL": {"argo-delivery.io/ttl": "72h"},
        "a shorter TTL": {"argo-delivery.io/ttl": "1m"},
        "no TTL (the project's defaultTTL instead)": {"argo-delivery.io/ttl": None},
        "an expiry instant": {"argo-delivery.io/expires": "2026-01-01T00:00:00Z"},
    }
    for attack, change in attacks.items():
        status, message = annotate(kube, path, DEV2, change)
        assert status == 422, (attack, message)
        assert "lc-dev2 may not change the expiry of Environment" in message, (attack, message)
    # the same through a JSON patch that replaces every annotation
    replace_all = [{"op": "replace", "path": "/metadata/annotations",
                    "value": {"argo-delivery.io/ttl": "72h"}}]
    status, message = send(kube, "PATCH", path, DEV2, replace_all, dry_run=True,
                           content_type="application/json-patch+json")
    assert status == 422 and "may not change the expiry" in message, message
    # its owner and a product owner may, within the project's maxTTL (72h)
    assert annotate(kube, path, DEV, {"argo-delivery.io/ttl": "24h"})[0] == 200
    assert annotate(kube, path, PO, {"argo-delivery.io/ttl": "48h"})[0] == 200
    status, message = annotate(kube, path, PO, {"argo-delivery.io/ttl": "73h"})
    assert status == 422 and "is more than project core-team allows (maxTTL 72h)" in message


def test_the_finalizer_is_removed_only_with_finalize(kube, installed):
    path = owned_by(kube, DEV, finalizers=(envmodel.FINALIZER, KEEP))
    assert send(kube, "DELETE", path, DEV)[0] == 200   # being deleted: the destroy would run
    attempts = {
        "a merge patch": ({"metadata": {"finalizers": [KEEP]}}, MERGE),
        "an empty list": ({"metadata": {"finalizers": None}}, MERGE),
        "a JSON patch": ([{"op": "remove", "path": "/metadata/finalizers/0"}],
                         "application/json-patch+json"),
    }
    for user in (DEV, DEV2):
        for attempt, (body, content_type) in attempts.items():
            status, message = send(kube, "PATCH", path, user, body, dry_run=True,
                                   content_type=content_type)
            assert status == 422, (user, attempt, message)
            assert (f"{user[0]} may not remove the finalizer {envmodel.FINALIZER} of "
                    "Environment") in message, (user, attempt, message)
    # nobody but the destroy writes the status (phase, outputsSecret) that envs delete reads
    status, message = send(kube, "PATCH", f"{path}/status", DEV,
                           {"status": {"phase": "Failed"}}, dry_run=True, content_type=MERGE)
    assert status == 403 and 'cannot patch resource "environments/status"' in message, message
    # a finalizer that is not ours is not guarded; ours stays
    status, answer = send(kube, "PATCH", path, DEV,
                          [{"op": "remove", "path": "/metadata/finalizers/1"}], dry_run=True,
                          content_type="application/json-patch+json")
    assert status == 200 and answer["metadata"]["finalizers"] == [envmodel.FINALIZER], answer
    # a product owner holds finalize: only ours goes
    status, answer = send(kube, "PATCH", path, PO,
                          [{"op": "remove", "path": "/metadata/finalizers/0"}],
                          content_type="application/json-patch+json")
    assert status == 200 and answer["metadata"]["finalizers"] == [KEEP], answer
    kube.request("PATCH", path, {"metadata": {"finalizers": None}}, content_type=MERGE)


def test_a_demo_environment_is_out_of_a_developers_reach(kube, installed):
    status, demo = send(kube, "POST", ENVS, PO, environment(PO[0], demo=True))
    assert status == 200, demo
    path = f"{ENVS}/{demo['metadata']['name']}"
    status, message = send(kube, "DELETE", path, DEV, dry_run=True)
    assert status == 422 and "it is lc-po's" in message, message
    # nor moved to another Version (a demo one follows its project's releases; its spec.version
    # is the one field of its spec that may change)
    status, message = send(kube, "PATCH", path, DEV, {"spec": {"version": f"{PROJECT}-" + "f" * 16}},
                           dry_run=True, content_type=MERGE)
    assert status == 422 and "lc-dev may not" in message, message


def test_someone_elses_environment_is_not_touched_at_all(kube, installed):
    """Labels, other annotations (a retry request) and foreign finalizers (which would block
    the owner's delete) on someone else's Environment are refused too."""
    path = owned_by(kube, DEV)
    name = path.rsplit("/", 1)[1]
    for change in ({"metadata": {"labels": {"team": "mine-now"}}},
                   {"metadata": {"annotations": {"argo-delivery.io/retry-destroy": "now"}}},
                   {"metadata": {"finalizers": ["example.com/block"]}}):
        status, message = send(kube, "PATCH", path, DEV2, change, dry_run=True,
                               content_type=MERGE)
        assert status == 422 and f"may not change Environment {name}" in message, (change, message)
    # the owner may label their own
    status, _ = send(kube, "PATCH", path, DEV, {"metadata": {"labels": {"team": "mine"}}},
                     dry_run=True, content_type=MERGE)
    assert status == 200
