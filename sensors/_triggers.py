"""The one shape of trigger our Sensors use: a `k8s` trigger that creates a Workflow from a
WorkflowTemplate of the project's namespace, setting only the template's declared parameters
(the admission policy for Sensor-created Workflows refuses anything else).

Delivery is at least once, and a redelivered event creates nothing twice:

- `atLeastOnce: true`: the Sensor acknowledges an event to the EventBus only after the
  Workflow is created. Argo Events' default acknowledges first and creates in the background,
  so a Sensor pod that dies in between loses the event (tests/e2e/test_reliability.py lost
  one push in twelve that way before this).
- The Workflow is named `<template>-<event id>`: JetStream redelivers an event it saw no
  acknowledgement for with the same id, and the API server refuses a second Workflow of that
  name (AlreadyExists; the trigger's retries end and the event is acknowledged). A push the
  provider sends again is a new event with a new id: generate-version resolves it to the
  Version that already exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from argo_delivery.naming import LABEL_PROJECT

__all__ = ["workflow_trigger"]

RETRY = {"steps": 3, "duration": "2s", "factor": 2, "jitter": 0.2}


def workflow_trigger(name: str, dependency: str, namespace: str, project: str, template: str,
                     parameters: Mapping[str, str | dict[str, Any]],
                     rate_limit: Any = None) -> dict[str, Any]:
    """`parameters`: name -> a fixed value (str) or the event source of its value (a dict of
    `src` fields such as {"dataKey": ...} or {"dataTemplate": ...})."""
    names = list(parameters)
    workflow = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        # the event's id is appended (below): one Workflow per event, whatever redelivers it
        "metadata": {"name": f"{template}-", "namespace": namespace,
                     "labels": {LABEL_PROJECT: project}},
        "spec": {
            "workflowTemplateRef": {"name": template},
            "arguments": {"parameters": [
                {"name": key, "value": value if isinstance(value, str) else ""}
                for key, value in parameters.items()]},
        },
    }
    trigger: dict[str, Any] = {
        "template": {
            "name": name,
            "conditions": dependency,
            "k8s": {
                "operation": "create",
                "source": {"resource": workflow},
                "parameters": [
                    {"src": {"dependencyName": dependency, "contextKey": "id"},
                     "dest": "metadata.name", "operation": "append"},
                    *({"src": {"dependencyName": dependency, **source},
                       "dest": f"spec.arguments.parameters.{names.index(key)}.value"}
                      for key, source in parameters.items() if not isinstance(source, str))],
            },
        },
        "atLeastOnce": True,
        "retryStrategy": dict(RETRY),
    }
    if rate_limit:
        trigger["rateLimit"] = {"unit": rate_limit.unit,
                                "requestsPerUnit": rate_limit.requests_per_unit}
    return trigger
