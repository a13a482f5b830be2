"""Attacks on the API server with the bundle's own tokens; each must be refused by an admission
policy of the bundle (not by a convention of our templates), while the real flow passes.

H1: with the Sensor's token, `create workflows` must not mean "run any pod".
M1: forged Versions (wrong name, another project, pre-set approval, not the writer).
"""

from __future__ import annotations

import copy
import secrets
import time

import pytest

from argo_delivery.bundle import build_bundle
from argo_delivery.config import default_config_text, parse_config
from tests.kube_server import ApiError

pytestmark = pytest.mark.apiserver

# The default platform in namespaces of its own: project core-team lives in sec-core here.
ORCHESTRATOR, PROJECT, OTHER = "sec-delivery", "core-team", "northwind"
PROJECT_NS = "sec-core"
SENSOR = "argo-delivery-sensor-on-push-core-team"   # core-team's own Sensor account
WRITER = "argo-delivery-version-writer"
WORKFLOWS = "/apis/argoproj.io/v1alpha1/namespaces/{ns}/workflows"
VERSIONS = "/apis/argo-delivery.io/v1alpha1/namespaces/{ns}/versions"
HASH = "sha256:" + "ab" * 32
POLICY_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def bundle():
    text = (default_config_text().replace("name: acme-platform", "name: sec-platform")
            .replace("namespace: argo-delivery", f"namespace: {ORCHESTRATOR}")
            .replace("namespace: core-team", f"namespace: {PROJECT_NS}")
            .replace("namespace: partner-northwind", "namespace: sec-partner"))
    assert text.count(PROJECT_NS) == 1 and "sec-partner" in text
    return build_bundle(parse_config(text, "sec-platform.yaml"))


@pytest.fixture(scope="module")
def installed(kube, bundle):
    kube.apply(bundle.resources)
    return bundle


def sensor_workflow(bundle, project: str = PROJECT) -> dict:
    """The Workflow the on-push Sensor creates for `project`, parameters filled in."""
    sensor = next(r for r in bundle.resources
                  if r["kind"] == "Sensor" and r["metadata"]["name"] == f"on-push-{project}")
    [trigger] = sensor["spec"]["triggers"]
    workflow = copy.deepcopy(trigger["template"]["k8s"]["source"]["resource"])
    for parameter in workflow["spec"]["arguments"]["parameters"]:
        parameter["value"] = "bWFpbg=="
    return _named(workflow)


def _named(workflow: dict) -> dict:
    """The event's id appended to the name, as the trigger does (sensors/_triggers.py)."""
    workflow["metadata"]["name"] += secrets.token_hex(16)
    return workflow


def post(kube, path: str, token: str, body: dict):
    """POST as `token` (a dry run: admission runs, nothing is stored); (status, body)."""
    try:
        return 201, kube.request("POST", path, body, token=token, query={"dryRun": "All"})
    except ApiError as exc:
        return exc.status, exc.message


def create(kube, token: str, namespace: str, workflow: dict):
    return post(kube, WORKFLOWS.format(ns=namespace), token, workflow)


def wait_for_refusal(send, what: str) -> None:
    """Policies act once the API server's informers have them: wait for the first refusal."""
    deadline = time.monotonic() + POLICY_TIMEOUT
    while send()[0] != 422:
        assert time.monotonic() < deadline, f"the {what} policy never took effect"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def sensor_token(kube, installed):
    token = kube.token_for(ORCHESTRATOR, SENSOR)
    probe = {**sensor_workflow(installed), "spec": {"templates": [], "entrypoint": "x"}}
    wait_for_refusal(lambda: create(kube, token, PROJECT_NS, probe), "sensor-workflows")
    return token


def test_the_real_sensor_workflow_is_accepted(kube, installed, sensor_token):
    status, body = create(kube, sensor_token, PROJECT_NS, sensor_workflow(installed))
    assert status == 201, body


def inline_as_writer(workflow: dict) -> None:
    workflow["spec"] = {
        "entrypoint": "steal", "serviceAccountName": WRITER,
        "templates": [{"name": "steal", "container": {
            "image": "busybox", "command": ["cat", "/secret/.git-credentials"],
            "volumeMounts": [{"name": "creds", "mountPath": "/secret"}]}}],
        "volumes": [{"name": "creds", "secret": {"secretName": "git-credentials"}}]}


def override(**fields):
    return lambda workflow: workflow["spec"].update(fields)


ATTACKS = {
    "inline templates as the writer, credentials mounted": (inline_as_writer, "may set only"),
    "template ref + serviceAccountName": (override(serviceAccountName=WRITER), "may set only"),
    "template ref + podSpecPatch": (override(podSpecPatch='{"hostPID": true}'), "may set only"),
    "template ref + volumes": (override(volumes=[{"name": "c", "secret": {"secretName": "x"}}]),
                               "may set only"),
    "template ref + securityContext": (override(securityContext={"runAsUser": 0}), "may set only"),
    "template ref + hostNetwork": (override(hostNetwork=True), "may set only"),
    "undeclared template": (lambda w: w["spec"]["workflowTemplateRef"].update(name="other"),
                            "may only create Workflows from generate-version in sec-core"),
    "cluster template": (lambda w: w["spec"]["workflowTemplateRef"].update(clusterScope=True),
                         "never a ClusterWorkflowTemplate"),
    "undeclared parameter": (lambda w: w["spec"]["arguments"]["parameters"].append(
        {"name": "image", "value": "evil"}), "a Sensor may set are: repo, branch, commit, sender"),
    "parameter from a ConfigMap": (lambda w: w["spec"]["arguments"]["parameters"][0].update(
        valueFrom={"configMapKeyRef": {"name": "x", "key": "y"}}), "a name and a value"),
    "artifacts": (lambda w: w["spec"]["arguments"].update(
        artifacts=[{"name": "a", "raw": {"data": "x"}}]), "parameters only"),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_sensor_token_cannot_run_any_pod(kube, installed, sensor_token, attack):
    mutate, message = ATTACKS[attack]
    workflow = sensor_workflow(installed)
    mutate(workflow)
    status, body = create(kube, sensor_token, PROJECT_NS, workflow)
    assert status == 422, f"{attack}: accepted ({status})"
    assert "argo-delivery-sensor-workflows" in body and message in body, body


def test_a_projects_sensor_cannot_create_in_another_project(kube, installed, sensor_token):
    """RBAC refuses it first (403); admission would too (only the project's own namespace)."""
    workflow = sensor_workflow(installed)
    workflow["metadata"]["namespace"] = "sec-partner"
    status, body = create(kube, sensor_token, "sec-partner", workflow)
    assert status == 403, body
    # an RBAC mistake (the Sensor bound in another namespace too) is still caught at admission
    kube.apply([{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                 "metadata": {"name": "mistake", "namespace": "sec-partner"},
                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                             "name": "argo-delivery-workflow-submitter"},
                 "subjects": [{"kind": "ServiceAccount", "name": SENSOR, "namespace": ORCHESTRATOR}]}])
    try:
        deadline = time.monotonic() + POLICY_TIMEOUT
        while (result := create(kube, sensor_token, "sec-partner", workflow))[0] == 403:
            assert time.monotonic() < deadline, "the RoleBinding never took effect"
            time.sleep(0.5)
        assert result[0] == 422 and "may create Workflows only in sec-core" in result[1], result
    finally:
        kube.request("DELETE", "/apis/rbac.authorization.k8s.io/v1/namespaces/sec-partner/"
                               "rolebindings/mistake")


def test_policy_does_not_touch_other_users(kube, installed, sensor_token):
    """An admin's Workflow is not a Sensor's: the policy matches Sensor accounts only."""
    workflow = sensor_workflow(installed)
    inline_as_writer(workflow)
    status, body = create(kube, kube.admin_token, PROJECT_NS, workflow)
    assert status == 201, body


def version(name: str, project: str = PROJECT, **spec) -> dict:
    return {"apiVersion": "argo-delivery.io/v1alpha1", "kind": "Version",
            "metadata": {"name": name},
            "spec": {"project": project, "hash": HASH, "components": [
                {"name": "api", "repo": "https://github.com/acme-platform/api",
                 "ref": "refs/heads/main", "commit": "0123456789abcdef0123456789abcdef01234567"}],
                **spec}}


def post_version(kube, token: str, namespace: str, body: dict):
    return post(kube, VERSIONS.format(ns=namespace), token, body)


@pytest.fixture(scope="module")
def writer_token(kube, installed):
    token = kube.token_for(PROJECT_NS, WRITER)
    wait_for_refusal(lambda: post_version(kube, token, PROJECT_NS, version("wrong-name")), "versions")
    return token


GOOD_NAME = f"{PROJECT}-{HASH[7:23]}"
FORGERIES = {
    "name not from the hash": (lambda: version(f"{PROJECT}-0000000000000000"), "is named"),
    "another project's name": (lambda: version(f"{OTHER}-{HASH[7:23]}", project=OTHER),
                               "project whose namespace this is"),
    "pre-set approval": (lambda: version(GOOD_NAME, approval={
        "approvedBy": "mallory", "approvedAt": "2026-01-01T00:00:00Z"}), "born unapproved"),
}


def test_the_writer_creates_a_well_formed_version(kube, installed, writer_token):
    status, body = post_version(kube, writer_token, PROJECT_NS, version(GOOD_NAME))
    assert status == 201, body


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_forged_versions_are_refused(kube, installed, writer_token, forgery):
    make, message = FORGERIES[forgery]
    status, body = post_version(kube, writer_token, PROJECT_NS, make())
    assert status == 422, f"{forgery}: accepted"
    assert "argo-delivery-versions" in body and message in body, body


def test_only_the_writer_creates_versions(kube, installed, writer_token):
    # an admin (and so any other identity RBAC lets through) is refused too
    status, body = post_version(kube, kube.admin_token, PROJECT_NS, version(GOOD_NAME))
    assert status == 422 and f"system:serviceaccount:{PROJECT_NS}:{WRITER}" in body, body


def test_a_versions_trigger_is_immutable(kube, installed):
    """The CRD's own rule: the trigger a Version was born from cannot be rewritten later."""
    namespace = "sec-unlabelled"   # not a project namespace: only the CRD's rules apply
    kube.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}])
    body = version(GOOD_NAME, trigger={"type": "push", "sender": "alice"})
    body["metadata"]["namespace"] = namespace
    kube.create(body)
    path = VERSIONS.format(ns=namespace) + f"/{GOOD_NAME}"
    with pytest.raises(ApiError, match="trigger of a Version are immutable"):
        kube.request("PATCH", path, {"spec": {"trigger": {"type": "push", "sender": "mallory"}}},
                     content_type="application/merge-patch+json")


# --- F2-F4: the on-version Sensor's Workflows and the product owner's sign-off ---------------

ON_VERSION = "argo-delivery-sensor-on-version-core-team"


def on_version_workflow(bundle, trigger: str) -> dict:
    """The Workflow a trigger of core-team's on-version Sensor creates, version filled in."""
    sensor = next(r for r in bundle.resources
                  if r["kind"] == "Sensor" and r["metadata"]["name"] == "on-version-core-team")
    [found] = [t for t in sensor["spec"]["triggers"] if t["template"]["name"] == trigger]
    workflow = copy.deepcopy(found["template"]["k8s"]["source"]["resource"])
    for parameter in workflow["spec"]["arguments"]["parameters"]:
        if parameter["name"] == "version":
            parameter["value"] = GOOD_NAME
    return _named(workflow)


@pytest.fixture(scope="module")
def on_version_token(kube, installed):
    token = kube.token_for(ORCHESTRATOR, ON_VERSION)
    probe = {**on_version_workflow(installed, "release-core-team"),
             "spec": {"templates": [], "entrypoint": "x"}}
    wait_for_refusal(lambda: create(kube, token, PROJECT_NS, probe), "sensor-workflows")
    return token


@pytest.mark.parametrize("trigger", ["alpha-core-team", "rerun-alpha-core-team",
                                     "rerun-nightly-core-team", "release-core-team"])
def test_the_real_on_version_workflows_are_accepted(kube, installed, on_version_token, trigger):
    status, body = create(kube, on_version_token, PROJECT_NS, on_version_workflow(installed, trigger))
    assert status == 201, body


def _set(name: str, value: str):
    def mutate(workflow):
        for parameter in workflow["spec"]["arguments"]["parameters"]:
            if parameter["name"] == name:
                parameter["value"] = value
    return mutate


ON_VERSION_ATTACKS = {
    "a stream no trigger declares": (_set("stream", "beta"), "declared values"),
    "a trigger value no Sensor may send": (_set("trigger", "schedule"), "declared values"),
    "a stream with govaluate syntax": (_set("stream", "alpha || true"), "declared values"),
    "generate-version from the wrong Sensor": (
        lambda w: w["spec"]["workflowTemplateRef"].update(name="generate-version"),
        "may only create Workflows from "),
    "run-stream as the recorder": (override(serviceAccountName="argo-delivery-stream-recorder"),
                                   "may set only"),
}


@pytest.mark.parametrize("attack", sorted(ON_VERSION_ATTACKS))
def test_on_version_token_cannot_run_anything_else(kube, installed, on_version_token, attack):
    mutate, message = ON_VERSION_ATTACKS[attack]
    workflow = on_version_workflow(installed, "alpha-core-team")
    mutate(workflow)
    status, body = create(kube, on_version_token, PROJECT_NS, workflow)
    assert status == 422, f"{attack}: accepted ({status})"
    assert "argo-delivery-sensor-workflows" in body and message in body, body


DEVELOPER = ("sec-dev", ["acme:core-developers"])
PRODUCT_OWNER = ("sec-po", ["acme:product-owners"])
PARTNER_OWNER = ("sec-partner-po", ["acme:partner-managers"])
RECORDER = "argo-delivery-stream-recorder"


@pytest.fixture(scope="module")
def candidate(kube, installed, writer_token):
    """A Version of core-team the stream recorder made a candidate (status written with its
    token, the only one allowed to)."""
    name = f"{PROJECT}-{HASH[7:23]}"
    kube.request("POST", VERSIONS.format(ns=PROJECT_NS), version(name), token=writer_token,
                 ok=(409,))
    path = VERSIONS.format(ns=PROJECT_NS) + f"/{name}"
    current = kube.request("GET", path)
    passed = {"phase": "Succeeded", "reason": "AllSuitesPassed", "workflow": "w"}
    current["status"] = {"stream": "candidate", "streams": {"alpha": passed, "nightly": passed}}
    kube.request("PUT", path + "/status", current, token=kube.token_for(PROJECT_NS, RECORDER))
    return path


def approve(kube, path: str, user, approved_by: str | None = None, dry_run: bool = True):
    body = {"spec": {"approval": {"approvedBy": approved_by or user[0],
                                  "approvedAt": "2026-11-29T12:00:00Z"}}}
    try:
        return 200, kube.request("PATCH", path, body, as_user=user,
                                 content_type="application/merge-patch+json",
                                 query={"dryRun": "All"} if dry_run else None)
    except ApiError as exc:
        return exc.status, exc.message


def test_approvals_are_decided_by_the_api_server(kube, installed, candidate):
    deadline = time.monotonic() + POLICY_TIMEOUT
    while (result := approve(kube, candidate, DEVELOPER))[0] == 200:
        assert time.monotonic() < deadline, "the approval policy never took effect"
        time.sleep(0.5)
    # a developer may patch the Version (re-run requests) but not approve it
    assert result[0] == 422 and "sec-dev may not approve Versions in sec-core" in result[1], result
    # a product owner of another project: RBAC refuses before admission
    status, body = approve(kube, candidate, PARTNER_OWNER)
    assert status == 403 and "cannot patch resource" in body, body
    # in someone else's name
    status, body = approve(kube, candidate, PRODUCT_OWNER, approved_by="sec-boss")
    assert status == 422 and "must be your own user name, sec-po" in body, body
    # the stream recorder writes the status, never an approval
    recorder = kube.token_for(PROJECT_NS, RECORDER)
    with pytest.raises(ApiError) as refused:
        kube.request("PATCH", candidate, {"spec": {"approval": {
            "approvedBy": f"system:serviceaccount:{PROJECT_NS}:{RECORDER}",
            "approvedAt": "2026-11-29T12:00:00Z"}}}, token=recorder,
            content_type="application/merge-patch+json")
    assert refused.value.status == 403
    # the real thing, once; then it is final, for its author too
    status, body = approve(kube, candidate, PRODUCT_OWNER, dry_run=False)
    assert status == 200, body
    status, body = approve(kube, candidate, PRODUCT_OWNER, approved_by="sec-po", dry_run=False)
    assert status == 200   # the same approval again changes nothing
    with pytest.raises(ApiError) as changed:
        kube.request("PATCH", candidate, {"spec": {"approval": {"comment": "edited"}}},
                     as_user=PRODUCT_OWNER, content_type="application/merge-patch+json")
    assert "never changed or withdrawn" in changed.value.message
    with pytest.raises(ApiError) as withdrawn:
        kube.request("PATCH", candidate, {"spec": {"approval": None}}, as_user=PRODUCT_OWNER,
                     content_type="application/merge-patch+json")
    assert "never changed or withdrawn" in withdrawn.value.message


def test_only_a_candidate_can_be_approved(kube, installed, writer_token):
    name = f"{PROJECT}-{'cd' * 8}"
    body = version(name)
    body["spec"]["hash"] = "sha256:" + "cd" * 32
    kube.request("POST", VERSIONS.format(ns=PROJECT_NS), body, token=writer_token, ok=(409,))
    path = VERSIONS.format(ns=PROJECT_NS) + f"/{name}"
    deadline = time.monotonic() + POLICY_TIMEOUT
    while (result := approve(kube, path, PRODUCT_OWNER))[0] == 200:
        assert time.monotonic() < deadline, "the approval policy never took effect"
        time.sleep(0.5)
    assert "only a candidate Version can be approved" in result[1], result
    assert "not yet tested" in result[1], result


# --- F5: Environment requests -----------------------------------------------------------------

ENVIRONMENTS = "/apis/argo-delivery.io/v1alpha1/namespaces/{ns}/environments"


def environment(owner: str, *, ttl: str | None = None, expires: str | None = None,
                demo: bool = False, project: str = PROJECT) -> dict:
    annotations = {}
    if ttl:
        annotations["argo-delivery.io/ttl"] = ttl
    if expires:
        annotations["argo-delivery.io/expires"] = expires
    return {"apiVersion": "argo-delivery.io/v1alpha1", "kind": "Environment",
            "metadata": {"generateName": "env-", "annotations": annotations},
            "spec": {"project": project, "version": GOOD_NAME, "owner": owner, "demo": demo,
                     "infrastructure": {"variables": {"size": "small"}}}}


def request_environment(kube, user, body: dict):
    """POST as `user` (a dry run: admission runs, nothing is stored); (status, message)."""
    try:
        return 201, kube.request("POST", ENVIRONMENTS.format(ns=PROJECT_NS), body, as_user=user,
                                 query={"dryRun": "All"})
    except ApiError as exc:
        return exc.status, exc.message


def test_environment_requests_are_bounded_at_admission(kube, installed):
    deadline = time.monotonic() + POLICY_TIMEOUT
    forged = environment("someone-else", ttl="8h")
    while (result := request_environment(kube, DEVELOPER, forged))[0] != 422:
        assert time.monotonic() < deadline, f"the environment policy never took effect: {result}"
        time.sleep(0.5)
    assert "spec.owner must be you, sec-dev" in result[1], result
    # the developer's own request within the project's maxTTL (72h) is admitted
    status, body = request_environment(kube, DEVELOPER, environment("sec-dev", ttl="72h"))
    assert status == 201, body
    refused = {
        "a TTL over maxTTL": (environment("sec-dev", ttl="73h"),
                              "a TTL of 73h is more than project core-team allows (maxTTL 72h)"),
        "a TTL that is no duration": (environment("sec-dev", ttl="forever"), "is a duration"),
        "a TTL in days (Go has none)": (environment("sec-dev", ttl="2d"), "is a duration"),
        "an expiry that is no instant": (environment("sec-dev", expires="tomorrow"), "RFC 3339"),
        "another project": (environment("sec-dev", project=OTHER), "spec.project must be core-team"),
        "a demo by a developer": (environment("sec-dev", demo=True),
                                  "sec-dev may not ask for a demo environment in sec-core"),
    }
    for case, (body, message) in refused.items():
        status, text = request_environment(kube, DEVELOPER, body)
        assert status == 422 and message in text, (case, status, text)
    # a product owner may ask for a demo one
    status, body = request_environment(kube, PRODUCT_OWNER, environment("sec-po", demo=True))
    assert status == 201, body
    # the partner's developers may not ask for one here at all (RBAC)
    status, text = request_environment(kube, ("sec-partner-dev", ["northwind:engineers"]),
                                       environment("sec-partner-dev"))
    assert status == 403, text


def test_an_environments_owner_never_changes(kube, installed):
    body = environment("sec-dev", ttl="8h")
    deadline = time.monotonic() + POLICY_TIMEOUT
    while request_environment(kube, DEVELOPER, environment("x"))[0] != 422:
        assert time.monotonic() < deadline, "the environment policy never took effect"
        time.sleep(0.5)
    created = kube.request("POST", ENVIRONMENTS.format(ns=PROJECT_NS), body, as_user=DEVELOPER)
    path = ENVIRONMENTS.format(ns=PROJECT_NS) + "/" + created["metadata"]["name"]
    # nobody, not even an admin, changes the owner (the CRD's rule, before admission), nor
    # extends the TTL beyond the project's maxTTL
    with pytest.raises(ApiError) as changed:
        kube.request("PATCH", path, {"spec": {"owner": "sec-other"}},
                     content_type="application/merge-patch+json")
    assert "project, owner, demo and infrastructure of an Environment are immutable" \
        in changed.value.message
    kube.request("PATCH", path, {"metadata": {"annotations": {"argo-delivery.io/ttl": "24h"}}},
                 content_type="application/merge-patch+json")
    with pytest.raises(ApiError, match="more than project core-team allows"):
        kube.request("PATCH", path, {"metadata": {"annotations": {"argo-delivery.io/ttl": "100h"}}},
                     content_type="application/merge-patch+json")
