"""What the environments capability renders for a config: the engine, the artifact
repository, the leak sweep, the mutex, and nothing for a project without environments."""

from __future__ import annotations

import yaml

from argo_delivery.bundle import build_bundle
from argo_delivery.config import default_config_text, parse_config
from argo_delivery.lint import lint_documents


def _bundle(edit=None):
    data = yaml.safe_load(default_config_text())
    if edit:
        edit(data)
    return build_bundle(parse_config(yaml.safe_dump(data), "environments.yaml"))


def _doc(bundle, path):
    return yaml.safe_load(bundle.files[path])


def _template(doc, name):
    return next(t for t in doc["spec"]["templates"] if t["name"] == name)


def _env(step):
    body = step.get("script") or step.get("container")
    return {e["name"]: e.get("value") for e in body.get("env", [])}


def test_the_terraform_engine_the_artifact_repository_and_the_leak_sweep_are_rendered():
    def edit(data):
        data["environments"] = {"engine": "terraform",
                                "artifactRepositoryRef": {"configMap": "artifacts", "key": "s3"}}
        env = data["projects"][0]["environments"]
        env["credentialsSecret"] = "cloud"
        env["leakSweep"] = {"image": "docker.io/library/python:3.12-slim-bookworm",
                            "command": ["python3", "-m", "sweep"], "args": ["--disks"]}
    bundle = _bundle(edit)
    vend = _doc(bundle, "namespaces/core-team/workflowtemplate/vend-environment.yaml")
    destroy = _doc(bundle, "namespaces/core-team/workflowtemplate/destroy-environment.yaml")
    for doc, step in ((vend, "apply"), (destroy, "destroy")):
        assert _env(_template(doc, step))["AD_ENGINE"] == "terraform"
        assert _template(doc, step)["script"]["envFrom"] == [{"secretRef": {"name": "cloud"}}]
        assert doc["spec"]["artifactRepositoryRef"] == {"configMap": "artifacts", "key": "s3"}
        # vend and destroy of one Environment hold the same mutex
        assert doc["spec"]["synchronization"] == {
            "mutexes": [{"name": "environment-{{workflow.parameters.environment}}"}]}
    sweep = _template(destroy, "leak-sweep")["container"]
    assert (sweep["command"], sweep["args"]) == (["python3", "-m", "sweep"], ["--disks"])
    assert sweep["envFrom"] == [{"secretRef": {"name": "cloud"}}]
    assert {"AD_ENVIRONMENT", "AD_NAMESPACE", "AD_PROJECT", "AD_LABELS"} <= set(
        _env(_template(destroy, "leak-sweep")))
    # the module travels as an artifact from clone to apply
    assert _template(vend, "clone")["outputs"]["artifacts"] == [
        {"name": "module", "path": "/tmp/module"}]
    dag = _template(vend, "main")["dag"]["tasks"]
    apply = next(t for t in dag if t["name"] == "apply")
    assert {"name": "module", "from": "{{tasks.clone.outputs.artifacts.module}}"} in \
        apply["arguments"]["artifacts"]
    documents = [(path, yaml.safe_load(text)) for path, text in bundle.files.items()
                 if path.endswith(".yaml")]
    assert [f for f in lint_documents(documents) if f.rule.startswith("AD")] == []


def test_a_project_without_environments_gets_none_of_it():
    def edit(data):
        for project in data["projects"]:
            project.pop("environments", None)
            project.pop("demoEnvironments", None)
    bundle = _bundle(edit)
    kinds = {path.split("/")[-1] for path in bundle.files}
    for name in ("vend-environment.yaml", "destroy-environment.yaml", "reap-environments.yaml",
                 "reaper.yaml", "on-environment-core-team.yaml", "environments.yaml"):
        assert name not in kinds
