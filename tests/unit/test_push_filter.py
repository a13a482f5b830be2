"""The on-push Sensor's filter names repositories as the provider does: in any case, and
relative to the path prefix of a GitLab under one. Argo Events evaluates the expression with
govaluate (no functions: a case-insensitive `=~` regexp); tests/conformance/test_sensor_sim.py
runs the same filter through Argo Events' own code."""

from __future__ import annotations

import json
import re

from argo_delivery.config import GitProvider, SecretKeyRef, load_config, parse_config
from argo_delivery.providers import PROVIDERS, repository_path
from argo_delivery.sensors.on_push import push_filter
from tests.support import REPO_ROOT

MINIMAL = REPO_ROOT / "tests" / "unit" / "minimal-platform.yaml"


def _patterns(expr: str) -> list[str]:
    """The `=~` patterns of an expression, as govaluate reads the string literals."""
    return [json.loads(literal) for literal in re.findall(r'path =~ ("(?:[^"\\]|\\.)*")', expr)]


def test_the_path_is_matched_in_any_case_and_exactly():
    project = load_config(MINIMAL).projects[0]
    provider = GitProvider("github", SecretKeyRef("hook", "secret"))
    expr = push_filter(project, provider)["exprs"][0]["expr"]
    patterns = _patterns(expr)
    assert patterns == ["(?i)^acme/api$", "(?i)^acme/web$"]
    # (?i), ^ and $ mean the same to Go's regexp as to Python's re
    assert re.match(patterns[0], "Acme/API") and re.match(patterns[0], "acme/api")
    assert not re.match(patterns[0], "acme/api-fork") and not re.match(patterns[0], "xacme/api")


def test_dots_and_other_characters_are_literal():
    provider = GitProvider("github", SecretKeyRef("hook", "secret"))
    project = load_config(MINIMAL).projects[0]
    component = project.components[0].__class__("x", "https://github.com/a.b/c+d.git", "main", "deploy")
    project = project.__class__(project.name, project.namespace, project.type, (component,))
    [pattern] = _patterns(push_filter(project, provider)["exprs"][0]["expr"])
    assert pattern == "(?i)^a[.]b/c\\x{2b}d$"
    assert "\\" not in pattern.replace("\\x{2b}", "")


def test_a_gitlab_under_a_path_prefix_names_projects_without_it():
    base = "https://git.example.com/gitlab/"
    assert repository_path("https://git.example.com/gitlab/Group/Sub/Proj.git", "gitlab", base) == \
        "Group/Sub/Proj"
    # SSH paths never carry the web server's prefix; another prefix is left as it is
    assert repository_path("git@git.example.com:group/proj.git", "gitlab", base) == "group/proj"
    assert repository_path("https://git.example.com/other/proj", "gitlab", base) == "other/proj"
    assert repository_path("https://gitlab.com/group/proj.git", "gitlab", None) == "group/proj"


def test_a_repository_id_is_required_where_the_config_gives_one():
    text = MINIMAL.read_text().replace(
        "{name: api, repo: https://github.com/acme/api.git, branch: main}",
        "{name: api, repo: https://github.com/acme/api.git, branch: main, repositoryId: 186853002}")
    config = parse_config(text)
    assert config.components[0].repository_id == 186853002
    dependency = push_filter(config.projects[0], config.git_provider)["exprs"][0]
    # the id is part of api's alternative only; web (no id) matches by path and branch
    assert '(path =~ "(?i)^acme/api$" && ref == "refs/heads/main" && id == 186853002)' in dependency["expr"]
    assert '(path =~ "(?i)^acme/web$" && ref == "refs/heads/main")' in dependency["expr"]
    assert {"name": "id", "path": "body.repository.id"} in dependency["fields"]
    # without any id the payload's id is not read at all
    plain = push_filter(load_config(MINIMAL).projects[0], config.git_provider)["exprs"][0]
    assert "id" not in {f["name"] for f in plain["fields"]} and " id ==" not in plain["expr"]


def test_each_provider_names_where_its_repository_id_is():
    assert {name: kind.payload.get("id") for name, kind in PROVIDERS.items()} == {
        "github": "body.repository.id", "gitlab": "body.project.id", "generic": "body.repository.id"}
