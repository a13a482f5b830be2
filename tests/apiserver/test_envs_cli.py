"""`argo-delivery envs` against the real API server, as the people who use it: each person has a
kubeconfig of their own (a static token; tests/kube_server.py PEOPLE), the project's member
groups hold the bundle's developer and product-owner Roles, the bundle's two Environment
admission policies are installed with the namespace's Project as their parameter, and the API
server's answers reach the person as sentences.

Nothing reacts to an Environment here (no vend, no destroy): where a test needs a phase, an
outputs Secret or a finalizer, it writes them as admin, as the vend would (the status through
the status subresource, the reader Role from `envmodel.reader_manifests`)."""

from __future__ import annotations

import json
import stat
import threading
import time

import pytest
import yaml
from click.testing import CliRunner

from argo_delivery import envmodel
from argo_delivery.cli import main
from argo_delivery.environments_cli import EnvironmentsClient, EnvironmentsError, force
from argo_delivery.expiry import parse_go_duration, parse_time
from argo_delivery.naming import GROUP_VERSION, LABEL_PROJECT
from argo_delivery.tenancy import DEVELOPER, PRODUCT_OWNER
from tests.kube_server import ApiError

pytestmark = pytest.mark.apiserver

PROJECT = NS = "clie-team"     # a project of this module only, in the namespace labelled so
VERSION = "clie-team-0123456789abcdef"
ENVS = f"/apis/{GROUP_VERSION}/namespaces/{NS}/environments"
POLICIES = ("argo-delivery-environment-requests", "argo-delivery-environment-lifecycle")
KEEP = "example.com/keep"
# bob and nia are both developers of this project (their groups are bound here); ada is its
# product owner; eve is in no group of it
DEVELOPER_GROUPS = ("acme:core-developers", "northwind:engineers")
PRODUCT_OWNER_GROUPS = ("acme:product-owners",)


def group(name: str) -> dict:
    return {"kind": "Group", "name": name, "apiGroup": "rbac.authorization.k8s.io"}


@pytest.fixture(scope="module")
def project(kube):
    labels = {LABEL_PROJECT: PROJECT}
    kube.apply([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": labels}},
        {"apiVersion": GROUP_VERSION, "kind": "Project",
         "metadata": {"name": PROJECT, "namespace": NS, "labels": labels},
         "spec": {"type": "internal",
                  "components": [{"name": "api", "repo": "https://github.com/acme-platform/api",
                                  "branch": "main"}],
                  "environments": {"terraformModule": "git::https://example.com/env.git",
                                   "defaultTTL": "8h", "maxTTL": "72h"}}},
        DEVELOPER.manifest(NS, labels),
        DEVELOPER.binding(DEVELOPER.name, NS, [group(g) for g in DEVELOPER_GROUPS], labels),
        PRODUCT_OWNER.manifest(NS, labels),
        PRODUCT_OWNER.binding(PRODUCT_OWNER.name, NS, [group(g) for g in PRODUCT_OWNER_GROUPS],
                              labels),
    ], field_manager="clie-test")
    return PROJECT


def probe(kube, send) -> str:
    """Send a request a policy refuses until it does (a policy acts once the API server's
    informers have it); its message."""
    deadline = time.monotonic() + 60
    while True:
        try:
            send()
        except ApiError as exc:
            if exc.status == 422:
                return exc.message
            raise
        assert time.monotonic() < deadline, "the environment policies never took effect"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def policies(kube, project):
    """The bundle's own Environment policies (templates/environments.py); removed afterwards
    unless a bundle had installed them before."""
    from argo_delivery.config import load_default
    from argo_delivery.templates.environments import lifecycle_policy, request_policy

    with kube.policies_kept_as_found(POLICIES):
        config = load_default()
        kube.apply([*request_policy(config), *lifecycle_policy(config)], field_manager="argo-delivery")
        forged = environment("not-bob")
        assert POLICIES[0] in probe(kube, lambda: kube.request(
            "POST", ENVS, forged, as_user=("bob", DEVELOPER_GROUPS[:1]), query={"dryRun": "All"}))
        nias = kube.request("POST", ENVS, environment("nia", name="clie-probe"),
                            as_user=("nia", DEVELOPER_GROUPS[1:]))
        assert POLICIES[1] in probe(kube, lambda: kube.request(
            "DELETE", f"{ENVS}/{nias['metadata']['name']}", as_user=("bob", DEVELOPER_GROUPS[:1]),
            query={"dryRun": "All"}))
        yield


@pytest.fixture(scope="module")
def kubeconfigs(kube, tmp_path_factory):
    """person -> kubeconfig file (token auth), its context's namespace the project's."""
    folder = tmp_path_factory.mktemp("kubeconfigs")
    configs = {user: kube.write_kubeconfig(folder / user, user, namespace=NS)
               for user in ("ada", "bob", "nia", "eve")}
    configs["admin"] = kube.write_kubeconfig(folder / "admin", "admin", kube.admin_token,
                                             namespace=NS)
    return configs


def environment(owner: str, name: str | None = None, **spec) -> dict:
    meta = {"name": name} if name else {"generateName": f"{PROJECT}-"}
    return {"apiVersion": GROUP_VERSION, "kind": "Environment", "metadata": meta,
            "spec": {"project": PROJECT, "version": VERSION, "owner": owner, **spec}}


def cli(kubeconfigs, user: str, *args: str, input: str | None = None):
    return CliRunner().invoke(main, ["envs", *args, "--kubeconfig", str(kubeconfigs[user])],
                              input=input)


def live(kube, name: str) -> dict:
    return kube.request("GET", f"{ENVS}/{name}")


def gone(kube, name: str) -> bool:
    return kube.request("GET", f"{ENVS}/{name}", ok=(404,)).get("kind") != "Environment"


def write_status(kube, name: str, **status) -> dict:
    """The status as the vend or destroy writes it: through the status subresource."""
    return kube.request("PATCH", f"{ENVS}/{name}/status", {"status": status},
                        content_type="application/merge-patch+json")


def failed_condition(message: str, reason: str = "DestroyFailed") -> dict:
    return {"type": "Failed", "status": "True", "reason": reason, "message": message,
            "lastTransitionTime": envmodel.now_text()}


def created_by(kubeconfigs, user: str, *args: str) -> str:
    result = cli(kubeconfigs, user, "create", "--project", PROJECT, "--version", VERSION, *args)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def add_finalizers(kube, name: str, *finalizers: str) -> None:
    kube.request("PATCH", f"{ENVS}/{name}", {"metadata": {"finalizers": list(finalizers)}},
                 content_type="application/merge-patch+json")


# --- create -------------------------------------------------------------------------------------

def test_create_as_a_developer_is_owned_by_the_developer(kube, policies, kubeconfigs):
    result = cli(kubeconfigs, "bob", "create", "--project", PROJECT, "--version", VERSION,
                 "--ttl", "8h", "--var", "size=small", "--var", "region=eu-west-1")
    assert result.exit_code == 0, result.output
    name = result.stdout.strip()
    assert name.startswith(f"{PROJECT}-") and "\n" not in name
    # bob may not list namespaces: the context's namespace, and the note says why
    assert f"namespace: {NS} (the kubeconfig context's namespace" in result.stderr
    assert f"created Environment {NS}/{name} for bob, ttl 8h" in result.stderr
    stored = live(kube, name)
    assert stored["spec"]["owner"] == "bob"          # the server's name for him, not a flag
    assert stored["spec"]["infrastructure"]["variables"] == {"size": "small",
                                                             "region": "eu-west-1"}
    assert stored["metadata"]["annotations"] == {"argo-delivery.io/ttl": "8h"}
    named = created_by(kubeconfigs, "nia", "--name", "clie-nia-named")
    assert named == "clie-nia-named" and live(kube, named)["spec"]["owner"] == "nia"


def test_a_ttl_over_the_projects_max_is_refused_by_admission(kube, policies, kubeconfigs):
    result = cli(kubeconfigs, "bob", "create", "--project", PROJECT, "--version", VERSION,
                 "--ttl", "73h", "--name", "clie-too-long")
    assert result.exit_code == 1, result.output
    assert (f"error: the API server refused the creation of Environment {NS}/clie-too-long "
            "(HTTP 422): ") in result.stderr
    assert f"denied request: a TTL of 73h is more than project {PROJECT} allows (maxTTL 72h)" \
        in result.stderr
    assert gone(kube, "clie-too-long")
    # what is not a Go duration, or not NAME=VALUE, never reaches the server
    days = cli(kubeconfigs, "bob", "create", "--project", PROJECT, "--version", VERSION,
               "--ttl", "2d")
    assert days.exit_code == 2 and "--ttl '2d': expected a Go duration" in days.stderr
    bad = cli(kubeconfigs, "bob", "create", "--project", PROJECT, "--version", VERSION,
              "--var", "size")
    assert bad.exit_code == 2 and "--var 'size': expected NAME=VALUE" in bad.stderr
    outsider = cli(kubeconfigs, "eve", "create", "--project", PROJECT, "--version", VERSION)
    assert outsider.exit_code == 1
    assert (f"error: eve may not create an Environment of project {PROJECT} in namespace {NS}: "
            f"that needs the Role {DEVELOPER.name} or {PRODUCT_OWNER.name}") in outsider.stderr


def test_create_waits_until_ready_or_failed(kube, policies, kubeconfigs):
    def vend(name: str, *phases: tuple[str, dict]) -> threading.Thread:
        def run():
            deadline = time.monotonic() + 30
            while gone(kube, name) and time.monotonic() < deadline:
                time.sleep(0.2)
            for phase, extra in phases:
                time.sleep(1)
                write_status(kube, name, phase=phase, **extra)
        thread = threading.Thread(target=run)
        thread.start()
        return thread

    thread = vend("clie-wait-ready", ("Provisioning", {"message": "tofu apply"}),
                  ("Ready", {"message": "", "outputs": {"endpoint": "https://10.0.0.1"}}))
    try:
        result = cli(kubeconfigs, "bob", "create", "--project", PROJECT, "--version", VERSION,
                     "--name", "clie-wait-ready", "--wait", "--timeout", "60s")
    finally:
        thread.join()
    assert result.exit_code == 0, result.output
    assert result.stdout == "clie-wait-ready\n"
    assert "clie-wait-ready: phase Provisioning: tofu apply" in result.stderr
    assert (f"Environment {NS}/clie-wait-ready is Ready (endpoint=https://10.0.0.1)"
            in result.stderr)

    thread = vend("clie-wait-failed", ("Failed", {"message": "tofu apply failed", "conditions": [
        failed_condition("quota exceeded for instances", reason="VendFailed")]}))
    try:
        failed = cli(kubeconfigs, "bob", "create", "--project", PROJECT, "--version", VERSION,
                     "--name", "clie-wait-failed", "--wait", "--timeout", "60s")
    finally:
        thread.join()
    assert failed.exit_code == 1, failed.output
    assert (f"error: Environment {NS}/clie-wait-failed failed: VendFailed: quota exceeded for "
            "instances") in failed.stderr

    started = time.monotonic()
    late = cli(kubeconfigs, "bob", "create", "--project", PROJECT, "--version", VERSION,
               "--name", "clie-wait-late", "--wait", "--timeout", "3s")
    assert late.exit_code == 1 and 2.5 < time.monotonic() - started < 20
    assert (f"error: timed out after 3s waiting for Environment {NS}/clie-wait-late to be Ready; "
            "last observed: phase - (nothing reported yet)") in late.stderr


# --- list and show ------------------------------------------------------------------------------

def test_list_and_show(kube, policies, kubeconfigs):
    name = created_by(kubeconfigs, "bob", "--ttl", "8h", "--name", "clie-listed")
    write_status(kube, name, phase="Ready", deployedVersion=VERSION, workflow="vend-abcde",
                 outputsSecret=envmodel.outputs_secret(name),
                 outputs={"endpoint": "https://10.0.0.7", "namespace": "app"})
    result = cli(kubeconfigs, "bob", "list", "--project", PROJECT)
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:] if line.strip()}
    assert result.stdout.split()[:7] == ["NAME", "PROJECT", "VERSION", "OWNER", "PHASE", "EXPIRES",
                                         "AGE"]
    assert rows[name][1:5] == [PROJECT, VERSION, "bob", "Ready"]
    assert rows[name][5] == "in" and rows[name][6] in ("7h59m", "8h")
    document = json.loads(cli(kubeconfigs, "nia", "list", "-o", "json").stdout)
    mine = next(r for r in document if r["name"] == name)
    created = parse_time(live(kube, name)["metadata"]["creationTimestamp"])
    assert parse_time(mine["expiresAt"]) == created + parse_go_duration("8h")
    # one without a TTL: the project's defaultTTL (8h), read from the Project
    plain = next(r for r in document if r["name"] == "clie-nia-named")
    assert plain["expires"].startswith("in ") and plain["owner"] == "nia"

    shown = cli(kubeconfigs, "nia", "show", name)
    assert shown.exit_code == 0, shown.output
    out = shown.stdout
    for fact in ("Owner", "bob"), ("Phase", "Ready"), ("Outputs Secret", f"{name}-outputs"), \
            ("Workflow", "vend-abcde"), ("Last error", "none"):
        assert any(line.split()[:len(" ".join(fact).split())] == " ".join(fact).split()
                   for line in out.splitlines()), (fact, out)
    assert f"{VERSION} (deployed)" in out and "endpoint   https://10.0.0.7" in out
    detail = yaml.safe_load(cli(kubeconfigs, "bob", "show", name, "-o", "yaml").stdout)
    assert detail["outputs"] == {"endpoint": "https://10.0.0.7", "namespace": "app"}
    assert detail["expirySource"] == "annotation argo-delivery.io/ttl"
    other = cli(kubeconfigs, "bob", "show", name, "--project", "northwind")
    assert other.exit_code == 1 and f"belongs to project '{PROJECT}', not 'northwind'" in other.stderr
    outsider = cli(kubeconfigs, "eve", "list", "-n", NS)
    assert outsider.exit_code == 1
    assert (f"error: eve may not read Environments in namespace {NS}: that needs the Role "
            f"{DEVELOPER.name} or {PRODUCT_OWNER.name}") in outsider.stderr


# --- kubeconfig ---------------------------------------------------------------------------------

KUBECONFIG_TEXT = "apiVersion: v1\nkind: Config\nclusters: []\n# the vended cluster's\n"


def vend_outputs(kube, name: str) -> None:
    """What the vend writes once Terraform applied: the outputs Secret, the reader Role and
    RoleBinding, the status naming them."""
    env = live(kube, name)
    kube.apply([envmodel.outputs_secret_manifest(env, {
        "kubeconfig": {"value": KUBECONFIG_TEXT, "sensitive": True},
        "endpoint": {"value": "https://10.0.0.9", "sensitive": False}}),
        *envmodel.reader_manifests(env)], field_manager="clie-vend")
    write_status(kube, name, phase="Ready", outputsSecret=envmodel.outputs_secret(name),
                 outputs={"endpoint": "https://10.0.0.9"})


def test_only_the_owner_reads_the_kubeconfig(kube, policies, kubeconfigs, tmp_path):
    name = created_by(kubeconfigs, "bob", "--name", "clie-kube")
    early = cli(kubeconfigs, "bob", "kubeconfig", name, "-f", str(tmp_path / "early"))
    assert early.exit_code == 1, early.output
    assert (f"error: bob may not read Secret {NS}/{name}-outputs (yet): the owner reads the "
            f"outputs of the Environment through the Role {name}-outputs-reader and its "
            "RoleBinding, which the vend makes once it has written the outputs (the Environment "
            "is in phase -)") in early.stderr
    vend_outputs(kube, name)
    target = tmp_path / "bob.kubeconfig"
    result = cli(kubeconfigs, "bob", "kubeconfig", name, "-f", str(target))
    assert result.exit_code == 0, result.output
    assert target.read_text() == KUBECONFIG_TEXT
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert "clusters" not in result.output          # never printed
    assert f"wrote the kubeconfig of Environment {NS}/{name} to {target} (mode 0600)" in result.stdout
    # another developer of the same project: the reader Role names bob only
    other = cli(kubeconfigs, "nia", "kubeconfig", name, "-f", str(tmp_path / "nia"))
    assert other.exit_code == 1 and not (tmp_path / "nia").exists()
    assert (f"error: nia may not read Secret {NS}/{name}-outputs: only its owner, bob, may read "
            f"it: the owner reads the outputs of the Environment through the Role "
            f"{name}-outputs-reader") in other.stderr
    assert 'User "nia" cannot get resource "secrets"' in other.stderr
    # the product owner neither: the outputs are the owner's
    assert cli(kubeconfigs, "ada", "kubeconfig", name, "-f", str(tmp_path / "ada")).exit_code == 1
    # bob reads that one Secret and no other of the namespace
    kube.apply([{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "clie-other",
                                                                    "namespace": NS},
                 "stringData": {"token": "x"}}], field_manager="clie-test")
    for path in (f"/api/v1/namespaces/{NS}/secrets/clie-other",
                 f"/api/v1/namespaces/{NS}/secrets",
                 f"/api/v1/namespaces/{NS}/secrets/{envmodel.state_secret(name)}"):
        with pytest.raises(ApiError) as refused:
            kube.request("GET", path, token=kube.user_token("bob"))
        assert refused.value.status == 403, path


# --- extend -------------------------------------------------------------------------------------

def test_extend(kube, policies, kubeconfigs):
    name = created_by(kubeconfigs, "bob", "--ttl", "1h", "--name", "clie-extend")
    # an expiry instant (an admin's) is replaced by the TTL: it would win over it
    kube.request("PATCH", f"{ENVS}/{name}", {"metadata": {"annotations": {
        "argo-delivery.io/expires": "2030-01-01T00:00:00Z"}}},
        content_type="application/merge-patch+json")
    before = time.time()
    result = cli(kubeconfigs, "bob", "extend", name, "--ttl", "4h")
    assert result.exit_code == 0, result.output
    stored = live(kube, name)
    annotations = stored["metadata"]["annotations"]
    assert "argo-delivery.io/expires" not in annotations
    expires = parse_time(stored["metadata"]["creationTimestamp"]) + parse_go_duration(
        annotations["argo-delivery.io/ttl"])
    assert before + 4 * 3600 <= expires.timestamp() <= before + 4 * 3600 + 120
    assert annotations["argo-delivery.io/ttl"] in ("4h", "4h1m", "4h2m")
    assert f"Environment {NS}/{name} now expires at " in result.stdout

    created = parse_time(stored["metadata"]["creationTimestamp"])
    beyond = cli(kubeconfigs, "bob", "extend", name, "--ttl", "80h")
    assert beyond.exit_code == 1
    latest = (created + parse_go_duration("72h")).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (f"project {PROJECT} allows a TTL of at most 72h from its creation at "
            f"{created.strftime('%Y-%m-%dT%H:%M:%SZ')}, so the latest possible expiry is {latest}"
            in beyond.stderr)
    assert live(kube, name)["metadata"]["annotations"] == annotations   # nothing changed

    someone_elses = cli(kubeconfigs, "nia", "extend", name, "--ttl", "2h")
    assert someone_elses.exit_code == 1
    assert (f"error: the API server refused the extension of Environment {NS}/{name} (HTTP 422)"
            in someone_elses.stderr)
    assert (f"nia may not change the expiry of Environment {name}: it is bob's (that needs the "
            "verb manage)") in someone_elses.stderr
    assert live(kube, name)["metadata"]["annotations"] == annotations
    # the product owner holds manage
    assert cli(kubeconfigs, "ada", "extend", name, "--ttl", "2h").exit_code == 0
    assert live(kube, name)["metadata"]["annotations"]["argo-delivery.io/ttl"] != \
        annotations["argo-delivery.io/ttl"]
    # a demo Environment never expires
    demo = kube.request("POST", ENVS, environment("ada", name="clie-demo", demo=True),
                        as_user=("ada", PRODUCT_OWNER_GROUPS))
    refused = cli(kubeconfigs, "ada", "extend", demo["metadata"]["name"], "--ttl", "2h")
    assert refused.exit_code == 1 and "is a demo environment: it never expires" in refused.stderr


# --- delete -------------------------------------------------------------------------------------

def test_delete_someone_elses(kube, policies, kubeconfigs):
    name = created_by(kubeconfigs, "bob", "--name", "clie-delete-other")
    refused = cli(kubeconfigs, "nia", "delete", name)
    assert refused.exit_code == 1, refused.output
    assert (f"error: the API server refused the deletion of Environment {NS}/{name} (HTTP 422)"
            in refused.stderr)
    assert (f"nia may not delete Environment {name}: it is bob's (deleting someone else's needs "
            "the verb manage on environments, which the product owners hold)") in refused.stderr
    assert not gone(kube, name)
    allowed = cli(kubeconfigs, "ada", "delete", name, "--wait", "--timeout", "30s")
    assert allowed.exit_code == 0, allowed.output
    assert f"Environment {NS}/{name} is gone" in allowed.stdout and gone(kube, name)
    missing = cli(kubeconfigs, "bob", "delete", name)
    assert missing.exit_code == 1 and f"Environment {NS}/{name} does not exist" in missing.stderr


def test_delete_wait_reports_a_failed_destroy(kube, policies, kubeconfigs):
    name = created_by(kubeconfigs, "bob", "--name", "clie-destroy-fails")
    add_finalizers(kube, name, envmodel.FINALIZER)
    write_status(kube, name, phase="Ready")

    def destroy():
        deadline = time.monotonic() + 30
        while not envmodel.is_deleting(live(kube, name)) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)
        write_status(kube, name, phase="Destroying", message="tofu destroy")
        time.sleep(1)
        write_status(kube, name, phase="Failed", message="tofu destroy failed",
                     conditions=[failed_condition("the cloud refused: DependencyViolation")])

    thread = threading.Thread(target=destroy)
    thread.start()
    try:
        result = cli(kubeconfigs, "bob", "delete", name, "--wait", "--timeout", "60s")
    finally:
        thread.join()
    assert result.exit_code == 1, result.output
    assert f"deleting Environment {NS}/{name}: its destroy runs first" in result.stdout
    assert f"{name}: deleting; phase Destroying: tofu destroy" in result.stderr
    assert (f"error: the destroy of Environment {NS}/{name} failed: DestroyFailed: the cloud "
            f"refused: DependencyViolation. It stays until a destroy succeeds; when it cannot, a "
            f"product owner may run `argo-delivery envs delete {name} --force`") in result.stderr
    assert envmodel.has_finalizer(live(kube, name))


def test_delete_force(kube, policies, kubeconfigs):
    name = created_by(kubeconfigs, "bob", "--name", "clie-force")
    add_finalizers(kube, name, envmodel.FINALIZER, KEEP)
    not_yet = cli(kubeconfigs, "ada", "delete", name, "--force", "--yes")
    assert not_yet.exit_code == 1 and "is not being deleted: delete it without --force" \
        in not_yet.stderr
    assert cli(kubeconfigs, "bob", "delete", name).exit_code == 0
    write_status(kube, name, phase="Failed", message="tofu destroy failed",
                 outputs={"endpoint": "https://10.0.0.5"},
                 conditions=[failed_condition("state locked")])

    # a developer, its owner included, does not hold the verb finalize
    refused = cli(kubeconfigs, "bob", "delete", name, "--force", "--yes")
    assert refused.exit_code == 1, refused.output
    assert (f"error: you may not remove the finalizer {envmodel.FINALIZER} of Environment "
            f"{NS}/{name}: that needs the custom verb finalize on environments, which product "
            f"owners hold (Role {PRODUCT_OWNER.name}). The API server said (HTTP 422): "
            ) in refused.stderr
    assert f"bob may not remove the finalizer {envmodel.FINALIZER} of Environment {name}" \
        in refused.stderr
    assert live(kube, name)["metadata"]["finalizers"] == [envmodel.FINALIZER, KEEP]

    # the product owner is shown what may be left behind, and asked
    declined = cli(kubeconfigs, "ada", "delete", name, "--force", input="n\n")
    assert declined.exit_code == 1 and "nothing was changed" in declined.stderr
    listing = declined.stdout
    assert (f"Terraform state: Secret tfstate-default-{name}: unknown (you may not read Secrets "
            f"in namespace {NS}); its lock, Lease lock-tfstate-default-{name}: unknown (you may "
            f"not read Leases in namespace {NS})") in listing
    assert "Whether the state still lists cloud resources is unknown to this command" in listing
    assert "endpoint=https://10.0.0.5" in listing and "Last error: DestroyFailed: state locked" \
        in listing and f"Other finalizers stay: {KEEP}." in listing
    assert live(kube, name)["metadata"]["finalizers"] == [envmodel.FINALIZER, KEEP]

    # a concurrent change makes the patch fail instead of overwriting it (the `test` op)
    client = EnvironmentsClient.connect(str(kubeconfigs["ada"]), None)
    stale = client.get(name, NS)
    kube.request("PATCH", f"{ENVS}/{name}", {"metadata": {"labels": {"touched": "yes"}}},
                 content_type="application/merge-patch+json")
    with pytest.raises(EnvironmentsError, match="changed since it was read, so nothing was removed"):
        force(client, stale)
    assert live(kube, name)["metadata"]["finalizers"] == [envmodel.FINALIZER, KEEP]

    forced = cli(kubeconfigs, "ada", "delete", name, "--force", input="y\n")
    assert forced.exit_code == 0, forced.output
    assert f"removed the finalizer {envmodel.FINALIZER} of Environment {NS}/{name}" in forced.stdout
    assert live(kube, name)["metadata"]["finalizers"] == [KEEP]   # only ours went
    # the destroy's failure is no longer the question: it waits for the other finalizer
    waiting = cli(kubeconfigs, "bob", "delete", name, "--wait", "--timeout", "2s")
    assert waiting.exit_code == 1, waiting.output
    assert (f"timed out after 2s waiting for Environment {NS}/{name} to be gone; last observed: "
            f"deleting, waiting for finalizer {KEEP}; phase Failed: tofu destroy failed") \
        in waiting.stderr
    kube.request("PATCH", f"{ENVS}/{name}", {"metadata": {"finalizers": None}},
                 content_type="application/merge-patch+json")
    assert gone(kube, name)


def test_force_lists_the_state_it_can_see(kube, policies, kubeconfigs):
    """An admin may read Secrets and Leases: the listing says which exist."""
    name = created_by(kubeconfigs, "bob", "--name", "clie-force-admin")
    add_finalizers(kube, name, envmodel.FINALIZER)
    kube.apply([{"apiVersion": "v1", "kind": "Secret",
                 "metadata": {"name": envmodel.state_secret(name), "namespace": NS},
                 "stringData": {"tfstate": "{}"}}], field_manager="clie-vend")
    assert cli(kubeconfigs, "bob", "delete", name).exit_code == 0
    declined = cli(kubeconfigs, "admin", "delete", name, "--force", input="n\n")
    assert declined.exit_code == 1
    assert (f"Secret tfstate-default-{name}: exists; its lock, Lease lock-tfstate-default-{name}: "
            "not found") in declined.stdout
    assert cli(kubeconfigs, "admin", "delete", name, "--force", "--yes").exit_code == 0
    assert gone(kube, name)
