"""`argo-delivery doctor` on the real API server: each prerequisite reported as met or not,
from the controllers' own ConfigMaps and the referenced Secrets."""

from __future__ import annotations

import base64
import json

import pytest
import yaml
from click.testing import CliRunner

from argo_delivery.cli import main
from argo_delivery.security import executor_security_context

pytestmark = pytest.mark.apiserver

CONFIG = """
bundle: {name: doc, version: 1.0.0}
orchestrator: {namespace: doc-delivery}
components:
  - {name: api, repo: https://github.com/acme/api.git, branch: main}
projects:
  - {name: doc-team, type: internal, components: [api]}
images: {git: python:3.12}
gitProvider:
  type: github
  webhookSecret: {name: hook, key: secret}
  credentialsSecret: {name: git-credentials}
"""


def configmap(namespace: str, name: str, data: dict[str, str]) -> list[dict]:
    return [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
             "data": data}]


def secret(namespace: str, name: str, **data: str) -> list[dict]:
    return [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
             "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}]


def doctor(kube, tmp_path, *args, config: str = CONFIG):
    path = tmp_path / "platform.yaml"
    path.write_text(config)
    result = CliRunner().invoke(main, ["doctor", "--config", str(path), "--json",
                                       "--workflows-namespace", "doc-argo",
                                       "--events-namespace", "doc-events",
                                       "--kubeconfig", str(kube.kubeconfig), *args])
    report = json.loads(result.stdout)
    return result.exit_code, {c["name"]: c for c in report["checks"]}


def test_doctor_reports_each_prerequisite(kube, tmp_path):
    code, checks = doctor(kube, tmp_path)
    assert code == 1
    assert checks["workflow-controller"]["status"] == "problem"
    assert "doc-argo/workflow-controller-configmap not found" in checks["workflow-controller"]["message"]
    assert checks["Secret doc-delivery/hook"]["status"] == "problem"
    assert checks["Secret doc-team/git-credentials"]["status"] == "note"   # optional
    assert checks["CRDs"]["status"] == "ok"   # the fixture installed Argo's CRDs and ours

    # a controller configured as the README says, an empty webhook secret
    executor = {"image": "quay.io/argoproj/argoexec:v4.1.4",
                "securityContext": executor_security_context()}
    events = {"eventBus": {"jetstream": {"versions": [{
        "version": "2.10.29", "natsImage": "docker.io/library/nats:2.10.29",
        "configReloaderImage": "docker.io/natsio/nats-server-config-reloader:0.14.0",
        "metricsExporterImage": "docker.io/natsio/prometheus-nats-exporter:0.14.0"}]}}}
    kube.apply(configmap("doc-argo", "workflow-controller-configmap", {
        "executor": yaml.safe_dump(executor),
        "workflowRestrictions": "templateReferencing: Strict\n"}))
    kube.apply(configmap("doc-events", "argo-events-controller-config",
                         {"controller-config.yaml": yaml.safe_dump(events)}))
    kube.apply(secret("doc-delivery", "hook", secret=""))
    code, checks = doctor(kube, tmp_path)
    assert code == 1
    assert checks["executor image"]["status"] == "ok"
    assert checks["executor securityContext"]["status"] == "ok"
    assert checks["eventbus images"]["status"] == "ok"
    assert checks["templateReferencing"]["status"] == "problem"
    assert "'Strict'" in checks["templateReferencing"]["message"]
    assert checks["Secret doc-delivery/hook"]["status"] == "problem"
    assert "secret is missing or empty" in checks["Secret doc-delivery/hook"]["message"]

    # fixed: everything met
    kube.apply(configmap("doc-argo", "workflow-controller-configmap", {
        "executor": yaml.safe_dump(executor),
        "workflowRestrictions": "templateReferencing: Secure\n"}))
    kube.apply(secret("doc-delivery", "hook", secret="s3cret"))
    code, checks = doctor(kube, tmp_path)
    assert code == 0, checks
    assert {c["status"] for c in checks.values()} <= {"ok", "note"}


def test_doctor_sees_a_weakened_executor(kube, tmp_path):
    weak = {"image": "quay.io/argoproj/argoexec:v4.1.4",
            "securityContext": {"runAsNonRoot": True}}
    kube.apply(configmap("doc-argo", "workflow-controller-configmap", {
        "executor": yaml.safe_dump(weak), "workflowRestrictions": "templateReferencing: Secure\n"}))
    _, checks = doctor(kube, tmp_path)
    assert checks["executor securityContext"]["status"] == "problem"
    assert "allowPrivilegeEscalation" in checks["executor securityContext"]["message"]


def test_doctor_checks_a_projects_own_webhook_secret(kube, tmp_path):
    """A project with its own webhook secret: missing or empty is a problem, as for the shared
    one (an empty secret verifies nothing)."""
    config = CONFIG.replace(
        "  - {name: doc-team, type: internal, components: [api]}\n",
        "  - {name: doc-team, type: internal, components: [api]}\n"
        "  - name: doc-partner\n    type: external\n    components: [api]\n"
        "    webhookSecret: {name: doc-partner-hook, key: token}\n")
    name = "Secret doc-delivery/doc-partner-hook"
    _, checks = doctor(kube, tmp_path, config=config)
    assert checks[name]["status"] == "problem"
    assert checks[name]["message"].startswith("missing: the secret configured on the github webhook "
                                              "at `/push/doc-partner` (project `doc-partner`)")
    kube.apply(secret("doc-delivery", "doc-partner-hook", token=""))
    _, checks = doctor(kube, tmp_path, config=config)
    assert checks[name]["status"] == "problem"
    assert checks[name]["message"].startswith("key token is missing or empty")
    kube.apply(secret("doc-delivery", "doc-partner-hook", token="partner-s3cret"))
    _, checks = doctor(kube, tmp_path, config=config)
    assert checks[name] == {"name": name, "status": "ok", "message": "has token"}
