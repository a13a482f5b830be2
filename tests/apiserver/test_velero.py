"""The Velero Schedule and the restore ConfigMap (backup.velero) on a real API server with
Velero's own CRDs (tests/kube_server.py upstream_crd_files, from its Go module): accepted by the
schemas with strict field validation and stored as written, a malformed Schedule refused (so
the schema is really checked), and the Restore the README prescribes accepted by Velero's
Restore schema."""

from __future__ import annotations

import copy

import pytest
import yaml

from argo_delivery import velero
from argo_delivery.bundle import build_bundle
from argo_delivery.config import default_config_text, parse_config
from tests.kube_server import ApiError

pytestmark = pytest.mark.apiserver

NS = "velero-test"


@pytest.fixture(scope="module")
def config():
    data = yaml.safe_load(default_config_text())
    data["backup"] = {"velero": {"schedule": "0 3 * * *", "ttl": "720h0m0s",
                                 "storageLocation": "default", "namespace": NS,
                                 "labels": {"team": "ops"}}}
    return parse_config(yaml.safe_dump(data), "velero.yaml")


@pytest.fixture(scope="module")
def rendered(kube, config):
    resources = [r for r in build_bundle(config).resources if r["metadata"].get("namespace") == NS]
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
    kube.apply([namespace])
    yield resources
    kube.request("DELETE", f"/api/v1/namespaces/{NS}", ok=(404,))


def test_velero_crds_are_served(kube):
    for plural in ("schedules", "backups", "restores", "backupstoragelocations"):
        crd = kube.request("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                                  f"{plural}.velero.io")
        assert crd["spec"]["group"] == "velero.io"
        assert crd["spec"]["scope"] == "Namespaced"


def test_schedule_and_restore_configmap_are_accepted_and_stored(kube, rendered):
    assert [(r["kind"], r["metadata"]["name"]) for r in rendered] == [
        ("ConfigMap", velero.RESTORE_CONFIGMAP), ("Schedule", velero.SCHEDULE)]
    dry = kube.apply(rendered, dry_run=True)
    assert [d["kind"] for d in dry] == ["ConfigMap", "Schedule"]
    missing = kube.request("GET", kube.path_for("velero.io/v1", "Schedule", velero.SCHEDULE, NS),
                           ok=(404,))
    assert missing["code"] == 404   # the dry run stored nothing
    stored = kube.apply(rendered)
    try:
        for resource, answer in zip(rendered, stored, strict=True):
            body = "data" if resource["kind"] == "ConfigMap" else "spec"
            assert answer[body] == resource[body], resource["metadata"]["name"]
            assert answer["metadata"]["labels"] == resource["metadata"]["labels"]
        read = kube.request("GET", kube.path_for("velero.io/v1", "Schedule", velero.SCHEDULE, NS))
        template = read["spec"]["template"]
        assert template["includedNamespaces"] == ["argo-delivery", "core-team", "partner-northwind"]
        assert template["ttl"] == "720h0m0s"
        assert "pods" in template["excludedNamespaceScopedResources"]
    finally:   # the session's other tests see the default bundle only
        for resource in rendered:
            kube.request("DELETE", kube.path_for(resource["apiVersion"], resource["kind"],
                                                 resource["metadata"]["name"], NS))


def _broken(rendered, change) -> dict:
    schedule = copy.deepcopy(next(r for r in rendered if r["kind"] == "Schedule"))
    schedule["metadata"]["name"] = "broken"
    change(schedule["spec"])
    return schedule


@pytest.mark.parametrize(("change", "message"), [
    (lambda spec: spec["template"].update(includeNamespaces=["core-team"]),   # a typo
     'unknown field "spec.template.includeNamespaces"'),
    (lambda spec: spec["template"].update(ttl=720), "spec.template.ttl"),       # not a string
    (lambda spec: spec["template"].update(snapshotVolumes="no"), "spec.template.snapshotVolumes"),
    (lambda spec: spec.pop("schedule"), "spec.schedule"),                       # required
], ids=["unknown-field", "ttl-type", "bool-type", "no-schedule"])
def test_a_malformed_schedule_is_refused_by_velero_schema(kube, rendered, change, message):
    # create, not apply: the schema validator's own messages (see KubeServer.apply)
    with pytest.raises(ApiError, match=message.replace(".", r"\.")) as caught:
        kube.create(_broken(rendered, change), dry_run=True)
    assert caught.value.status in (400, 422)


def test_the_readme_restore_passes_velero_restore_schema(kube, rendered, config):
    restore = velero.restore(config, "from-argo-delivery")
    [answer] = kube.apply([restore], dry_run=True)
    assert answer["spec"] == restore["spec"]
    wrong = copy.deepcopy(restore)
    wrong["spec"]["restoreStatus"]["includeResources"] = wrong["spec"]["restoreStatus"].pop(
        "includedResources")
    with pytest.raises(ApiError, match='unknown field "spec.restoreStatus.includeResources"'):
        kube.create(wrong, dry_run=True)
