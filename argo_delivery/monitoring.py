"""Monitoring with the prometheus-operator's kinds: the alerts and what Prometheus scrapes.

Optional by config (`monitoring.prometheusRule`, `monitoring.podMonitors`): many sites run no
prometheus-operator. What is measured is in argo_delivery/metrics.py (the Argo Workflows
custom metrics, on every WorkflowTemplate whatever the config says).

- PrometheusRule `argo-delivery-alerts` (orchestrator namespace): a flow failing repeatedly,
  a push without a Version, an Environment stuck or past its expiry, the reaper failing or
  silent; with the PodMonitors also the workflow controller not scraped and each of our
  EventSources and Sensors not running (the `up` series of the PodMonitor: one rule per name,
  the names taken from the bundle's own EventSources and Sensors).
- PodMonitor `argo-delivery-workflow-controller`: the controller's `metrics` port in
  `monitoring.workflowsNamespace` (upstream's install has a named container port and no
  Service for it; a PodMonitor needs none). PodMonitor `argo-delivery-events`: our EventSource
  and Sensor pods' `metrics` port (7777), with their names as the labels `eventsource` and
  `sensor`; and the NetworkPolicy that lets Prometheus reach that port through the
  orchestrator's default-deny.
"""

from __future__ import annotations

from typing import Any

from argo_delivery.capability import Capability
from argo_delivery.config import PlatformConfig
from argo_delivery.durations import parse_duration
from argo_delivery.isolation import _peer, _policy, _ports
from argo_delivery.metrics import exposed

__all__ = ["CAPABILITY", "EVENTS_METRICS_PORT", "EVENTS_MONITOR", "RULE", "WORKFLOWS_MONITOR",
           "alert_rules", "monitoring_resources", "pod_monitors", "prometheus_rule"]

API_VERSION = "monitoring.coreos.com/v1"
RULE = "argo-delivery-alerts"
WORKFLOWS_MONITOR = "argo-delivery-workflow-controller"
EVENTS_MONITOR = "argo-delivery-events"
METRICS_POLICY = "argo-delivery-metrics"
EVENTS_METRICS_PORT = 7777   # Argo Events' EventSource and Sensor pods (port name "metrics")
EVENTS_CONTROLLERS = ("eventsource-controller", "sensor-controller")
FAILED = 'status=~"Failed|Error"'
SUCCEEDED = 'status="Succeeded"'


def _seconds(duration: str) -> int:
    return int(parse_duration(duration).total_seconds())


def _last_run(flow: str, status: str) -> str:
    return (f"max by (project) ({exposed('delivery_workflow_last_run_timestamp_seconds')}"
            f'{{flow="{flow}", {status}}})')


def _newest_run_failed(flow: str) -> str:
    """The project's newest finished run of `flow` (by creation time) failed: newer than its
    newest success, or no success at all since the controller started."""
    any_run = f"max by (project) ({exposed('delivery_workflow_last_run_timestamp_seconds')}" \
              f'{{flow="{flow}"}})'
    return (f"{_last_run(flow, FAILED)}\n  > on (project)\n"
            f"({_last_run(flow, SUCCEEDED)}"
            f" or on (project) 0 * {any_run})")


def _rule(alert: str, expr: str, summary: str, description: str, *, severity: str = "warning",
          for_: str | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": alert, "expr": expr}
    if for_:
        rule["for"] = for_
    rule["labels"] = {"severity": severity, **(labels or {})}
    rule["annotations"] = {"summary": summary, "description": description}
    return rule


def _event_pods(resources: list[dict[str, Any]], kind: str) -> list[str]:
    return sorted(r["metadata"]["name"] for r in resources if r.get("kind") == kind)


def alert_rules(config: PlatformConfig, resources: list[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """The rules of the PrometheusRule's one group; `resources` (the rest of the bundle) name
    the EventSources and Sensors whose pods must run."""
    settings = config.monitoring
    runs = exposed("delivery_workflow_runs_total")
    window = f"{_seconds(settings.failure_window)}s"
    version_within = _seconds(settings.version_within)
    failed = f"{runs}{{{FAILED}}}"
    rules = [
        # increase() counts the rises after a series' first sample, so a series born inside
        # the window (the controller creates it at the first failure since it started, with
        # the value 1) counts with its whole value: else a first failure would never count.
        _rule("ArgoDeliveryFlowFailing",
              f"round(sum by (project, flow) (\n  ({failed} unless {failed} offset {window})\n"
              f"  or increase({failed}[{window}])\n)) >= {settings.failures}",
              "{{ $labels.flow }} of project {{ $labels.project }} failed about "
              "{{ $value }} times",
              f"At least {settings.failures} runs of {{{{ $labels.flow }}}} in project "
              f"{{{{ $labels.project }}}} ended Failed or Error within {settings.failure_window}. "
              "argo list -n <project namespace> and the failed Workflows' messages say why."),
        _rule("ArgoDeliveryPushWithoutVersion",
              f"({_newest_run_failed('generate-version')})\n"
              f"and on (project) (time() - {_last_run('generate-version', FAILED)} "
              f"> {version_within})",
              "Project {{ $labels.project }}: a push got no Version",
              f"The newest push of project {{{{ $labels.project }}}} had its generate-version "
              f"run fail, and no push since resolved into a Version, for more than "
              f"{settings.version_within} (the run's deadline is 15 minutes: every push's run has "
              "finished by then). Its Workflow says why (a missing branch, credentials, the API).",
              severity="critical"),
        _rule("ArgoDeliveryEnvironmentStuck",
              f"max by (project, phase) ({exposed('delivery_environment_oldest_phase_age_seconds')}"
              f'{{phase=~"Provisioning|Deploying|Destroying|Failed"}}) > {_seconds(settings.stuck_after)}',
              "Project {{ $labels.project }}: an Environment is {{ $labels.phase }} for "
              "{{ $value | humanizeDuration }}",
              f"An Environment of project {{{{ $labels.project }}}} has been "
              f"{{{{ $labels.phase }}}} for longer than {settings.stuck_after} (as the reaper saw "
              "it last). argo-delivery envs list shows which; its vend or destroy Workflow why."),
        _rule("ArgoDeliveryEnvironmentExpired",
              f"max by (project) ({exposed('delivery_environment_overdue_seconds')}) "
              f"> {_seconds(settings.expiry_grace)}",
              "Project {{ $labels.project }}: an Environment outlived its expiry by "
              "{{ $value | humanizeDuration }}",
              f"An Environment of project {{{{ $labels.project }}}} still exists more than "
              f"{settings.expiry_grace} after its expiry: the reaper deleted it but its destroy "
              "did not finish, or the reaper cannot delete it."),
        _rule("ArgoDeliveryReaperFailing",
              _newest_run_failed("reap-environments"),
              "Project {{ $labels.project }}: the environment reaper failed",
              "The newest reap-environments run of project {{ $labels.project }} ended Failed "
              "or Error: expired Environments are not being deleted."),
    ]
    if config.schedules is not None:
        rules.append(_rule(
            "ArgoDeliveryReaperSilent",
            f"time() - {_last_run('reap-environments', SUCCEEDED)} "
            f"> {_seconds(settings.reaper_silent_for)}",
            "Project {{ $labels.project }}: no successful reaper run for "
            "{{ $value | humanizeDuration }}",
            f"The reaper of project {{{{ $labels.project }}}} runs at {config.schedules.reaper} "
            f"but has not succeeded for more than {settings.reaper_silent_for}: is the "
            "CronWorkflow suspended, or its Workflows not starting?"))
    if settings.pod_monitors:
        namespace = config.orchestrator_namespace
        rules.append(_rule(
            "ArgoDeliveryWorkflowControllerNotScraped",
            f'absent(up{{job="{namespace}/{WORKFLOWS_MONITOR}"}} == 1)',
            "The workflow controller's metrics are not being scraped",
            f"No target of PodMonitor {namespace}/{WORKFLOWS_MONITOR} is up: the controller is "
            f"down, not in namespace {settings.workflows_namespace}, or its metrics are off; "
            "every other argo-delivery alert is blind meanwhile.",
            severity="critical", for_="10m"))
        for kind, label in (("EventSource", "eventsource"), ("Sensor", "sensor")):
            for name in _event_pods(list(resources), kind):
                rules.append(_rule(
                    f"ArgoDelivery{kind}NotRunning",
                    f'absent(up{{job="{namespace}/{EVENTS_MONITOR}", {label}="{name}"}} == 1)',
                    f"{kind} {name} is not running",
                    f"No pod of {kind} {namespace}/{name} answers on its metrics port: its "
                    f"Deployment has no ready pod (kubectl -n {namespace} get pods -l "
                    f"{label}-name={name}), so its "
                    + ("events are not received." if kind == "EventSource"
                       else "triggers do not fire."),
                    severity="critical", for_="5m", labels={label: name}))
    return rules


def prometheus_rule(config: PlatformConfig, resources: list[dict[str, Any]] = ()) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "PrometheusRule",
            "metadata": {"name": RULE, "namespace": config.orchestrator_namespace,
                         "labels": dict(config.monitoring.labels)},
            "spec": {"groups": [{"name": "argo-delivery",
                                 "rules": alert_rules(config, resources)}]}}


def pod_monitors(config: PlatformConfig) -> list[dict[str, Any]]:
    settings = config.monitoring
    namespace = config.orchestrator_namespace
    controller: dict[str, Any] = {"port": "metrics", "path": "/metrics",
                                  "scheme": settings.workflows_metrics_scheme}
    if settings.workflows_metrics_scheme == "https":   # the controller's self-signed certificate
        controller["tlsConfig"] = {"insecureSkipVerify": True}

    def monitor(name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": API_VERSION, "kind": "PodMonitor",
                "metadata": {"name": name, "namespace": namespace,
                             "labels": dict(settings.labels)}, "spec": spec}
    return [
        monitor(WORKFLOWS_MONITOR, {
            "namespaceSelector": {"matchNames": [settings.workflows_namespace]},
            "selector": {"matchLabels": {"app": "workflow-controller"}},
            "podMetricsEndpoints": [controller]}),
        monitor(EVENTS_MONITOR, {
            "namespaceSelector": {"matchNames": [namespace]},
            "selector": {"matchExpressions": [{"key": "controller", "operator": "In",
                                               "values": list(EVENTS_CONTROLLERS)}]},
            "podMetricsEndpoints": [{"port": "metrics", "path": "/metrics", "relabelings": [
                {"sourceLabels": ["__meta_kubernetes_pod_label_eventsource_name"],
                 "targetLabel": "eventsource"},
                {"sourceLabels": ["__meta_kubernetes_pod_label_sensor_name"],
                 "targetLabel": "sensor"}]}]}),
    ]


def metrics_policy(config: PlatformConfig) -> dict[str, Any]:
    """Prometheus -> the EventSource and Sensor pods' metrics port, through the default-deny."""
    ingress: dict[str, Any] = {"ports": _ports(EVENTS_METRICS_PORT)}
    if config.monitoring.scrape_from:   # none: any source, this port only
        ingress["from"] = [_peer(p) for p in config.monitoring.scrape_from]
    return _policy(METRICS_POLICY, config.orchestrator_namespace,
                   {"matchExpressions": [{"key": "controller", "operator": "In",
                                          "values": list(EVENTS_CONTROLLERS)}]}, {}, [ingress])


def monitoring_resources(config: PlatformConfig) -> list[dict[str, Any]]:
    """What `monitoring` asks for (nothing by default)."""
    settings = config.monitoring
    resources: list[dict[str, Any]] = []
    if settings.pod_monitors:
        resources += [*pod_monitors(config), metrics_policy(config)]
    if settings.prometheus_rule:
        resources.append(prometheus_rule(config, _bundle_resources(config)
                                         if settings.pod_monitors else []))
    return resources


def _bundle_resources(config: PlatformConfig) -> list[dict[str, Any]]:
    """The other capabilities' resources as manifests (for the EventSource and Sensor names)."""
    from argo_delivery.bundle import to_manifest
    from argo_delivery.capabilities import CAPABILITIES

    return [to_manifest(r) for c in CAPABILITIES if c.name != CAPABILITY.name
            for r in c.resources(config)]


CAPABILITY = Capability(
    "monitoring", "Alerts (PrometheusRule) and scrape configuration (PodMonitors) for the "
    "prometheus-operator, with monitoring.prometheusRule and monitoring.podMonitors.",
    per_platform=monitoring_resources)
