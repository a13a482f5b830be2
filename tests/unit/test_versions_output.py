"""`argo-delivery versions`: what list and show print, durations, refusals as sentences, the wait
condition and its watch loop, and argument checks; no server (a fake client stands in)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest
import yaml
from click.testing import CliRunner
from rich.console import Console

from argo_delivery import promotion, versions
from argo_delivery.cli import main
from argo_delivery.versions import (
    VersionsError,
    WaitFor,
    WatchExpired,
    age,
    approval_patch,
    detail,
    evaluate,
    parse_wait_for,
    refusal,
    rerun_patch,
    run_duration,
    shown_stream,
    summary,
)

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
HASH = "sha256:" + "0123456789abcdef" * 4
COMMIT = "89abcdef" * 5


def version(name: str = "core-team-0123456789abcdef", created: str = "2026-03-01T09:00:00Z",
            status: dict | None = None, **spec) -> dict:
    return {
        "apiVersion": "argo-delivery.io/v1alpha1", "kind": "Version",
        "metadata": {"name": name, "namespace": "core-team", "creationTimestamp": created,
                     "resourceVersion": "7"},
        "spec": {"project": "core-team", "hash": HASH,
                 "components": [{"name": "api", "repo": "https://github.com/acme-platform/api",
                                 "ref": "main", "commit": COMMIT},
                                {"name": "web", "repo": "https://github.com/acme-platform/web",
                                 "ref": "main", "commit": "1" * 40}],
                 "trigger": {"type": "push", "repo": "https://github.com/acme-platform/api",
                             "branch": "main", "commit": COMMIT, "sender": "alice"},
                 **spec},
        **({"status": status} if status is not None else {}),
    }


PASSED_ALPHA = {
    "phase": "Succeeded", "reason": "AllSuitesPassed", "message": "all 2 suites passed",
    "startedAt": "2026-03-01T09:01:00Z", "finishedAt": "2026-03-01T09:05:02Z",
    "workflow": "run-stream-alpha-abcde",
    "results": [
        {"suite": "unit", "phase": "Succeeded", "reason": "Completed", "message": "passed",
         "exitCode": 0, "startedAt": "2026-03-01T09:01:05Z", "finishedAt": "2026-03-01T09:02:10Z"},
        {"suite": "integration", "phase": "Succeeded", "reason": "Completed", "message": "passed",
         "exitCode": 0, "startedAt": "2026-03-01T09:01:05Z", "finishedAt": "2026-03-01T09:05:00Z"},
    ],
    "history": [{"phase": "Failed", "workflow": "run-stream-alpha-old"}],
}
FAILED_NIGHTLY = {
    "phase": "Failed", "reason": "SuitesFailed", "message": "1 of 1 suites failed: e2e",
    "startedAt": "2026-03-01T10:00:00Z", "finishedAt": "2026-03-01T11:02:03Z",
    "workflow": "run-stream-nightly-fghij",
    "results": [{"suite": "e2e", "phase": "Failed", "reason": "ExitCode",
                 "message": "the suite exited with code 3", "exitCode": 3,
                 "startedAt": "2026-03-01T10:00:10Z", "finishedAt": "2026-03-01T11:02:00Z"}],
}


def settled(streams: dict, approval: dict | None = None, **extra) -> dict:
    return promotion.settled({"streams": streams, **extra}, approval, "2026-03-01T11:03:00Z")


def text_of(*renderables) -> str:
    console = Console(width=400, record=True, markup=False, highlight=False)
    for renderable in renderables:
        console.print(renderable)
    return console.export_text()


# --- list -------------------------------------------------------------------------------------

def test_a_new_version_is_at_alpha_and_the_stream_falls_back_to_the_runs():
    assert shown_stream(version()) == "alpha"
    assert shown_stream(version(status={"streams": {"alpha": PASSED_ALPHA}})) == "nightly"
    assert shown_stream(version(status={"stream": "candidate"})) == "candidate"


def test_list_rows_newest_first_with_project_and_stream_filters():
    found = [version("core-team-aaaaaaaaaaaaaaaa", "2026-03-01T08:00:00Z"),
             version("core-team-bbbbbbbbbbbbbbbb", "2026-03-01T11:30:00Z",
                     status=settled({"alpha": PASSED_ALPHA}),
                     approval={"approvedBy": "ada", "approvedAt": "2026-03-01T11:40:00Z"}),
             {**version("northwind-cccccccccccccccc", "2026-03-01T11:59:15Z"),
              "spec": {"project": "northwind"}}]
    rows = [summary(v, NOW) for v in versions.select(found)]
    assert [(r["name"], r["project"], r["stream"], r["approvedBy"], r["age"]) for r in rows] == [
        ("northwind-cccccccccccccccc", "northwind", "alpha", "", "45s"),
        ("core-team-bbbbbbbbbbbbbbbb", "core-team", "nightly", "ada", "30m"),
        ("core-team-aaaaaaaaaaaaaaaa", "core-team", "alpha", "", "4h"),
    ]
    assert [v["metadata"]["name"] for v in versions.select(found, project="core-team", stream="alpha")] \
        == ["core-team-aaaaaaaaaaaaaaaa"]
    table = text_of(versions.list_table(rows))
    lines = [line.split() for line in table.splitlines() if line.strip()]
    assert lines[0] == ["NAME", "PROJECT", "STREAM", "APPROVED-BY", "AGE"]
    assert lines[2] == ["core-team-bbbbbbbbbbbbbbbb", "core-team", "nightly", "ada", "30m"]
    assert lines[3][3] == "-"
    assert text_of(versions.list_table(rows, all_namespaces=True)).split()[0] == "NAMESPACE"


def test_age_in_two_units():
    assert age("2026-03-01T11:59:58Z", NOW) == "2s"
    assert age("2026-03-01T11:54:48Z", NOW) == "5m12s"
    assert age("2026-02-27T09:30:00Z", NOW) == "2d2h"
    assert age("2026-03-01T12:00:05Z", NOW) == "0s"      # clock skew: never negative
    assert age(None, NOW) == "<unknown>"


def test_durations_of_runs_and_suites():
    assert run_duration(PASSED_ALPHA) == "4m2s"
    assert run_duration(FAILED_NIGHTLY["results"][0]) == "1h1m50s"
    assert run_duration({"startedAt": "2026-03-01T11:58:30Z"}, NOW) == "1m30s+"   # running
    assert run_duration({"startedAt": "2026-03-01T11:58:30Z"}) == ""
    assert run_duration({}) == ""
    assert run_duration({"startedAt": "2026-03-01T11:00:00.5Z",
                         "finishedAt": "2026-03-01T11:00:01.123456789Z"}) == "0s"


# --- show ---------------------------------------------------------------------------------------

def test_show_gathers_everything_a_person_asks_about():
    v = version(status=settled({"alpha": PASSED_ALPHA, "nightly": FAILED_NIGHTLY}),
                approval={"approvedBy": "ada", "approvedAt": "2026-03-01T11:40:00Z",
                          "comment": "QA ok"})
    v["metadata"]["annotations"] = {"argo-delivery.io/rerun-nightly": "2026-03-01T11:50:00.123456789Z"}
    d = detail(v, NOW)
    assert d["hash"] == HASH and d["project"] == "core-team" and d["stream"] == "failed"
    assert d["components"][0] == {"name": "api", "repo": "https://github.com/acme-platform/api",
                                  "ref": "main", "commit": COMMIT}
    alpha, nightly = d["streams"]["alpha"], d["streams"]["nightly"]
    assert (alpha["phase"], alpha["reason"], alpha["duration"], alpha["historyCount"]) == \
        ("Succeeded", "AllSuitesPassed", "4m2s", 1)
    assert nightly["workflow"] == "run-stream-nightly-fghij"
    assert nightly["results"] == [{
        "suite": "e2e", "phase": "Failed", "reason": "ExitCode",
        "message": "the suite exited with code 3", "exitCode": 3,
        "startedAt": "2026-03-01T10:00:10Z", "finishedAt": "2026-03-01T11:02:00Z",
        "duration": "1h1m50s"}]
    assert {c["type"]: c["status"] for c in d["conditions"]} == {
        "AlphaPassed": "True", "NightlyPassed": "False", "Approved": "False", "Released": "False"}
    assert d["approval"]["comment"] == "QA ok"
    assert d["rerunsRequested"] == {"nightly": "2026-03-01T11:50:00.123456789Z"}
    json.dumps(d)   # -o json prints it as it is

    text = text_of(*versions.show_renderables(d))
    for expected in ("core-team-0123456789abcdef", HASH, COMMIT,
                     f"push to main of https://github.com/acme-platform/api at {COMMIT[:12]} by alice",
                     "approved by ada at 2026-03-01T11:40:00Z: QA ok",
                     "Stream alpha: Succeeded (AllSuitesPassed): all 2 suites passed",
                     "workflow run-stream-alpha-abcde", "took 4m2s", "1 earlier run",
                     "Stream nightly: Failed (SuitesFailed): 1 of 1 suites failed: e2e",
                     "0 earlier runs", "requested 2026-03-01T11:50:00.123456789Z"):
        assert expected in text, expected
    e2e = next(line.split() for line in text.splitlines() if line.strip().startswith("e2e"))
    assert e2e[:5] == ["e2e", "Failed", "ExitCode", "3", "1h1m50s"]
    assert " ".join(e2e[5:]) == "the suite exited with code 3"


def test_show_of_a_new_version():
    d = detail(version(), NOW)
    assert d["streams"] == {"alpha": None, "nightly": None} and d["approval"] is None
    text = text_of(*versions.show_renderables(d))
    assert "Stream alpha: not run" in text and "not approved" in text and "none yet" in text


# --- the CLI on a fake cluster ----------------------------------------------------------------

class FakeClient:
    def __init__(self, found: list[dict], namespace: str = "core-team"):
        self.found = {v["metadata"]["name"]: v for v in found}
        self.default_namespace = namespace
        self.patches: list[tuple[str, str, dict]] = []

    def namespace_for(self, namespace, project):
        return (namespace, "-n") if namespace else (self.default_namespace, "the context's")

    def list(self, namespace):
        return [v for v in self.found.values()
                if namespace is None or v["metadata"]["namespace"] == namespace]

    def get(self, name, namespace):
        if name not in self.found:
            raise VersionsError(f"Version {namespace}/{name} does not exist (HTTP 404): not found")
        return copy.deepcopy(self.found[name])

    def username(self):
        return "ada"

    def patch(self, name, namespace, body, *, action):
        self.patches.append((name, action, body))
        merged = copy.deepcopy(self.found[name])
        for key, value in body.items():
            for inner, leaf in value.items():
                merged.setdefault(key, {}).setdefault(inner, {})
                merged[key][inner] = {**merged[key][inner], **leaf} if isinstance(leaf, dict) else leaf
        return merged


@pytest.fixture
def fake(monkeypatch):
    client = FakeClient([
        version(status=settled({"alpha": PASSED_ALPHA, "nightly": {**PASSED_ALPHA,
                                                                    "workflow": "n", "history": []}})),
        version("core-team-aaaaaaaaaaaaaaaa", "2026-02-01T00:00:00Z",
                status={"stream": "released", "releasedAt": "2026-02-02T00:00:00Z"},
                approval={"approvedBy": "pat", "approvedAt": "2026-02-01T12:00:00Z"}),
    ])
    monkeypatch.setattr(versions.VersionsClient, "connect", classmethod(lambda cls, k, c: client))
    return client


def run(*args: str):
    return CliRunner().invoke(main, ["versions", *args])


def test_cli_list_as_table_json_and_yaml(fake):
    result = run("list")
    assert result.exit_code == 0, result.output
    assert "namespace: core-team (the context's)" in result.stderr
    lines = [line.split() for line in result.stdout.splitlines() if line.strip()]
    assert [line[0] for line in lines] == ["NAME", "core-team-0123456789abcdef",
                                           "core-team-aaaaaaaaaaaaaaaa"]
    assert lines[2][2:4] == ["released", "pat"]
    rows = json.loads(run("list", "-o", "json").stdout)
    assert [(r["name"], r["stream"]) for r in rows] == [("core-team-0123456789abcdef", "candidate"),
                                                        ("core-team-aaaaaaaaaaaaaaaa", "released")]
    assert yaml.safe_load(run("list", "-o", "yaml", "--stream", "released").stdout)[0]["approvedBy"] == "pat"
    empty = run("list", "--stream", "failed")
    assert empty.exit_code == 0 and empty.stdout == ""
    assert "no Versions at stream failed in namespace core-team" in empty.stderr


def test_cli_show(fake):
    result = run("show", "core-team-0123456789abcdef", "-n", "core-team")
    assert result.exit_code == 0, result.output
    assert "Stream nightly: Succeeded" in result.stdout and "namespace:" not in result.stderr
    assert yaml.safe_load(run("show", "core-team-0123456789abcdef", "-o", "yaml").stdout)["hash"] == HASH
    missing = run("show", "core-team-ffffffffffffffff")
    assert missing.exit_code == 1
    assert "error: Version core-team/core-team-ffffffffffffffff does not exist" in missing.stderr
    other = run("show", "core-team-0123456789abcdef", "--project", "northwind")
    assert other.exit_code == 1 and "belongs to project 'core-team', not 'northwind'" in other.stderr


def test_cli_approve_writes_the_callers_name_once(fake):
    result = run("approve", "core-team-0123456789abcdef", "--comment", "QA ok")
    assert result.exit_code == 0, result.output
    [(name, action, body)] = fake.patches
    assert action == "approve" and body["spec"]["approval"]["approvedBy"] == "ada"
    assert body["spec"]["approval"]["comment"] == "QA ok"
    assert "core-team/core-team-0123456789abcdef approved by ada at " in result.stdout
    again = run("approve", "core-team-aaaaaaaaaaaaaaaa")
    assert again.exit_code == 1
    assert ("Version core-team/core-team-aaaaaaaaaaaaaaaa is already approved by pat at "
            "2026-02-01T12:00:00Z; an approval is never changed or withdrawn") in again.stderr
    assert len(fake.patches) == 1


def test_cli_rerun_sets_a_fresh_annotation_and_refuses_a_released_version(fake):
    result = run("rerun", "core-team-0123456789abcdef", "--stream", "nightly")
    assert result.exit_code == 0, result.output
    [(_, action, body)] = fake.patches
    value = body["metadata"]["annotations"]["argo-delivery.io/rerun-nightly"]
    assert action == "rerun" and f"argo-delivery.io/rerun-nightly={value}" in result.stdout
    released = run("rerun", "core-team-aaaaaaaaaaaaaaaa", "--stream", "alpha")
    assert released.exit_code == 1 and "was released at 2026-02-02T00:00:00Z" in released.stderr
    assert len(fake.patches) == 1


# --- patches -----------------------------------------------------------------------------------

def test_approval_patch_is_a_merge_patch_of_spec_approval():
    at = datetime(2026, 3, 1, 12, 0, 0, 987654, tzinfo=UTC)
    assert approval_patch("ada", at, "QA ok") == {"spec": {"approval": {
        "approvedBy": "ada", "approvedAt": "2026-03-01T12:00:00Z", "comment": "QA ok"}}}
    assert approval_patch("ada", at) == {"spec": {"approval": {
        "approvedBy": "ada", "approvedAt": "2026-03-01T12:00:00Z"}}}


def test_rerun_patch_is_a_fresh_rfc3339_nanosecond_timestamp():
    first, second = rerun_patch("alpha"), rerun_patch("alpha")
    key = promotion.RERUN_ANNOTATION.format(stream="alpha")
    values = [p["metadata"]["annotations"][key] for p in (first, second)]
    assert values[0] != values[1]
    assert all(len(v) == len("2026-03-01T12:00:00.123456789Z") and v.endswith("Z") for v in values)
    assert versions.rfc3339_nanos(1_772_366_400_000_000_042) == "2026-03-01T12:00:00.000000042Z"
    with pytest.raises(VersionsError, match="expected one of alpha, nightly"):
        rerun_patch("candidate")


# --- refusals ----------------------------------------------------------------------------------

RBAC_403 = json.dumps({
    "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403,
    "message": 'versions.argo-delivery.io "core-team-0123456789abcdef" is forbidden: User "bob" '
               'cannot patch resource "versions" in API group "argo-delivery.io" in the namespace '
               '"core-team"'})


def test_an_rbac_403_names_the_role_the_user_lacks():
    sentence = refusal(403, RBAC_403, action="approve", target="Version core-team/x",
                       namespace="core-team")
    assert sentence.startswith("bob may not approve Version core-team/x: that needs the Role "
                               "argo-delivery-product-owner in namespace core-team (product owners "
                               "hold it).")
    assert 'User "bob" cannot patch resource "versions"' in sentence
    assert "argo-delivery-developer in namespace core-team" in refusal(
        403, RBAC_403, action="rerun", target="Version core-team/x", namespace="core-team")
    read = refusal(403, RBAC_403.replace("patch", "list"), action="read", target="Versions",
                   namespace="core-team")
    assert "argo-delivery-developer or argo-delivery-product-owner" in read


@pytest.mark.parametrize("code", [403, 422])
def test_an_admission_refusal_shows_the_policys_message_verbatim(code):
    message = ("versions.argo-delivery.io \"x\" is forbidden: ValidatingAdmissionPolicy "
               "'argo-delivery-approvals' with binding 'argo-delivery-approvals' denied request: "
               "only a candidate can be approved [sic: 'quotes' and [brackets]]")
    body = {"kind": "Status", "code": code, "message": message}
    sentence = refusal(code, json.dumps(body), action="approve", target="Version core-team/x",
                       namespace="core-team")
    assert sentence == f"the API server refused the approval of Version core-team/x (HTTP {code}): {message}"


def test_other_answers():
    assert "log in again" in refusal(401, '{"message": "Unauthorized"}', action="read",
                                     target="Versions", namespace="n")
    assert refusal(404, "not json", action="read", target="Version n/x", namespace="n") == \
        "Version n/x does not exist (HTTP 404): not json"


def test_the_roles_are_the_ones_tenancy_binds():
    from argo_delivery.tenancy import DEVELOPER, PRODUCT_OWNER

    assert (versions.DEVELOPER_ROLE, versions.PRODUCT_OWNER_ROLE) == (DEVELOPER.name, PRODUCT_OWNER.name)


# --- wait ---------------------------------------------------------------------------------------

def test_parse_wait_for():
    assert parse_wait_for("stream=candidate") == WaitFor("stream", "candidate")
    assert parse_wait_for("condition=AlphaPassed") == WaitFor("condition", "AlphaPassed", "True")
    assert parse_wait_for("condition=AlphaPassed=false") == WaitFor("condition", "AlphaPassed", "False")
    for bad, message in (("stream=beta", "the streams are alpha, nightly, candidate, released, failed"),
                         ("condition=Ready", "conditions are AlphaPassed, NightlyPassed, Approved"),
                         ("condition=Approved=yes", "True, False or Unknown"),
                         ("candidate", "expected stream=STREAM or condition=TYPE")):
        with pytest.raises(VersionsError, match=message) as caught:
            parse_wait_for(bad)
        assert caught.value.usage


def test_a_stream_is_reached_at_it_or_past_it():
    nightly = version(status=settled({"alpha": PASSED_ALPHA}))
    assert evaluate(nightly, WaitFor("stream", "alpha")).ok
    assert evaluate(nightly, WaitFor("stream", "nightly")).ok
    assert not evaluate(nightly, WaitFor("stream", "candidate")).done
    assert evaluate(nightly, WaitFor("condition", "AlphaPassed", "True")).ok
    assert not evaluate(nightly, WaitFor("condition", "NightlyPassed", "True")).done


def test_a_failed_version_ends_the_wait_with_its_failing_suites():
    failed = version(status=settled({"alpha": PASSED_ALPHA, "nightly": FAILED_NIGHTLY}))
    outcome = evaluate(failed, WaitFor("stream", "candidate"))
    assert outcome.done and not outcome.ok
    assert "failed while waiting for stream=candidate" in outcome.message
    assert "nightly/e2e: Failed (ExitCode, exit code 3): the suite exited with code 3" in outcome.message
    assert evaluate(failed, WaitFor("stream", "failed")).ok
    assert evaluate(failed, WaitFor("condition", "AlphaPassed", "True")).ok
    # a rerun of the failed stream asked for after it started: keep waiting
    failed["metadata"]["annotations"] = {"argo-delivery.io/rerun-nightly": "2026-03-01T11:50:00.5Z"}
    assert not evaluate(failed, WaitFor("stream", "candidate")).done
    failed["metadata"]["annotations"] = {"argo-delivery.io/rerun-nightly": "2026-03-01T09:50:00Z"}
    assert evaluate(failed, WaitFor("stream", "candidate")).done


class FakeWatch:
    """`listed` answers from a list of Versions; `watch` plays scripted batches of events."""

    def __init__(self, listed, batches):
        self.listings = list(listed)
        self.batches = list(batches)
        self.calls: list[tuple[str, str]] = []

    def listed(self, name, namespace):
        self.calls.append(("list", ""))
        current = self.listings.pop(0)
        return current, (current or {}).get("metadata", {}).get("resourceVersion", "1")

    def watch(self, name, namespace, resource_version, timeout):
        self.calls.append(("watch", resource_version))
        batch = self.batches.pop(0) if self.batches else []
        for event in batch:
            if isinstance(event, Exception):
                raise event
            yield event


def at_stream(stream_runs: dict, rv: str) -> dict:
    v = version(status=settled(stream_runs))
    v["metadata"]["resourceVersion"] = rv
    return v


def test_wait_follows_the_watch_resumes_it_and_lists_again_when_it_expired():
    new = at_stream({}, "10")
    nightly = at_stream({"alpha": PASSED_ALPHA}, "11")
    candidate = at_stream({"alpha": PASSED_ALPHA, "nightly": {**PASSED_ALPHA, "workflow": "n"}}, "20")
    client = FakeWatch([new, nightly], [
        [{"type": "BOOKMARK", "raw_object": {"metadata": {"resourceVersion": "10b"}}}],  # ends
        [WatchExpired()],                                                            # 410
        [{"type": "MODIFIED", "raw_object": nightly},
         {"type": "MODIFIED", "raw_object": candidate}],
    ])
    seen: list[str] = []
    outcome = versions.wait(client, "core-team-0123456789abcdef", "core-team",
                            WaitFor("stream", "candidate"), 60, progress=seen.append)
    assert outcome.ok and "is at stream candidate" in outcome.message
    assert client.calls == [("list", ""), ("watch", "10"), ("watch", "10b"), ("list", ""),
                            ("watch", "11")]
    assert [s.split(";")[0] for s in seen] == ["stream alpha", "stream nightly", "stream candidate"]


def test_wait_times_out_with_the_last_state_and_sees_a_deletion():
    ticks = iter(range(0, 1000, 40))
    nightly = at_stream({"alpha": PASSED_ALPHA}, "5")
    client = FakeWatch([nightly], [[], [], [], []])
    outcome = versions.wait(client, "v", "core-team", WaitFor("stream", "candidate"), 90,
                            clock=lambda: next(ticks))
    assert outcome.done and not outcome.ok
    assert outcome.message.startswith("timed out after 1m30s waiting for stream=candidate on "
                                      "Version core-team/v; last observed: stream nightly; "
                                      "AlphaPassed=True (AllSuitesPassed)")
    gone = FakeWatch([nightly], [[{"type": "DELETED", "raw_object": nightly}]])
    outcome = versions.wait(gone, "v", "core-team", WaitFor("stream", "candidate"), 90)
    assert not outcome.ok and "was deleted while waiting for stream=candidate" in outcome.message
    missing = versions.wait(FakeWatch([None], []), "v", "core-team", WaitFor("stream", "alpha"), 9)
    assert not missing.ok and missing.message == "no Version v in namespace core-team"


# --- arguments ---------------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["wait", "v", "--for", "stream=beta"], "the streams are"),
    (["wait", "v", "--for", "stream=candidate", "--timeout", "10x"], "--timeout"),
    (["wait", "v"], "Missing option '--for'"),
    (["rerun", "v", "--stream", "candidate"], "'candidate' is not one of 'alpha', 'nightly'"),
    (["rerun", "v"], "Missing option '--stream'"),
    (["list", "-A", "-n", "core-team"], "--all-namespaces and --namespace exclude each other"),
    (["list", "-o", "wide"], "'wide' is not one of 'table', 'json', 'yaml'"),
    (["show"], "Missing argument 'NAME'"),
])
def test_bad_arguments_exit_2(args, message):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_an_unreadable_kubeconfig_exits_2(tmp_path):
    result = run("list", "--kubeconfig", str(tmp_path / "missing"))
    assert result.exit_code == 2
    assert "cannot load the kubeconfig" in result.stderr and str(tmp_path / "missing") in result.stderr


def test_the_context_namespace(tmp_path):
    from argo_delivery.apply import ApplyError, context_namespace

    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "a",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "a", "context": {"cluster": "c", "user": "u", "namespace": "core-team"}},
                     {"name": "b", "context": {"cluster": "c", "user": "u"}}]}))
    assert context_namespace(str(path)) == "core-team"
    assert context_namespace(str(path), "b") == "default"
    with pytest.raises(ApplyError, match="has no context 'nope'"):
        context_namespace(str(path), "nope")
