"""monitoring.* in the config: off by default, and what each setting renders."""

from __future__ import annotations

import json

import yaml

from argo_delivery.bundle import build_bundle
from argo_delivery.config import default_config_text, load_default, parse_config


def _resources(monitoring=None):
    data = yaml.safe_load(default_config_text())
    if monitoring is not None:
        data["monitoring"] = monitoring
    return build_bundle(parse_config(yaml.safe_dump(data), "monitoring.yaml")).resources


def test_off_by_default():
    assert load_default().monitoring.prometheus_rule is False
    assert not [r for r in _resources() if r["apiVersion"].startswith("monitoring.coreos.com")]


def test_the_rule_alone_has_no_alert_that_needs_the_pod_monitors():
    resources = _resources({"prometheusRule": True, "failures": 5, "failureWindow": "1d",
                            "stuckAfter": "90m", "labels": {"release": "prometheus"}})
    rule = next(r for r in resources if r["kind"] == "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    alerts = {r["alert"]: r for r in rule["spec"]["groups"][0]["rules"]}
    assert "ArgoDeliveryEventSourceNotRunning" not in alerts
    assert "ArgoDeliveryWorkflowControllerNotScraped" not in alerts
    failing = alerts["ArgoDeliveryFlowFailing"]["expr"]
    assert "offset 86400s" in failing and failing.endswith("[86400s])\n)) >= 5")
    assert alerts["ArgoDeliveryEnvironmentStuck"]["expr"].endswith("> 5400")
    assert not [r for r in resources if r["kind"] == "PodMonitor"]


def test_pod_monitors_and_a_rule_per_event_source_and_sensor():
    resources = _resources({"prometheusRule": True, "podMonitors": True,
                            "workflowsNamespace": "workflows", "workflowsMetricsScheme": "http",
                            "scrapeFrom": [{"namespace": "monitoring"}]})
    monitors = {r["metadata"]["name"]: r["spec"] for r in resources if r["kind"] == "PodMonitor"}
    controller = monitors["argo-delivery-workflow-controller"]
    assert controller["namespaceSelector"] == {"matchNames": ["workflows"]}
    assert controller["podMetricsEndpoints"] == [{"port": "metrics", "path": "/metrics",
                                                  "scheme": "http"}]
    assert monitors["argo-delivery-events"]["namespaceSelector"] == {"matchNames": ["argo-delivery"]}
    policy = next(r for r in resources if r["metadata"]["name"] == "argo-delivery-metrics")
    assert policy["spec"]["ingress"] == [{
        "ports": [{"protocol": "TCP", "port": 7777}],
        "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]}]
    rules = next(r for r in resources if r["kind"] == "PrometheusRule")["spec"]["groups"][0]["rules"]
    for kind, label in (("EventSource", "eventsource"), ("Sensor", "sensor")):
        names = sorted(r["metadata"]["name"] for r in resources if r["kind"] == kind)
        assert names
        assert sorted(r["labels"][label] for r in rules
                      if r["alert"] == f"ArgoDelivery{kind}NotRunning") == names


def _dashboards(resources):
    return [r for r in resources if r["kind"] == "ConfigMap"
            and r["metadata"]["name"] == "argo-delivery-dashboard"]


def test_the_dashboard_is_off_by_default():
    settings = load_default().monitoring.dashboard
    assert settings.enabled is False
    assert settings.labels == {"grafana_dashboard": "1"}
    assert _dashboards(_resources()) == []
    # the alerts alone do not bring it either
    assert _dashboards(_resources({"prometheusRule": True})) == []


def test_the_dashboard_configmap_has_the_sidecar_label_in_the_orchestrator_namespace():
    [configmap] = _dashboards(_resources({"dashboard": {"enabled": True}}))
    assert configmap["metadata"]["namespace"] == "argo-delivery"
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["labels"]["argo-delivery.io/bundle"]   # pruned like the rest
    assert "annotations" not in configmap["metadata"]
    board = json.loads(configmap["data"]["argo-delivery.json"])
    assert board["uid"] == "argo-delivery" and board["panels"]


def test_the_dashboard_namespace_labels_and_annotations_are_configurable():
    [configmap] = _dashboards(_resources({"dashboard": {
        "enabled": True, "namespace": "monitoring", "labels": {"dashboards": "delivery"},
        "annotations": {"grafana_folder": "Delivery"}}}))
    meta = configmap["metadata"]
    assert meta["namespace"] == "monitoring"
    assert meta["labels"]["dashboards"] == "delivery"
    assert "grafana_dashboard" not in meta["labels"]    # given labels replace the default
    assert meta["annotations"] == {"grafana_folder": "Delivery"}


def test_the_dashboard_is_one_file_of_the_bundle():
    data = yaml.safe_load(default_config_text())
    data["monitoring"] = {"dashboard": {"enabled": True}}
    files = build_bundle(parse_config(yaml.safe_dump(data), "monitoring.yaml")).files
    text = files["namespaces/argo-delivery/configmap/argo-delivery-dashboard.yaml"]
    assert json.loads(yaml.safe_load(text)["data"]["argo-delivery.json"])["title"] == "argo-delivery"


def test_the_dashboard_configmap_passes_lint():
    from argo_delivery.lint import lint_documents
    [configmap] = _dashboards(_resources({"dashboard": {"enabled": True}}))
    assert lint_documents([("argo-delivery-dashboard.yaml", configmap)]) == []
