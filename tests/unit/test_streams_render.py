"""The run-stream template as rendered: suites from the config stay data."""

from __future__ import annotations

import yaml

from argo_delivery.bundle import build_bundle
from argo_delivery.config import default_config_text, parse_config

HOSTILE_ARGS = ["--name=o'brien", '"$(touch /tmp/pwned)"', "`id`; rm -rf /", "a\nb", "${HOME}",
                "%s %x", "|| true"]


def _templates(args):
    data = yaml.safe_load(default_config_text())
    data["projects"][0]["testSuites"] = {"alpha": [
        {"name": "hostile", "image": "python:3.12", "command": ["python3", "-m", "pytest"],
         "args": args, "timeout": "1h30m",
         "resources": {"requests": {"cpu": "250m"}, "limits": {"memory": "1Gi"}}}], "nightly": []}
    bundle = build_bundle(parse_config(yaml.safe_dump(data), "hostile.yaml"))
    doc = yaml.safe_load(bundle.files["namespaces/core-team/workflowtemplate/run-stream.yaml"])
    return doc, {t["name"]: t for t in doc["spec"]["templates"]}


def test_suite_args_reach_the_container_verbatim_and_nowhere_else():
    doc, templates = _templates(HOSTILE_ARGS)
    suite = templates["alpha-suite-hostile"]
    assert suite["container"]["command"] == ["python3", "-m", "pytest"]
    assert suite["container"]["args"] == HOSTILE_ARGS
    assert suite["timeout"] == "5400s"
    assert suite["container"]["resources"] == {"requests": {"cpu": "250m", "memory": "128Mi"},
                                              "limits": {"cpu": "1", "memory": "1Gi"}}
    for template in templates.values():
        source = (template.get("script") or {}).get("source", "")
        assert not any(arg in source for arg in HOSTILE_ARGS)
    # no shell anywhere: no suite template runs `sh -c`
    assert "sh" not in suite["container"]["command"][0]


def test_suites_get_no_token_and_no_rights():
    doc, templates = _templates(["-q"])
    suite = templates["alpha-suite-hostile"]
    assert doc["spec"]["serviceAccountName"] == "argo-delivery-test-suite"
    assert doc["spec"]["automountServiceAccountToken"] is False
    assert "serviceAccountName" not in suite
    assert not [v for v in suite.get("volumes", []) if "projected" in v]
    assert suite["container"]["securityContext"]["readOnlyRootFilesystem"] is True
    # the steps around them run as the recorder, with its own token mounted
    for name in ("start", "alpha-watch", "nightly-watch", "finish"):
        assert templates[name]["serviceAccountName"] == "argo-delivery-stream-recorder"
        assert any("projected" in v for v in templates[name]["volumes"])
    assert doc["spec"]["onExit"] == "finish"
    names = {p["name"]: p for p in doc["spec"]["arguments"]["parameters"]}
    assert names["stream"]["enum"] == ["alpha", "nightly"]
    assert names["trigger"]["enum"] == ["created", "rerun", "schedule", "manual"]
