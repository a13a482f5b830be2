"""The README stays in step with the code it documents."""

from __future__ import annotations

import json

from argo_delivery.config import platform_schema
from argo_delivery.configdoc import BEGIN, END, reference_markdown
from argo_delivery.lint import RULES
from argo_delivery.versionhash import version_hash
from tests.support import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def test_config_reference_matches_the_schema():
    section = README[README.index(BEGIN) + len(BEGIN):README.index(END)]
    assert section.strip() == reference_markdown().strip(), \
        "stale: run `python -m argo_delivery.configdoc README.md`"


def test_config_reference_follows_refs_into_the_schemas_named_types():
    reference = reference_markdown()
    # a $ref inside a $ref: gitProvider.apiToken -> secretKeyRef, its name -> secretName
    assert "| `gitProvider.apiToken.name` | Secret name | yes | Secret name. |" in reference
    assert "| `projects[].testSuites.nightly[].timeout` | duration | yes |" in reference
    for shape in platform_schema()["$defs"].values():
        assert shape.get("title", "") in reference


def test_every_named_type_is_used():
    text = json.dumps(platform_schema())
    for name in platform_schema()["$defs"]:
        assert f'"#/$defs/{name}"' in text, name


def test_quickstart_commands():
    assert "make render" in README and "make test" in README


def test_worked_hash_example_is_true():
    digest = version_hash("core-team", [
        {"name": "api", "repo": "https://github.com/acme-platform/api.git",
         "commit": "0123456789abcdef0123456789abcdef01234567"},
        {"name": "web", "repo": "https://GitHub.com/acme-platform/web/",
         "commit": "89abcdef0123456789abcdef0123456789abcdef"}])
    assert digest in README
    assert f"core-team-{digest[7:23]}" in README


def test_every_lint_rule_is_documented():
    for rule in RULES:
        assert rule in README, rule
