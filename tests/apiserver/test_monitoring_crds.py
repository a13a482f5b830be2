"""The PrometheusRule, PodMonitors and metrics NetworkPolicy (monitoring.*) on a real API server
with the prometheus-operator's own CRDs (tests/kube_server.py upstream_crd_files): accepted by
their schemas with strict field validation, and a malformed one refused (so the schema is
really checked)."""

from __future__ import annotations

import copy

import pytest
import yaml

from argo_delivery.bundle import build_bundle
from argo_delivery.config import default_config_text, parse_config
from tests.kube_server import ApiError

pytestmark = pytest.mark.apiserver

NS = "argo-delivery"
KINDS = ("PrometheusRule", "PodMonitor", "NetworkPolicy")


@pytest.fixture(scope="module")
def monitoring(kube):
    data = yaml.safe_load(default_config_text())
    data["monitoring"] = {"prometheusRule": True, "podMonitors": True,
                          "labels": {"release": "prometheus"},
                          "scrapeFrom": [{"namespace": "monitoring"}]}
    bundle = build_bundle(parse_config(yaml.safe_dump(data), "monitoring.yaml"))
    kube.apply([r for r in bundle.resources if r["kind"] == "Namespace"
                and r["metadata"]["name"] == NS])
    return [r for r in bundle.resources if r["kind"] in ("PrometheusRule", "PodMonitor")
            or r["metadata"]["name"] == "argo-delivery-metrics"]


def test_the_operator_crds_are_served(kube):
    for plural in ("prometheusrules", "podmonitors", "servicemonitors"):
        crd = kube.request("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                                  f"{plural}.monitoring.coreos.com")
        assert crd["spec"]["group"] == "monitoring.coreos.com"


def test_rule_and_monitors_are_accepted_and_stored(kube, monitoring):
    assert sorted(r["kind"] for r in monitoring) == ["NetworkPolicy", "PodMonitor", "PodMonitor",
                                                     "PrometheusRule"]
    dry = kube.apply(monitoring, dry_run=True)
    assert [d["kind"] for d in dry] == [r["kind"] for r in monitoring]
    stored = kube.apply(monitoring)
    try:
        for resource, answer in zip(monitoring, stored, strict=True):
            # kept as written (the schema adds its defaults, e.g. a relabeling's action: replace)
            assert _within(resource["spec"], answer["spec"]), resource["metadata"]["name"]
    finally:   # the session's other tests see the default bundle only
        for resource in monitoring:
            kube.request("DELETE", kube.path_for(resource["apiVersion"], resource["kind"],
                                                 resource["metadata"]["name"], NS))


def _within(ours, stored) -> bool:
    if isinstance(ours, dict):
        return isinstance(stored, dict) and all(k in stored and _within(v, stored[k])
                                                for k, v in ours.items())
    if isinstance(ours, list):
        return isinstance(stored, list) and len(ours) == len(stored) and all(
            _within(a, b) for a, b in zip(ours, stored, strict=True))
    return ours == stored


def test_a_malformed_rule_is_refused_by_the_operator_schema(kube, monitoring):
    rule = copy.deepcopy(next(r for r in monitoring if r["kind"] == "PrometheusRule"))
    rule["metadata"]["name"] = "broken"
    rule["spec"]["groups"][0]["rules"][0]["for"] = "ten minutes"   # not a duration
    with pytest.raises(ApiError, match="for"):
        kube.apply([rule], dry_run=True)
    rule = copy.deepcopy(next(r for r in monitoring if r["kind"] == "PrometheusRule"))
    rule["metadata"]["name"] = "broken"
    rule["spec"]["groups"][0]["rules"][0]["severity"] = "high"      # an unknown field
    with pytest.raises(ApiError, match="severity"):
        kube.apply([rule], dry_run=True)
