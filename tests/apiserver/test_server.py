"""The session's kube-apiserver: up, RBAC enforced, Argo CRDs validating, server-side apply."""

import json
import time

import pytest

from tests.kube_server import ApiError

pytestmark = pytest.mark.apiserver

WFT = "argoproj.io/v1alpha1"


def workflow_template(name, namespace="default", **spec_overrides):
    spec = {
        "entrypoint": "main",
        "templates": [{
            "name": "main",
            "container": {"image": "alpine:3.20", "command": ["echo"], "args": ["hello"]},
        }],
    }
    spec.update(spec_overrides)
    return {"apiVersion": WFT, "kind": "WorkflowTemplate",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def test_server_is_up(kube):
    assert kube.request("GET", "/readyz", content_type="text/plain") is not None
    version = kube.request("GET", "/version")
    assert version["gitVersion"].startswith("v1.")
    assert kube.kubeconfig.exists()
    assert kube.server.startswith("https://127.0.0.1:")

    from kubernetes import client

    names = {ns.metadata.name for ns in client.CoreV1Api(kube.api_client).list_namespace().items}
    assert {"default", "kube-system"} <= names
    crds = client.ApiextensionsV1Api(kube.api_client).list_custom_resource_definition().items
    served = {c.metadata.name for c in crds}
    assert {"workflowtemplates.argoproj.io", "workflows.argoproj.io",
            "cronworkflows.argoproj.io", "clusterworkflowtemplates.argoproj.io",
            "sensors.argoproj.io", "eventsources.argoproj.io", "eventbus.argoproj.io"} <= served


def _can_list_pods(kube, token, namespace):
    review = kube.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"namespace": namespace, "verb": "list",
                                        "resource": "pods"}},
    }, token=token)
    return review["status"].get("allowed", False)


def test_rbac_is_enforced(kube):
    ns, sa = "rbac-check", "reader"
    token = kube.token_for(ns, sa)

    who = kube.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}, token=token)
    assert who["status"]["userInfo"]["username"] == f"system:serviceaccount:{ns}:{sa}"

    assert not _can_list_pods(kube, token, ns)
    with pytest.raises(ApiError) as denied:
        kube.request("GET", f"/api/v1/namespaces/{ns}/pods", token=token)
    assert denied.value.status == 403
    assert f'"system:serviceaccount:{ns}:{sa}" cannot list resource "pods"' in denied.value.message

    kube.apply([  # bindings first on purpose: apply() orders Role before RoleBinding
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "pod-reader", "namespace": ns},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                     "name": "pod-reader"},
         "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "pod-reader", "namespace": ns},
         "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]},
    ])
    deadline = time.monotonic() + 10  # the RBAC authorizer reads from an informer cache
    while not _can_list_pods(kube, token, ns) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _can_list_pods(kube, token, ns)
    assert kube.request("GET", f"/api/v1/namespaces/{ns}/pods", token=token)["items"] == []
    # still nothing outside the Role's namespace
    assert not _can_list_pods(kube, token, "default")

    from kubernetes import client

    with kube.api_client_for_token(token) as api:
        assert client.CoreV1Api(api).list_namespaced_pod(ns).items == []


def test_token_audiences(kube):
    token = kube.token_for("rbac-check", "audience", audiences=["argo-delivery-test"])
    review = kube.request("POST", "/apis/authentication.k8s.io/v1/tokenreviews", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
        "spec": {"token": token, "audiences": ["argo-delivery-test"]}})
    assert review["status"]["authenticated"] is True
    assert review["status"]["audiences"] == ["argo-delivery-test"]
    # not valid for the API server itself
    with pytest.raises(ApiError) as e:
        kube.request("GET", "/api/v1/namespaces", token=token)
    assert e.value.status == 401


def test_workflow_template_valid(kube):
    [dry] = kube.apply([workflow_template("valid-wft")], dry_run=True)
    assert dry["kind"] == "WorkflowTemplate"
    assert dry["spec"]["templates"][0]["container"]["image"] == "alpine:3.20"


def test_workflow_template_wrong_type(kube):
    doc = workflow_template("wrong-type-wft", templates="main")
    # The schema validator's message, on the plain create path ...
    with pytest.raises(ApiError) as e:
        kube.create(doc, dry_run=True)
    assert e.value.status == 422, e.value
    assert ('spec.templates: Invalid value: "string": '
            "spec.templates in body must be of type array") in e.value.message
    # ... while server-side apply fails earlier, converting the patch to the schema's types
    # (HTTP 500 until kubernetes/kubernetes#139253 is fixed).
    with pytest.raises(ApiError) as e:
        kube.apply([doc], dry_run=True)
    assert e.value.status in (400, 500), e.value
    assert "failed to create typed patch object" in e.value.message
    assert ".spec.templates: expected list, got" in e.value.message


@pytest.mark.parametrize("template, message", [
    ({"name": "main", "dag": {}}, "spec.templates[0].dag.tasks: Required value"),
    ({"name": "Bad_Name", "container": {"image": "alpine"}},
     'spec.templates[0].name: Invalid value: "Bad_Name": '
     "spec.templates[0].name in body should match '^[a-zA-Z0-9][-a-zA-Z0-9]*$'"),
    ({"name": "main", "container": {"image": "alpine"}, "script": {"image": "alpine",
                                                                   "source": "true"}},
     "spec.templates: Invalid value: template must have at most one template type"),
], ids=["required", "pattern", "cel"])
def test_workflow_template_invalid(kube, template, message):
    doc = workflow_template("invalid-wft", templates=[template])
    for send in (lambda: kube.apply([doc], dry_run=True),
                 lambda: kube.create(doc, dry_run=True)):
        with pytest.raises(ApiError) as e:
            send()
        assert e.value.status == 422, e.value
        assert message in e.value.message


def test_workflow_template_unknown_field(kube):
    doc = workflow_template("strict-wft")
    doc["spec"]["templates"][0]["contianer"] = {"image": "typo"}
    with pytest.raises(ApiError) as e:
        kube.create(doc, dry_run=True)  # fieldValidation=Strict
    assert e.value.status == 400
    assert 'unknown field "spec.templates[0].contianer"' in e.value.message
    # without Strict the server prunes the field silently
    pruned = kube.create(doc, dry_run=True, field_validation="Ignore")
    assert "contianer" not in pruned["spec"]["templates"][0]
    # server-side apply never accepts an undeclared field
    with pytest.raises(ApiError) as e:
        kube.apply([doc], dry_run=True, field_validation="Ignore")
    assert ".spec.templates[name=\"main\"].contianer: field not declared in schema" in \
        e.value.message or "contianer: field not declared in schema" in e.value.message


def test_argo_events_crds_served(kube):
    [sensor] = kube.apply([{
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Sensor",
        "metadata": {"name": "s", "namespace": "default"},
        "spec": {"dependencies": [{"name": "d", "eventSourceName": "es", "eventName": "e"}],
                 "triggers": [{"template": {"name": "t", "log": {}}}]},
    }], dry_run=True)
    assert sensor["kind"] == "Sensor"


def test_server_side_apply_dry_run_then_real_then_noop(kube):
    ns = "ssa-check"
    docs = [
        workflow_template("ssa-wft", namespace=ns),
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "ssa-cm", "namespace": ns}, "data": {"a": "1"}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
    ]
    wft_path = kube.path_for(WFT, "WorkflowTemplate", "ssa-wft", ns)

    # A dry run cannot place objects in a Namespace it does not really create.
    with pytest.raises(ApiError) as e:
        kube.apply(docs, dry_run=True)
    assert e.value.status == 404 and f'namespaces "{ns}" not found' in e.value.message
    kube.apply(docs[2:])
    dry = kube.apply(docs, dry_run=True)
    assert [d["kind"] for d in dry] == ["WorkflowTemplate", "ConfigMap", "Namespace"]
    with pytest.raises(ApiError) as e:
        kube.request("GET", wft_path)
    assert e.value.status == 404, "dry run must not create anything"

    first = kube.apply(docs)
    stored = kube.request("GET", wft_path)
    assert stored["metadata"]["resourceVersion"] == first[0]["metadata"]["resourceVersion"]
    managers = {m["manager"] for m in stored["metadata"]["managedFields"]}
    assert managers == {"argo-delivery"}

    second = kube.apply(docs)
    assert [d["metadata"]["resourceVersion"] for d in second] == \
        [d["metadata"]["resourceVersion"] for d in first]
    assert kube.request("GET", wft_path)["metadata"]["generation"] == 1

    changed = workflow_template("ssa-wft", namespace=ns, entrypoint="other")
    changed["spec"]["templates"][0]["name"] = "other"
    [third] = kube.apply([changed])
    assert third["metadata"]["resourceVersion"] != first[0]["metadata"]["resourceVersion"]
    assert third["metadata"]["generation"] == 2


def test_watch_sees_changes(kube):
    """List-then-watch, the way controllers use the API (served by etcd 3.4's watch)."""
    path = "/api/v1/namespaces/default/configmaps"
    rv = kube.request("GET", path)["metadata"]["resourceVersion"]
    kube.apply([{"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "watched", "namespace": "default"}, "data": {"a": "1"}}])
    stream = kube.request("GET", path, query={"watch": "1", "resourceVersion": rv,
                                              "timeoutSeconds": "1"})
    lines = stream if isinstance(stream, str) else json.dumps(stream)
    events = [json.loads(line) for line in lines.splitlines() if line.strip()]
    assert ("ADDED", "watched") in {(e["type"], e["object"]["metadata"]["name"]) for e in events}
