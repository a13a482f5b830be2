"""backup.velero in the config: off by default, validated where it is written, and what the
Schedule and the restore modifiers cover."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from argo_delivery import velero
from argo_delivery.bundle import build_bundle
from argo_delivery.config import (
    ConfigError,
    default_config_text,
    go_duration_seconds,
    load_config,
    load_default,
    parse_config,
)
from argo_delivery.lint import lint_documents
from argo_delivery.naming import ANNOTATION_RESTORED

HERE = Path(__file__).parent


def _config(velero=None, **changes):
    data = yaml.safe_load(default_config_text())
    if velero is not None:
        data["backup"] = {"velero": velero}
    data.update(changes)
    return parse_config(yaml.safe_dump(data), "velero.yaml")


def _velero_resources(config):
    return [r for r in build_bundle(config).resources
            if r["apiVersion"] == "velero.io/v1" or r["metadata"].get("namespace") == "velero"]


def test_off_by_default():
    config = load_default()
    assert config.velero is None
    assert not [r for r in build_bundle(config).resources
                if r["apiVersion"].startswith("velero.io")
                or r["metadata"].get("namespace") == "velero"]


def test_the_schedule_covers_the_orchestrator_and_every_project_namespace():
    config = _config({"schedule": "0 3 * * *", "ttl": "720h0m0s", "storageLocation": "offsite",
                      "labels": {"team": "ops"}})
    resources = _velero_resources(config)
    assert [(r["kind"], r["metadata"]["name"]) for r in resources] == [
        ("ConfigMap", "argo-delivery-restore"), ("Schedule", "argo-delivery")]
    schedule = resources[1]
    assert schedule["metadata"]["namespace"] == "velero"
    assert schedule["metadata"]["labels"]["team"] == "ops"
    assert schedule["metadata"]["labels"]["argo-delivery.io/bundle"] == "acme-platform"
    spec = schedule["spec"]
    assert spec["schedule"] == "0 3 * * *"
    template = spec["template"]
    expected = sorted({config.orchestrator_namespace, *(p.namespace for p in config.projects)})
    assert template["includedNamespaces"] == expected == ["argo-delivery", "core-team",
                                                          "partner-northwind"]
    assert template["ttl"] == "720h0m0s"
    assert template["storageLocation"] == "offsite"
    # the Backups' labels: not the Schedule's (bundle, ApplySet membership), which Velero
    # would copy without these
    assert template["metadata"] == {"labels": {"app.kubernetes.io/part-of": "argo-delivery",
                                               "team": "ops"}}
    assert template["snapshotVolumes"] is False
    # new-style filters only (Velero refuses a mix with includeClusterResources/includedResources)
    assert not {"includeClusterResources", "includedResources", "excludedResources"} & set(template)
    # every namespace-scoped kind but run state: our CRs, Secrets (Terraform state), Roles stay in
    excluded = template["excludedNamespaceScopedResources"]
    for kept in ("projects.argo-delivery.io", "versions.argo-delivery.io",
                 "environments.argo-delivery.io", "secrets", "roles.rbac.authorization.k8s.io",
                 "configmaps", "sensors.argoproj.io", "eventsources.argoproj.io"):
        assert kept not in excluded
    assert {"pods", "workflows.argoproj.io", "leases.coordination.k8s.io"} <= set(excluded)
    assert "includedNamespaceScopedResources" not in template   # Velero's default: every kind
    # cluster-scoped: CRDs neither included nor excluded, so Velero's backupCRD step adds the
    # definitions of the custom resources it backed up (ours among them)
    assert "includedClusterScopedResources" not in template
    assert "excludedClusterScopedResources" not in template


def test_a_project_namespace_of_its_own_is_covered():
    data = yaml.safe_load(default_config_text())
    data["projects"][0]["namespace"] = "core-elsewhere"
    data["backup"] = {"velero": {"schedule": "@daily"}}
    config = parse_config(yaml.safe_dump(data), "velero.yaml")
    schedule = next(r for r in _velero_resources(config) if r["kind"] == "Schedule")
    assert "core-elsewhere" in schedule["spec"]["template"]["includedNamespaces"]
    assert "core-team" not in schedule["spec"]["template"]["includedNamespaces"]


def test_defaults_ttl_namespace_and_location():
    config = _config({"schedule": "@daily"})
    assert (config.velero.ttl, config.velero.namespace, config.velero.storage_location) == \
        ("720h", "velero", None)
    config = _config({"schedule": "@every 6h", "namespace": "backup-system"})
    resources = [r for r in build_bundle(config).resources
                 if r["metadata"].get("namespace") == "backup-system"]
    assert [r["kind"] for r in resources] == ["ConfigMap", "Schedule"]
    schedule = resources[1]
    assert schedule["spec"]["schedule"] == "@every 6h"
    assert "storageLocation" not in schedule["spec"]["template"]   # Velero's default location
    assert schedule["spec"]["template"]["metadata"] == {
        "labels": {"app.kubernetes.io/part-of": "argo-delivery"}}


def test_the_restore_modifiers_mark_versions_and_environments():
    config = _config({"schedule": "@daily"})
    configmap = next(r for r in build_bundle(config).resources
                     if r["metadata"]["name"] == "argo-delivery-restore")
    assert list(configmap["data"]) == ["resource-modifiers.yaml"]   # Velero wants one key
    modifiers = yaml.safe_load(configmap["data"]["resource-modifiers.yaml"])
    assert modifiers["version"] == "v1"
    rules = modifiers["resourceModifierRules"]
    assert [r["conditions"]["groupResource"] for r in rules] == [
        "versions.argo-delivery.io", "environments.argo-delivery.io"]
    for rule in rules:
        assert set(rule) == {"conditions", "mergePatches"}
        patch = yaml.safe_load(rule["mergePatches"][0]["patchData"])
        assert patch == {"metadata": {"annotations": {ANNOTATION_RESTORED: "velero"}}}


def test_the_bundle_with_velero_lints_clean():
    config = _config({"schedule": "0 3 * * *", "storageLocation": "default"})
    resources = build_bundle(config).resources
    findings = lint_documents([(f"{r['kind']}/{r['metadata']['name']}", r) for r in resources])
    assert findings == []


@pytest.mark.parametrize(("text", "seconds"), [
    ("720h", 2592000), ("720h0m0s", 2592000), ("1.5h", 5400), (".5h", 1800), ("90m", 5400),
    ("+2h", 7200), ("0", 0), ("-1h", -3600), ("1h30m15s", 5415), ("500ms", 0.5)])
def test_go_durations_as_go_reads_them(text, seconds):
    assert go_duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["30d", "", "h", "1h30", "1 h", "1H", "1e3h", "--1h"])
def test_what_go_refuses(text):
    with pytest.raises(ValueError):
        go_duration_seconds(text)


def test_problems_name_their_place_in_the_file():
    path = HERE / "bad_configs" / "velero_bad_ttl.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    [problem] = caught.value.problems
    assert (problem.source, problem.path, problem.line, problem.column) == (
        str(path), "backup.velero.ttl", 16, 10)
    assert "did you mean 720h?" in problem.message
    path = HERE / "bad_configs" / "velero_bad_cron.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    [problem] = caught.value.problems
    assert (problem.path, problem.line) == ("backup.velero.schedule", 14)


@pytest.mark.parametrize(("velero", "message"), [
    ({"schedule": "0 25 * * *"}, "hour field '25' of '0 25 * * *' is out of range"),
    ({"schedule": "0 3 30 2 *"}, "never fires"),
    ({"schedule": "@dialy"}, "did you mean '@daily'?"),
    ({"schedule": "@daily", "ttl": "-24h"}, "is not a retention"),
    ({"schedule": "@daily", "ttl": 720}, "expected string, found integer 720"),
    ({"ttl": "720h"}, "missing required key 'schedule'"),
    ({"schedule": "@daily", "location": "x"}, "unknown key 'location' (did you mean 'storageLocation'?)"),
    ({"schedule": "@daily", "namespace": "Velero"}, "backup.velero.namespace: expected a DNS label"),
])
def test_refused(velero, message):
    with pytest.raises(ConfigError) as caught:
        _config(velero)
    assert message in str(caught.value)


def test_the_readme_restore_command_is_the_one_the_module_gives():
    readme = (HERE.parent.parent / "README.md").read_text()
    joined = readme.replace(" \\\n  ", " ")
    assert velero.restore_command(_config({"schedule": "@daily"})) in joined
