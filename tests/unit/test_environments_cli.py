"""`argo-delivery envs`: rows and details, the expiry and the extend arithmetic within maxTTL,
the kubeconfig file, the patches, what a forced deletion may leave behind, refusals as
sentences, the wait conditions and their watch loop; no server (a fake client stands in)."""

from __future__ import annotations

import base64
import copy
import json
import stat
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from click.testing import CliRunner
from rich.console import Console

from argo_delivery import environments_cli as envs
from argo_delivery.cli import main
from argo_delivery.environments_cli import (
    EnvironmentsError,
    create_body,
    destroy_failed,
    detail,
    expiry_of,
    extension,
    finalizer_patch,
    force_listing,
    gone_outcome,
    kubeconfig_bytes,
    last_error,
    parse_ttl,
    parse_variables,
    ready_outcome,
    refusal,
    summary,
    until,
    write_private,
)
from argo_delivery.versions import WatchExpired

NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
FINALIZER = "argo-delivery.io/environment"


def env(name: str = "core-team-x7k2p", created: str = "2026-11-29T10:00:00Z", *, owner="bob",
        status: dict | None = None, demo: bool = False, finalizers=(), deleting: str = "",
        **annotations) -> dict:
    meta = {"name": name, "namespace": "core-team", "creationTimestamp": created,
            "resourceVersion": "42", "uid": "u-1",
            "annotations": {f"argo-delivery.io/{k}": v for k, v in annotations.items()}}
    if finalizers:
        meta["finalizers"] = list(finalizers)
    if deleting:
        meta["deletionTimestamp"] = deleting
    spec = {"project": "core-team", "version": "core-team-0123456789abcdef", "owner": owner,
            "demo": demo}
    return {"apiVersion": "argo-delivery.io/v1alpha1", "kind": "Environment", "metadata": meta,
            "spec": spec, **({"status": status} if status is not None else {})}


def failed(message: str, at: str = "2026-11-29T11:00:00Z", reason: str = "DestroyFailed") -> dict:
    return {"type": "Failed", "status": "True", "reason": reason, "message": message,
            "lastTransitionTime": at}


def text_of(*renderables) -> str:
    console = Console(width=400, record=True, markup=False, highlight=False)
    for renderable in renderables:
        console.print(renderable)
    return console.export_text()


# --- rows, expiry, details ----------------------------------------------------------------------

def test_until_in_two_units_both_ways():
    assert until(NOW + timedelta(hours=3, minutes=4, seconds=5), NOW) == "in 3h4m"
    assert until(NOW - timedelta(minutes=5), NOW) == "5m ago"
    assert until(NOW + timedelta(days=2, hours=23), NOW) == "in 2d23h"
    assert until(NOW, NOW) == "now" and until(None, NOW) == ""


def test_expiry_follows_the_reapers_rule():
    # annotations first (so an extend shows at once), then status.expiresAt, then defaultTTL
    assert expiry_of(env(ttl="8h")) == (NOW + 6 * HOUR, "annotation argo-delivery.io/ttl")
    assert expiry_of(env(ttl="8h", expires="2026-11-29T13:00:00Z")) == (
        NOW + HOUR, "annotation argo-delivery.io/expires")
    written = env(status={"expiresAt": "2026-11-29T20:00:00Z"})
    assert expiry_of(written, 2 * HOUR) == (NOW + 8 * HOUR, "status.expiresAt")
    assert expiry_of(env(), 8 * HOUR) == (NOW + 6 * HOUR, "the project's defaultTTL")
    assert expiry_of(env()) == (None, "unknown")
    assert expiry_of(env(demo=True, ttl="8h")) == (None, "never (demo)")
    assert expiry_of(env(ttl="2d"))[1] == "unknown (annotation argo-delivery.io/ttl is '2d')"


def test_list_rows_and_table():
    found = [env("a", "2026-11-29T09:00:00Z", ttl="2h"),                     # expired
             env("b", "2026-11-29T11:59:15Z", status={"phase": "Ready"}, ttl="8h"),
             env("c", "2026-11-29T10:00:00Z", demo=True, status={"phase": "Failed"},
                 deleting="2026-11-29T11:00:00Z")]
    rows = [summary(e, NOW) for e in envs.select(found)]
    assert [(r["name"], r["phase"], r["expires"], r["age"]) for r in rows] == [
        ("b", "Ready", "in 7h59m", "45s"), ("c", "Failed", "never", "2h"),
        ("a", "", "expired 1h ago", "3h")]
    assert rows[0]["expiresAt"] == "2026-11-29T19:59:15Z" and rows[2]["expiresAt"] == \
        "2026-11-29T11:00:00Z"
    lines = [line.split() for line in text_of(envs.list_table(rows)).splitlines() if line.strip()]
    assert lines[0] == ["NAME", "PROJECT", "VERSION", "OWNER", "PHASE", "EXPIRES", "AGE"]
    assert lines[1] == ["b", "core-team", "core-team-0123456789abcdef", "bob", "Ready", "in",
                        "7h59m", "45s"]
    assert lines[2][4:6] == ["Failed", "(deleting)"] and lines[3][4] == "-"
    assert text_of(envs.list_table(rows, all_namespaces=True)).split()[0] == "NAMESPACE"
    assert [e["metadata"]["name"] for e in envs.select(found, project="northwind")] == []


def test_the_last_error():
    assert last_error(env(status={"phase": "Failed", "message": "tofu apply failed"})) == \
        "tofu apply failed"
    assert last_error(env(status={"phase": "Failed", "conditions": [failed("state locked")]})) \
        == "DestroyFailed: state locked"
    cleared = {**failed("old"), "status": "False"}
    assert last_error(env(status={"phase": "Ready", "conditions": [cleared]})) == ""


def test_show_gathers_what_a_person_asks_about():
    shown = env(ttl="8h", status={
        "phase": "Ready", "deployedVersion": "core-team-1111111111111111",
        "outputsSecret": "core-team-x7k2p-outputs", "workflow": "vend-abcde",
        "outputs": {"namespace": "app", "endpoint": "https://10.0.0.7"},
        "expiresAt": "2026-11-29T18:00:00Z",
        "conditions": [{"type": "Ready", "status": "True", "reason": "Vended",
                        "lastTransitionTime": "2026-11-29T10:10:00Z"}]})
    shown["spec"]["infrastructure"] = {"variables": {"size": "small"}}
    d = detail(shown, NOW)
    assert d["expiresAt"] == "2026-11-29T18:00:00Z" and d["expires"] == "in 6h"
    assert d["outputs"] == {"endpoint": "https://10.0.0.7", "namespace": "app"}
    assert d["lastError"] == "" and d["variables"] == {"size": "small"}
    out = text_of(*envs.show_renderables(d))
    assert "core-team-0123456789abcdef (deployed: core-team-1111111111111111)" in out
    assert "2026-11-29T18:00:00Z (in 6h); from annotation argo-delivery.io/ttl" in out
    assert "endpoint   https://10.0.0.7" in out and "Ready  True    Vended" in out
    assert "Outputs Secret  core-team-x7k2p-outputs" in out and "Workflow        vend-abcde" in out
    # an extended one: the annotation decides, the status has not caught up yet
    extended = copy.deepcopy(shown)
    extended["metadata"]["annotations"]["argo-delivery.io/ttl"] = "10h"
    assert "status.expiresAt still says 2026-11-29T18:00:00Z" in text_of(
        *envs.show_renderables(detail(extended, NOW)))
    broken = detail(env(status={"phase": "Failed", "message": "boom"}, demo=True), NOW)
    out = text_of(*envs.show_renderables(broken))
    assert "Last error      boom" in out and "Expires         never" in out


# --- create -----------------------------------------------------------------------------------

def test_variables_and_ttl_are_checked_here():
    assert parse_variables(["size=small", "tags=a=b", "empty="]) == {
        "size": "small", "tags": "a=b", "empty": ""}
    for bad, message in (("size", "expected NAME=VALUE"), ("=x", "expected NAME=VALUE"),
                         ("9lives=x", "is not a Terraform variable name")):
        with pytest.raises(EnvironmentsError, match=message) as raised:
            parse_variables([bad])
        assert raised.value.usage
    with pytest.raises(EnvironmentsError, match="given twice"):
        parse_variables(["a=1", "a=2"])
    assert parse_ttl("1h30m") == timedelta(minutes=90)
    for bad in ("2d", "8", "forever", "0s"):
        with pytest.raises(EnvironmentsError, match="--ttl"):
            parse_ttl(bad)


def test_create_body():
    body = create_body(namespace="core-team", project="core-team", version="v", owner="bob",
                       ttl="8h", variables={"size": "small"})
    assert body["metadata"] == {"namespace": "core-team", "generateName": "core-team-",
                                "annotations": {"argo-delivery.io/ttl": "8h"}}
    assert body["spec"] == {"project": "core-team", "version": "v", "owner": "bob",
                            "infrastructure": {"variables": {"size": "small"}}}
    named = create_body(namespace="ns", project="p", version="v", owner="bob", name="mine")
    assert named["metadata"] == {"namespace": "ns", "name": "mine"}
    assert "infrastructure" not in named["spec"]


# --- extend -----------------------------------------------------------------------------------

def test_extend_sets_the_ttl_from_creation_rounded_up_to_minutes():
    at = NOW + timedelta(seconds=20)   # created 10:00:00; 4h from 12:00:20 is 16:00:20
    patch, expires, text = extension(env(ttl="8h", expires="2026-11-29T13:00:00Z"), 4 * HOUR, at,
                                     72 * HOUR)
    assert text == "6h1m" and expires == datetime(2026, 11, 29, 16, 1, tzinfo=UTC)
    assert patch == {"metadata": {"annotations": {"argo-delivery.io/ttl": "6h1m",
                                                  "argo-delivery.io/expires": None}}}
    # exactly the project's maximum is allowed; without a known maximum admission decides
    assert extension(env(), 70 * HOUR, NOW, 72 * HOUR)[2] == "72h"
    assert extension(env(), 200 * HOUR, NOW, None)[2] == "202h"
    # a maximum with seconds: rounding up never passes it
    assert extension(env(), 70 * HOUR - timedelta(seconds=30), NOW,
                     72 * HOUR - timedelta(seconds=10))[2] == "71h59m50s"


def test_extend_beyond_max_ttl_names_the_latest_possible_expiry():
    with pytest.raises(EnvironmentsError) as refused:
        extension(env(), 71 * HOUR, NOW, 72 * HOUR)
    assert str(refused.value) == (
        "Environment core-team/core-team-x7k2p cannot live until 2026-12-02T11:00:00Z: project "
        "core-team allows a TTL of at most 72h from its creation at 2026-11-29T10:00:00Z, so the "
        "latest possible expiry is 2026-12-02T10:00:00Z (in 2d22h); nothing was changed")
    with pytest.raises(EnvironmentsError, match="is a demo environment: it never expires"):
        extension(env(demo=True), HOUR, NOW, 72 * HOUR)


def test_the_projects_bounds():
    project = {"spec": {"environments": {"defaultTTL": "8h", "maxTTL": "72h"}}}
    assert envs.max_ttl_of(project) == 72 * HOUR and envs.default_ttl_of(project) == 8 * HOUR
    assert envs.max_ttl_of(None) is None and envs.max_ttl_of({"spec": {}}) is None


# --- kubeconfig -------------------------------------------------------------------------------

def test_the_kubeconfig_is_written_for_its_owner_only(tmp_path):
    path = tmp_path / "x.kubeconfig"
    path.write_text("old")
    path.chmod(0o644)
    assert write_private(path, b"apiVersion: v1\n") is True
    assert path.read_bytes() == b"apiVersion: v1\n" and stat.S_IMODE(path.stat().st_mode) == 0o600
    fresh = tmp_path / "fresh"
    assert write_private(fresh, b"x") is False and stat.S_IMODE(fresh.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    with pytest.raises(EnvironmentsError, match="is a folder"):
        write_private(tmp_path, b"x")
    with pytest.raises(EnvironmentsError, match="cannot write"):
        write_private(tmp_path / "missing" / "x", b"x")


def test_the_kubeconfig_key_of_the_outputs_secret():
    secret = {"metadata": {"name": "core-team-x7k2p-outputs"},
              "data": {"kubeconfig": base64.b64encode(b"apiVersion: v1\n").decode()}}
    assert kubeconfig_bytes(secret, env()) == b"apiVersion: v1\n"
    with pytest.raises(EnvironmentsError, match=r"has no key kubeconfig \(its keys: endpoint\)"):
        kubeconfig_bytes({"metadata": {"name": "s"}, "data": {"endpoint": "eA=="}}, env())
    assert envs.outputs_secret_name(env()) == "core-team-x7k2p-outputs"
    assert envs.outputs_secret_name(env(status={"outputsSecret": "other"})) == "other"


# --- delete --force -----------------------------------------------------------------------------

def test_the_finalizer_patch_removes_ours_only_and_tests_what_it_read():
    deleting = env(finalizers=("example.com/keep", FINALIZER), deleting="2026-11-29T11:00:00Z")
    assert finalizer_patch(deleting) == [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "42"},
        {"op": "test", "path": "/metadata/finalizers/1", "value": FINALIZER},
        {"op": "remove", "path": "/metadata/finalizers/1"}]
    with pytest.raises(EnvironmentsError, match="has no finalizer"):
        finalizer_patch(env(finalizers=("example.com/keep",)))
    with pytest.raises(EnvironmentsError, match="is not being deleted"):
        envs.refuse_force(env(finalizers=(FINALIZER,)))
    with pytest.raises(EnvironmentsError, match="what keeps it: finalizers example.com/keep"):
        envs.refuse_force(env(finalizers=("example.com/keep",), deleting="2026-11-29T11:00:00Z"))
    envs.refuse_force(deleting)


def test_what_a_forced_deletion_may_leave_behind():
    stuck = env(finalizers=(FINALIZER, "example.com/keep"), deleting="2026-11-29T11:00:00Z",
                status={"phase": "Failed", "workflow": "destroy-1",
                        "outputs": {"endpoint": "https://10.0.0.5", "namespace": "app"},
                        "conditions": [failed("state locked")]})
    lines = force_listing(stuck, None, False)
    assert lines[0] == (
        "Terraform state: Secret tfstate-default-core-team-x7k2p: unknown (you may not read "
        "Secrets in namespace core-team); its lock, Lease lock-tfstate-default-core-team-x7k2p: "
        "not found. Neither is removed by this.")
    assert lines[1].startswith("Whether the state still lists cloud resources is unknown")
    assert "What the vend reported (status.outputs): endpoint=https://10.0.0.5, namespace=app" \
        in lines
    assert "Last error: DestroyFailed: state locked" in lines
    assert "Phase Failed, last workflow destroy-1, being deleted since 2026-11-29T11:00:00Z" in lines
    assert lines[-1] == "Other finalizers stay: example.com/keep."
    quiet = force_listing(env(finalizers=(FINALIZER,), deleting="2026-11-29T11:00:00Z"), True, True)
    assert "Secret tfstate-default-core-team-x7k2p: exists" in quiet[0]
    assert "The vend reported no outputs (status.outputs is empty)." in quiet
    assert "Last error: none reported." in quiet and not quiet[-1].startswith("Other")


# --- refusals ----------------------------------------------------------------------------------

def rbac(user: str, verb: str, resource: str) -> str:
    return json.dumps({"kind": "Status", "code": 403, "message": (
        f'{resource} "x" is forbidden: User "{user}" cannot {verb} resource "{resource}" in API '
        'group "" in the namespace "core-team"')})


def test_rbac_refusals_name_what_is_missing():
    text = refusal(403, rbac("eve", "create", "environments"), action="create",
                   target="an Environment of project core-team", namespace="core-team")
    assert text.startswith("eve may not create an Environment of project core-team: that needs the "
                           "Role argo-delivery-developer or argo-delivery-product-owner in "
                           "namespace core-team (the project's members hold them). The API "
                           'server said: environments "x" is forbidden')
    secret = dict(action="read-outputs", target="core-team/x-outputs", namespace="core-team",
                  owner="bob", reader="x-outputs-reader", phase="Ready")
    assert refusal(403, rbac("nia", "get", "secrets"), **secret).startswith(
        "nia may not read Secret core-team/x-outputs: only its owner, bob, may read it: the owner "
        "reads the outputs of the Environment through the Role x-outputs-reader and its "
        "RoleBinding, which the vend makes once it has written the outputs. The API server said")
    assert refusal(403, rbac("bob", "get", "secrets"), **{**secret, "phase": "Provisioning"}) \
        .startswith("bob may not read Secret core-team/x-outputs (yet): the owner reads the outputs "
                    "of the Environment through the Role x-outputs-reader and its RoleBinding, "
                    "which the vend makes once it has written the outputs (the Environment is in "
                    "phase Provisioning).")
    assert refusal(404, {"message": "not found"}, **{**secret, "phase": "Provisioning"}).startswith(
        "Secret core-team/x-outputs does not exist: the vend writes it once Terraform has applied")


def test_admission_refusals_are_verbatim_and_the_finalizers_says_who_holds_it():
    message = ("environments.argo-delivery.io \"x\" is forbidden: ValidatingAdmissionPolicy "
               "'argo-delivery-environment-lifecycle' with binding 'argo-delivery-environment-"
               "lifecycle' denied request: bob may not remove the finalizer "
               "argo-delivery.io/environment of Environment x: its destroy has not finished")
    where = dict(target="Environment core-team/x", namespace="core-team")
    assert refusal(422, {"message": message}, action="finalize", **where) == (
        "you may not remove the finalizer argo-delivery.io/environment of Environment "
        "core-team/x: that needs the custom verb finalize on environments, which product owners "
        f"hold (Role argo-delivery-product-owner). The API server said (HTTP 422): {message}")
    assert refusal(422, {"message": "the server rejected our request due to an error in our "
                                    "request"}, action="finalize", **where).startswith(
        "Environment core-team/x changed since it was read, so nothing was removed")
    assert refusal(422, {"message": "denied request: a TTL of 73h is more"}, action="extend",
                   **where) == ("the API server refused the extension of Environment core-team/x "
                                "(HTTP 422): denied request: a TTL of 73h is more")
    assert refusal(404, "gone", action="delete", **where) == \
        "Environment core-team/x does not exist (HTTP 404): gone"
    assert "log in again" in refusal(401, "Unauthorized", action="read", **where)


# --- wait ----------------------------------------------------------------------------------------

def test_ready_and_failed_end_the_wait_for_a_new_environment():
    assert ready_outcome(env(status={"phase": "Ready", "outputs": {"a": "1"}}),
                         namespace="core-team", name="x") == envs.Outcome(
        True, True, "Environment core-team/x is Ready (a=1)")
    bad = ready_outcome(env(status={"phase": "Failed", "conditions": [failed("no quota",
                                                                             reason="VendFailed")]}),
                        namespace="core-team", name="x")
    assert bad == envs.Outcome(True, False, "Environment core-team/x failed: VendFailed: no quota")
    assert not ready_outcome(env(status={"phase": "Provisioning"}), namespace="n", name="x").done
    assert ready_outcome(None, namespace="n", name="x").message.endswith("was deleted while "
                                                                         "waiting for it to be Ready")


def test_only_a_failure_of_the_destroy_ends_the_wait_for_a_deletion():
    deleted, ours = "2026-11-29T11:00:00Z", (FINALIZER,)
    vend_failed = env(deleting=deleted, finalizers=ours, status={"phase": "Failed", "conditions": [
        failed("no quota", at="2026-11-29T10:30:00Z", reason="VendFailed")]})
    assert not destroy_failed(vend_failed)                  # failed before the deletion
    assert destroy_failed(vend_failed, saw_progress=True)  # ...and again after Destroying
    destroy = env(deleting=deleted, finalizers=ours, status={"phase": "Failed", "conditions": [
        failed("DependencyViolation", at="2026-11-29T11:05:00Z")]})
    assert destroy_failed(destroy)
    assert not destroy_failed(env(status={"phase": "Failed"}))   # not being deleted
    # our finalizer gone (--force): the destroy is over; another finalizer holds it
    given_up = copy.deepcopy(destroy)
    given_up["metadata"]["finalizers"] = ["example.com/keep"]
    assert not destroy_failed(given_up, saw_progress=True)
    assert envs.state_text(given_up) == ("deleting, waiting for finalizer example.com/keep; "
                                         "phase Failed")
    outcome = gone_outcome(destroy, namespace="core-team", name="x")
    assert outcome.done and not outcome.ok
    assert outcome.message == (
        "the destroy of Environment core-team/x failed: DestroyFailed: DependencyViolation. It "
        "stays until a destroy succeeds; when it cannot, a product owner may run `argo-delivery "
        "envs delete x --force`")
    assert gone_outcome(None, namespace="core-team", name="x").ok


class FakeWatch:
    def __init__(self, lists, watches):
        self.lists, self.watches, self.calls = list(lists), list(watches), []

    def listed(self, name, namespace):
        self.calls.append(("list",))
        item = self.lists.pop(0)
        return item, (item or {}).get("metadata", {}).get("resourceVersion", "1")

    def watch(self, name, namespace, resource_version, timeout):
        self.calls.append(("watch", resource_version))
        for event in self.watches.pop(0):
            if isinstance(event, Exception):
                raise event
            yield event


def at(phase: str, rv: str, deleting: str = "", **status) -> dict:
    e = env(status={"phase": phase, **status}, deleting=deleting,
            finalizers=(FINALIZER,) if deleting else ())
    e["metadata"]["resourceVersion"] = rv
    return e


def test_wait_for_a_deletion_follows_the_destroy():
    deleting = "2026-11-29T11:00:00Z"
    failed_before = at("Failed", "10", deleting, message="vend failed")
    client = FakeWatch([failed_before, at("Destroying", "12", deleting)], [
        [WatchExpired()],
        [{"type": "MODIFIED", "raw_object": at("Failed", "13", deleting, message="destroy failed")}],
    ])
    seen: list[str] = []
    outcome = envs.wait(client, "x", "core-team", "gone", 60, progress=seen.append)
    assert not outcome.ok and "the destroy of Environment core-team/x failed: destroy failed" \
        in outcome.message
    assert seen == ["deleting; phase Failed: vend failed", "deleting; phase Destroying",
                    "deleting; phase Failed: destroy failed"]
    assert client.calls == [("list",), ("watch", "10"), ("list",), ("watch", "12")]
    deleted = FakeWatch([at("Destroying", "5", deleting)], [
        [{"type": "DELETED", "raw_object": at("Destroying", "6", deleting)}]])
    assert envs.wait(deleted, "x", "core-team", "gone", 60).message == \
        "Environment core-team/x is gone"


def test_wait_times_out_with_the_phase_it_was_in():
    ticks = iter(range(0, 1000, 40))
    client = FakeWatch([at("Provisioning", "5", message="tofu apply")], [[], [], [], []])
    outcome = envs.wait(client, "x", "core-team", "ready", 90, clock=lambda: next(ticks))
    assert outcome == envs.Outcome(True, False, "timed out after 1m30s waiting for Environment "
                                                "core-team/x to be Ready; last observed: phase "
                                                "Provisioning: tofu apply")
    missing = envs.wait(FakeWatch([None], []), "x", "core-team", "ready", 9)
    assert missing.message == "no Environment x in namespace core-team"


# --- the command line with a fake client ------------------------------------------------------

class FakeClient:
    def __init__(self, *found):
        self.found = {e["metadata"]["name"]: e for e in found}
        self.calls: list[tuple] = []
        self.default_namespace = "core-team"

    def namespace_for(self, namespace, project):
        return (namespace, "-n") if namespace else ("core-team", "the context's")

    def list(self, namespace):
        return list(self.found.values())

    def get(self, name, namespace):
        if name not in self.found:
            raise EnvironmentsError(f"Environment {namespace}/{name} does not exist (HTTP 404)")
        return copy.deepcopy(self.found[name])

    def project(self, namespace, name):
        return {"spec": {"environments": {"defaultTTL": "8h", "maxTTL": "72h"}}}

    def default_ttls(self, environments):
        return {}

    def username(self):
        return "bob"

    def create(self, body):
        self.calls.append(("create", body))
        return {**body, "metadata": {**body["metadata"], "name": body["metadata"].get("name")
                                     or "core-team-abcde"}}

    def patch(self, name, namespace, body, *, action, content_type="application/merge-patch+json"):
        self.calls.append(("patch", name, action, content_type, body))
        return self.found[name]

    def delete(self, name, namespace):
        self.calls.append(("delete", name))
        return {}

    def outputs_secret(self, environment):
        return {"metadata": {"name": "x-outputs"},
                "data": {"kubeconfig": base64.b64encode(b"secret-kubeconfig\n").decode()}}

    def exists(self, api_version, kind, name, namespace):
        return None


@pytest.fixture
def fake(monkeypatch):
    client = FakeClient(env("mine", ttl="8h", status={"phase": "Ready"}),
                        env("stuck", finalizers=(FINALIZER,), deleting="2026-11-29T11:00:00Z",
                            status={"phase": "Failed", "conditions": [failed("locked")]}))
    monkeypatch.setattr(envs.EnvironmentsClient, "connect", classmethod(lambda cls, k, c: client))
    return client


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(main, ["envs", *args], input=input)


def test_cli_create_is_owned_by_the_caller(fake):
    result = run("create", "--project", "core-team", "--version", "v1", "--ttl", "8h",
                 "--var", "size=small")
    assert result.exit_code == 0, result.output
    assert result.stdout == "core-team-abcde\n"
    [(_, body)] = fake.calls
    assert body["spec"]["owner"] == "bob" and body["metadata"]["generateName"] == "core-team-"
    assert body["spec"]["infrastructure"] == {"variables": {"size": "small"}}
    missing = run("create", "--version", "v1")
    assert missing.exit_code == 2 and "--project is required" in missing.stderr


def test_cli_list_show_and_extend(fake):
    listed = run("list")
    assert listed.exit_code == 0, listed.output
    # created at the same instant: by name, newest-first order reversed
    assert [line.split()[0] for line in listed.stdout.splitlines()] == ["NAME", "stuck", "mine"]
    rows = yaml.safe_load(run("list", "-o", "yaml").stdout)
    assert {r["name"]: r["deleting"] for r in rows} == {"mine": False, "stuck": True}
    shown = json.loads(run("show", "stuck", "-o", "json").stdout)
    assert shown["lastError"] == "DestroyFailed: locked" and shown["finalizers"] == [FINALIZER]
    extended = run("extend", "mine", "--ttl", "4h")
    assert extended.exit_code == 0, extended.output
    [(_, name, action, content_type, body)] = fake.calls
    assert (name, action, content_type) == ("mine", "extend", "application/merge-patch+json")
    assert body["metadata"]["annotations"]["argo-delivery.io/expires"] is None
    too_long = run("extend", "mine", "--ttl", "500h")
    assert too_long.exit_code == 1 and "the latest possible expiry is" in too_long.stderr


def test_cli_kubeconfig_writes_the_file_and_never_prints_it(fake, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("kubeconfig", "mine")
    assert result.exit_code == 0, result.output
    written = tmp_path / "mine.kubeconfig"
    assert written.read_bytes() == b"secret-kubeconfig\n"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert "secret-kubeconfig" not in result.output


def test_cli_delete_force_asks_then_removes_our_finalizer(fake):
    declined = run("delete", "stuck", "--force", input="n\n")
    assert declined.exit_code == 1 and "nothing was changed" in declined.stderr
    assert "Last error: DestroyFailed: locked" in declined.stdout and fake.calls == []
    forced = run("delete", "stuck", "--force", "--yes")
    assert forced.exit_code == 0, forced.output
    [(_, name, action, content_type, body)] = fake.calls
    assert (name, action, content_type) == ("stuck", "finalize", "application/json-patch+json")
    assert body[-1] == {"op": "remove", "path": "/metadata/finalizers/0"}
    plain = run("delete", "mine")
    assert plain.exit_code == 0 and fake.calls[-1] == ("delete", "mine")
    refused = run("delete", "mine", "--force", "--yes")
    assert refused.exit_code == 1 and "is not being deleted" in refused.stderr


@pytest.mark.parametrize("args, message", [
    (["create", "--project", "p", "--version", "v", "--ttl", "1d"], "--ttl '1d'"),
    (["create", "--project", "p", "--version", "v", "--var", "x"], "--var 'x'"),
    (["create", "--project", "p"], "Missing option '--version'"),
    (["create", "--project", "p", "--version", "v", "--timeout", "soon"], "--timeout"),
    (["extend", "x"], "Missing option '--ttl'"),
    (["extend", "x", "--ttl", "2d"], "--ttl '2d'"),
    (["list", "-A", "-n", "core-team"], "--all-namespaces and --namespace exclude each other"),
    (["show"], "Missing argument 'NAME'"),
])
def test_bad_arguments_exit_2(args, message):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr


@pytest.mark.parametrize("command", [["envs"], ["envs", "create"], ["envs", "delete"]])
def test_help_does_not_import_hera(command):
    import subprocess
    import sys

    code = ("import sys\nfrom argo_delivery.cli import main\n"
            f"try:\n    main({[*command, '--help']!r})\nexcept SystemExit:\n    pass\n"
            "print('LOADED', sorted({m.split('.')[0] for m in sys.modules} & "
            "{'hera', 'argo_workflows', 'jsonschema', 'pydantic', 'kubernetes'}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Usage:" in result.stdout and "Examples:" in result.stdout
    assert "LOADED []" in result.stdout
