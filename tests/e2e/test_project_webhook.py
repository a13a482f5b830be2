"""A project with a webhook secret of its own, on the real cluster: pushes for it arrive at
`/push/<project>` signed with its secret; the shared secret does not open its endpoint, and its
secret does not open the shared one.
"""

from __future__ import annotations

import time
import uuid

import pytest

from tests.e2e.test_push_to_version import (
    ORCHESTRATOR,
    PARTNER,
    deliver,
    install,
    payload,
    served,  # noqa: F401 (a fixture)
    sign,
    versions,
    workflows,
)
from tests.gitrepos import push_commit

pytestmark = pytest.mark.e2e

PARTNER_SECRET = "northwind-" + uuid.uuid4().hex


def _own_secret(data: dict) -> None:
    for project in data["projects"]:
        if project["name"] == "northwind":
            project["webhookSecret"] = {"name": "northwind-webhook", "key": "secret"}


@pytest.fixture(scope="module")
def platform(cluster, events_controller, served, tmp_path_factory):  # noqa: F811
    cluster.kube.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ORCHESTRATOR}},
                        {"apiVersion": "v1", "kind": "Secret",
                         "metadata": {"name": "northwind-webhook", "namespace": ORCHESTRATOR},
                         "stringData": {"secret": PARTNER_SECRET}}], field_manager="e2e-operator")
    return install(cluster, served, tmp_path_factory, edit=_own_secret)


def _new_version(cluster, before: set[str], timeout: float = 120):
    def created():
        fresh = [v for v in versions(cluster, PARTNER) if v["metadata"]["name"] not in before]
        return fresh[0] if fresh else None
    return cluster.wait_for("a new Version of northwind", created, timeout,
                            logs=["workflow-controller"])


def test_a_project_with_its_own_secret_has_its_own_endpoint(cluster, platform, served):  # noqa: F811
    daemon, repos = served
    commit = push_commit(repos["billing-adapter"], "main")
    body = payload("northwind-partners", "billing-adapter", "main", commit)
    known = {w["metadata"]["name"] for w in workflows(cluster, PARTNER)}
    before = {v["metadata"]["name"] for v in versions(cluster, PARTNER)}
    # the shared secret does not open northwind's endpoint, nor does its secret the shared one
    assert deliver(cluster, body, sign(body), path="/push/northwind") != "200"
    assert deliver(cluster, body, sign(body, PARTNER_SECRET)) != "200"
    # the shared endpoint with the shared secret is core-team's: northwind's Sensor ignores it
    assert deliver(cluster, body, sign(body)) == "200"
    time.sleep(5)
    assert {w["metadata"]["name"] for w in workflows(cluster, PARTNER)} == known
    # its own endpoint, signed with its own secret: a Version
    assert deliver(cluster, body, sign(body, PARTNER_SECRET), path="/push/northwind") == "200"
    version = _new_version(cluster, before)
    assert version["spec"]["trigger"]["commit"] == commit
