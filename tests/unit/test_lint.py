"""Lint: the default bundle is clean, and every rule catches a resource that breaks it."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from argo_delivery.cli import main
from argo_delivery.lint import DISABLE_ANNOTATION, RULES, LintOptions, lint_documents, lint_paths


def docs_of(bundle) -> list[tuple[str, dict[str, Any]]]:
    return [(p, yaml.safe_load(d)) for p, d in bundle.files.items()
            if p.endswith(".yaml") and not p.endswith("kustomization.yaml")]


def find(bundle, kind: str, name: str | None = None) -> dict[str, Any]:
    for resource in bundle.resources:
        if resource["kind"] == kind and (name is None or resource["metadata"]["name"] == name):
            return copy.deepcopy(resource)
    raise LookupError(kind)


def test_default_bundle_is_clean_without_upstream(default_bundle_dir):
    findings, notes = lint_paths([default_bundle_dir], upstream=False)
    assert findings == []
    assert notes == []


def _template(doc):
    return doc["spec"]["templates"][0]


def _script(doc):
    return _template(doc)["script"]


def _del(mapping: dict, key: str) -> None:
    del mapping[key]


# rule id -> (kind, mutation, field the finding must name)
BREAKERS: dict[str, tuple[str, Callable[[dict[str, Any]], None], str]] = {
    "AD001": ("WorkflowTemplate", lambda d: (_script(d)["securityContext"].pop("runAsNonRoot"),
                                             d["spec"]["securityContext"].pop("runAsNonRoot")),
              "spec.templates[0].script.securityContext.runAsNonRoot"),
    "AD002": ("WorkflowTemplate", lambda d: _script(d)["securityContext"].update(
        allowPrivilegeEscalation=True), "spec.templates[0].script.securityContext.allowPrivilegeEscalation"),
    "AD003": ("WorkflowTemplate", lambda d: _script(d)["securityContext"].update(
        capabilities={"drop": ["NET_RAW"]}), "spec.templates[0].script.securityContext.capabilities.drop"),
    "AD004": ("WorkflowTemplate", lambda d: (_script(d)["securityContext"].pop("seccompProfile"),
                                             d["spec"]["securityContext"].pop("seccompProfile")),
              "spec.templates[0].script.securityContext.seccompProfile"),
    "AD005": ("WorkflowTemplate", lambda d: _script(d)["securityContext"].update(
        readOnlyRootFilesystem=False), "spec.templates[0].script.securityContext.readOnlyRootFilesystem"),
    "AD006": ("WorkflowTemplate", lambda d: _script(d)["resources"].pop("limits"),
              "spec.templates[0].script.resources"),
    "AD007": ("WorkflowTemplate", lambda d: d["spec"].update(serviceAccountName="default"),
              "spec.serviceAccountName"),
    "AD008": ("Role", lambda d: d["rules"][0].update(verbs=["*"]), "rules[0].verbs"),
    "AD009": ("WorkflowTemplate", lambda d: _template(d).update(podSpecPatch='{"hostPID": true}'),
              "spec.templates[0].podSpecPatch"),
    "AD010": ("WorkflowTemplate", lambda d: _del(d["spec"], "activeDeadlineSeconds"),
              "spec.activeDeadlineSeconds"),
    "AD011": ("WorkflowTemplate", lambda d: _del(d["spec"], "ttlStrategy"), "spec.ttlStrategy"),
    "AD012": ("WorkflowTemplate", lambda d: _del(d["spec"], "podGC"), "spec.podGC"),
    "AD013": ("WorkflowTemplate", lambda d: _del(d["spec"], "automountServiceAccountToken"),
              "spec.automountServiceAccountToken"),
    "AD014": ("WorkflowTemplate", lambda d: _template(d).update(automountServiceAccountToken=True),
              "spec.templates[0].automountServiceAccountToken"),
    "AD017": ("Project", lambda d: d["spec"]["components"][0].update(
        repo="https://oauth2:glpat-abcdefghij0123456789@gitlab.example.com/acme/api.git"),
        "spec.components[0].repo"),
    "ARGO001": ("WorkflowTemplate", lambda d: _script(d).update(imagePullPolicyy="Always"),
                "spec.templates[0].script.imagePullPolicyy"),
    "K8S001": ("RoleBinding", lambda d: d["roleRef"].update(nmae="x"), ""),
    "CRD001": ("Project", lambda d: d["spec"].update(type="partner"), "spec.type"),
}


@pytest.mark.parametrize("rule", sorted(BREAKERS))
def test_rule_catches_a_resource_that_breaks_it(default_bundle, rule):
    kind, breaker, field = BREAKERS[rule]
    doc = find(default_bundle, kind)
    assert not [f for f in lint_documents([("ok.yaml", doc)]) if f.rule == rule]
    breaker(doc)
    findings = [f for f in lint_documents([("broken.yaml", doc)]) if f.rule == rule]
    assert findings, f"{rule} did not fire"
    finding = findings[0]
    assert finding.file == "broken.yaml"
    assert finding.resource.startswith(kind)
    if field:
        assert finding.field == field
    assert finding.fix == RULES[rule][1]
    assert rule in str(finding) and "Fix:" in str(finding)


def _without(documents, predicate):
    return [(f, d) for f, d in documents if not predicate(d)]


def test_ad015_executor_token_secret_must_be_in_the_bundle(default_bundle):
    documents = docs_of(default_bundle)
    assert not [f for f in lint_documents(documents) if f.rule == "AD015"]
    broken = _without(documents, lambda d: d["kind"] == "Secret" and d["metadata"]["namespace"]
                      == "core-team")
    findings = [f for f in lint_documents(broken) if f.rule == "AD015"]
    core_templates = sorted(f"WorkflowTemplate core-team/{d['metadata']['name']}"
                            for _, d in documents if d["kind"] == "WorkflowTemplate"
                            and d["metadata"]["namespace"] == "core-team")
    # generate-version, run-stream, release, vend-environment, destroy-environment,
    # reap-environments
    assert len(core_templates) == 6
    assert sorted((f.resource, f.field) for f in findings) == [
        (name, "spec.executor.serviceAccountName") for name in core_templates]
    assert "argo-delivery-executor.service-account-token" in findings[0].message
    # Argo's own lookup order: an annotation on the ServiceAccount names another Secret
    for _, doc in broken:
        if doc["kind"] == "ServiceAccount" and doc["metadata"]["name"] == "argo-delivery-executor":
            doc["metadata"]["annotations"]["workflows.argoproj.io/service-account-token.name"] = "x"
    assert sorted(f.resource for f in lint_documents(broken) if f.rule == "AD015") == sorted(
        f"WorkflowTemplate {d['metadata']['namespace']}/{d['metadata']['name']}"
        for _, d in documents if d["kind"] == "WorkflowTemplate")


def test_ad016_sensor_needs_a_token_when_its_account_mounts_none(default_bundle):
    documents = copy.deepcopy(docs_of(default_bundle))
    assert not [f for f in lint_documents(documents) if f.rule == "AD016"]
    for _, doc in documents:
        if doc["kind"] == "Sensor":
            doc["spec"]["template"]["container"]["volumeMounts"] = [
                m for m in doc["spec"]["template"]["container"]["volumeMounts"]
                if m["name"] != "api-token"]
    findings = [f for f in lint_documents(documents) if f.rule == "AD016"]
    assert sorted((f.resource, f.field) for f in findings) == [
        (f"Sensor argo-delivery/{sensor}-{project}", "spec.template")
        for sensor in ("on-environment", "on-push", "on-version")
        for project in ("core-team", "northwind")]
    assert "failed to get kubeconfig" in findings[0].message


def test_cronworkflow_rules_read_workflow_spec():
    doc = {"apiVersion": "argoproj.io/v1alpha1", "kind": "CronWorkflow",
           "metadata": {"name": "nightly", "namespace": "ns"},
           "spec": {"schedules": ["0 2 * * *"], "workflowSpec": {"entrypoint": "main", "templates": [
               {"name": "main", "container": {"image": "busybox"}}]}}}
    rules = {f.rule for f in lint_documents([("cron.yaml", doc)])}
    assert {"AD001", "AD002", "AD006", "AD007", "AD010", "AD011", "AD012"} <= rules
    assert any(f.field.startswith("spec.workflowSpec.templates[0].container")
               for f in lint_documents([("cron.yaml", doc)]))


def test_sensor_on_default_service_account_is_reported():
    doc = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Sensor",
           "metadata": {"name": "s", "namespace": "ns"},
           "spec": {"dependencies": [{"name": "d", "eventSourceName": "e", "eventName": "x"}],
                    "triggers": []}}
    rules = {f.rule for f in lint_documents([("s.yaml", doc)])}
    assert "AD007" in rules


def test_clusterrole_wildcards_in_any_field():
    doc = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
           "metadata": {"name": "x"},
           "rules": [{"apiGroups": ["*"], "resources": ["pods"], "verbs": ["get"]},
                     {"nonResourceURLs": ["/metrics*"], "verbs": ["get"]}]}
    fields = {f.field for f in lint_documents([("r.yaml", doc)]) if f.rule == "AD008"}
    assert fields == {"rules[0].apiGroups", "rules[1].nonResourceURLs"}


def test_lint_cli_exit_codes_and_json(tmp_path, default_bundle):
    role = find(default_bundle, "Role", "argo-delivery-executor")
    role["rules"][0]["verbs"] = ["*"]
    (tmp_path / "role.yaml").write_text(yaml.safe_dump(role))
    runner = CliRunner()
    result = runner.invoke(main, ["lint", str(tmp_path), "--no-upstream", "--json"])
    assert result.exit_code == 1
    findings = json.loads(result.output)["findings"]
    assert [f["rule"] for f in findings] == ["AD008"]
    assert findings[0]["file"] == "role.yaml"
    assert runner.invoke(main, ["lint", str(tmp_path / "missing")]).exit_code == 2
    (tmp_path / "bad.yaml").write_text("a: [")
    assert runner.invoke(main, ["lint", str(tmp_path), "--no-upstream"]).exit_code == 2


TOKEN = "glpat-abcdefghij0123456789"


@pytest.mark.parametrize("value, what", [
    ("https://oauth2:" + TOKEN + "@gitlab.example.com/acme/api.git", "password in its user info"),
    ("https://user:hunter2@git.example.com/api.git", "password in its user info"),
    ("https://" + TOKEN + "@gitlab.example.com/acme/api.git", "token as its user name"),
    ("https://gitlab.example.com/api/v4/projects?private_token=s3cr3t", "private_token="),
    ("https://api.example.com/hook?x=1&access_token=abc", "access_token="),
    ("see https://example.com/feed?token=abc for details", "token="),
    ("ghp_" + "a" * 36, "looks like a credential"),
    ("github_pat_" + "A1b2" * 10, "looks like a credential"),
    (TOKEN, "looks like a credential"),
])
def test_ad017_credentials_in_urls_and_env_values(default_bundle, value, what):
    doc = find(default_bundle, "WorkflowTemplate")
    _script(doc)["env"].append({"name": "LEAK", "value": value})
    findings = [f for f in lint_documents([("wt.yaml", doc)]) if f.rule == "AD017"]
    assert len(findings) == 1, findings
    index = len(_script(doc)["env"]) - 1
    assert findings[0].field == f"spec.templates[0].script.env[{index}].value"
    assert what in findings[0].message
    # the finding never repeats the secret it found
    for secret in (TOKEN, "hunter2", "s3cr3t", "a" * 36):
        assert secret not in str(findings[0])


@pytest.mark.parametrize("value", [
    "https://github.com/acme/api.git", "ssh://git@git.example.com/acme/api.git",
    "git@github.com:acme/api.git", "https://example.com/search?q=token", "https://[{host}]:{port}",
    "glpat-short", "/etc/argo-delivery/git-credentials",
])
def test_ad017_leaves_ordinary_values_alone(default_bundle, value):
    doc = find(default_bundle, "WorkflowTemplate")
    _script(doc)["env"].append({"name": "FINE", "value": value})
    assert not [f for f in lint_documents([("wt.yaml", doc)]) if f.rule == "AD017"]


def test_ad017_a_secret_is_where_credentials_belong():
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "git", "namespace": "ns"},
              "stringData": {".git-credentials": "https://oauth2:" + TOKEN + "@gitlab.example.com"}}
    assert not [f for f in lint_documents([("s.yaml", secret)]) if f.rule == "AD017"]
    config_map = {**secret, "kind": "ConfigMap", "data": secret["stringData"]}
    del config_map["stringData"]
    assert [f.field for f in lint_documents([("c.yaml", config_map)]) if f.rule == "AD017"] == [
        "data..git-credentials"]


def _member_secret_documents(default_bundle, rule):
    documents = copy.deepcopy(docs_of(default_bundle))
    for _, doc in documents:
        if doc["kind"] == "Role" and doc["metadata"]["name"] == "argo-delivery-developer" \
                and doc["metadata"]["namespace"] == "partner-northwind":
            doc["rules"].append(rule)
    return documents


@pytest.mark.parametrize("rule", [
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]},
    {"apiGroups": ["*"], "resources": ["*"], "verbs": ["get"]},
])
def test_ad018_member_group_bound_to_a_role_that_reads_secrets(default_bundle, rule):
    assert not [f for f in lint_documents(docs_of(default_bundle)) if f.rule == "AD018"]
    findings = [f for f in lint_documents(_member_secret_documents(default_bundle, rule))
                if f.rule == "AD018"]
    assert [(f.resource, f.field) for f in findings] == [
        ("RoleBinding partner-northwind/argo-delivery-developer", "roleRef")]
    assert "northwind:engineers" in findings[0].message and "secrets" in findings[0].message
    assert findings[0].fix == RULES["AD018"][1]


def test_ad018_service_accounts_may_read_secrets_and_clusterroles_count(default_bundle):
    documents = copy.deepcopy(docs_of(default_bundle))
    secret_rule = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}
    for _, doc in documents:
        if doc["kind"] == "Role" and doc["metadata"]["name"] == "argo-delivery-executor":
            doc["rules"].append(secret_rule)  # bound to a ServiceAccount only
    assert not [f for f in lint_documents(documents) if f.rule == "AD018"]
    cluster_role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                    "metadata": {"name": "reader"}, "rules": [secret_rule]}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "readers", "namespace": "ns"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                           "name": "reader"},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "g"}]}
    findings = [f for f in lint_documents([("r.yaml", cluster_role), ("b.yaml", binding)])
                if f.rule == "AD018"]
    assert [f.resource for f in findings] == ["RoleBinding ns/readers"]


CONTAINER = {"name": "app", "image": "nginx"}


@pytest.mark.parametrize("api_version, kind, spec, at", [
    ("v1", "Pod", {"containers": [CONTAINER]}, "spec"),
    ("apps/v1", "Deployment", {"selector": {}, "template": {"spec": {"containers": [CONTAINER]}}},
     "spec.template.spec"),
    ("apps/v1", "StatefulSet", {"selector": {}, "serviceName": "s",
                                "template": {"spec": {"containers": [CONTAINER]}}}, "spec.template.spec"),
    ("apps/v1", "DaemonSet", {"selector": {}, "template": {"spec": {"containers": [CONTAINER]}}},
     "spec.template.spec"),
    ("apps/v1", "ReplicaSet", {"selector": {}, "template": {"spec": {"containers": [CONTAINER]}}},
     "spec.template.spec"),
    ("batch/v1", "Job", {"template": {"spec": {"containers": [CONTAINER]}}}, "spec.template.spec"),
    ("batch/v1", "CronJob", {"schedule": "* * * * *", "jobTemplate": {
        "spec": {"template": {"spec": {"containers": [CONTAINER]}}}}},
     "spec.jobTemplate.spec.template.spec"),
])
def test_container_rules_apply_to_every_pod_bearing_kind(api_version, kind, spec, at):
    doc = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x", "namespace": "ns"},
           "spec": copy.deepcopy(spec)}
    findings = [f for f in lint_documents([("x.yaml", doc)]) if f.rule.startswith("AD")]
    assert {f.rule for f in findings} == {"AD001", "AD002", "AD003", "AD004", "AD005", "AD006", "AD007"}
    assert f"{at}.containers[0].securityContext.runAsNonRoot" in {f.field for f in findings}


def test_a_hardened_deployment_is_clean():
    context = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
               "capabilities": {"drop": ["ALL"]}}
    resources = {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "1", "memory": "64Mi"}}
    doc = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x", "namespace": "ns"},
           "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
               "metadata": {"labels": {"a": "b"}},
               "spec": {"serviceAccountName": "x",
                        "securityContext": {"runAsNonRoot": True,
                                            "seccompProfile": {"type": "RuntimeDefault"}},
                        "containers": [{"name": "app", "image": "nginx", "securityContext": context,
                                        "resources": resources}]}}}}
    assert lint_documents([("x.yaml", doc)]) == []


def test_rules_disabled_by_option_and_by_annotation(default_bundle):
    doc = find(default_bundle, "WorkflowTemplate", "generate-version")
    _script(doc)["securityContext"]["readOnlyRootFilesystem"] = False
    _script(doc)["resources"].pop("limits")
    assert {f.rule for f in lint_documents([("wt.yaml", doc)])} == {"AD005", "AD006"}
    assert {f.rule for f in lint_documents([("wt.yaml", doc)],
                                           LintOptions(disabled=frozenset({"AD005"})))} == {"AD006"}
    doc["metadata"].setdefault("annotations", {})[DISABLE_ANNOTATION] = "AD005, AD006"
    assert lint_documents([("wt.yaml", doc)]) == []
    other = find(default_bundle, "WorkflowTemplate", "generate-version")
    other["metadata"]["namespace"] = "elsewhere"
    _script(other)["resources"].pop("limits")
    # the annotation covers only the resource that carries it
    assert [f.resource for f in lint_documents([("wt.yaml", doc), ("other.yaml", other)])] == [
        "WorkflowTemplate elsewhere/generate-version"]


def test_unknown_kinds_can_be_skipped():
    doc = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert [f.rule for f in lint_documents([("w.yaml", doc)])] == ["K8S001"]
    assert lint_documents([("w.yaml", doc)], LintOptions(ignore_missing_schemas=True)) == []


def test_upstream_findings_honour_the_flag_and_the_annotation(tmp_path, monkeypatch, default_bundle):
    from pathlib import Path

    from argo_delivery import upstream

    doc = find(default_bundle, "WorkflowTemplate", "generate-version")
    (tmp_path / "wt.yaml").write_text(yaml.safe_dump(doc))
    monkeypatch.setattr(upstream, "tool_path", lambda tool: Path("/bin/true"))
    monkeypatch.setattr(upstream, "run_validator", lambda tool, paths: [upstream.UpstreamProblem(
        tool, str(tmp_path / "wt.yaml"), "WorkflowTemplate", "generate-version", "bad entrypoint")]
        if tool == "argo-workflows-lint" else [])
    assert [f.rule for f in lint_paths([tmp_path]).findings] == ["UP001"]
    assert lint_paths([tmp_path], options=LintOptions(disabled=frozenset({"UP001"}))).findings == []
    doc["metadata"]["annotations"] = {DISABLE_ANNOTATION: "UP001"}
    (tmp_path / "wt.yaml").write_text(yaml.safe_dump(doc))
    result = lint_paths([tmp_path])
    assert result.findings == [] and (result.files, result.resources) == (1, 1)


def test_ad019_a_workflow_from_a_template_overrides_nothing():
    doc = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
           "metadata": {"generateName": "g-", "name": "g", "namespace": "ns"},
           "spec": {"workflowTemplateRef": {"name": "generate-version"},
                    "arguments": {"parameters": [{"name": "repo", "value": "x"}]}}}
    assert not [f for f in lint_documents([("wf.yaml", doc)]) if f.rule == "AD019"]
    doc["spec"].update(serviceAccountName="argo-delivery-version-writer", podSpecPatch="{}")
    assert sorted(f.field for f in lint_documents([("wf.yaml", doc)]) if f.rule == "AD019") == [
        "spec.podSpecPatch", "spec.serviceAccountName"]


def _policy_breakers():
    def drop(name):
        return lambda docs: [(f, d) for f, d in docs if d["metadata"].get("name") != name]

    def edit(kind, change):
        def apply(docs):
            for _, doc in docs:
                if doc["kind"] == kind:
                    change(doc)
            return docs
        return apply

    def weaken(doc):
        doc["spec"]["validations"] = doc["spec"]["validations"][1:]

    return {
        "policy removed": drop("argo-delivery-sensor-workflows"),
        "binding only warns": edit("ValidatingAdmissionPolicyBinding",
                                   lambda d: d["spec"].update(validationActions=["Warn"])),
        "fails open": edit("ValidatingAdmissionPolicy", lambda d: d["spec"].update(failurePolicy="Ignore")),
        "a validation dropped": edit("ValidatingAdmissionPolicy", weaken),
    }


@pytest.mark.parametrize("breaker", sorted(_policy_breakers()))
def test_ad020_ad021_a_bundle_that_weakens_its_admission_policies_fails_lint(default_bundle, breaker):
    documents = copy.deepcopy(docs_of(default_bundle))
    assert not [f for f in lint_documents(documents) if f.rule in ("AD020", "AD021")]
    broken = _policy_breakers()[breaker](documents)
    rules = {(f.rule, f.resource) for f in lint_documents(broken) if f.rule in ("AD020", "AD021")}
    assert ("AD020", "Sensor argo-delivery/on-push-core-team") in rules
    if breaker != "policy removed":   # the others weaken both policies
        assert ("AD021", "Role core-team/argo-delivery-version-writer") in rules


def _quota_bundle(quota: str) -> list[tuple[str, dict[str, Any]]]:
    from argo_delivery.bundle import build_bundle
    from argo_delivery.config import parse_config
    minimal = (Path(__file__).parent / "minimal-platform.yaml").read_text()
    project = "    components: [api, web]\n"
    text = minimal.replace(project, f"{project}    quota: {quota}\n")
    return docs_of(build_bundle(parse_config(text)))


def test_ad022_a_quota_too_small_for_a_workflow_pod_fails_lint():
    assert not [f for f in lint_documents(_quota_bundle("{pods: 1}")) if f.rule == "AD022"]
    findings = [f for f in lint_documents(_quota_bundle('{limits.cpu: "1", limits.memory: 600Mi}'))
                if f.rule == "AD022"]
    assert [(f.resource, f.field) for f in findings] == [
        ("WorkflowTemplate team-a/generate-version", "spec.templates[0]")] * 2
    # generate-version's step (limits 1 CPU, 512Mi) plus Argo's wait container at the defaults
    assert "the pod needs limits.cpu 1.5 (" in findings[0].message
    assert "the pod needs limits.memory 768Mi (" in findings[1].message


def test_ad022_a_quota_without_container_defaults_refuses_argos_wait_container(default_bundle):
    documents = _without(docs_of(default_bundle), lambda d: d["kind"] == "LimitRange")
    findings = [f for f in lint_documents(documents) if f.rule == "AD022"]
    assert {f.resource for f in findings} == {
        f"WorkflowTemplate {d['metadata']['namespace']}/{d['metadata']['name']}"
        for _, d in documents if d["kind"] == "WorkflowTemplate"}
    assert ("Argo's wait container sets no requests.cpu and the namespace has no LimitRange "
            "default for it") in findings[0].message


def test_ad023_the_orchestrator_quota_must_hold_the_event_pods(default_bundle):
    documents = docs_of(default_bundle)
    assert not [f for f in lint_documents(documents) if f.rule == "AD023"]
    # a configured quota that only holds the pods at rest: a rollout of the Sensors and the
    # EventSource (one more pod each) would not fit
    from argo_delivery.bundle import build_bundle
    from argo_delivery.config import default_config_text, parse_config
    text = default_config_text().replace(
        "\ncomponents:", "\nisolation:\n  orchestratorQuota: {pods: 6, limits.memory: 4Gi}\ncomponents:", 1)
    findings = [f for f in lint_documents(docs_of(build_bundle(parse_config(text)))) if f.rule == "AD023"]
    assert [(f.resource, f.field) for f in findings] == [
        ("ResourceQuota argo-delivery/argo-delivery-quota", "spec.hard.pods"),
        ("ResourceQuota argo-delivery/argo-delivery-quota", "spec.hard.limits.memory")]
    assert findings[0].message.startswith(
        "the EventBus, EventSource and Sensor pods Argo Events runs here need pods 21 (EventBus "
        "default x3, EventSource environments x2, EventSource git-push x2, EventSource versions "
        "x2, Sensor on-environment-core-team x2, ")
    assert "need limits.memory 8064Mi" in findings[1].message   # 3 x 1152Mi + 18 x 256Mi


def test_ad023_event_pods_without_resources_need_the_limit_range(default_bundle):
    documents = copy.deepcopy(_without(docs_of(default_bundle), lambda d: d["kind"] == "LimitRange"))
    for _, doc in documents:
        if doc["kind"] == "EventBus":
            del doc["spec"]["jetstream"]["metricsContainerTemplate"]
    findings = [f for f in lint_documents(documents) if f.rule == "AD023"]
    assert {f.field for f in findings} == {f"spec.hard.{k}" for k in
                                           ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory")}
    assert findings[0].message.startswith("EventBus default container metrics sets no requests.cpu and "
                                          "the namespace has no LimitRange default for it")


def test_ad024_roles_that_patch_versions_need_the_approval_policy(default_bundle):
    documents = docs_of(default_bundle)
    assert not [f for f in lint_documents(documents) if f.rule == "AD024"]
    without = _without(documents, lambda d: d["metadata"]["name"] == "argo-delivery-version-approval")
    findings = [f for f in lint_documents(without) if f.rule == "AD024"]
    assert sorted({f.resource for f in findings}) == [
        f"Role {ns}/{role}" for ns in ("core-team", "partner-northwind")
        for role in ("argo-delivery-developer", "argo-delivery-product-owner")]
    # a weakened policy (no check of the approver's name) is no policy
    weakened = copy.deepcopy(documents)
    for _, doc in weakened:
        if doc["kind"] == "ValidatingAdmissionPolicy" and \
                doc["metadata"]["name"] == "argo-delivery-version-approval":
            doc["spec"]["validations"] = [v for v in doc["spec"]["validations"]
                                          if "approvedBy ==" not in v["expression"]]
    assert {f.resource for f in lint_documents(weakened) if f.rule == "AD024"} == \
        {f.resource for f in findings}


def test_ad025_roles_that_create_environments_need_the_request_policy(default_bundle):
    documents = docs_of(default_bundle)
    assert not [f for f in lint_documents(documents) if f.rule == "AD025"]
    without = _without(documents, lambda d: d["metadata"]["name"] == "argo-delivery-environment-requests")
    assert sorted({f.resource for f in lint_documents(without) if f.rule == "AD025"}) == [
        f"Role {ns}/{role}" for ns in ("core-team", "partner-northwind")
        for role in ("argo-delivery-developer", "argo-delivery-environment-destroyer",
                     "argo-delivery-environment-reaper", "argo-delivery-environment-vendor",
                     "argo-delivery-product-owner", "argo-delivery-stream-recorder")]
