"""The `on-push` Sensor, run on realistic push payloads by Argo Events' own code.

`.cache/bin/sensor-sim` (tools/sensor-sim, built by `make tools`) builds the event the
way the upstream EventSource does, applies the Sensor's dependency filters and trigger
conditions with Argo Events v1.9.11's code and prints the Workflows the triggers would
create. These tests check, for every git provider type, which projects a push starts
`generate-version` in, that webhook text reaches the Workflow only as parameter data,
and that the Workflows pass Argo Workflows' own lint against the bundle's templates.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import subprocess
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from argo_delivery.bundle import Bundle, build_bundle, write_bundle
from argo_delivery.config import default_config_text, parse_config
from tests.providers import with_project_webhook
from tests.support import require_binary

pytestmark = pytest.mark.conformance

PAYLOADS = Path(__file__).parent / "payloads"
SENSOR_GLOB = "namespaces/argo-delivery/sensor/on-push-*.yaml"  # one Sensor per project
EVENTSOURCE = "git-push"
ZERO = "0" * 40
NO_TRIGGER = 3

# Text a hostile (or just unusual) payload may carry: quotes, shell syntax, Argo
# template syntax and a newline. It must reach the Workflow verbatim, as data.
HOSTILE = "o'''brien \"$(touch x)\" `touch y` {{workflow.name}} {{inputs.parameters.nope}}\nsecond line"


@dataclass(frozen=True)
class Provider:
    type: str       # gitProvider.type in the platform config
    event: str      # event name in the EventSource
    payload: str    # sample push payload in payloads/
    headers: tuple[str, ...] = ()

    def push(self, path: str, branch: str, *, after: str | None = None,
             sender: str | None = None, ref: str | None = None) -> dict[str, Any]:
        """The sample payload, re-aimed at repository `path` and `branch`."""
        data = json.loads((PAYLOADS / self.payload).read_text())
        ref = ref or f"refs/heads/{branch}"
        data["ref"] = ref
        if after is not None:
            data["after"] = after
        if self.type == "gitlab":
            data["project"]["path_with_namespace"] = path
            data["project"]["git_http_url"] = f"https://gitlab.com/{path}.git"
            data["repository"]["git_http_url"] = f"https://gitlab.com/{path}.git"
            if after is not None:
                data["checkout_sha"] = None if after == ZERO else after
            if sender is not None:
                data["user_username"] = sender
        else:
            host = "github.com" if self.type == "github" else "gitea.example.com"
            data["repository"]["full_name"] = path
            data["repository"]["name"] = path.rsplit("/", 1)[1]
            data["repository"]["clone_url"] = f"https://{host}/{path}.git"
            if after == ZERO:
                data["deleted"] = True
                data["head_commit"] = None
                data["commits"] = []
            if sender is not None:
                data["sender"]["login"] = sender
                if data.get("head_commit"):
                    data["head_commit"]["message"] = sender
        return data

    def repo_url(self, data: dict[str, Any]) -> str:
        if self.type == "gitlab":
            return data["project"]["git_http_url"]
        return data["repository"]["clone_url"]

    def sender(self, data: dict[str, Any]) -> str:
        return data["user_username"] if self.type == "gitlab" else data["sender"]["login"]


PROVIDERS = [
    Provider("github", "github", "github-push.json"),
    Provider("gitlab", "gitlab", "gitlab-push.json"),
    # Gitea sends GitHub-shaped pushes to the generic webhook
    Provider("generic", "webhook", "gitea-push.json",
             ("X-Gitea-Event: push", "X-Gitea-Delivery: 1f0d")),
]


@dataclass
class Rendered:
    provider: Provider
    bundle: Bundle
    bundle_dir: Path

    @property
    def sensors(self) -> list[Path]:
        found = sorted(self.bundle_dir.glob(SENSOR_GLOB))
        assert len(found) == len([r for r in self.bundle.resources if r["kind"] == "Sensor"
                                  and r["metadata"]["name"].startswith("on-push-")]) > 1
        return found


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def workflows(self) -> list[dict[str, Any]]:
        return [doc for doc in yaml.safe_load_all(self.stdout) if doc]


@pytest.fixture(scope="session")
def sensor_sim() -> Path:
    return require_binary("sensor-sim")


def render(provider: Provider, out: Path, text: str | None = None) -> Rendered:
    """The default platform (or `text`) with `provider`'s gitProvider block, rendered into `out`."""
    text = text or default_config_text()
    assert "\n  type: github\n" in text, "the default config's gitProvider.type moved"
    block = f"\n  type: {provider.type}\n"
    if provider.type == "gitlab":  # GitLab's EventSource registers its hook with a token
        block += ("  apiToken: {name: git-api-token, key: token}\n"
                  "  webhookURL: https://events.example.com\n")
        text = text.replace("repo: https://github.com/", "repo: https://gitlab.com/")  # on gitlab.com
    config = parse_config(text.replace("\n  type: github\n", block))
    assert config.git_provider.type == provider.type
    bundle = build_bundle(config)
    return Rendered(provider, bundle, write_bundle(bundle, out).path)


@pytest.fixture(scope="session", params=PROVIDERS, ids=lambda p: p.type)
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    provider: Provider = request.param
    return render(provider, tmp_path_factory.mktemp(f"bundle-{provider.type}"))


def simulate(sensor_sim: Path, rendered: Rendered, payload: dict[str, Any], tmp_path: Path,
             *, event: str | None = None) -> Run:
    path = tmp_path / f"payload-{len(list(tmp_path.glob('payload-*')))}.json"
    path.write_text(json.dumps(payload, indent=2))
    provider = rendered.provider
    outputs, errors, fired = [], [], False
    for sensor in rendered.sensors:   # every project's Sensor sees every push
        args = [str(sensor_sim), "--sensor", str(sensor), "--eventsource", EVENTSOURCE,
                "--event", event or provider.event, "--payload", str(path)]
        if event and event not in {p.event for p in PROVIDERS}:   # a project's own webhook
            args += ["--type", provider.event]
        for header in provider.headers:
            args += ["--header", header]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
        assert proc.returncode in (0, NO_TRIGGER), \
            f"sensor-sim failed on {sensor.name} ({proc.returncode}):\n{proc.stderr}"
        fired |= proc.returncode == 0
        outputs += [proc.stdout] if proc.stdout else []
        errors.append(proc.stderr)
    run = Run(0 if fired else NO_TRIGGER, "---\n".join(outputs), "".join(errors))
    if run.returncode == NO_TRIGGER:
        assert run.stdout == "", "nothing fired, yet sensor-sim printed resources"
    else:
        assert run.workflows, "exit 0 but no resource printed"
    return run


BASE64 = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")


def parameters(workflow: dict[str, Any]) -> dict[str, str]:
    """The Workflow's parameters, decoded: the Sensor sends each one base64-encoded, so no
    `{{...}}` from a payload can ever reach Argo as text."""
    raw = {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]}
    assert all(BASE64.match(value) for value in raw.values()), raw
    return {name: base64.b64decode(value).decode() for name, value in raw.items()}


def by_namespace(run: Run) -> dict[str, dict[str, Any]]:
    result = {wf["metadata"]["namespace"]: wf for wf in run.workflows}
    assert len(result) == len(run.workflows), "two Workflows in one namespace"
    return result


def check_workflow(workflow: dict[str, Any], provider: Provider, payload: dict[str, Any],
                   branch: str, project: str) -> None:
    assert workflow["apiVersion"] == "argoproj.io/v1alpha1"
    assert workflow["kind"] == "Workflow"
    # one name per event (sensors/_triggers.py): the template's, then the event's id
    assert re.fullmatch(r"generate-version-[0-9a-f]{32}",
                        workflow["metadata"]["name"]), workflow["metadata"]
    labels = workflow["metadata"]["labels"]
    assert labels["argo-delivery.io/project"] == project
    # labels the upstream k8s trigger adds on create
    assert labels["events.argoproj.io/sensor"] == f"on-push-{project}"
    assert labels["events.argoproj.io/trigger"] == f"generate-version-{project}"
    assert workflow["spec"]["workflowTemplateRef"] == {"name": "generate-version"}
    assert parameters(workflow) == {
        "repo": provider.repo_url(payload),
        "branch": branch,
        "commit": payload["after"],
        "sender": provider.sender(payload),
    }


# --- which projects a push starts generate-version in --------------------------------------


def test_push_to_shared_component_fires_every_project(sensor_sim, rendered, tmp_path):
    """`api` is a component of core-team and northwind: one Workflow in each namespace."""
    provider = rendered.provider
    payload = provider.push("acme-platform/api", "main")
    run = simulate(sensor_sim, rendered, payload, tmp_path)
    assert run.returncode == 0
    workflows = by_namespace(run)
    assert sorted(workflows) == ["core-team", "partner-northwind"]
    check_workflow(workflows["core-team"], provider, payload, "main", "core-team")
    check_workflow(workflows["partner-northwind"], provider, payload, "main", "northwind")
    assert parameters(workflows["core-team"])["sender"] == "jdoe"


def test_push_to_component_branch_fires_only_its_project(sensor_sim, rendered, tmp_path):
    """`worker` tracks `release` and belongs to core-team only."""
    provider = rendered.provider
    payload = provider.push("acme-platform/worker", "release")
    run = simulate(sensor_sim, rendered, payload, tmp_path)
    assert run.returncode == 0
    workflows = by_namespace(run)
    assert list(workflows) == ["core-team"]
    check_workflow(workflows["core-team"], provider, payload, "release", "core-team")
    assert "push-northwind rejected the event" in run.stderr


def test_partner_only_component_fires_only_partner(sensor_sim, rendered, tmp_path):
    provider = rendered.provider
    payload = provider.push("northwind-partners/billing-adapter", "main")
    run = simulate(sensor_sim, rendered, payload, tmp_path)
    assert list(by_namespace(run)) == ["partner-northwind"]
    check_workflow(run.workflows[0], provider, payload, "main", "northwind")


def test_repository_path_in_another_case_is_the_same_repository(sensor_sim, rendered, tmp_path):
    """Providers send a repository's canonical case (`Acme-Platform/API`), which the config
    need not use: the filter matches it in any case, and nothing that merely contains it."""
    provider = rendered.provider
    run = simulate(sensor_sim, rendered, provider.push("Acme-Platform/API", "main"), tmp_path)
    assert sorted(by_namespace(run)) == ["core-team", "partner-northwind"]
    run = simulate(sensor_sim, rendered, provider.push("x/Acme-Platform/API", "main"), tmp_path)
    assert run.returncode == NO_TRIGGER


@pytest.mark.parametrize("case", ["untracked-branch", "unknown-repo", "branch-deletion", "tag",
                                  "lookalike-repo"])
def test_push_that_starts_nothing(sensor_sim, rendered, tmp_path, case):
    provider = rendered.provider
    payload = {
        # worker tracks `release`, not `main`
        "untracked-branch": lambda: provider.push("acme-platform/worker", "main"),
        "unknown-repo": lambda: provider.push("acme-platform/unknown", "main"),
        "branch-deletion": lambda: provider.push("acme-platform/api", "main", after=ZERO),
        "tag": lambda: provider.push("acme-platform/api", "main", ref="refs/tags/main"),
        "lookalike-repo": lambda: provider.push("acme-platform/api-fork", "main"),
    }[case]()
    run = simulate(sensor_sim, rendered, payload, tmp_path)
    assert run.returncode == NO_TRIGGER, run.stdout
    # every dependency says why, with the values its filter read
    for dependency in ("push-core-team", "push-northwind"):
        assert f"dependency {dependency} rejected the event (filter result false)" in run.stderr
    assert f'ref={json.dumps(payload["ref"])}' in run.stderr


def test_event_from_another_provider_is_not_listened_to(sensor_sim, rendered, tmp_path):
    """The Sensor depends on its provider's event name only."""
    provider = rendered.provider
    other = next(p for p in PROVIDERS if p.event != provider.event)
    run = simulate(sensor_sim, rendered, provider.push("acme-platform/api", "main"), tmp_path,
                   event=other.event)
    assert run.returncode == NO_TRIGGER
    assert f'is on eventsource "{EVENTSOURCE}" event "{other.event}"' in run.stderr


def test_missing_sender_is_unknown(sensor_sim, rendered, tmp_path):
    provider = rendered.provider
    payload = provider.push("acme-platform/worker", "release")
    if provider.type == "gitlab":
        del payload["user_username"]
    else:
        del payload["sender"]
    run = simulate(sensor_sim, rendered, payload, tmp_path)
    assert [parameters(wf)["sender"] for wf in run.workflows] == ["unknown"]


# --- webhook text is data -------------------------------------------------------------------


def test_hostile_text_reaches_the_workflow_verbatim(sensor_sim, rendered, tmp_path):
    """Quotes, shell and Argo template syntax and newlines in the sender (and the commit
    message) become a parameter value exactly as sent; nothing else changes."""
    provider = rendered.provider
    payload = provider.push("acme-platform/api", "main", sender=HOSTILE)
    run = simulate(sensor_sim, rendered, payload, tmp_path)
    workflows = by_namespace(run)
    assert sorted(workflows) == ["core-team", "partner-northwind"]
    for namespace, project in (("core-team", "core-team"), ("partner-northwind", "northwind")):
        check_workflow(workflows[namespace], provider, payload, "main", project)
        assert parameters(workflows[namespace])["sender"] == HOSTILE
        # the text is nowhere but in that one value
        rest = copy.deepcopy(workflows[namespace])
        rest["spec"]["arguments"]["parameters"][3]["value"] = ""
        assert "touch" not in json.dumps(rest)


# --- the Workflows are valid for Argo Workflows ---------------------------------------------


def test_produced_workflows_pass_argo_lint(sensor_sim, rendered, tmp_path):
    """Every Workflow the Sensor creates passes `argo lint --offline` (upstream code) with
    workflowTemplateRef resolved against the bundle's WorkflowTemplates, per namespace."""
    lint = require_binary("argo-workflows-lint")
    provider = rendered.provider
    out = tmp_path / "workflows"
    out.mkdir()
    pushes = [
        provider.push("acme-platform/api", "main"),
        provider.push("acme-platform/worker", "release"),
        provider.push("northwind-partners/billing-adapter", "main"),
        provider.push("acme-platform/api", "main", sender=HOSTILE),
    ]
    count = 0
    for index, payload in enumerate(pushes):
        run = simulate(sensor_sim, rendered, payload, tmp_path)
        assert run.returncode == 0
        # the Workflows as the trigger creates them (named from the event's id)
        (out / f"push-{index}.yaml").write_text(run.stdout)
        count += len(run.workflows)
    assert count == 2 + 1 + 1 + 2
    templates = [p for p in rendered.bundle.files
                 if p.endswith("/workflowtemplate/generate-version.yaml")]
    assert len(templates) == 2, templates
    proc = subprocess.run([str(lint), str(out), str(rendered.bundle_dir)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"argo-workflows-lint:\n{proc.stdout}{proc.stderr}"

    # and the linter does check these Workflows: a wrong template name is caught
    bad = yaml.safe_load((out / "push-1.yaml").read_text())
    bad["spec"]["workflowTemplateRef"]["name"] = "no-such-template"
    (out / "bad.yaml").write_text(yaml.safe_dump(bad))
    proc = subprocess.run([str(lint), str(out / "bad.yaml"), str(rendered.bundle_dir)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "no-such-template" in proc.stdout, proc.stdout + proc.stderr


# --- the tool's own contract ----------------------------------------------------------------


def test_usage_errors_exit_2(sensor_sim, tmp_path):
    proc = subprocess.run([str(sensor_sim), "--eventsource", EVENTSOURCE], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert "usage:" in proc.stderr


def test_same_repository_path_on_another_host_does_not_fire(sensor_sim, rendered, tmp_path):
    """A push of `acme-platform/api` from another host (a mirror, a look-alike server) is not
    a push to the component: the clone URL must be on the provider's host."""
    provider = rendered.provider
    payload = provider.push("acme-platform/api", "main")
    url_key = ("project", "git_http_url") if provider.type == "gitlab" else ("repository", "clone_url")
    url = urllib.parse.urlsplit(payload[url_key[0]][url_key[1]])
    payload[url_key[0]][url_key[1]] = url._replace(netloc="evil.example").geturl()
    run = simulate(sensor_sim, rendered, payload, tmp_path)
    if provider.type == "generic":   # a generic webhook names no host: its secret is the guard
        assert sorted(by_namespace(run)) == ["core-team", "partner-northwind"]
    else:
        assert run.returncode == NO_TRIGGER, run.stdout
        assert "repo=" in run.stderr


# --- the repository id, where the config gives one ------------------------------------------

# The id each sample payload carries: GitHub's and Gitea's repository.id, GitLab's project.id.
SAMPLE_IDS = {"github": 186853002, "gitlab": 15, "generic": 42}


def _with_id(provider: Provider, data: dict[str, Any], number: int) -> dict[str, Any]:
    data[("project" if provider.type == "gitlab" else "repository")]["id"] = number
    return data


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.type)
def test_a_same_named_repository_with_another_id_does_not_fire(sensor_sim, provider, tmp_path):
    """`api` is configured with the id of the sample payload's repository: a push with that id
    fires, a push of a repository with the same host, path and branch but another id (deleted
    and re-created, or another renamed into its place) does not. `web` has no id configured:
    whatever id its push carries, it fires as before."""
    number = SAMPLE_IDS[provider.type]
    text = default_config_text()
    api = "  - name: api\n    repo: https://github.com/acme-platform/api.git\n    branch: main\n"
    assert api in text
    rendered = render(provider, tmp_path / "bundle",
                      text.replace(api, api + f"    repositoryId: {number}\n"))
    sample = provider.push("acme-platform/api", "main")
    assert sample[("project" if provider.type == "gitlab" else "repository")]["id"] == number
    run = simulate(sensor_sim, rendered, sample, tmp_path)
    assert sorted(by_namespace(run)) == ["core-team", "partner-northwind"]

    run = simulate(sensor_sim, rendered, _with_id(provider, sample, number + 1), tmp_path)
    assert run.returncode == NO_TRIGGER, run.stdout
    for dependency in ("push-core-team", "push-northwind"):
        assert f"dependency {dependency} rejected the event (filter result false)" in run.stderr
    assert f"id={number + 1}" in run.stderr

    web = _with_id(provider, provider.push("acme-platform/web", "main"), number + 1)
    assert list(by_namespace(simulate(sensor_sim, rendered, web, tmp_path))) == ["core-team"]


# --- a project with a webhook secret of its own ---------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.type)
def test_a_project_webhook_starts_that_project_only(sensor_sim, provider, tmp_path):
    """northwind has its own webhook secret, so its own event (`<event>-northwind`, at
    /push/northwind): a push of `api` (a component of both projects) delivered there starts
    northwind's generate-version only, and delivered to the shared webhook core-team's only.
    Whoever knows the shared secret starts nothing in northwind, and the reverse."""
    rendered = render(provider, tmp_path / "bundle", with_project_webhook(default_config_text()))
    own = f"{provider.event}-northwind"
    api = provider.push("acme-platform/api", "main")

    run = simulate(sensor_sim, rendered, api, tmp_path, event=own)
    assert list(by_namespace(run)) == ["partner-northwind"]
    check_workflow(run.workflows[0], provider, api, "main", "northwind")
    assert ("generate-version-core-team: none of its dependencies (push-core-team) is on "
            f'eventsource "{EVENTSOURCE}" event "{own}"') in run.stderr

    run = simulate(sensor_sim, rendered, api, tmp_path)
    assert list(by_namespace(run)) == ["core-team"]
    assert ("generate-version-northwind: none of its dependencies (push-northwind) is on "
            f'eventsource "{EVENTSOURCE}" event "{provider.event}"') in run.stderr

    # the partner's own repository, pushed through the shared webhook: nothing
    billing = provider.push("northwind-partners/billing-adapter", "main")
    assert simulate(sensor_sim, rendered, billing, tmp_path).returncode == NO_TRIGGER
    assert list(by_namespace(simulate(sensor_sim, rendered, billing, tmp_path, event=own))) == \
        ["partner-northwind"]
