"""The e2e session fixture: one real single-node cluster for every test under tests/e2e.

    def test_x(cluster, namespace):            # a fresh namespace enforcing `restricted`
        cluster.kube.apply([...])
        cluster.wait_workflow(namespace, "name")

A part that is not built or installed fails the tests, naming the command that provides it
(`make e2e-tools`, `make debs`); nothing is skipped. On a failure, the components' log tails
are printed after the test summary; the full logs stay in .cache/e2e/run/logs/.
"""

from __future__ import annotations

import time

import pytest

from tests.e2e.cluster import Cluster, ClusterError
from tests.e2e.images import airgap_image, python_git_image, tofu_image

_LOGS = pytest.StashKey[str]()


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest):
    """A started Cluster (node Ready, Argo Workflows' controller running); stopped at the end."""
    c = Cluster()
    try:
        try:
            c.start(extra_images=[python_git_image(), tofu_image(), airgap_image()])
        except ClusterError as e:
            pytest.fail(str(e), pytrace=False)
        print(f"\ne2e cluster ready in {c.timings['ready']:.1f} s: "
              + ", ".join(f"{k} {v:.1f}" for k, v in c.timings.items()))
        yield c
    finally:
        if request.session.testsfailed:
            request.config.stash[_LOGS] = c.logs()
        c.stop()


@pytest.fixture(scope="session")
def events_controller(cluster: Cluster) -> Cluster:
    """Argo Events' controller, started on the session cluster the first time a test asks."""
    if cluster.get("apps/v1", "Deployment", "controller-manager", cluster.EVENTS_NAMESPACE) is None:
        t0 = time.monotonic()
        try:
            cluster.start_argo_events()
        except ClusterError as e:
            pytest.fail(str(e), pytrace=False)
        print(f"Argo Events controller ready in {time.monotonic() - t0:.1f} s")
    return cluster


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest):
    """A namespace of its own for the test, enforcing Pod Security `restricted`."""
    name = cluster.new_namespace(request.node.name.replace("_", "-")[:40].strip("-").lower())
    yield name
    cluster.delete_namespace(name)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and "namespace" in item.funcargs:
        c = item.funcargs.get("cluster")
        if c is not None:
            report.sections.append(("e2e namespace dump",
                                    c.dump_namespace(item.funcargs["namespace"])))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    logs = config.stash.get(_LOGS, None)
    if logs:
        terminalreporter.section("e2e cluster component logs")
        terminalreporter.write_line(logs)
