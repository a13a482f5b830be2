"""The registry: every capability of the pipeline, in the order the bundle renders them.

Adding a capability is one module that exports a `Capability` and one line here.
"""

from __future__ import annotations

from argo_delivery import crds, dashboard, isolation, monitoring, orchestrator, tenancy, velero
from argo_delivery.capability import Registry
from argo_delivery.templates import airgap, environments, generate_version, streams

__all__ = ["CAPABILITIES"]

CAPABILITIES = Registry([
    crds.CAPABILITY,              # Project, Version and Environment CRDs
    orchestrator.CAPABILITY,      # orchestrator namespace, EventBus
    tenancy.CAPABILITY,           # per project: namespace, Project, members, executor account
    generate_version.CAPABILITY,  # F1: push -> Version
    streams.CAPABILITY,           # F2-F4: alpha, nightly, sign-off and release
    environments.CAPABILITY,      # F5-F7: Environment requests (admission so far)
    airgap.CAPABILITY,            # F8: export of released Versions (with airgap.export)
    isolation.CAPABILITY,         # NetworkPolicies, LimitRanges, per project ResourceQuota
    monitoring.CAPABILITY,        # PrometheusRule and PodMonitors (with monitoring.*)
    dashboard.CAPABILITY,         # Grafana dashboard ConfigMap (with monitoring.dashboard)
    velero.CAPABILITY,            # Velero Schedule and restore modifiers (with backup.velero)
])
