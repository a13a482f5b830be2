"""`argo-delivery apply` and `diff` on the real API server: phases, idempotence, ApplySet prune
(offboarding a contractor), namespaces kept unless asked, and diffs that show only real changes."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from argo_delivery.apply import APPLYSET_ID_LABEL, APPLYSET_PART_OF, applyset_id
from argo_delivery.bundle import build_bundle, write_bundle
from argo_delivery.cli import main
from argo_delivery.config import parse_config

pytestmark = pytest.mark.apiserver

PLATFORM = """
bundle: {name: offboarding, version: VERSION}
orchestrator: {namespace: ob-delivery}
components:
  - {name: api, repo: https://github.com/acme/api.git, branch: main}
  - {name: billing, repo: https://github.com/partner/billing.git, branch: main}
projects:
  - name: ob-internal
    type: internal
    components: [api]
    members: {developers: [acme:developers]}
CONTRACTOR
images:
  python: python:3.12-slim
  git: python:3.12
  terraform: hashicorp/terraform:1.9.8
schedules: {timeZone: UTC, nightly: "0 2 * * *", reaper: "*/15 * * * *"}
gitProvider:
  type: github
  webhookSecret: {name: hook, key: secret}
"""
CONTRACTOR = """  - name: ob-contractor
    type: external
    components: [billing]
    members: {developers: [partner:developers]}"""


def render(tmp_path, version: str, contractor: bool):
    text = PLATFORM.replace("VERSION", version).replace("CONTRACTOR", CONTRACTOR if contractor else "")
    return write_bundle(build_bundle(parse_config(text, f"{version}.yaml")), tmp_path).path


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundles")
    return render(out, "1.0.0", contractor=True), render(out, "1.1.0", contractor=False)


def cli(kube, *args: str):
    result = CliRunner().invoke(main, [*args, "--kubeconfig", str(kube.kubeconfig)])
    return result


def get(kube, api_version, kind, name, namespace=None):
    from tests.kube_server import ApiError

    try:
        return kube.request("GET", kube.path_for(api_version, kind, name, namespace))
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


CONTRACTOR_OBJECTS = [
    ("argo-delivery.io/v1alpha1", "Project", "ob-contractor"),
    ("v1", "ServiceAccount", "argo-delivery-version-writer"),
    ("v1", "ServiceAccount", "argo-delivery-executor"),
    ("v1", "Secret", "argo-delivery-executor.service-account-token"),
    ("rbac.authorization.k8s.io/v1", "Role", "argo-delivery-developer"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", "argo-delivery-developer"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", "argo-delivery-sensor-on-push-ob-contractor"),
    ("argoproj.io/v1alpha1", "WorkflowTemplate", "generate-version"),
]


def test_apply_offboard_and_diff(kube, bundles):
    v1, v2 = bundles
    first = cli(kube, "apply", str(v1), "--json")
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert report["pruned"] == [] and len(report["applied"]) == len(report["changed"])
    assert (v1.parent / "1.0.0.applied").is_file()   # render --force no longer replaces it

    # every member is labelled with the ApplySet id kubectl would compute for the parent
    set_id = applyset_id("offboarding-applyset", "ob-delivery")
    parent = get(kube, "v1", "Secret", "offboarding-applyset", "ob-delivery")
    assert parent["metadata"]["labels"][APPLYSET_ID_LABEL] == set_id
    assert "Role.rbac.authorization.k8s.io" in \
        parent["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"]
    for api_version, kind, name in CONTRACTOR_OBJECTS:
        stored = get(kube, api_version, kind, name, "ob-contractor")
        assert stored["metadata"]["labels"][APPLYSET_PART_OF] == set_id, (kind, name)

    # a second apply changes nothing, and the cluster shows no difference
    second = json.loads(cli(kube, "apply", str(v1), "--json").stdout)
    assert second["changed"] == [] and second["pruned"] == []
    same = cli(kube, "diff", str(v1))
    assert same.exit_code == 0 and "no differences" in same.output

    # between the bundles: the contractor's objects go, the Sensor and EventSource lose its
    # repository, the orchestrator's quota its Sensor's share; the version label, changed on
    # every object, is not a difference
    between = cli(kube, "diff", str(v1), str(v2), "--json")
    assert between.exit_code == 1
    changes = {(d["change"], d["resource"]) for d in json.loads(between.stdout)}
    removed = {r for c, r in changes if c == "removed"}
    assert {"Project.argo-delivery.io ob-contractor/ob-contractor",
            "ServiceAccount ob-contractor/argo-delivery-version-writer",
            "Secret ob-contractor/argo-delivery-executor.service-account-token",
            "RoleBinding.rbac.authorization.k8s.io ob-contractor/argo-delivery-developer",
            "WorkflowTemplate.argoproj.io ob-contractor/generate-version",
            "Namespace ob-contractor"} <= removed
    assert all(r == "Namespace ob-contractor" or "ob-contractor" in r for r in removed)
    assert "Sensor.argoproj.io ob-delivery/on-push-ob-contractor" in removed
    assert "ServiceAccount ob-delivery/argo-delivery-sensor-on-push-ob-contractor" in removed
    assert {r for c, r in changes if c == "changed"} == {
        "EventSource.argoproj.io ob-delivery/git-push",
        "EventSource.argoproj.io ob-delivery/versions",   # no longer watches its namespace
        "ResourceQuota ob-delivery/argo-delivery-quota",
        "ValidatingAdmissionPolicy.admissionregistration.k8s.io argo-delivery-sensor-workflows"}
    assert not {c for c, _ in changes} - {"removed", "changed"}
    # against the cluster, the same plan
    planned = json.loads(cli(kube, "diff", str(v2), "--json").stdout)
    assert {(d["change"], d["resource"]) for d in planned} == changes

    # a dry run of v2 deletes nothing
    dry = json.loads(cli(kube, "apply", str(v2), "--dry-run", "--json").stdout)
    assert "Project.argo-delivery.io ob-contractor/ob-contractor" in dry["pruned"]
    assert get(kube, "argo-delivery.io/v1alpha1", "Project", "ob-contractor", "ob-contractor")

    # apply v2: the contractor's objects are gone, its namespace is kept, ours untouched
    applied = cli(kube, "apply", str(v2), "--json")
    assert applied.exit_code == 0, applied.output
    offboard = json.loads(applied.stdout)
    for api_version, kind, name in CONTRACTOR_OBJECTS:
        assert get(kube, api_version, kind, name, "ob-contractor") is None, (kind, name)
    assert get(kube, "v1", "Namespace", "ob-contractor") is not None
    assert [k.split(" (")[0] for k in offboard["kept"]] == ["Namespace ob-contractor"]
    assert get(kube, "argo-delivery.io/v1alpha1", "Project", "ob-internal", "ob-internal")
    assert get(kube, "argoproj.io/v1alpha1", "Sensor", "on-push-ob-contractor", "ob-delivery") is None
    assert get(kube, "argoproj.io/v1alpha1", "Sensor", "on-push-ob-internal", "ob-delivery")
    left = json.loads(cli(kube, "diff", str(v2), "--json").stdout)
    assert [(d["change"], d["resource"]) for d in left] == [("removed", "Namespace ob-contractor")]

    # asked to, apply deletes the namespace too
    gone = json.loads(cli(kube, "apply", str(v2), "--prune-namespaces", "--json").stdout)
    assert gone["pruned"] == ["Namespace ob-contractor"] and gone["kept"] == []
    namespace = get(kube, "v1", "Namespace", "ob-contractor")
    assert namespace is None or namespace["metadata"].get("deletionTimestamp")


def test_apply_refuses_a_parent_it_did_not_write(kube, tmp_path):
    bundle = render(tmp_path, "1.0.0", contractor=False)
    text = (bundle / "bundle.json").read_text().replace('"offboarding"', '"hijack"')
    (bundle / "bundle.json").write_text(text)
    # the tampered bundle no longer matches its checksums
    result = cli(kube, "apply", str(bundle))
    assert result.exit_code == 2 and "does not match SHA256SUMS" in result.output


def test_apply_refuses_a_foreign_applyset_parent(kube, tmp_path):
    kube.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ob-foreign"}},
                {"apiVersion": "v1", "kind": "Secret",
                 "metadata": {"name": "foreign-applyset", "namespace": "ob-foreign",
                              "annotations": {"applyset.kubernetes.io/tooling": "kubectl/v1.37.2"},
                              "labels": {APPLYSET_ID_LABEL: applyset_id("foreign-applyset", "ob-foreign")}}}])
    text = PLATFORM.replace("VERSION", "1.0.0").replace("CONTRACTOR", "").replace(
        "name: offboarding", "name: foreign").replace("ob-delivery", "ob-foreign").replace(
        "ob-internal", "ob-foreign-team")
    bundle = write_bundle(build_bundle(parse_config(text, "foreign.yaml")), tmp_path).path
    result = cli(kube, "apply", str(bundle))
    assert result.exit_code == 1
    assert "not the ApplySet parent argo-delivery writes" in result.output
