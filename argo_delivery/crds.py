"""CustomResourceDefinitions for Project, Version and Environment.

The schemas are structural (every field typed, no unknown fields kept) so the API server
prunes or, with strict field validation, rejects anything we did not declare.
"""

from __future__ import annotations

from typing import Any

from argo_delivery.capability import Capability
from argo_delivery.naming import API_VERSION, GROUP

__all__ = ["CAPABILITY", "CRD_KINDS", "crd_manifests", "crd_schema"]

Schema = dict[str, Any]

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DURATION = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d))+$"
HASH = r"^sha256:[0-9a-f]{64}$"
COMMIT = r"^[0-9a-f]{40}([0-9a-f]{24})?$"


def _string(description: str, **extra: Any) -> Schema:
    return {"type": "string", "description": description, **extra}


def _object(description: str, properties: dict[str, Schema], required: list[str] | None = None,
            **extra: Any) -> Schema:
    schema: Schema = {"type": "object", "description": description, "properties": properties}
    if required:
        schema["required"] = required
    schema.update(extra)
    return schema


def _array(description: str, items: Schema, **extra: Any) -> Schema:
    return {"type": "array", "description": description, "items": items, **extra}


def _string_map(description: str) -> Schema:
    return {"type": "object", "description": description,
            "additionalProperties": {"type": "string"}}


def _conditions() -> Schema:
    condition = _object(
        "Standard Kubernetes condition.",
        {
            "type": _string("Condition type, e.g. Ready.", maxLength=316),
            "status": _string("True, False or Unknown.", enum=["True", "False", "Unknown"]),
            "reason": _string("CamelCase reason.", maxLength=1024),
            "message": _string("Human-readable detail.", maxLength=32768),
            "lastTransitionTime": _string("When the status last changed.", format="date-time"),
            "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0},
        },
        required=["type", "status"],
    )
    return _array("Conditions of this object.", condition, **{
        "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]})


def _component_ref() -> Schema:
    return _object(
        "A component repository.",
        {
            "name": _string("Component name.", pattern=DNS_LABEL, maxLength=63),
            "repo": _string("Git repository URL.", minLength=1),
            "branch": _string("Tracked branch.", minLength=1),
            "deployPath": _string("Path of the component's deploy manifests in its repo."),
        },
        required=["name", "repo", "branch"],
    )


def _test_suite() -> Schema:
    return _object(
        "A test suite: one container per suite.",
        {
            "name": _string("Suite name.", pattern=DNS_LABEL, maxLength=63),
            "image": _string("Image that runs the suite.", minLength=1),
            "command": _array("Entrypoint.", {"type": "string"}),
            "args": _array("Arguments.", {"type": "string"}),
            "timeout": _string("Maximum run time (Go duration, e.g. 30m).", pattern=DURATION),
        },
        required=["name", "image", "timeout"],
    )


def _project_schema() -> Schema:
    spec = _object(
        "What the tenant builds and how it is tested.",
        {
            "type": _string("internal team or external partner.", enum=["internal", "external"]),
            "members": _object("Groups by role.", {
                "developers": _array("Groups that may request environments.", {"type": "string"}),
                "productOwners": _array("Groups that may approve Versions.", {"type": "string"}),
            }),
            "components": _array("Components that make up this project's platform.",
                                  _component_ref(), minItems=1,
                                  **{"x-kubernetes-list-type": "map",
                                     "x-kubernetes-list-map-keys": ["name"]}),
            "testSuites": _object("Test suites by stream.", {
                "alpha": _array("Run on every new Version.", _test_suite()),
                "nightly": _array("Run each night on Versions that passed alpha.", _test_suite()),
            }),
            "environments": _object("Ephemeral environments.", {
                "terraformModule": _string("Terraform module source."),
                "variables": _string_map("Default Terraform variables."),
                "defaultTTL": _string("TTL when a request names none.", pattern=DURATION),
                "maxTTL": _string("Longest TTL a request may ask for.", pattern=DURATION),
                "demo": _array("Always-available demo environments, exempt from TTL.", _object(
                    "A demo environment.", {
                        "name": _string("Environment name.", pattern=DNS_LABEL, maxLength=63),
                        "owner": _string("Who owns it.", minLength=1),
                        "variables": _string_map("Terraform variables on top of the project's."),
                    }, required=["name", "owner"])),
            }),
        },
        required=["type", "components"],
    )
    status = _object("Observed state.", {
        "observedGeneration": {"type": "integer", "format": "int64"},
        "latestVersion": _string("Name of the newest Version."),
        "conditions": _conditions(),
    })
    return _object("A tenant of the platform.", {"spec": spec, "status": status},
                   required=["spec"])


def _stream_status(with_history: bool = True) -> Schema:
    result = _object("Result of one suite.", {
        "suite": _string("Suite name."),
        "phase": _string("Outcome.", enum=["Pending", "Running", "Succeeded", "Failed", "Error"]),
        "reason": _string("Why: Completed, ExitCode, Timeout, ImageError, OOMKilled, Error, "
                          "Pending or Running.", maxLength=64),
        "message": _string("Detail: the exit code or what stopped the suite.", maxLength=4096),
        "exitCode": {"type": "integer", "description": "Exit code of the suite's container."},
        "startedAt": _string("Start.", format="date-time"),
        "finishedAt": _string("End.", format="date-time"),
    }, required=["suite", "phase"])
    properties: dict[str, Schema] = {
        "phase": _string("Outcome.", enum=["Pending", "Running", "Succeeded", "Failed", "Error"]),
        "reason": _string("Why: AllSuitesPassed, NoSuites, SuitesFailed or WorkflowFailed.",
                          maxLength=64),
        "message": _string("Detail.", maxLength=4096),
        "startedAt": _string("Start.", format="date-time"),
        "finishedAt": _string("End.", format="date-time"),
        "workflow": _string("Workflow that ran the stream."),
        "request": _string("What asked for this run: created, schedule, a re-run request's "
                           "annotation value, or the Workflow of a manual run.", maxLength=256),
        "results": _array("Per-suite results.", result, maxItems=256),
    }
    if with_history:
        properties["history"] = _array("Earlier runs of this stream, newest first (bounded).",
                                       _stream_status(with_history=False), maxItems=10)
    return _object("One stream's run.", properties)


def _version_schema() -> Schema:
    component = _object("Exact commit of one component.", {
        "name": _string("Component name.", pattern=DNS_LABEL, maxLength=63),
        "repo": _string("Normalised repository URL.", minLength=1, maxLength=2048),
        "ref": _string("Branch the commit was resolved from (metadata, not identity).",
                       maxLength=255),
        "commit": _string("Full commit SHA.", pattern=COMMIT, maxLength=64),
    }, required=["name", "repo", "commit"])
    spec = _object(
        "The exact commits of every component; immutable once created.",
        {
            "project": _string("Project name.", pattern=DNS_LABEL, maxLength=63),
            "components": _array("Component commits, sorted by name.", component, minItems=1,
                                  maxItems=256,
                                  **{"x-kubernetes-list-type": "map",
                                     "x-kubernetes-list-map-keys": ["name"]}),
            "hash": _string("sha256 over the canonical JSON of project and components.",
                            pattern=HASH, maxLength=71),
            "trigger": _object("What caused this Version.", {
                "type": _string("push, manual or schedule.", enum=["push", "manual", "schedule"]),
                "repo": _string("Repository pushed to."),
                "branch": _string("Branch pushed to."),
                "commit": _string("Commit pushed."),
                "sender": _string("Who pushed."),
            }),
            "approval": _object("The product owner's sign-off.", {
                "approvedBy": _string("Who approved.", minLength=1),
                "approvedAt": _string("When.", format="date-time"),
                "comment": _string("Why."),
            }, required=["approvedBy", "approvedAt"]),
        },
        required=["project", "components", "hash"],
        **{"x-kubernetes-validations": [{
            "rule": "self.project == oldSelf.project && self.hash == oldSelf.hash"
                    " && self.components == oldSelf.components"
                    " && has(self.trigger) == has(oldSelf.trigger)"
                    " && (!has(self.trigger) || self.trigger == oldSelf.trigger)",
            "message": "project, components, hash and trigger of a Version are immutable",
        }, {
            "rule": "!has(oldSelf.approval) || (has(self.approval) && self.approval == oldSelf.approval)",
            "message": "an approval, once given, is never changed or withdrawn",
        }]},
    )
    status = _object("Where the Version is in its QA journey.", {
        "stream": _string("Current stream.",
                          enum=["alpha", "nightly", "candidate", "released", "failed"]),
        "streams": _object("Per-stream runs.", {
            "alpha": _stream_status(),
            "nightly": _stream_status(),
        }),
        "releasedAt": _string("When it was released.", format="date-time"),
        "export": _object("The air-gap export of a released Version (airgap.export).", {
            "phase": _string("Packing, Succeeded or Failed.",
                             enum=["Packing", "Succeeded", "Failed"]),
            "workflow": _string("The Workflow that packed it."),
            "artifact": _object("Where the archive is, in the artifact repository.", {
                "key": _string("Its key (S3-compatible repositories)."),
                "repositoryRef": _object("Argo's artifactRepositoryRef; absent: the workflow "
                                         "controller's default.", {
                                             "configMap": _string("ConfigMap name."),
                                             "key": _string("Key in it."),
                                         }),
            }),
            "sha256": _string("sha256 of the archive.", maxLength=64),
            "size": {"type": "integer", "description": "Its size in bytes.", "minimum": 0},
            "images": {"type": "integer", "description": "How many images it carries.",
                       "minimum": 0},
            "message": _string("Why it failed."),
            "startedAt": _string("When packing started.", format="date-time"),
            "finishedAt": _string("When it ended.", format="date-time"),
        }),
        "conditions": _conditions(),
    })
    return _object("A platform Version: a hash over exact component commits.",
                   {"spec": spec, "status": status}, required=["spec"])


def _environment_schema() -> Schema:
    spec = _object(
        "An ephemeral environment vended by Terraform.",
        {
            "project": _string("Project name.", pattern=DNS_LABEL, maxLength=63),
            "version": _string("Version to deploy (a demo environment without one waits for its "
                               "project's first release).", minLength=1),
            "owner": _string("Who asked for it: the requesting user, set at admission.", minLength=1),
            "infrastructure": _object("Terraform module and variables.", {
                "module": _string("Terraform module source; the project's default if empty."),
                "variables": _string_map("Terraform variables on top of the project's."),
            }),
            "demo": {"type": "boolean", "default": False,
                     "description": "Always-available demo environment, exempt from TTL; it "
                                    "follows its project's latest released Version."},
        },
        required=["project", "owner"],
        **{"x-kubernetes-validations": [
            {"rule": "self.demo || has(self.version)",
             "message": "spec.version is required (only a demo environment may wait for a release)"},
            {"rule": "self.project == oldSelf.project && self.owner == oldSelf.owner"
                     " && self.demo == oldSelf.demo"
                     " && has(self.infrastructure) == has(oldSelf.infrastructure)"
                     " && (!has(self.infrastructure) || self.infrastructure == oldSelf.infrastructure)",
             "message": "project, owner, demo and infrastructure of an Environment are immutable"},
            {"rule": "self.demo || (has(oldSelf.version) && has(self.version) && "
                     "self.version == oldSelf.version)",
             "message": "spec.version of an Environment is immutable (a demo one follows its "
                        "project's releases)"},
        ]},
    )
    status = _object("Observed state.", {
        "phase": _string("Lifecycle phase.",
                         enum=["Pending", "Provisioning", "Deploying", "Ready", "Destroying",
                               "Failed"]),
        "expiresAt": _string("When the reaper destroys it.", format="date-time"),
        "outputsSecret": _string("Secret that holds the Terraform outputs (kubeconfig and the "
                                 "sensitive ones)."),
        "outputs": _string_map("The non-sensitive Terraform outputs (non-strings as JSON)."),
        "deployedVersion": _string("The Version whose components were last deployed."),
        "workflow": _string("The last vend or destroy Workflow."),
        "message": _string("Detail of the last transition."),
        "conditions": _conditions(),
    })
    return _object("An ephemeral environment.", {"spec": spec, "status": status},
                   required=["spec"])


_COLUMN_AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}

# kind -> (plural, short names, schema builder, printer columns)
CRD_KINDS: dict[str, tuple[str, list[str], Any, list[dict[str, Any]]]] = {
    "Project": ("projects", ["adproj"], _project_schema, [
        {"name": "Type", "type": "string", "jsonPath": ".spec.type"},
        {"name": "Latest", "type": "string", "jsonPath": ".status.latestVersion"},
        _COLUMN_AGE,
    ]),
    "Version": ("versions", ["adver"], _version_schema, [
        {"name": "Project", "type": "string", "jsonPath": ".spec.project"},
        {"name": "Stream", "type": "string", "jsonPath": ".status.stream"},
        {"name": "Approved-By", "type": "string", "jsonPath": ".spec.approval.approvedBy"},
        {"name": "Hash", "type": "string", "jsonPath": ".spec.hash", "priority": 1},
        _COLUMN_AGE,
    ]),
    "Environment": ("environments", ["adenv"], _environment_schema, [
        {"name": "Project", "type": "string", "jsonPath": ".spec.project"},
        {"name": "Version", "type": "string", "jsonPath": ".spec.version"},
        {"name": "Owner", "type": "string", "jsonPath": ".spec.owner"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Expires", "type": "string", "jsonPath": ".status.expiresAt"},
        _COLUMN_AGE,
    ]),
}


def crd_schema(kind: str) -> Schema:
    """The openAPIV3Schema of one of our kinds."""
    return CRD_KINDS[kind][2]()


def crd_manifests() -> list[dict[str, Any]]:
    """CustomResourceDefinition manifests for every kind in `argo-delivery.io`."""
    manifests = []
    for kind, (plural, short_names, schema, columns) in CRD_KINDS.items():
        manifests.append({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{GROUP}"},
            "spec": {
                "group": GROUP,
                "names": {
                    "kind": kind,
                    "listKind": f"{kind}List",
                    "plural": plural,
                    "singular": kind.lower(),
                    "shortNames": short_names,
                    "categories": ["argo-delivery"],
                },
                "scope": "Namespaced",
                "versions": [{
                    "name": API_VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema()},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                }],
            },
        })
    return manifests


CAPABILITY = Capability("crds", "The Project, Version and Environment CustomResourceDefinitions.",
                        per_platform=lambda config: crd_manifests())
