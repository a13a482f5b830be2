"""The rendered environment steps (prepare, destroy-start, release, reap, and the release step's
demo follow), run as Argo would, against the real API server, each with a token of the
ServiceAccount its template names: the RBAC rules and the admission policies of the bundle are
the ones that decide. The Terraform and deploy steps need a cluster to vend into: the
end-to-end suite runs the whole vend and destroy (tests/e2e/test_environments.py).
"""

from __future__ import annotations

import json
import secrets
import time

import pytest
import yaml

from argo_delivery import envmodel
from argo_delivery.bundle import build_bundle
from argo_delivery.config import default_config_text, parse_config
from argo_delivery.versionhash import version_name
from tests.kube_server import ApiError
from tests.stepscripts import run_step, script_template

pytestmark = pytest.mark.apiserver

NS = "core-team"
ENVS = f"/apis/argo-delivery.io/v1alpha1/namespaces/{NS}/environments"
VERSIONS = f"/apis/argo-delivery.io/v1alpha1/namespaces/{NS}/versions"
DEVELOPER = ("envstep-dev", ["acme:core-developers"])
OTHER = ("envstep-other", ["acme:core-developers"])
ACCOUNTS = {"prepare": "argo-delivery-environment-vendor",
            "destroy-start": "argo-delivery-environment-destroyer",
            "release": "argo-delivery-environment-destroyer",
            "reap": "argo-delivery-environment-reaper",
            "follow": "argo-delivery-stream-recorder"}


@pytest.fixture(scope="module")
def bundle():
    data = yaml.safe_load(default_config_text())
    data["environments"] = {"expiryWarning": "1h"}
    return build_bundle(parse_config(yaml.safe_dump(data), "environments.yaml"))


@pytest.fixture(scope="module")
def installed(kube, bundle):
    kube.apply(bundle.resources)
    deadline = time.monotonic() + 30
    while True:   # the policies take a moment to be enforced
        try:
            kube.request("POST", ENVS, env_body("probe", "x", OTHER[0], ttl="900h"),
                         as_user=DEVELOPER)
        except ApiError as exc:
            if exc.status == 422:
                break
        assert time.monotonic() < deadline, "the environment policies never took effect"
        time.sleep(0.5)
    return bundle


def env_body(name, version, owner, ttl=None, expires=None):
    body = {"apiVersion": "argo-delivery.io/v1alpha1", "kind": "Environment",
            "metadata": {"name": name, "namespace": NS, "annotations": {}},
            "spec": {"project": NS, "version": version, "owner": owner,
                     "infrastructure": {"variables": {"size": "large", "name": "forged"}}}}
    if ttl:
        body["metadata"]["annotations"]["argo-delivery.io/ttl"] = ttl
    if expires:
        body["metadata"]["annotations"]["argo-delivery.io/expires"] = expires
    return body


class Steps:
    def __init__(self, kube, bundle, tmp_path):
        self.kube, self.tmp_path = kube, tmp_path
        files = bundle.files
        vend = yaml.safe_load(files[f"namespaces/{NS}/workflowtemplate/vend-environment.yaml"])
        destroy = yaml.safe_load(files[f"namespaces/{NS}/workflowtemplate/destroy-environment.yaml"])
        reap = yaml.safe_load(files[f"namespaces/{NS}/workflowtemplate/reap-environments.yaml"])
        release = yaml.safe_load(files[f"namespaces/{NS}/workflowtemplate/release.yaml"])
        self.scripts = {"prepare": script_template(vend, "prepare"),
                        "destroy-start": script_template(destroy, "start"),
                        "release": script_template(destroy, "release"),
                        "reap": script_template(reap, "reap"),
                        "follow": script_template(release, "release")}
        self.tokens = {}

    def run(self, step, environment="", **values):
        workdir = self.tmp_path / f"{step}-{environment or 'all'}-{secrets.token_hex(3)}"
        workdir.mkdir()
        account = ACCOUNTS[step]
        if account not in self.tokens:
            token = workdir / "token"
            token.write_text(self.kube.token_for(NS, account))
            self.tokens[account] = token
        substitutions = {"workflow.namespace": NS, "workflow.name": f"wf-{step}",
                         "workflow.parameters.environment": environment,
                         "workflow.parameters.version": values.pop("version", ""),
                         "workflow.parameters.dry-run": values.pop("dry_run", "false")}
        result = run_step(self.scripts[step], substitutions, {
            "AD_API_SERVER": self.kube.server, "AD_TOKEN_FILE": str(self.tokens[account]),
            "AD_CA_FILE": str(self.kube.ca_file), "AD_OUTPUT_DIR": str(workdir),
            "HOME": str(workdir), **values.pop("env", {})}, workdir)
        outputs = {p.name.removeprefix("out-"): p.read_text() for p in workdir.glob("out-*")}
        # the reaper's numbers, read by its template's metrics (argo_delivery/metrics.py)
        outputs.update({p.name: p.read_text() for p in workdir.glob("metric-*")})
        report = workdir / "report.json"
        if report.exists():
            outputs["report"] = json.loads(report.read_text())
        return result, outputs


@pytest.fixture
def steps(kube, installed, tmp_path):
    return Steps(kube, installed, tmp_path)


def new_version(kube, stream=None) -> str:
    digest = "sha256:" + secrets.token_hex(32)
    name = version_name(NS, digest)
    kube.request("POST", VERSIONS, {
        "apiVersion": "argo-delivery.io/v1alpha1", "kind": "Version", "metadata": {"name": name},
        "spec": {"project": NS, "hash": digest, "components": [
            {"name": n, "repo": f"https://github.com/acme-platform/{n}",
             "commit": secrets.token_hex(20)} for n in ("api", "web", "worker")]}},
        token=kube.token_for(NS, "argo-delivery-version-writer"))
    if stream:
        version = kube.request("GET", f"{VERSIONS}/{name}")
        version["status"] = {"stream": stream}
        if stream == "candidate":
            passed = {"phase": "Succeeded", "reason": "AllSuitesPassed", "message": "passed"}
            version["status"]["streams"] = {"alpha": passed, "nightly": passed}
        kube.request("PUT", f"{VERSIONS}/{name}/status", version)
    return name


def create(kube, name, version, ttl=None, expires=None, user=DEVELOPER):
    return kube.request("POST", ENVS, env_body(name, version, user[0], ttl, expires), as_user=user)


def get(kube, name):
    return kube.request("GET", f"{ENVS}/{name}", ok=(404,))


def test_prepare_refuses_an_unknown_or_failed_version_and_creates_nothing(kube, steps):
    create(kube, "no-version", "core-team-0123456789abcdef")
    result, outputs = steps.run("prepare", "no-version")
    assert result.returncode == 2, result.stdout + result.stderr
    env = get(kube, "no-version")
    assert env["status"]["phase"] == "Failed"
    failed = envmodel.condition(env, envmodel.FAILED)
    assert failed["reason"] == "VersionNotFound"
    assert "core-team-0123456789abcdef does not exist in namespace core-team" in failed["message"]
    assert not env["metadata"].get("finalizers")              # nothing created, nothing held
    assert outputs["skip"] == "true"
    failed_version = new_version(kube, stream="failed")
    create(kube, "bad-version", failed_version)
    result, _ = steps.run("prepare", "bad-version")
    assert result.returncode == 2
    assert envmodel.condition(get(kube, "bad-version"), envmodel.FAILED)["reason"] == "VersionFailed"


def test_prepare_bounds_an_expiry_beyond_max_ttl(kube, steps):
    version = new_version(kube)
    create(kube, "far-future", version, expires="2099-01-01T00:00:00Z")   # admission: RFC 3339
    result, _ = steps.run("prepare", "far-future")
    assert result.returncode == 2
    failed = envmodel.condition(get(kube, "far-future"), envmodel.FAILED)
    assert failed["reason"] == "ExpiryBeyondMaxTTL"
    assert "maxTTL 72h (" in failed["message"]


def test_prepare_takes_the_finalizer_and_the_facts_override_the_variables(kube, steps):
    version = new_version(kube, stream="alpha")
    create(kube, "good", version, ttl="2h")
    result, outputs = steps.run("prepare", "good")
    assert result.returncode == 0, result.stdout + result.stderr
    env = get(kube, "good")
    assert env["metadata"]["finalizers"] == [envmodel.FINALIZER]
    assert env["status"]["phase"] == "Provisioning"
    assert env["status"]["expiresAt"] > env["metadata"]["creationTimestamp"]
    assert (outputs["skip"], outputs["apply"]) == ("false", "true")
    tfvars = json.loads(outputs["tfvars"])
    # project defaults < the Environment's variables < the facts nobody may override
    assert tfvars["region"] == "eu-central" and tfvars["size"] == "large"
    assert tfvars["name"] == "good" and tfvars["owner"] == DEVELOPER[0]
    assert tfvars["version_name"] == version and tfvars["version_hash"].startswith("sha256:")
    components = json.loads(outputs["components"])
    assert [(c["name"], c["deployPath"]) for c in components] == [
        ("api", "deploy/kubernetes"), ("web", "deploy/kubernetes"), ("worker", "charts/worker")]
    # again (a duplicate trigger): one finalizer still
    assert steps.run("prepare", "good")[0].returncode == 0
    assert get(kube, "good")["metadata"]["finalizers"] == [envmodel.FINALIZER]


def test_destroy_releases_the_finalizer_only_through_its_own_account(kube, steps):
    version = new_version(kube)
    create(kube, "to-destroy", version)
    assert steps.run("prepare", "to-destroy")[0].returncode == 0
    kube.request("DELETE", f"{ENVS}/to-destroy", as_user=DEVELOPER)
    result, outputs = steps.run("destroy-start", "to-destroy")
    assert result.returncode == 0, result.stderr
    assert outputs["skip"] == "false" and json.loads(outputs["tfvars"])["name"] == "to-destroy"
    assert get(kube, "to-destroy")["status"]["phase"] == "Destroying"
    # the owner may not drop the finalizer (the lifecycle policy: verb finalize)
    with pytest.raises(ApiError, match="may not remove the finalizer"):
        kube.request("PATCH", f"{ENVS}/to-destroy", {"metadata": {"finalizers": []}},
                     content_type="application/merge-patch+json", as_user=DEVELOPER)
    result, _ = steps.run("release", "to-destroy")
    assert result.returncode == 0, result.stderr
    assert get(kube, "to-destroy").get("kind") != "Environment"    # gone


def test_the_reaper_deletes_warns_retries_and_a_dry_run_only_reports(kube, steps):
    version = new_version(kube)
    create(kube, "expired", version, ttl="1s", user=OTHER)       # someone else's
    create(kube, "expiring", version, ttl="30m")
    create(kube, "fresh", version, ttl="2h")
    create(kube, "stuck", version)
    assert steps.run("prepare", "stuck")[0].returncode == 0
    kube.request("DELETE", f"{ENVS}/stuck", as_user=DEVELOPER)
    stuck = get(kube, "stuck")
    stuck["status"]["conditions"] = envmodel.with_condition(
        stuck["status"].get("conditions"), envmodel.FAILED, "True", "DestroyFailed", "boom")
    kube.request("PUT", f"{ENVS}/stuck/status", stuck)
    create(kube, "unclaimed", version, ttl="2h")     # no vend ever took it
    time.sleep(1.5)
    result, outputs = steps.run("reap", dry_run="true", env={"AD_UNCLAIMED_SECONDS": "1"})
    assert result.returncode == 0, result.stderr
    report = outputs["report"]
    assert report["dryRun"] is True
    assert "expired" in report["delete"] and "expiring" in report["warn"]
    assert "stuck" in report["retryDestroy"] and "fresh" not in report["delete"] + report["warn"]
    assert "unclaimed" in report["retryVend"] and "stuck" not in report["retryVend"]
    assert get(kube, "expired")["metadata"]["name"] == "expired"     # untouched
    assert outputs["metric-action-deleted"] == outputs["metric-action-warned"] == "0"
    assert int(outputs["metric-phase-none"]) >= 4 and int(outputs["metric-phase-provisioning"]) >= 1
    assert int(outputs["metric-overdue"]) < 60                        # "expired": 1s TTL, 1.5s ago
    result, outputs = steps.run("reap", env={"AD_UNCLAIMED_SECONDS": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    # every action that succeeded is counted (a retry-vend of "expired", deleted just before,
    # does not succeed)
    assert {key: outputs[f"metric-action-{key}"] for key in
            ("deleted", "warned", "retried-destroy")} == {
        "deleted": "1", "warned": "1", "retried-destroy": "1"}
    assert 3 <= int(outputs["metric-action-retried-vend"]) <= len(outputs["report"]["retryVend"])
    assert get(kube, "unclaimed")["metadata"]["annotations"][envmodel.RETRY_VEND_ANNOTATION]
    assert get(kube, "expired").get("kind") != "Environment"         # deleted (no finalizer)
    expiring = get(kube, "expiring")
    warned = envmodel.condition(expiring, envmodel.EXPIRING_SOON)
    assert warned["status"] == "True" and "expires at" in warned["message"]
    events = kube.request("GET", f"/api/v1/namespaces/{NS}/events?fieldSelector="
                                 "involvedObject.name%3Dexpiring")["items"]
    assert [e["reason"] for e in events] == ["ExpiringSoon"]
    assert get(kube, "stuck")["metadata"]["annotations"][envmodel.RETRY_DESTROY_ANNOTATION]
    # a second run warns no more (one Event per expiry)
    steps.run("reap")
    events = kube.request("GET", f"/api/v1/namespaces/{NS}/events?fieldSelector="
                                 "involvedObject.name%3Dexpiring")["items"]
    assert len(events) == 1


def test_a_release_moves_the_demo_environments_to_it(kube, steps):
    demo = get(kube, "core-demo")
    assert demo["spec"]["demo"] is True and "version" not in demo["spec"]
    name = new_version(kube, stream="candidate")
    kube.request("PATCH", f"{VERSIONS}/{name}", {"spec": {"approval": {
        "approvedBy": "envstep-po", "approvedAt": "2026-11-29T08:00:00Z"}}},
        content_type="application/merge-patch+json",
        as_user=("envstep-po", ["acme:product-owners"]))
    result, _ = steps.run("follow", version=name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert get(kube, "core-demo")["spec"]["version"] == name
    # nobody but the release (the verb manage) moves a demo environment
    with pytest.raises(ApiError, match="may not move Environment core-demo"):
        kube.request("PATCH", f"{ENVS}/core-demo", {"spec": {"version": "core-team-x"}},
                     content_type="application/merge-patch+json", as_user=DEVELOPER)
