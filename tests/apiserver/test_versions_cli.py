"""`argo-delivery versions` against the real API server, as the people who use it: each person
has a kubeconfig of their own (a static token; tests/kube_server.py PEOPLE), the project's
member groups hold the developer and product-owner Roles, and the API server's answers (RBAC,
an admission policy) reach the person as sentences."""

from __future__ import annotations

import json
import threading
import time

import pytest
import yaml
from click.testing import CliRunner

from argo_delivery import promotion
from argo_delivery.cli import main
from argo_delivery.naming import GROUP, LABEL_PROJECT
from argo_delivery.tenancy import DEVELOPER, PRODUCT_OWNER
from argo_delivery.versionhash import version_hash, version_name
from tests.kube_server import ApiError

pytestmark = pytest.mark.apiserver

PROJECT = "cliv-team"          # a project of this module only: its namespace is the one labelled so
NS = "cliv-team"               # developers: get/list/watch/patch; product owners: + approve
READ_ONLY_NS = "cliv-readonly"  # developers hold a read-only Role here
VERSIONS = f"/apis/{GROUP}/v1alpha1/namespaces/{{ns}}/versions"
POLICY = "argo-delivery-version-approval"
POLICY_MESSAGE = ("bob may not approve Versions in cliv-team: approving needs the verb approve on "
                  "versions, which the product owners of the project hold (Role "
                  "argo-delivery-product-owner)")
NOW = "2026-03-01T10:00:00Z"


def make_version(commit_digit: str, namespace: str = NS) -> dict:
    components = [{"name": "api", "repo": "https://github.com/acme-platform/api", "ref": "main",
                   "commit": commit_digit * 40}]
    digest = version_hash(PROJECT, components)
    return {"apiVersion": f"{GROUP}/v1alpha1", "kind": "Version",
            "metadata": {"name": version_name(PROJECT, digest), "namespace": namespace},
            "spec": {"project": PROJECT, "hash": digest, "components": components,
                     "trigger": {"type": "push", "repo": "https://github.com/acme-platform/api",
                                 "branch": "main", "commit": commit_digit * 40, "sender": "alice"}}}


def run_of(workflow: str, *suites: tuple[str, str, int]) -> dict:
    results = [{"suite": name, "phase": suite_phase, "exitCode": code,
                "reason": "Completed" if suite_phase == "Succeeded" else "ExitCode",
                "message": "passed" if suite_phase == "Succeeded" else f"the suite exited with code {code}",
                "startedAt": "2026-03-01T09:00:00Z", "finishedAt": "2026-03-01T09:02:05Z"}
               for name, suite_phase, code in suites]
    phase, reason, message = promotion.stream_outcome(results)
    return {"phase": phase, "reason": reason, "message": message, "workflow": workflow,
            "startedAt": "2026-03-01T08:59:00Z", "finishedAt": "2026-03-01T09:03:00Z",
            "results": results}


ALPHA_OK = run_of("alpha-1", ("unit", "Succeeded", 0))
NIGHTLY_OK = run_of("nightly-1", ("e2e", "Succeeded", 0))
NIGHTLY_FAILED = run_of("nightly-2", ("e2e", "Failed", 3), ("soak", "Succeeded", 0))


def write_status(kube, version: dict, streams: dict, **extra) -> None:
    """The status as the stream steps write it: through the status subresource."""
    status = promotion.settled({"streams": streams, **extra}, None, NOW)
    meta = version["metadata"]
    kube.request("PATCH", VERSIONS.format(ns=meta["namespace"]) + f"/{meta['name']}/status",
                 {"status": status}, content_type="application/merge-patch+json")


# name -> (commit digit, streams, extra status)
FIXTURES = {
    "new": ("1", None, {}),
    "candidate": ("2", {"alpha": ALPHA_OK, "nightly": NIGHTLY_OK}, {}),
    "released": ("3", {"alpha": ALPHA_OK, "nightly": NIGHTLY_OK}, {"releasedAt": "2026-03-01T09:30:00Z"}),
    "failed": ("4", {"alpha": ALPHA_OK, "nightly": NIGHTLY_FAILED}, {}),
    "to-promote": ("5", {"alpha": ALPHA_OK}, {}),
    "stays-nightly": ("6", {"alpha": ALPHA_OK}, {}),
    "for-admission": ("7", {"alpha": ALPHA_OK, "nightly": NIGHTLY_OK}, {}),
    "to-rerun": ("8", {"alpha": ALPHA_OK}, {}),
}


def role(name: str, namespace: str, *verbs: str) -> dict:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": name, "namespace": namespace},
            "rules": [{"apiGroups": [GROUP], "resources": ["versions"], "verbs": list(verbs)}]}


def binding(role_name: str, namespace: str, group: str) -> dict:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": role_name, "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role_name},
            "subjects": [{"kind": "Group", "name": group, "apiGroup": "rbac.authorization.k8s.io"}]}


@pytest.fixture(scope="module")
def project(kube):
    """The project's namespace with its Versions (created before the namespace is labelled, as
    only the writer's account may create Versions in a labelled one), and the two Roles."""
    kube.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
                for ns in (NS, READ_ONLY_NS)])
    names = {}
    for key, (digit, streams, extra) in FIXTURES.items():
        body = make_version(digit)
        names[key] = kube.create(body)["metadata"]["name"]
        if streams:
            write_status(kube, body, streams, **extra)
    readonly = make_version("9", READ_ONLY_NS)
    kube.create(readonly)
    write_status(kube, readonly, {"alpha": ALPHA_OK, "nightly": NIGHTLY_OK})
    names["readonly"] = readonly["metadata"]["name"]
    kube.apply([
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": NS, "labels": {LABEL_PROJECT: PROJECT}}},
        # developers may patch Versions (rerun); product owners may patch and approve
        role(DEVELOPER.name, NS, "get", "list", "watch", "patch"),
        binding(DEVELOPER.name, NS, "acme:core-developers"),
        role(PRODUCT_OWNER.name, NS, "get", "list", "watch", "patch", "approve"),
        binding(PRODUCT_OWNER.name, NS, "acme:product-owners"),
        # a developer Role that reads Versions, nothing more
        role(DEVELOPER.name, READ_ONLY_NS, "get", "list", "watch"),
        binding(DEVELOPER.name, READ_ONLY_NS, "acme:core-developers"),
    ], field_manager="cliv-test")
    return names


@pytest.fixture(scope="module")
def kubeconfigs(kube, tmp_path_factory):
    """person -> kubeconfig file (token auth), its context's namespace the project's."""
    folder = tmp_path_factory.mktemp("kubeconfigs")
    configs = {user: kube.write_kubeconfig(folder / user, user, namespace=NS)
               for user in ("ada", "bob", "eve")}
    configs["admin"] = kube.write_kubeconfig(folder / "admin", "admin", kube.admin_token)
    return configs


def cli(kubeconfigs, user: str, *args: str):
    return CliRunner().invoke(main, ["versions", *args, "--kubeconfig", str(kubeconfigs[user])])


def live(kube, name: str, namespace: str = NS) -> dict:
    return kube.request("GET", VERSIONS.format(ns=namespace) + f"/{name}")


def test_list_as_a_developer_in_the_contexts_namespace(kube, project, kubeconfigs):
    result = cli(kubeconfigs, "bob", "list", "--project", PROJECT)
    assert result.exit_code == 0, result.output
    # bob may not list namespaces: the context's namespace, and the note says why
    assert (f"namespace: {NS} (the kubeconfig context's namespace: you may not list namespaces "
            f"to find the one labelled {LABEL_PROJECT}={PROJECT})") in result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:] if line.strip()}
    assert set(rows) == {project[k] for k in FIXTURES}
    assert rows[project["new"]][1:4] == [PROJECT, "alpha", "-"]
    assert rows[project["candidate"]][2] == "candidate"
    assert rows[project["released"]][2] == "released"
    assert rows[project["failed"]][2] == "failed"

    as_json = json.loads(cli(kubeconfigs, "bob", "list", "--stream", "nightly", "-o", "json").stdout)
    assert {r["name"] for r in as_json} == {project["to-promote"], project["stays-nightly"],
                                           project["to-rerun"]}
    assert all(r["stream"] == "nightly" and r["project"] == PROJECT for r in as_json)


def test_list_as_admin_finds_the_projects_namespace_by_its_label(kube, project, kubeconfigs):
    result = cli(kubeconfigs, "admin", "list", "--project", PROJECT, "-o", "yaml")
    assert result.exit_code == 0, result.output
    assert f"namespace: {NS} (labelled {LABEL_PROJECT}={PROJECT})" in result.stderr
    assert {r["namespace"] for r in yaml.safe_load(result.stdout)} == {NS}
    everywhere = cli(kubeconfigs, "admin", "list", "-A", "--project", PROJECT, "-o", "json")
    assert {r["namespace"] for r in json.loads(everywhere.stdout)} == {NS, READ_ONLY_NS}


def test_someone_outside_the_project_is_told_which_roles_read_versions(kube, project, kubeconfigs):
    result = cli(kubeconfigs, "eve", "list", "-n", NS)
    assert result.exit_code == 1
    assert (f"error: eve may not read Versions in namespace {NS}: that needs the Role "
            f"{DEVELOPER.name} or {PRODUCT_OWNER.name} in namespace {NS}") in result.stderr
    assert 'User "eve" cannot list resource "versions"' in result.stderr


def test_show(kube, project, kubeconfigs):
    result = cli(kubeconfigs, "bob", "show", project["failed"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"sha256:{version_hash(PROJECT, make_version('4')['spec']['components'])[7:]}" in out
    assert "Stream nightly: Failed (SuitesFailed): 1 of 2 suites failed: e2e" in out
    e2e = next(line.split() for line in out.splitlines() if line.strip().startswith("e2e"))
    assert e2e[:5] == ["e2e", "Failed", "ExitCode", "3", "2m5s"]
    assert "push to main of https://github.com/acme-platform/api" in out and "by alice" in out
    document = json.loads(cli(kubeconfigs, "bob", "show", project["failed"], "-o", "json").stdout)
    assert document["streams"]["nightly"]["results"][0]["duration"] == "2m5s"
    assert {c["type"]: c["status"] for c in document["conditions"]}["NightlyPassed"] == "False"


def test_a_product_owner_approves_as_the_user_the_server_knows(kube, project, kubeconfigs):
    name = project["candidate"]
    result = cli(kubeconfigs, "ada", "approve", name, "--comment", "QA signed off")
    assert result.exit_code == 0, result.output
    approval = live(kube, name)["spec"]["approval"]
    assert approval["approvedBy"] == "ada" and approval["comment"] == "QA signed off"
    assert approval["approvedAt"].endswith("Z") and len(approval["approvedAt"]) == len(NOW)
    assert f"Version {NS}/{name} approved by ada at {approval['approvedAt']}" in result.stdout
    again = cli(kubeconfigs, "ada", "approve", name)
    assert again.exit_code == 1
    assert f"is already approved by ada at {approval['approvedAt']}" in again.stderr


def test_a_developer_without_patch_is_told_to_be_a_product_owner(kube, project, kubeconfigs):
    """RBAC's own 403: bob holds only the read-only developer Role in this namespace."""
    name = project["readonly"]
    result = cli(kubeconfigs, "bob", "approve", name, "-n", READ_ONLY_NS)
    assert result.exit_code == 1, result.output
    assert (f"error: bob may not approve Version {READ_ONLY_NS}/{name}: that needs the Role "
            f"argo-delivery-product-owner in namespace {READ_ONLY_NS} (product owners hold it). "
            f'The API server said: versions.argo-delivery.io "{name}" is forbidden: User "bob" '
            'cannot patch resource "versions"') in result.stderr
    assert "approval" not in live(kube, name, READ_ONLY_NS)["spec"]
    rerun = cli(kubeconfigs, "bob", "rerun", name, "-n", READ_ONLY_NS, "--stream", "alpha")
    assert rerun.exit_code == 1, rerun.output
    assert (f"error: bob may not run a stream of Version {READ_ONLY_NS}/{name}: that needs the Role "
            f"argo-delivery-developer in namespace {READ_ONLY_NS} (developers hold it).") in rerun.stderr


@pytest.fixture
def approve_verb_policy(kube, project, kubeconfigs):
    """The bundle's own approval policy (argo-delivery-version-approval: the verb `approve`, a
    candidate only, in the approver's own name); removed afterwards."""
    from argo_delivery.config import load_default
    from argo_delivery.templates.release import approval_policy

    existed = kube.request("GET", "/apis/admissionregistration.k8s.io/v1/"
                           f"validatingadmissionpolicies/{POLICY}", ok=(404,)).get("kind")
    # the manager a bundle apply uses: the policy may be there already, from the bundle
    kube.apply(approval_policy(load_default()), field_manager="argo-delivery")
    # a policy acts once the API server's informers have it: probe with a dry run as bob
    path = VERSIONS.format(ns=NS) + f"/{project['for-admission']}"
    probe = {"spec": {"approval": {"approvedBy": "bob", "approvedAt": NOW}}}
    deadline = time.monotonic() + 60
    while True:
        try:
            kube.request("PATCH", path, probe, token=kube.user_token("bob"), query={"dryRun": "All"},
                         content_type="application/merge-patch+json")
        except ApiError as exc:
            if POLICY in exc.message:
                break
            raise
        assert time.monotonic() < deadline, "the approval policy never took effect"
        time.sleep(0.5)
    yield
    if not existed:   # leave a policy a bundle applied before this test alone
        for plural in ("validatingadmissionpolicybindings", "validatingadmissionpolicies"):
            kube.request("DELETE", f"/apis/admissionregistration.k8s.io/v1/{plural}/{POLICY}",
                         ok=(404,))


def test_an_admission_refusal_is_shown_verbatim(kube, project, kubeconfigs, approve_verb_policy):
    """bob may patch Versions here (to rerun them), but the policy wants the verb `approve`."""
    name = project["for-admission"]
    result = cli(kubeconfigs, "bob", "approve", name)
    assert result.exit_code == 1, result.output
    assert f"error: the API server refused the approval of Version {NS}/{name} (HTTP 422): " \
        in result.stderr
    assert f"denied request: {POLICY_MESSAGE}" in result.stderr
    assert "approval" not in live(kube, name)["spec"]
    # the product owner holds the verb: the same policy lets her approve
    assert cli(kubeconfigs, "ada", "approve", name).exit_code == 0
    assert live(kube, name)["spec"]["approval"]["approvedBy"] == "ada"


def test_rerun_sets_the_annotation(kube, project, kubeconfigs):
    name = project["to-rerun"]
    result = cli(kubeconfigs, "bob", "rerun", name, "--stream", "alpha")
    assert result.exit_code == 0, result.output
    key = promotion.RERUN_ANNOTATION.format(stream="alpha")
    value = live(kube, name)["metadata"]["annotations"][key]
    assert f"{key}={value}" in result.stdout
    second = cli(kubeconfigs, "bob", "rerun", name, "--stream", "alpha")
    assert second.exit_code == 0
    assert live(kube, name)["metadata"]["annotations"][key] != value   # a fresh value each time
    released = cli(kubeconfigs, "bob", "rerun", project["released"], "--stream", "nightly")
    assert released.exit_code == 1 and "was released at 2026-03-01T09:30:00Z" in released.stderr
    assert key.replace("alpha", "nightly") not in (live(kube, project["released"])["metadata"]
                                                   .get("annotations") or {})


def test_wait_returns_when_the_version_becomes_a_candidate(kube, project, kubeconfigs):
    name = project["to-promote"]
    body = {"metadata": {"name": name, "namespace": NS}}

    def promote():
        time.sleep(2)
        write_status(kube, body, {"alpha": ALPHA_OK, "nightly": NIGHTLY_OK})

    thread = threading.Thread(target=promote)
    thread.start()
    started = time.monotonic()
    try:
        result = cli(kubeconfigs, "bob", "wait", name, "--for", "stream=candidate", "--timeout", "60s")
    finally:
        thread.join()
    assert result.exit_code == 0, result.output
    assert f"Version {NS}/{name} is at stream candidate" in result.stdout
    assert 1.5 < time.monotonic() - started < 30
    assert "stream nightly" in result.stderr and "stream candidate" in result.stderr
    assert cli(kubeconfigs, "bob", "wait", name, "--for", "condition=NightlyPassed").exit_code == 0


def test_wait_times_out_with_the_last_state(kube, project, kubeconfigs):
    name = project["stays-nightly"]
    started = time.monotonic()
    result = cli(kubeconfigs, "bob", "wait", name, "--for", "stream=candidate", "--timeout", "3s")
    assert result.exit_code == 1, result.output
    assert 2.5 < time.monotonic() - started < 20
    assert (f"error: timed out after 3s waiting for stream=candidate on Version {NS}/{name}; last "
            "observed: stream nightly; AlphaPassed=True (AllSuitesPassed), NightlyPassed=Unknown "
            "(NotRun)") in result.stderr


def test_wait_ends_at_once_when_the_version_failed(kube, project, kubeconfigs):
    started = time.monotonic()
    result = cli(kubeconfigs, "bob", "wait", project["failed"], "--for", "condition=Approved")
    assert result.exit_code == 1, result.output
    assert time.monotonic() - started < 10
    assert "failed while waiting for condition=Approved=True" in result.stderr
    assert "nightly/e2e: Failed (ExitCode, exit code 3): the suite exited with code 3" in result.stderr
