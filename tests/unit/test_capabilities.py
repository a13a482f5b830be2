"""The capability architecture: one declaration per capability, RBAC derived from it,
pod security written in one place, and the public extension point."""

from __future__ import annotations

import importlib.util
import re
import sys

import pytest
import yaml

from argo_delivery.bundle import BundleError, build_bundle
from argo_delivery.capabilities import CAPABILITIES
from argo_delivery.capability import Capability, CapabilityError, Registry, SensorTrigger
from argo_delivery.lint import lint_documents
from argo_delivery.naming import LABEL_BUNDLE
from argo_delivery.rbac import WORKFLOW_SUBMITTER, Account, Role, Rule
from tests.support import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
EXAMPLE_MARK = "<!-- example: adding-a-capability -->"


def _example_module(tmp_path):
    """The README's 'Adding a capability' module, imported as a module of its own."""
    block = README[README.index(EXAMPLE_MARK):]
    source = re.search(r"```python\n(.*?)```", block, re.S).group(1)
    path = tmp_path / "smoke_test_example.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("smoke_test_example", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def _by_key(bundle):
    return {(r["kind"], r["metadata"].get("namespace", ""), r["metadata"]["name"]): r
            for r in bundle.resources}


def _documents(bundle, default_bundle):
    """The documents `bundle` adds to the default bundle (lint of the rest is tested elsewhere)."""
    return [(path, yaml.safe_load(data)) for path, data in bundle.files.items()
            if path.endswith(".yaml") and not path.endswith("kustomization.yaml")
            and path not in default_bundle.files]


def test_the_registry_lists_every_capability_once():
    assert CAPABILITIES.names() == ["crds", "orchestrator", "tenancy", "generate-version",
                                    "streams", "environments", "airgap", "isolation",
                                    "monitoring", "dashboard", "velero"]


def test_registry_refuses_a_capability_twice():
    with pytest.raises(CapabilityError, match="'crds' is registered twice"):
        CAPABILITIES.extended([next(iter(CAPABILITIES))])


def test_registry_refuses_one_account_name_in_two_capabilities():
    stolen = Account("argo-delivery-executor", "another capability's account")
    with pytest.raises(CapabilityError, match="both declare the account 'argo-delivery-executor'"):
        CAPABILITIES.extended([Capability("thief", "x", accounts=(stolen,))])


def test_registry_refuses_what_is_not_a_capability():
    with pytest.raises(CapabilityError, match="expected a Capability, found dict"):
        Registry([{"kind": "ConfigMap"}])


def test_a_trigger_must_run_as_one_of_the_capabilities_accounts():
    sensor = Account("argo-delivery-sensor-x", "x", WORKFLOW_SUBMITTER, home="orchestrator")
    with pytest.raises(CapabilityError, match="'argo-delivery-sensor-x' of trigger 'x'"):
        Capability("x", "x", triggers=(SensorTrigger("x", (), sensor),))


def test_two_different_roles_with_one_name_are_refused(default_config):
    role = Role("argo-delivery-version-writer", "a look-alike", (Rule("", ("secrets",), ("get",)),))
    impostor = Capability("impostor", "x", accounts=(Account("argo-delivery-impostor", "x", role),))
    with pytest.raises(CapabilityError, match="two different roles are both called"):
        build_bundle(default_config, extra=[impostor])


def test_rbac_is_derived_from_every_declared_account(default_config, default_bundle):
    resources = _by_key(default_bundle)
    orchestrator = default_config.orchestrator_namespace
    names = set()
    for declared in CAPABILITIES.accounts():
        for project in default_config.projects:
            account = declared.for_project(project.name)
            names.add(account.name)
            home = orchestrator if account.home == "orchestrator" else project.namespace
            sa = resources[("ServiceAccount", home, account.name)]
            assert sa["automountServiceAccountToken"] is False
            binding = resources.get(("RoleBinding", project.namespace, account.name))
            if account.role is None:
                assert binding is None
                continue
            assert binding["roleRef"]["name"] == account.role.name
            assert binding["subjects"] == [account.subject(home)]
            role = resources[("Role", project.namespace, account.role.name)]
            assert role["rules"] == [rule.to_dict() for rule in account.role.rules]
            if declared.per_project:
                # its own project's namespace only: no token spans tenants
                others = [p.namespace for p in default_config.projects if p != project]
                assert not [k for k in resources if k[0] == "RoleBinding" and k[1] in others
                            and k[2] == account.name]
    # and nothing else: every ServiceAccount in the bundle is a declared one
    assert {k[2] for k in resources if k[0] == "ServiceAccount"} == names


def test_each_project_has_its_own_sensor_for_the_template_its_capability_declares(
        default_config, default_bundle):
    [trigger] = [t for t in CAPABILITIES.triggers() if t.template == "generate-version"]
    for project in default_config.projects:
        sensor = _by_key(default_bundle)[("Sensor", "argo-delivery", f"on-push-{project.name}")]
        account = trigger.account.for_project(project.name)
        assert sensor["spec"]["template"]["serviceAccountName"] == account.name
        [item] = sensor["spec"]["triggers"]
        workflow = item["template"]["k8s"]["source"]["resource"]
        assert workflow["metadata"]["namespace"] == project.namespace
        assert workflow["spec"]["workflowTemplateRef"] == {"name": trigger.template}
        assert [p["name"] for p in workflow["spec"]["arguments"]["parameters"]] == \
            list(trigger.parameters)
        assert item["rateLimit"] == {"unit": "Minute", "requestsPerUnit": 60}


def test_readme_example_renders_and_lints_clean(default_config, default_bundle, tmp_path):
    example = _example_module(tmp_path)
    bundle = build_bundle(default_config, extra=[example.CAPABILITY])
    resources = _by_key(bundle)
    for project in default_config.projects:
        template = resources[("WorkflowTemplate", project.namespace, "smoke-test")]
        assert template["metadata"]["labels"][LABEL_BUNDLE] == default_config.bundle_name
        assert template["spec"]["serviceAccountName"] == "argo-delivery-smoke-test"
        sa = resources[("ServiceAccount", project.namespace, "argo-delivery-smoke-test")]
        assert sa["automountServiceAccountToken"] is False
        assert ("RoleBinding", project.namespace, "argo-delivery-smoke-test") not in resources
        path = f"namespaces/{project.namespace}/workflowtemplate/smoke-test.yaml"
        assert path in yaml.safe_load(bundle.files["kustomization.yaml"])["resources"]
    step = template["spec"]["templates"][0]
    assert "automountServiceAccountToken" not in step  # no API token unless asked for
    assert step["container"]["image"] in bundle.images
    assert lint_documents(_documents(bundle, default_bundle)) == []


def test_extra_plain_manifest_and_hera_template_join_the_bundle(default_config, default_bundle,
                                                                 tmp_path):
    from hera.workflows import WorkflowTemplate

    from argo_delivery.security import script_step, workflow_defaults
    from argo_delivery.tenancy import EXECUTOR

    example = _example_module(tmp_path)
    with WorkflowTemplate(name="hello", namespace="core-team", entrypoint="hello",
                          **workflow_defaults(example.RUNNER, EXECUTOR, deadline_seconds=60)) as hello:
        script_step(name="hello", image="registry.example.com/tools/python:3.12",
                    command=["python3"], source="print('hello')")
    ingress = {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "webhooks", "namespace": "argo-delivery"},
        "spec": {"rules": [{"host": "events.example.com", "http": {"paths": [{
            "path": "/push", "pathType": "Prefix",
            "backend": {"service": {"name": "git-push-eventsource-svc",
                                    "port": {"number": 12000}}}}]}}]},
    }
    bundle = build_bundle(default_config, extra=[example.CAPABILITY, hello, ingress])
    resources = _by_key(bundle)
    added = resources[("Ingress", "argo-delivery", "webhooks")]
    assert added["metadata"]["labels"][LABEL_BUNDLE] == default_config.bundle_name
    assert "registry.example.com/tools/python:3.12" in bundle.images
    listed = yaml.safe_load(bundle.files["kustomization.yaml"])["resources"]
    assert "namespaces/argo-delivery/ingress/webhooks.yaml" in listed
    assert "namespaces/core-team/workflowtemplate/hello.yaml" in listed
    assert lint_documents(_documents(bundle, default_bundle)) == []


def test_an_insecure_extra_is_caught_by_lint(default_config, default_bundle):
    """Lint stays the safety net for what bypasses the factories."""
    from hera.workflows import Container, WorkflowTemplate

    with WorkflowTemplate(name="rooted", namespace="core-team", entrypoint="main") as rooted:
        Container(name="main", image="busybox:1.36", command=["id"])
    bundle = build_bundle(default_config, extra=[rooted])
    rules = {f.rule for f in lint_documents(_documents(bundle, default_bundle))}
    assert {"AD001", "AD002", "AD003", "AD005", "AD006", "AD007", "AD010"} <= rules


def test_duplicate_extra_resource_is_refused(default_config):
    again = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "core-team"}}
    with pytest.raises(BundleError, match="two resources are both Namespace /core-team"):
        build_bundle(default_config, extra=[again])


SECURITY_FIELDS = re.compile(r"runAsNonRoot|run_as_non_root|allowPrivilegeEscalation|"
                             r"allow_privilege_escalation|seccompProfile|seccomp_profile|"
                             r"readOnlyRootFilesystem|read_only_root_filesystem")


def test_pod_security_is_written_only_in_security_py():
    # lint.py reads these fields to check them; it writes none.
    allowed = {REPO_ROOT / "argo_delivery" / "security.py", REPO_ROOT / "argo_delivery" / "lint.py"}
    offenders = []
    for folder in ("argo_delivery", "templates", "sensors", "eventsources"):
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            if path in allowed:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if SECURITY_FIELDS.search(line):
                    offenders.append(f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}")
    assert offenders == [], "pod security fields outside security.py:\n" + "\n".join(offenders)


def test_the_security_grep_finds_a_field(tmp_path):
    """The grep above is not blind: it sees each field as a module would write it."""
    for text in ('"runAsNonRoot": True', "allow_privilege_escalation=False",
                 '"seccompProfile": {}', "readOnlyRootFilesystem: true"):
        assert SECURITY_FIELDS.search(text)
