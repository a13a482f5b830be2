"""The NetworkPolicies select pods by the labels, and open the ports, that the pinned Argo
Events controller really puts on the pods it builds (read from its source)."""

from __future__ import annotations

import re

import pytest

from argo_delivery import isolation
from tests.support import go_module_dir, pinned_version

pytestmark = pytest.mark.conformance

MODULE = "github.com/argoproj/argo-events"


@pytest.fixture(scope="module")
def source():
    root = go_module_dir(MODULE, pinned_version("argo-events-lint", MODULE)) / "pkg/reconciler"
    return lambda path: (root / path).read_text()


def test_eventsource_and_sensor_pods_carry_the_controller_label(source):
    for path, value in (("eventsource/controller.go", isolation.EVENTSOURCE_PODS["controller"]),
                        ("sensor/controller.go", isolation.SENSOR_CONTROLLER)):
        assert re.search(rf'"controller":\s*"{value}"', source(path)), path
    # the reconciler copies those labels onto the pod template
    for path in ("eventsource/resource.go", "sensor/resource.go"):
        assert re.search(r"for k, v := range args\.Labels \{\s*podTemplateLabels\[k\] = v",
                         source(path)), path


def test_eventbus_pods_carry_the_controller_and_bus_name_labels(source):
    assert isolation.EVENTBUS_PODS["controller"] == "eventbus-controller"
    assert re.search(r'"controller":\s*"eventbus-controller",\s*"eventbus-name":\s*bus\.Name',
                     source("eventbus/installer/installer.go"))
    assert re.search(r"for k, v := range r\.labels \{\s*podTemplateLabels\[k\] = v",
                     source("eventbus/installer/jetstream.go"))


def test_jetstream_ports(source):
    text = source("eventbus/installer/jetstream.go")
    assert re.search(rf"jsClientPort\s*=\s*int32\({isolation.JETSTREAM_CLIENT_PORT}\)", text)
    assert re.search(rf"jsClusterPort\s*=\s*int32\({isolation.JETSTREAM_CLUSTER_PORT}\)", text)
