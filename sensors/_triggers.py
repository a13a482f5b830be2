"""The one shape of trigger our Sensors use: a `k8s` trigger that creates a Workflow from a
WorkflowTemplate of the project's namespace, setting only the template's declared parameters
(the admission policy for Sensor-created Workflows refuses anything else)."""

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
        "metadata": {"generateName": f"{template}-", "namespace": namespace,
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
                    {"src": {"dependencyName": dependency, **source},
                     "dest": f"spec.arguments.parameters.{names.index(key)}.value"}
                    for key, source in parameters.items() if not isinstance(source, str)],
            },
        },
        "retryStrategy": dict(RETRY),
    }
    if not trigger["template"]["k8s"]["parameters"]:
        del trigger["template"]["k8s"]["parameters"]
    if rate_limit:
        trigger["rateLimit"] = {"unit": rate_limit.unit,
                                "requestsPerUnit": rate_limit.requests_per_unit}
    return trigger
