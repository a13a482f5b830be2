"""Velero: a Schedule that backs up what the platform keeps only in etcd, and what a restore
needs so that no flow runs again.

Optional by config (`backup.velero`). Rendered in Velero's namespace (`backup.velero.namespace`,
which the site's Velero install creates):

- Schedule `argo-delivery` (velero.io/v1): a Backup per `schedule`, kept `ttl`, in
  `storageLocation` (unset: Velero's default BackupStorageLocation), of the orchestrator
  namespace and every project namespace: the Projects, Versions and Environments, the
  Terraform state Secrets and outputs Secrets with their owners' Roles, the site's Secrets
  and ConfigMaps. Left out is run state that a restore would start again or that the
  controllers make anew: pods, Argo's Workflows and the objects they own, the Deployments,
  ReplicaSets and StatefulSets Argo Events runs the EventBus, EventSources and Sensors
  with, the EventBus's volume claims (in-flight events: replayed, they would start flows),
  Leases (the Terraform state lock) and Events. Cluster-scoped objects: Velero adds the
  Namespace of each included namespace and the CustomResourceDefinition of every custom
  resource it backed up (ours, Argo's) by itself, as long as neither kind is filtered (its
  backupCRD step); the bundle's ValidatingAdmissionPolicies are not taken (Velero selects
  cluster-scoped objects by type only, which would take every policy of the cluster): they
  come from the bundle, applied before a restore.
- ConfigMap `argo-delivery-restore`: Velero resource modifiers (version v1) that a restore
  names (`velero restore create --resource-modifier-configmap argo-delivery-restore`): every
  Version and Environment is restored with the annotation `argo-delivery.io/restored`, the
  marker `argo-delivery state import` sets, so the Sensors' ADD filters skip it (no alpha
  run, no vend), and the admission policies let Velero's cluster-admin account create
  approved Versions and other people's Environments, as for `state import`.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from argo_delivery.capability import Capability
from argo_delivery.config import PlatformConfig
from argo_delivery.crds import CRD_KINDS
from argo_delivery.naming import ANNOTATION_RESTORED, GROUP, LABEL_PART_OF, PART_OF

__all__ = ["CAPABILITY", "EXCLUDED_RESOURCES", "MARKER", "RESTORE_CONFIGMAP", "SCHEDULE",
           "STATUS_RESOURCES", "restore", "restore_command", "restore_modifiers", "schedule",
           "velero_resources"]

API_VERSION = "velero.io/v1"
SCHEDULE = "argo-delivery"
RESTORE_CONFIGMAP = "argo-delivery-restore"
MODIFIERS_KEY = "resource-modifiers.yaml"
# The value of the restore marker a Velero restore sets (state import writes its file's time;
# a resource modifier has one fixed value): who restored, the Backup's time is Velero's.
MARKER = "velero"

# Namespace-scoped kinds left out of the backup (Velero's group-qualified resource names; a
# name the cluster does not serve is ignored by Velero).
EXCLUDED_RESOURCES = (
    "pods",                                       # a restored pod runs its step again
    "workflows.argoproj.io",                      # a restored running Workflow goes on
    "workflowtaskresults.argoproj.io",            # owned by Workflows
    "workflowtasksets.argoproj.io",
    "workflowartifactgctasks.argoproj.io",
    "deployments.apps",                           # Argo Events makes them from the EventSources
    "replicasets.apps",                           # and Sensors (Velero would restore them first)
    "statefulsets.apps",                          # the EventBus's JetStream servers
    "persistentvolumeclaims",                     # the EventBus's in-flight events
    "leases.coordination.k8s.io",                 # the Terraform state lock
    "events",
    "events.events.k8s.io",
)

# Kinds whose status a restore must bring back (the Restore's restoreStatus): without it a
# Version forgets its streams and approval outcome, an Environment its phase and outputs.
STATUS_RESOURCES = tuple(f"{plural}.{GROUP}" for plural, *_ in CRD_KINDS.values())


def _namespaces(config: PlatformConfig) -> list[str]:
    return sorted({config.orchestrator_namespace, *(p.namespace for p in config.projects)})


def _metadata(config: PlatformConfig, name: str) -> dict[str, Any]:
    settings = config.velero
    meta: dict[str, Any] = {"name": name, "namespace": settings.namespace}
    if settings.labels:
        meta["labels"] = dict(settings.labels)
    return meta


def schedule(config: PlatformConfig) -> dict[str, Any]:
    """The Velero Schedule of the orchestrator's and the projects' namespaces."""
    settings = config.velero
    template: dict[str, Any] = {
        "includedNamespaces": _namespaces(config),
        "excludedNamespaceScopedResources": list(EXCLUDED_RESOURCES),
        "snapshotVolumes": False,   # the platform keeps API objects only
        "ttl": settings.ttl,
    }
    if settings.storage_location:
        template["storageLocation"] = settings.storage_location
    # The Backups' labels. Unset, Velero would copy the Schedule's own, among them the bundle's
    # and the ApplySet membership `apply` adds: a Backup is not a member of the bundle.
    template["metadata"] = {"labels": {LABEL_PART_OF: PART_OF, **settings.labels}}
    return {"apiVersion": API_VERSION, "kind": "Schedule",
            "metadata": _metadata(config, SCHEDULE),
            "spec": {"schedule": settings.schedule, "template": template}}


def restore_modifiers(config: PlatformConfig) -> dict[str, Any]:
    """Velero's resource modifiers (internal/resourcemodifiers, version v1): the restore marker
    on every restored Version and Environment."""
    rules = [{"conditions": {"groupResource": f"{plural}.{GROUP}",
                             "namespaces": _namespaces(config)},
              "mergePatches": [{"patchData": json.dumps(
                  {"metadata": {"annotations": {ANNOTATION_RESTORED: MARKER}}})}]}
             for plural in ("versions", "environments")]
    return {"version": "v1", "resourceModifierRules": rules}


def restore_configmap(config: PlatformConfig) -> dict[str, Any]:
    """The ConfigMap a restore names; Velero wants exactly one key, the rules as YAML."""
    text = yaml.safe_dump(restore_modifiers(config), sort_keys=False, width=1000)
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": _metadata(config, RESTORE_CONFIGMAP), "data": {MODIFIERS_KEY: text}}


def restore(config: PlatformConfig, name: str) -> dict[str, Any]:
    """The Restore the README prescribes (what `velero restore create NAME --from-schedule
    argo-delivery --resource-modifier-configmap argo-delivery-restore --status-include-resources
    ... --existing-resource-policy none` creates): the newest backup of the Schedule, the
    restore marker set by the resource modifiers, our CRs' status written back, objects the
    bundle (applied first) made left alone. Not part of the bundle."""
    return {"apiVersion": API_VERSION, "kind": "Restore",
            "metadata": {"name": name, "namespace": config.velero.namespace},
            "spec": {"scheduleName": SCHEDULE,
                     "existingResourcePolicy": "none",
                     "restoreStatus": {"includedResources": list(STATUS_RESOURCES)},
                     "resourceModifier": {"apiGroup": "", "kind": "ConfigMap",
                                          "name": RESTORE_CONFIGMAP}}}


def restore_command(config: PlatformConfig, name: str = "argo-delivery-restore") -> str:
    """The velero CLI line that creates `restore(config, name)`."""
    return (f"velero restore create {name} --namespace {config.velero.namespace} "
            f"--from-schedule {SCHEDULE} --resource-modifier-configmap {RESTORE_CONFIGMAP} "
            f"--status-include-resources {','.join(STATUS_RESOURCES)} "
            "--existing-resource-policy none")


def velero_resources(config: PlatformConfig) -> list[dict[str, Any]]:
    """What `backup.velero` asks for (nothing by default)."""
    if config.velero is None:
        return []
    return [restore_configmap(config), schedule(config)]


CAPABILITY = Capability(
    "velero", "A Velero Schedule of the orchestrator's and projects' namespaces, and the resource "
    "modifiers a restore uses, with backup.velero.", per_platform=velero_resources)
