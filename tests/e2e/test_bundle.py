"""The rendered default bundle, installed the way its README tells an operator.

What runs today is asserted; what does not yet is in tests/e2e/README.md ("The rendered
default bundle on this cluster") and belongs to issue 9's fixes in the bundle itself.
"""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.e2e


def test_default_bundle_applies_and_its_eventbus_runs(cluster, tmp_path, events_controller):
    bundle = cluster.render_bundle(tmp_path / "dist")
    t0 = time.monotonic()
    applied = cluster.apply_bundle(bundle)
    assert applied and all(applied)
    ns = "argo-delivery"
    templates = cluster.kube.request(
        "GET", "/apis/argoproj.io/v1alpha1/workflowtemplates")["items"]
    assert {t["metadata"]["name"] for t in templates} >= {"generate-version"}
    cluster.wait_condition("argoproj.io/v1alpha1", "EventBus", "default", ns, "Deployed",
                           timeout=60)

    def all_ready():
        sts = cluster.kube.request("GET", f"/apis/apps/v1/namespaces/{ns}/statefulsets")["items"]
        return sts and all((s.get("status") or {}).get("readyReplicas", 0) ==
                           s["spec"]["replicas"] for s in sts)
    cluster.wait_for("the bundle's EventBus StatefulSet ready", all_ready, 180, logs=["kubelet"])
    print(f"bundle applied, EventBus ready in {time.monotonic() - t0:.1f} s")
