"""The rendered generate-version step, run as Argo would, against the real API server.

The step authenticates with a token of its own ServiceAccount (from the TokenRequest API),
reads the Project, resolves heads from real git repos served by `git daemon`, and creates
the Version. The same token is refused in another project's namespace; two runs at once
end with one Version; hostile webhook values stay data.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest

from argo_delivery.bundle import build_bundle
from argo_delivery.config import parse_config
from argo_delivery.versionhash import version_hash, version_name
from tests.gitrepos import GitDaemon, make_repo, push_commit
from tests.stepscripts import run_step, script_template, step_environment
from tests.support import REPO_ROOT

pytestmark = pytest.mark.apiserver

WRITER = "argo-delivery-version-writer"
VERSIONS = "/apis/argo-delivery.io/v1alpha1/namespaces/{ns}/versions"


@pytest.fixture(scope="module")
def git_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    repos = {name: make_repo(root, name, {"main": 1, "release": 1})
             for name in ("api", "web", "worker", "billing-adapter")}
    with GitDaemon(root) as daemon:
        yield daemon, repos


@pytest.fixture(scope="module")
def local_bundle(git_server):
    """The default platform, with every component's repo served by the local git daemon."""
    daemon, repos = git_server
    text = (REPO_ROOT / "argo_delivery/data/default-platform.yaml").read_text()
    for name, repo in repos.items():
        for owner in ("acme-platform", "northwind-partners"):
            text = text.replace(f"https://github.com/{owner}/{name}.git", daemon.url(repo))
    return build_bundle(parse_config(text, "local-platform.yaml"))


@pytest.fixture(scope="module")
def installed(kube, local_bundle):
    kube.apply(local_bundle.resources)
    return local_bundle


class Step:
    """The rendered step of one project, run with a token of its own ServiceAccount."""

    def __init__(self, kube, bundle, namespace: str, tmp_path: Path):
        self.kube, self.tmp_path = kube, tmp_path
        source = bundle.files[f"namespaces/{namespace}/workflowtemplate/generate-version.yaml"]
        self.script = script_template(source, "generate-version")
        token = kube.token_for(namespace, WRITER)
        self.token_file = tmp_path / "token"
        self.token_file.write_text(token)
        self.token = token

    def env(self, run: str) -> dict[str, str]:
        workdir = self.tmp_path / run
        workdir.mkdir(exist_ok=True)
        return {"AD_API_SERVER": self.kube.server, "AD_TOKEN_FILE": str(self.token_file),
                "AD_CA_FILE": str(self.kube.ca_file), "AD_OUTPUT": str(workdir / "version-name"),
                "HOME": str(workdir)}

    def values(self, namespace: str, raw: bool = False, **trigger: str) -> dict[str, str]:
        """Argo's values for the step's env; trigger fields base64-encoded as the Sensor sends them."""
        values = {"workflow.namespace": namespace}
        for key in ("repo", "branch", "commit", "sender"):
            value = trigger.get(key, "")
            values[f"workflow.parameters.{key}"] = value if raw else \
                base64.b64encode(value.encode()).decode()
        return values

    def run(self, namespace: str, run: str = "run", raw: bool = False, **trigger: str):
        workdir = self.tmp_path / run
        workdir.mkdir(exist_ok=True)
        return run_step(self.script, self.values(namespace, raw, **trigger), self.env(run), workdir)

    def popen(self, namespace: str, run: str) -> subprocess.Popen[str]:
        workdir = self.tmp_path / run
        workdir.mkdir(exist_ok=True)
        (workdir / "script").write_text(self.script["source"])
        env = {"PATH": "/usr/bin:/bin", **step_environment(self.script, self.values(namespace)),
               **self.env(run)}
        return subprocess.Popen([sys.executable, str(workdir / "script")], env=env, cwd=workdir,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def expected_version(project: str, repos, branches: dict[str, str], daemon) -> tuple[str, str]:
    components = [{"name": name, "repo": daemon.url(repos[name]), "commit": repos[name].heads[branch]}
                  for name, branch in branches.items()]
    digest = version_hash(project, components)
    return digest, version_name(project, digest)


CORE = {"api": "main", "web": "main", "worker": "release"}


def test_step_creates_the_version_with_its_own_token(kube, installed, git_server, tmp_path):
    daemon, repos = git_server
    step = Step(kube, installed, "core-team", tmp_path)
    result = step.run("core-team", repo=daemon.url(repos["api"]), branch="main",
                      commit=repos["api"].heads["main"], sender="alice")
    assert result.returncode == 0, result.stdout + result.stderr
    digest, name = expected_version("core-team", repos, CORE, daemon)
    version = kube.request("GET", VERSIONS.format(ns="core-team") + f"/{name}")
    assert version["spec"]["hash"] == digest
    assert {c["name"]: c["commit"] for c in version["spec"]["components"]} == {
        n: repos[n].heads[b] for n, b in CORE.items()}
    assert version["spec"]["trigger"] == {"type": "push", "repo": daemon.url(repos["api"]),
                                          "branch": "main", "commit": repos["api"].heads["main"],
                                          "sender": "alice"}
    assert (tmp_path / "run" / "version-name").read_text() == name
    again = step.run("core-team", run="again")
    assert again.returncode == 0, again.stdout + again.stderr
    assert '"event": "exists"' in again.stdout


def test_the_same_token_is_refused_in_another_project(kube, installed, tmp_path):
    step = Step(kube, installed, "core-team", tmp_path)
    result = step.run("partner-northwind")
    assert result.returncode == 2
    assert "cannot read Project core-team in namespace partner-northwind" in result.stdout
    assert "forbidden" in result.stdout
    denied = kube.request("POST", VERSIONS.format(ns="partner-northwind"),
                          {"apiVersion": "argo-delivery.io/v1alpha1", "kind": "Version",
                           "metadata": {"name": "x"}}, token=step.token, ok=[403])
    assert denied["reason"] == "Forbidden"


def test_two_runs_at_once_end_with_one_version(kube, installed, git_server, tmp_path):
    daemon, repos = git_server
    push_commit(repos["web"])
    digest, name = expected_version("core-team", repos, CORE, daemon)
    step = Step(kube, installed, "core-team", tmp_path)
    runs = [step.popen("core-team", f"run-{i}") for i in range(2)]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    events = sorted(line for out, _ in outputs for line in out.splitlines() if name in line)
    assert [('"event": "created"' in e, '"event": "exists"' in e) for e in events] in (
        [(True, False), (False, True)], [(False, True), (True, False)])
    listed = kube.request("GET", VERSIONS.format(ns="core-team"))["items"]
    assert [v["metadata"]["name"] for v in listed if v["spec"]["hash"] == digest] == [name]


HOSTILE = {
    "branch": "main'''; import os; os.system('touch CANARY-1') #\n$(touch CANARY-2)",
    "sender": '"; touch CANARY-3; echo " `touch CANARY-4` {{workflow.name}}',
    "commit": "{{inputs.parameters.x}}$(touch CANARY-5)",
}


def test_hostile_webhook_values_stay_data(kube, installed, git_server, tmp_path):
    daemon, repos = git_server
    push_commit(repos["worker"], "release")
    digest, name = expected_version("core-team", repos, CORE, daemon)
    step = Step(kube, installed, "core-team", tmp_path)
    result = step.run("core-team", run="hostile", repo=daemon.url(repos["worker"]), **HOSTILE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not list(tmp_path.rglob("CANARY-*")), "a hostile value was executed"
    assert not list(Path.cwd().glob("CANARY-*"))
    trigger = kube.request("GET", VERSIONS.format(ns="core-team") + f"/{name}")["spec"]["trigger"]
    assert {k: trigger[k] for k in HOSTILE} == HOSTILE
    for value in HOSTILE.values():
        assert value not in step.script["source"]


def test_parameters_that_are_not_base64_are_refused(kube, installed, tmp_path):
    step = Step(kube, installed, "core-team", tmp_path)
    result = step.run("core-team", raw=True, branch="{{workflow.name}}")
    assert result.returncode == 2
    assert "parameter branch is not base64" in result.stdout


def test_a_pre_planted_version_with_other_components_fails_the_step(kube, installed, git_server,
                                                                      tmp_path):
    """A Version that has the name and hash the step computes but describes other commits
    (planted with the writer's own token, which admission allows) is an error, not `exists`."""
    daemon, repos = git_server
    push_commit(repos["api"])
    digest, name = expected_version("core-team", repos, CORE, daemon)
    step = Step(kube, installed, "core-team", tmp_path)
    forged = {"apiVersion": "argo-delivery.io/v1alpha1", "kind": "Version",
              "metadata": {"name": name},
              "spec": {"project": "core-team", "hash": digest, "components": [
                  {"name": n, "repo": daemon.url(repos[n]), "ref": f"refs/heads/{b}",
                   "commit": "f" * 40} for n, b in CORE.items()]}}
    kube.request("POST", VERSIONS.format(ns="core-team"), forged, token=step.token)
    result = step.run("core-team", run="planted")
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"Version {name} exists with the right name and hash but describes" in result.stdout
    assert "f" * 40 in result.stdout and repos["api"].heads["main"] in result.stdout
