"""OpenTofu, offline, for tests: the CLI, the project's fake cloud provider and its module.

`make tofu` builds `.cache/bin/tofu` (OpenTofu, tools/tofu) and the provider
(tools/terraform-provider-fakecloud), laid out as a filesystem mirror under
`.cache/tofu-mirror`. `tofu_env()` gives a tofu process a CLI config that installs providers
from that mirror only (no `direct` block: no registry is ever asked).

The fake cloud's clusters are namespaces `fc-<name>` of a Kubernetes cluster and its
persistent disks ConfigMaps in a disk namespace (tools/terraform-provider-fakecloud/README.md);
`cloud_rbac()` is what its credentials need, `state_rbac()` what the `kubernetes` state backend
needs. `MODULE_DIR` is the Terraform module of one environment; the root that calls it is the
caller's (the vend step writes `backend "kubernetes" {}` and `module "env" { source =
"./module" ... }`).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
TOFU = REPO_ROOT / ".cache" / "bin" / "tofu"
MIRROR = REPO_ROOT / ".cache" / "tofu-mirror"
PROVIDER_SOURCE = "example.invalid/test/fakecloud"
MODULE_DIR = REPO_ROOT / "tests" / "tofu-modules" / "fakecloud-env"
FIX = "make tofu"

# The annotation that makes the provider refuse to delete a cluster's namespace.
DELETION_PROTECTION = "fakecloud.example/deletion-protection"
CLUSTER_LABEL = "fakecloud.example/cluster"


def fakecloud_version() -> str:
    """The provider's version: FAKECLOUD_VERSION of the Makefile (it names the mirror folder)."""
    m = re.search(r"^FAKECLOUD_VERSION\s*:?=\s*(\S+)", (REPO_ROOT / "Makefile").read_text(), re.M)
    if not m:
        raise RuntimeError("the Makefile does not set FAKECLOUD_VERSION")
    return m.group(1)


def tofu_version() -> str:
    """OpenTofu's version ("1.12.6") as the wrapper module tools/tofu/go.mod pins it."""
    text = (REPO_ROOT / "tools" / "tofu" / "go.mod").read_text()
    m = re.search(r"^\s*github\.com/opentofu/opentofu\s+v(\S+)", text, re.M)
    if not m:
        raise RuntimeError("tools/tofu/go.mod does not require github.com/opentofu/opentofu")
    return m.group(1)


def provider_binary(mirror: Path = MIRROR) -> Path:
    """The provider in the mirror's unpacked layout (HOSTNAME/NAMESPACE/TYPE/VERSION/OS_ARCH)."""
    version = fakecloud_version()
    return (mirror / PROVIDER_SOURCE / version / "linux_amd64"
            / f"terraform-provider-fakecloud_v{version}")


def require_tofu() -> Path:
    """The tofu binary; fails the test loudly (never skips) if it or the provider is missing."""
    import pytest

    for path, what in ((TOFU, "OpenTofu"), (provider_binary(), "the fakecloud provider mirror")):
        if not os.access(path, os.X_OK):
            pytest.fail(f"{what} is not built ({path.relative_to(REPO_ROOT)} is missing): "
                        f"run `{FIX}`", pytrace=False)
    return TOFU


def cli_config(mirror: Path | str = MIRROR) -> str:
    """A CLI config (tofurc) that installs providers from `mirror` only.

    The path must be absolute: a relative one is resolved against tofu's working directory,
    not against the config file.
    """
    mirror = str(mirror)
    if not mirror.startswith("/"):
        raise ValueError(f"the mirror path must be absolute: {mirror}")
    return ("provider_installation {\n"
            "  filesystem_mirror {\n"
            f"    path    = \"{mirror}\"\n"
            "    include = [\"example.invalid/*/*\"]\n"
            "  }\n"
            "}\n")


def write_cli_config(path: Path, mirror: Path | str = MIRROR) -> Path:
    path = Path(path)
    path.write_text(cli_config(mirror))
    return path


def tofu_env(tmp: Path, *, fakecloud: dict[str, str] | None = None,
             extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a tofu process: a CLI config in `tmp`, no prompts, no colours.

    Inherited TF_*, KUBE_* and FAKECLOUD_* variables are dropped (this machine may preset
    TF_CLI_CONFIG_FILE to a file that does not exist); `fakecloud` are the provider's
    FAKECLOUD_* settings (see `fakecloud_env`).
    """
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TF_", "KUBE_", "FAKECLOUD_"))}
    env.update({
        "TF_CLI_CONFIG_FILE": str(write_cli_config(Path(tmp) / "tofurc")),
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
        "CHECKPOINT_DISABLE": "1",
    })
    env.update(fakecloud or {})
    env.update(extra or {})
    return env


def fakecloud_env(host: str, token: str, *, ca_cert: str = "", insecure: bool = False,
                  disk_namespace: str = "") -> dict[str, str]:
    """The provider's configuration as FAKECLOUD_* variables (ca_cert is PEM text)."""
    env = {"FAKECLOUD_HOST": host, "FAKECLOUD_TOKEN": token}
    if ca_cert:
        env["FAKECLOUD_CA_CERT"] = ca_cert
    if insecure:
        env["FAKECLOUD_INSECURE"] = "true"
    if disk_namespace:
        env["FAKECLOUD_DISK_NAMESPACE"] = disk_namespace
    return env


def run_tofu(args: Sequence[str], cwd: Path, env: dict[str, str], *, check: bool = True,
             timeout: float = 300) -> subprocess.CompletedProcess:
    """`tofu ARGS` in `cwd`; on failure with `check`, the error shows both streams."""
    proc = subprocess.run([str(require_tofu()), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"tofu {' '.join(args)} exited {proc.returncode}\n"
                             f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    return proc


# ------------------------------------------------------------------ RBAC
def cloud_rules() -> list[dict[str, Any]]:
    """What the provider does, cluster-wide (its clusters' namespaces are made on the fly).

    `bind` on the ClusterRole admin is what lets it create the RoleBinding of a cluster's
    admin ServiceAccount without holding admin's permissions itself (the API server's RBAC
    escalation check; tests/flows/test_tofu_fakecloud.py shows the 403 without it).
    """
    return [
        {"apiGroups": [""], "resources": ["namespaces"],
         "verbs": ["get", "create", "patch", "delete"]},
        {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]},
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["rolebindings"],
         "verbs": ["create"]},
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"],
         "resourceNames": ["admin"], "verbs": ["bind"]},
    ]


def cloud_rbac(namespace: str, service_account: str, disk_namespace: str = "fakecloud-disks",
               *, rules: list[dict[str, Any]] | None = None) -> list[dict]:
    """The fake cloud's credentials: ServiceAccount `namespace`/`service_account` (the
    namespace must exist), a ClusterRole with `cloud_rules()` bound to it, and the disk
    Namespace with a Role that lets it create disks (ConfigMaps) there and nowhere else.

    Names are `fakecloud-<namespace>-<service_account>`, so several clouds can share a
    cluster. `rules` replaces the cluster-wide rules (to show what fails without one).
    """
    name = f"fakecloud-{namespace}-{service_account}"
    subject = {"kind": "ServiceAccount", "name": service_account, "namespace": namespace}
    rbac = "rbac.authorization.k8s.io/v1"
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": service_account, "namespace": namespace}},
        {"apiVersion": rbac, "kind": "ClusterRole", "metadata": {"name": name},
         "rules": cloud_rules() if rules is None else rules},
        {"apiVersion": rbac, "kind": "ClusterRoleBinding", "metadata": {"name": name},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": name},
         "subjects": [subject]},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": disk_namespace}},
        {"apiVersion": rbac, "kind": "Role",
         "metadata": {"name": name, "namespace": disk_namespace},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]}]},
        {"apiVersion": rbac, "kind": "RoleBinding",
         "metadata": {"name": name, "namespace": disk_namespace},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [subject]},
    ]


def state_rbac(namespace: str, service_account: str) -> list[dict]:
    """ServiceAccount + Role + RoleBinding for the `kubernetes` state backend in `namespace`
    (state Secret `tfstate-<workspace>-<suffix>`, lock Lease `lock-` + that): get/list/create/
    update/delete on secrets, get/create/update/delete on leases (delete: workspace cleanup
    and a harness that removes the leftover Secret and Lease)."""
    name = f"tofu-state-{service_account}"
    rbac = "rbac.authorization.k8s.io/v1"
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": service_account, "namespace": namespace}},
        {"apiVersion": rbac, "kind": "Role", "metadata": {"name": name, "namespace": namespace},
         "rules": [
             {"apiGroups": [""], "resources": ["secrets"],
              "verbs": ["get", "list", "create", "update", "delete"]},
             {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
              "verbs": ["get", "create", "update", "delete"]},
         ]},
        {"apiVersion": rbac, "kind": "RoleBinding",
         "metadata": {"name": name, "namespace": namespace},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": service_account,
                       "namespace": namespace}]},
    ]
