"""argo-delivery's own CRDs (Project, Version, Environment) as the real API server sees them."""

import copy

import pytest

from argo_delivery.naming import GROUP_VERSION
from tests.kube_server import ApiError

pytestmark = pytest.mark.apiserver

NS = "crd-check"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
HASH = "sha256:" + "ab" * 32


def project():
    return {
        "apiVersion": GROUP_VERSION, "kind": "Project",
        "metadata": {"name": "shop", "namespace": NS},
        "spec": {
            "type": "internal",
            "members": {"developers": ["shop-devs"], "productOwners": ["shop-po"]},
            "components": [{"name": "api", "repo": "https://git.example/shop/api.git",
                            "branch": "main", "deployPath": "deploy"}],
            "testSuites": {"alpha": [{"name": "smoke", "image": "shop/tests:1",
                                      "timeout": "30m"}]},
            "environments": {"terraformModule": "git::https://git.example/tf.git",
                             "defaultTTL": "8h", "maxTTL": "3d"},
        },
    }


def version():
    return {
        "apiVersion": GROUP_VERSION, "kind": "Version",
        "metadata": {"name": "shop-abc", "namespace": NS},
        "spec": {
            "project": "shop",
            "components": [{"name": "api", "repo": "https://git.example/shop/api.git",
                            "ref": "main", "commit": COMMIT}],
            "hash": HASH,
            "trigger": {"type": "push", "repo": "https://git.example/shop/api.git",
                        "branch": "main", "commit": COMMIT, "sender": "dev"},
        },
    }


def environment():
    return {
        "apiVersion": GROUP_VERSION, "kind": "Environment",
        "metadata": {"name": "shop-dev-1", "namespace": NS},
        "spec": {"project": "shop", "version": "shop-abc", "owner": "dev",
                 "infrastructure": {"variables": {"size": "small"}}},
    }


@pytest.fixture(scope="module")
def namespace(kube):
    kube.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}])
    return NS


@pytest.mark.parametrize("make", [project, version, environment])
def test_valid_objects_accepted(kube, namespace, make):
    doc = make()
    [dry] = kube.apply([doc], dry_run=True)
    [real] = kube.apply([doc])
    assert real["kind"] == dry["kind"] == doc["kind"]
    assert real["spec"] == dry["spec"]
    stored = kube.request("GET", kube.path_for(GROUP_VERSION, doc["kind"],
                                               doc["metadata"]["name"], NS))
    assert stored["spec"] == real["spec"]
    if doc["kind"] == "Environment":
        assert stored["spec"]["demo"] is False, "the schema default is applied"


def _set(doc, path, value):
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return doc


_DELETE = object()

# (make, path, value, message): rejected by schema validation with HTTP 422, both on the
# create and the server-side apply path.
INVALID = [
    # enum, pattern, format, bounds
    (project, "spec.type", "partner", 'spec.type: Unsupported value: "partner"'),
    (version, "spec.hash", "md5:00", "spec.hash in body should match '^sha256:[0-9a-f]{64}$'"),
    (project, "spec.environments.maxTTL", "three days",
     "spec.environments.maxTTL in body should match"),
    (project, "spec.components", [], "spec.components: Invalid value: 0: "
     "spec.components in body should have at least 1 items"),
    # missing required field
    (version, "spec.hash", _DELETE, "spec.hash: Required value"),
    (environment, "spec.owner", _DELETE, "spec.owner: Required value"),
    (project, "spec.components.0.repo", _DELETE, "spec.components[0].repo: Required value"),
]

# (make, path, value, create-path status and message, server-side-apply message): a wrong
# type or an undeclared field. Server-side apply fails converting the patch to the schema's
# types before validation, with HTTP 500 (kubernetes/kubernetes#139253).
MISTYPED = [
    (project, "spec.type", 5, 422,
     'spec.type: Invalid value: "integer": spec.type in body must be of type string',
     ".spec.type: expected string, got"),
    (environment, "spec.demo", "yes", 422,
     'spec.demo: Invalid value: "string": spec.demo in body must be of type boolean',
     ".spec.demo: expected boolean, got"),
    (version, "spec.components.0.commit", 1234, 422,
     'spec.components[0].commit: Invalid value: "integer": '
     "spec.components[0].commit in body must be of type string",
     '.spec.components[name="api"].commit: expected string, got'),
    # unknown fields: create with fieldValidation=Strict says so (400)
    (project, "spec.colour", "blue", 400, 'unknown field "spec.colour"',
     ".spec.colour: field not declared in schema"),
    (environment, "spec.infrastructure.modul", "x", 400,
     'unknown field "spec.infrastructure.modul"',
     ".spec.infrastructure.modul: field not declared in schema"),
]


def _id(make, path, value):
    return f"{make.__name__}-{path}-{'missing' if value is _DELETE else value}"


@pytest.mark.parametrize("make, path, value, message", INVALID,
                         ids=[_id(*case[:3]) for case in INVALID])
def test_invalid_objects_rejected(kube, namespace, make, path, value, message):
    doc = _set(make(), path, value)
    doc["metadata"]["name"] += "-invalid"
    for send in (lambda: kube.apply([doc], dry_run=True),
                 lambda: kube.create(doc, dry_run=True)):
        with pytest.raises(ApiError) as e:
            send()
        assert e.value.status == 422, e.value
        assert message in e.value.message, e.value.message


@pytest.mark.parametrize("make, path, value, status, message, ssa_message", MISTYPED,
                         ids=[_id(*case[:3]) for case in MISTYPED])
def test_mistyped_objects_rejected(kube, namespace, make, path, value, status, message,
                                   ssa_message):
    doc = _set(make(), path, value)
    doc["metadata"]["name"] += "-invalid"
    with pytest.raises(ApiError) as e:
        kube.create(doc, dry_run=True)
    assert e.value.status == status, e.value
    assert message in e.value.message, e.value.message
    with pytest.raises(ApiError) as e:
        kube.apply([doc], dry_run=True)
    assert e.value.status in (400, 500), e.value
    assert "failed to create typed patch object" in e.value.message
    assert ssa_message in e.value.message, e.value.message


def test_unknown_field_pruned_without_strict(kube, namespace):
    doc = _set(project(), "spec.colour", "blue")
    doc["metadata"]["name"] = "pruned"
    created = kube.create(doc, dry_run=True, field_validation="Ignore")
    assert "colour" not in created["spec"]


def test_version_identity_is_immutable(kube, namespace):
    kube.apply([version()])
    changed = copy.deepcopy(version())
    changed["spec"]["hash"] = "sha256:" + "cd" * 32
    with pytest.raises(ApiError) as e:
        kube.apply([changed], dry_run=True)
    assert e.value.status == 422
    assert "project, components, hash and trigger of a Version are immutable" in e.value.message
