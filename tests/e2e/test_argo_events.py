"""Argo Events: a JetStream EventBus, a webhook EventSource and a Sensor creating a Workflow."""

from __future__ import annotations

import time

import pytest

from tests.e2e.images import busybox_image, python_git_image

# python3, not busybox wget: static glibc's getaddrinfo segfaults on DNS (see test_services.py).
POST = """
import sys, time, urllib.request
body = b'{"message": "hello-from-webhook"}'
for attempt in range(15):
    try:
        req = urllib.request.Request(sys.argv[1], data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        print(urllib.request.urlopen(req, timeout=3).status); sys.exit(0)
    except OSError as e:
        print("retry:", e); time.sleep(2)
sys.exit(1)
"""

pytestmark = pytest.mark.e2e

SECURITY = {"runAsNonRoot": True, "runAsUser": 65532, "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}


def test_webhook_event_creates_a_workflow(cluster, events_controller, request):
    ns = cluster.new_namespace("events", pod_security="baseline")
    try:
        _run(cluster, ns)
    except BaseException:
        request.node.add_report_section("call", "e2e namespace dump", cluster.dump_namespace(ns)
                                        + "\n" + cluster.dump_namespace(cluster.EVENTS_NAMESPACE))
        raise
    finally:
        cluster.delete_namespace(ns)


def _run(cluster, ns: str) -> None:
    sa = cluster.workflow_service_account(ns)
    t0 = time.monotonic()
    cluster.kube.apply([{
        "apiVersion": "argoproj.io/v1alpha1", "kind": "EventBus",
        "metadata": {"name": "default", "namespace": ns},
        # persistence as the bundle's EventBus has it: binds one of the fixture's volumes
        "spec": {"jetstream": {"version": "2.10.29", "replicas": 1,
                               "persistence": {"accessMode": "ReadWriteOnce",
                                               "volumeSize": "1Gi"}}}}])
    cluster.wait_condition("argoproj.io/v1alpha1", "EventBus", "default", ns, "Deployed",
                           timeout=60)

    def sts_ready():
        for sts in cluster.kube.request("GET", f"/apis/apps/v1/namespaces/{ns}/statefulsets")["items"]:
            if (sts.get("status") or {}).get("readyReplicas", 0) >= 1:
                return sts
        return None
    cluster.wait_for("EventBus StatefulSet ready", sts_ready, 120, logs=["kubelet"])
    print(f"EventBus ready in {time.monotonic() - t0:.1f} s")

    cluster.kube.apply([
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sensor", "namespace": ns}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "sensor", "namespace": ns},
         "rules": [{"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["create"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "sensor", "namespace": ns},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "sensor"},
         "subjects": [{"kind": "ServiceAccount", "name": "sensor", "namespace": ns}]},
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "EventSource",
         "metadata": {"name": "webhook", "namespace": ns},
         "spec": {"service": {"ports": [{"port": 12000, "targetPort": 12000}]},
                  "webhook": {"example": {"port": "12000", "endpoint": "/example",
                                          "method": "POST"}}}},
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "Sensor",
         "metadata": {"name": "webhook", "namespace": ns},
         "spec": {"template": {"serviceAccountName": "sensor"},
                  "dependencies": [{"name": "dep", "eventSourceName": "webhook",
                                    "eventName": "example"}],
                  "triggers": [{"template": {"name": "make-workflow", "k8s": {
                      "operation": "create",
                      "source": {"resource": {
                          "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                          "metadata": {"generateName": "from-webhook-"},
                          "spec": {"entrypoint": "main", "serviceAccountName": sa,
                                   "arguments": {"parameters": [{"name": "message",
                                                                 "value": "none"}]},
                                   "templates": [{"name": "main",
                                                  "inputs": {"parameters": [{"name": "message"}]},
                                                  "container": {
                                                      "image": busybox_image().name,
                                                      "command": ["echo",
                                                                  "{{inputs.parameters.message}}"],
                                                      "securityContext": SECURITY}}]}}},
                      "parameters": [{"src": {"dependencyName": "dep", "dataKey": "body.message"},
                                      "dest": "spec.arguments.parameters.0.value"}]}}}]}},
    ])

    def deployment_ready(prefix):
        def check():
            for d in cluster.kube.request("GET", f"/apis/apps/v1/namespaces/{ns}/deployments")["items"]:
                if d["metadata"]["name"].startswith(prefix) and \
                        (d.get("status") or {}).get("readyReplicas", 0) >= 1:
                    return d
            return None
        return check
    cluster.wait_for("EventSource deployment ready", deployment_ready("webhook-eventsource"), 90,
                     logs=["kubelet"])
    cluster.wait_for("Sensor deployment ready", deployment_ready("webhook-sensor"), 90,
                     logs=["kubelet"])
    print(f"EventSource and Sensor ready in {time.monotonic() - t0:.1f} s")

    # The Sensor's durable consumer delivers only events published after it subscribed: an
    # event sent while its pod is Ready but not yet subscribed is lost (seen here: published
    # 0.1 s before "Subscribing to subject"). Wait for the subscription.
    def subscribed():
        for pod in cluster.kube.request("GET", f"/api/v1/namespaces/{ns}/pods")["items"]:
            if pod["metadata"]["name"].startswith("webhook-sensor") and \
                    "Subscribing to subject" in cluster.pod_logs(ns, pod["metadata"]["name"]):
                return True
        return False
    cluster.wait_for("Sensor subscribed", subscribed, 60, logs=["kubelet"])

    # POST from a pod to the EventSource Service by its DNS name.
    url = f"http://webhook-eventsource-svc.{ns}.svc.cluster.local:12000/example"
    t_post = time.monotonic()
    cluster.kube.apply([{
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "poster", "namespace": ns},
        "spec": {"restartPolicy": "Never", "automountServiceAccountToken": False,
                 "containers": [{"name": "main", "image": python_git_image().name,
                                 "command": ["python3", "-c", POST, url],
                                 "securityContext": SECURITY}]}}])
    cluster.wait_pod(ns, "poster", timeout=60)

    def workflow():
        items = cluster.kube.request(
            "GET", f"/apis/argoproj.io/v1alpha1/namespaces/{ns}/workflows")["items"]
        return items[0] if items else None
    wf = cluster.wait_for("Workflow created by the Sensor", workflow, 60,
                          logs=["workflow-controller"])
    print(f"POST -> Workflow created in {time.monotonic() - t_post:.1f} s")
    wf = cluster.wait_workflow(ns, wf["metadata"]["name"], timeout=120)
    print(f"POST -> Workflow Succeeded in {time.monotonic() - t_post:.1f} s")
    assert wf["spec"]["arguments"]["parameters"][0]["value"] == "hello-from-webhook"
