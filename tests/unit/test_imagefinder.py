"""The image finder (argo_delivery/imagefinder.py) on a fixture corpus and on a real bundle.

tests/unit/imagefinder/ holds one small fixture per kind and field the finder reads; every
test names each image with its exact location (file, document, kind, namespace/name, field).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from argo_delivery.bundle import build_bundle, write_bundle
from argo_delivery.cli import main
from argo_delivery.config import load_default
from argo_delivery.imagefinder import (
    ControllerImages,
    FinderError,
    find_images,
    load_paths_file,
    parse_path,
    parse_paths_spec,
)
from tests.support import REPO_ROOT, require_binary

FIXTURES = REPO_ROOT / "tests" / "unit" / "imagefinder"
EXEC = "quay.io/argoproj/argoexec:v4.1.4"
EVENTS = "quay.io/argoproj/argo-events:v1.9.11"
JETSTREAM = ("docker.io/library/nats:2.10.29", "docker.io/natsio/nats-server-config-reloader:0.14.0",
             "docker.io/natsio/prometheus-nats-exporter:0.14.0")
RS_DIGEST = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"


@pytest.fixture(autouse=True)
def _in_fixtures(monkeypatch):
    monkeypatch.chdir(FIXTURES)  # file names in results are relative, as given


def located(result):
    """{image: {(file, document, kind, namespace, name, path, reference-if-not-canonical, via?)}}"""
    return {found.image: {(loc.file, loc.document, loc.kind, loc.namespace, loc.name, loc.path,
                           loc.reference if loc.reference != found.image else "", bool(loc.via))
                          for loc in found.locations}
            for found in result.images}


def problems(result):
    return [(p.file, p.document, p.kind, p.name, p.path, p.message) for p in result.problems]


W, P = "good/apps/workloads.yaml", "good/apps/pod.yaml"
WF, T, CRON, EV = ("good/argo/workflow.yaml", "good/argo/templates.yaml",
                   "good/argo/cronworkflow.yaml", "good/events/events.yaml")
TPL = "spec.template.spec."

GOOD = {
    # Pod: containers, initContainers, ephemeralContainers
    "registry.example.com/apps/api:1.0": {
        (P, 1, "Pod", "apps", "debug", "spec.containers[0].image", "", False),
        (W, 1, "Deployment", "apps", "web", TPL + "containers[1].image", "", False)},
    "registry.example.com/tools/debug:2.1": {
        (P, 1, "Pod", "apps", "debug", "spec.ephemeralContainers[0].image", "", False)},
    # duplicates: one image, every place, however it is spelled
    "docker.io/library/busybox:1.36": {
        (P, 1, "Pod", "apps", "debug", "spec.initContainers[0].image", "busybox:1.36", False),
        (W, 7, "CronJob", "apps", "nightly",
         "spec.jobTemplate.spec.template.spec.initContainers[0].image", "busybox:1.36", False)},
    "docker.io/library/nginx:1.25": {
        (W, 1, "Deployment", "apps", "web", TPL + "containers[0].image", "nginx:1.25", False),
        (W, 3, "DaemonSet", "apps", "agent", TPL + "containers[0].image", "", False)},
    "registry.example.com/apps/migrate:3": {
        (W, 1, "Deployment", "apps", "web", TPL + "initContainers[0].image", "", False)},
    "docker.io/library/postgres:16": {
        (W, 2, "StatefulSet", "apps", "db", TPL + "containers[0].image", "postgres:16", False)},
    f"registry.example.com/apps/rs@{RS_DIGEST}": {
        (W, 4, "ReplicaSet", "apps", "rs", TPL + "containers[0].image", "", False)},
    "registry.example.com/apps/rc:1": {
        (W, 5, "ReplicationController", "apps", "rc", TPL + "containers[0].image", "", False)},
    "registry.example.com/apps/job:1": {
        (W, 6, "Job", "apps", "once", TPL + "containers[0].image", "", False)},
    "registry.example.com/apps/backup:5": {
        (W, 7, "CronJob", "apps", "nightly", "spec.jobTemplate.spec.template.spec.containers[0].image",
         "", False)},
    # a JSON file holding a List of one PodTemplate
    "registry.example.com/apps/tpl:7": {
        ("good/apps/podtemplate.json", 1, "PodTemplate", "apps", "tpl",
         "template.spec.containers[0].image", "", False)},
    # Workflow: every kind of template, inline ones nested in steps and a DAG
    "docker.io/library/golang:1.22": {
        (WF, 1, "Workflow", "ci", "build-*", "spec.templates[1].container.image", "golang:1.22", False),
        (WF, 1, "Workflow", "ci", "build-*", "spec.templates[2].containerSet.containers[1].image",
         "golang:1.22", False)},
    "docker.io/alpine/git:2.45": {
        (WF, 1, "Workflow", "ci", "build-*", "spec.templates[1].initContainers[0].image",
         "alpine/git:2.45", False)},
    "docker.io/library/redis:7": {
        (WF, 1, "Workflow", "ci", "build-*", "spec.templates[1].sidecars[0].image", "redis:7", False)},
    "registry.example.com/ci/a:1": {
        (WF, 1, "Workflow", "ci", "build-*", "spec.templates[2].containerSet.containers[0].image", "",
         False)},
    "registry.example.com/ci/inline-step:1": {
        (WF, 1, "Workflow", "ci", "build-*", "spec.templates[0].steps[0][0].inline.container.image", "",
         False)},
    "docker.io/library/python:3.12": {
        (WF, 1, "Workflow", "ci", "build-*", "spec.templates[3].dag.tasks[0].inline.script.image",
         "python:3.12", False)},
    "registry.example.com/ci/made-by-resource:1": {
        (WF, 1, "Workflow", "ci", "build-*",
         "spec.templates[4].resource.manifest.spec.template.spec.containers[0].image", "", False)},
    # WorkflowTemplate's templateDefaults; ClusterWorkflowTemplate (cluster-scoped)
    "registry.example.com/ci/default:1": {
        (T, 1, "WorkflowTemplate", "ci", "defaults", "spec.templateDefaults.container.image", "", False)},
    "registry.example.com/ci/lint:2": {
        (T, 2, "ClusterWorkflowTemplate", None, "shared", "spec.templates[0].script.image", "", False)},
    # an image only in a CronWorkflow's script template
    "registry.example.com/ci/only-in-cron-script:9": {
        (CRON, 1, "CronWorkflow", "ci", "cleanup", "spec.workflowSpec.templates[0].script.image", "",
         False)},
    # an image only in a Sensor: in the Workflow its trigger creates
    "registry.example.com/ci/only-in-sensor:4": {
        (EV, 3, "Sensor", "events", "on-push",
         "spec.triggers[0].template.argoWorkflow.source.resource.spec.templates[0].container.image",
         "", False)},
    # what the controllers run: argoexec beside every workflow pod (the Sensor's Workflow
    # included), the Argo Events image for EventSource and Sensor pods, the JetStream table
    EXEC: {(f, d, k, ns, n, "", "", True) for f, d, k, ns, n in (
        (WF, 1, "Workflow", "ci", "build-*"), (T, 1, "WorkflowTemplate", "ci", "defaults"),
        (T, 2, "ClusterWorkflowTemplate", None, "shared"), (CRON, 1, "CronWorkflow", "ci", "cleanup"),
        (EV, 3, "Sensor", "events", "on-push"))},
    EVENTS: {(EV, 2, "EventSource", "events", "webhook", "", "", True),
             (EV, 3, "Sensor", "events", "on-push", "", "", True)},
    **{image: {(EV, 1, "EventBus", "events", "default", "spec.jetstream.version", "", True)}
       for image in JETSTREAM},
}


def test_every_image_of_the_corpus_with_its_exact_location():
    result = find_images(["good"])
    assert located(result) == GOOD
    assert result.problems == [] and result.notes == []  # the ConfigMap is known to hold none
    assert [found.image for found in result.images] == sorted(GOOD)


def test_a_file_named_alone_is_read_whatever_its_name():
    result = find_images(["good/argo/cronworkflow.yaml"])
    assert set(located(result)) == {"registry.example.com/ci/only-in-cron-script:9", EXEC}


def test_a_custom_resource_is_not_scanned_without_paths_and_says_so():
    result = find_images(["custom"])
    assert result.images == [] and result.problems == []
    assert [(n.file, n.document, n.kind, n.name, n.message) for n in result.notes] == [
        ("custom/runner.yaml", 1, "Runner", "r1",
         "not scanned: example.com/Runner has no known image fields (name them with --paths)")]


def test_a_hidden_image_in_a_custom_resource_found_with_the_configured_paths():
    result = find_images(["custom"], load_paths_file("runner-paths.yaml"))
    at = ("custom/runner.yaml", 1, "Runner", "ci", "r1")
    assert located(result) == {
        "registry.example.com/hidden/runner:1": {(*at, "spec.runner.image", "", False)},
        "registry.example.com/hidden/worker:1": {(*at, "spec.workers[0].image", "", False)},
        "registry.example.com/hidden/worker:2": {(*at, "spec.workers[1].image", "", False)},
        "registry.example.com/hidden/pool:1": {(*at, "spec.pools.big.image", "", False)},
    }
    assert result.notes == [] and result.problems == []


def test_the_paths_syntax():
    assert parse_path("spec.workers[*].image") == ("spec", "workers", -1, "image")
    assert parse_path("spec.matrix[2][*].image") == ("spec", "matrix", 2, -1, "image")
    assert parse_path("spec.pools.*.image") == ("spec", "pools", "*", "image")
    assert parse_paths_spec({"Pod": ["spec.x.image"]}) == {("", "Pod"): [("spec", "x", "image")]}
    for bad in ({"a/b/C": ["spec.image"]}, {"example.com/Runner": []},
                {"example.com/Runner": "spec.image"}, {"example.com/Runner": ["spec..image"]},
                {"example.com/Runner": ["spec.workers[*]"]}, ["spec.image"]):
        with pytest.raises(ValueError):
            parse_paths_spec(bad)


def test_unscannable_fields_are_problems_located_never_guesses():
    result = find_images(["unscannable"])
    at = ("unscannable/workflow.yaml", 1, "Workflow", "patched")
    assert problems(result) == [
        (*at, "spec.templates[0].container.image", "unscannable: image '{{inputs.parameters.image}}' "
         "is an expression, known only when it runs"),
        (*at, "spec.podSpecPatch", "unscannable: podSpecPatch is a string patch applied when the pod "
         "is made; check by hand that it sets no image"),
    ]
    assert set(located(result)) == {EXEC}  # not "hidden:1": the patch is not parsed


def test_each_kind_of_bad_manifest_is_reported_with_its_file_and_document():
    result = find_images(["bad"])
    got = problems(result)
    assert got[0][:2] == ("bad/invalid.yaml", 2) and got[0][5].startswith("invalid YAML: ")
    assert got[1:] == [
        ("bad/no-kind.yaml", 1, None, None, "", "not a Kubernetes object: no kind"),
        ("bad/no-kind.yaml", 2, None, None, "", "a manifest must be a mapping; found a list"),
        ("bad/shapes.yaml", 1, "Deployment", "not-a-list", "spec.template.spec.containers",
         "must be a list of containers; found a mapping"),
        ("bad/shapes.yaml", 2, "Pod", "number", "spec.containers[0].image",
         "an image must be a non-empty string; found a number 42"),
        ("bad/shapes.yaml", 2, "Pod", "number", "spec.containers[1].image",
         "an image must be a non-empty string; found a string ''"),
        ("bad/shapes.yaml", 2, "Pod", "number", "spec.containers[2].image",
         "a container needs an image; there is none"),
        ("bad/shapes.yaml", 3, "Job", "no-template", "spec.template",
         "Job needs spec.template.spec (a pod spec); there is none"),
        ("bad/shapes.yaml", 4, "Sensor", "pod-image", "spec.template.container.image",
         f"Argo Events v1.9.11 has no such field: the controller runs its own image ({EVENTS}) "
         "and ignores this one"),
        ("bad/shapes.yaml", 4, "Sensor", "pod-image", "spec.template.initContainers",
         "Argo Events v1.9.11 has no such field: the controller ignores these containers"),
    ]
    # the document before the invalid one was read; the Sensor's pod still runs Argo Events
    assert located(result) == {EVENTS: {("bad/shapes.yaml", 4, "Sensor", "events", "pod-image", "",
                                         "", True)}}


def test_a_kustomization_is_built_with_its_images_override_applied():
    require_binary("kustomize")  # fails, never skips, when `make tools` has not built it
    result = find_images(["kustomize/overlay"])
    at = ("kustomize/base/deployment.yaml", None, "Deployment", "prod", "web")
    assert located(result) == {
        "registry.example.com/mirror/nginx:1.27": {(*at, TPL + "containers[0].image", "", False)},
        "docker.io/library/busybox:1.36": {(*at, TPL + "containers[1].image", "busybox:1.36", False)},
    }
    assert {loc.kustomization for found in result.images for loc in found.locations} == \
        {"kustomize/overlay"}
    assert result.problems == [] and result.notes == []


def test_kustomize_missing_fails_loudly_naming_make_tools(monkeypatch, tmp_path):
    monkeypatch.setenv("ARGO_DELIVERY_BIN", str(tmp_path))  # an empty tools folder
    with pytest.raises(FinderError, match="make tools"):
        find_images(["kustomize/overlay"])


# --- Helm charts (`helm template`, helm built by `make tools`) ---------------------------------

WEB = ("helm/web/templates/deployment.yaml", None, "Deployment", "default", "release-name-web",
       TPL + "containers[0].image")
MIGRATE = ("helm/web/templates/migrate.yaml", None, "Job", None, "release-name-migrate",
           TPL + "containers[0].image")


def test_a_helm_chart_is_rendered_each_image_located_at_its_template():
    require_binary("helm")  # fails, never skips, when `make tools` has not built it
    result = find_images(["helm/web"])
    # the image is only in values.yaml (repository + tag): it is found as rendered
    assert located(result) == {
        "registry.example.com/apps/web:1.0": {(*WEB, "", False)},
        "docker.io/library/busybox:1.36": {(*MIGRATE, "busybox:1.36", False)},
    }
    assert {(loc.chart, loc.kustomization) for found in result.images
            for loc in found.locations} == {("helm/web", None)}
    assert result.problems == [] and result.notes == []


@pytest.mark.parametrize(("values", "sets", "image"), [
    ([], ["image.tag=1.1"], "registry.example.com/apps/web:1.1"),
    (["helm/prod-values.yaml"], [], "mirror.example.com/apps/web:2.0"),
    (["helm/prod-values.yaml"], ["image.tag=2.1"], "mirror.example.com/apps/web:2.1"),  # --set last
])
def test_helm_values_files_and_set_values_change_the_image(values, sets, image):
    require_binary("helm")
    result = find_images(["helm/web"], helm_values=values, helm_set=sets)
    assert located(result) == {
        image: {(*WEB, "", False)},
        "docker.io/library/busybox:1.36": {(*MIGRATE, "busybox:1.36", False)},
    }
    assert result.problems == []


def test_a_subchart_image_is_located_in_the_subchart_named_by_its_chart_yaml_too():
    require_binary("helm")
    expected = {"docker.io/library/postgres:16": {(  # the parent's values.yaml overrides db's
        "helm/umbrella/charts/db/templates/statefulset.yaml", None, "StatefulSet", None,
        "release-name-db", TPL + "containers[0].image", "postgres:16", False)}}
    assert located(find_images(["helm/umbrella"])) == expected
    assert located(find_images(["helm/umbrella/Chart.yaml"])) == expected


def test_a_template_syntax_error_is_a_problem_of_the_chart():
    require_binary("helm")
    result = find_images(["helm/broken", "helm/web"])
    assert problems(result) == [("helm/broken/Chart.yaml", None, None, None, "",
                                 "helm template failed: parse error at "
                                 "(broken/templates/deployment.yaml:12): unexpected EOF")]
    assert set(located(result)) == {"registry.example.com/apps/web:1.0",
                                    "docker.io/library/busybox:1.36"}  # the other chart is read


def test_a_missing_dependency_is_a_problem_never_fetched():
    require_binary("helm")
    result = find_images(["helm/needs-redis"])
    assert result.images == []
    assert problems(result) == [(
        "helm/needs-redis/Chart.yaml", None, None, None, "",
        "helm template failed: an error occurred while checking for chart dependencies. You may "
        "need to run 'helm dependency build' to fetch missing dependencies: found in Chart.yaml, "
        "but missing in charts/ directory: redis")]


def test_helm_runs_without_the_users_helm_state_or_kubeconfig(monkeypatch, tmp_path):
    require_binary("helm")
    homes = {name: tmp_path / name for name in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME",
                                                "HELM_DATA_HOME")}
    for name, home in homes.items():
        monkeypatch.setenv(name, str(home))
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "theirs",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {}}],
        "contexts": [{"name": "theirs", "context": {"cluster": "c", "user": "u",
                                                      "namespace": "theirs"}}]}))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    result = find_images(["helm/web", "helm/needs-redis"])
    # the release namespace is helm's default, not the kubeconfig's
    assert located(result)["registry.example.com/apps/web:1.0"] == {(*WEB, "", False)}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kubeconfig"]  # no helm home written
    monkeypatch.setenv("HELM_NAMESPACE", "elsewhere")  # a HELM_* setting of the caller
    assert located(find_images(["helm/web"])) == located(result)


def test_helm_missing_fails_loudly_naming_make_tools(monkeypatch, tmp_path):
    monkeypatch.setenv("ARGO_DELIVERY_BIN", str(tmp_path))  # an empty tools folder
    with pytest.raises(FinderError, match="helm is not built .*build it with `make tools`"):
        find_images(["helm/web"])


def test_helm_options_usage_errors():
    with pytest.raises(FinderError, match="--values helm/no-such.yaml: no such file"):
        find_images(["helm/web"], helm_values=["helm/no-such.yaml"])
    with pytest.raises(FinderError, match="--set image.tag: must be KEY=VALUE"):
        find_images(["helm/web"], helm_set=["image.tag"])
    with pytest.raises(FinderError, match="no path holds one"):
        find_images(["good/apps"], helm_set=["image.tag=2"])


def test_a_missing_path_is_a_usage_error():
    with pytest.raises(FinderError, match="no-such: no such file or folder"):
        find_images(["good", "no-such"])


def test_the_default_bundle_gives_exactly_the_bundles_own_images(tmp_path):
    require_binary("kustomize")  # a written bundle is a kustomization
    config = load_default()
    bundle = build_bundle(config)
    target = write_bundle(bundle, tmp_path).path
    result = find_images([target], controllers=ControllerImages.from_config(config))
    assert [found.image for found in result.images] == bundle.images
    assert result.problems == [] and result.notes == []
    # every location is a file of the bundle (kustomize's origin annotations name it)
    for found in result.images:
        for loc in found.locations:
            assert Path(loc.file).is_file() and Path(loc.file).is_relative_to(target), loc
    # the defaults are the config's when it sets no mirror
    assert ControllerImages.from_config(config) == ControllerImages.defaults()


# --- the command line -------------------------------------------------------------------------

def test_cli_table_and_exit_0():
    result = CliRunner().invoke(main, ["images", "find", "good/argo/cronworkflow.yaml"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["IMAGE", "FILE", "OBJECT", "FIELD"]
    assert any(line.split()[:4] == ["registry.example.com/ci/only-in-cron-script:9",
                                    "good/argo/cronworkflow.yaml", "(document", "1)"]
               and "spec.workflowSpec.templates[0].script.image" in line for line in lines)


def test_cli_json_problems_exit_1():
    result = CliRunner().invoke(main, ["images", "find", "bad", "good/argo", "-o", "json"])
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False and len(document["problems"]) == 10
    assert {"image": "registry.example.com/ci/lint:2", "locations": [{
        "file": "good/argo/templates.yaml", "document": 2, "kind": "ClusterWorkflowTemplate",
        "name": "shared", "namespace": None, "path": "spec.templates[0].script.image",
        "reference": "registry.example.com/ci/lint:2", "via": None, "kustomization": None,
        "chart": None}]} \
        in document["images"]


def test_cli_paths_file_and_usage_errors():
    runner = CliRunner()
    assert runner.invoke(main, ["images", "find", "custom"]).exit_code == 0  # a note only
    found = runner.invoke(main, ["images", "find", "custom", "--paths", "runner-paths.yaml",
                                 "-o", "json"])
    assert found.exit_code == 0
    assert len(json.loads(found.stdout)["images"]) == 4
    assert runner.invoke(main, ["images", "find", "no-such"]).exit_code == 2
    assert runner.invoke(main, ["images", "find"]).exit_code == 2
    bad_paths = runner.invoke(main, ["images", "find", "custom", "--paths", "good/apps/pod.yaml"])
    assert bad_paths.exit_code == 2 and "good/apps/pod.yaml: apiVersion: must be" in bad_paths.stderr


def test_cli_helm_values_and_set():
    require_binary("helm")
    runner = CliRunner()
    found = runner.invoke(main, ["images", "find", "helm/web", "--values", "helm/prod-values.yaml",
                                 "--set", "image.tag=2.1", "-o", "json"])
    assert found.exit_code == 0, found.output
    assert json.loads(found.stdout)["images"][1] == {
        "image": "mirror.example.com/apps/web:2.1", "locations": [{
            "file": "helm/web/templates/deployment.yaml", "document": None, "kind": "Deployment",
            "name": "release-name-web", "namespace": "default",
            "path": "spec.template.spec.containers[0].image",
            "reference": "mirror.example.com/apps/web:2.1", "via": None, "kustomization": None,
            "chart": "helm/web"}]}
    broken = runner.invoke(main, ["images", "find", "helm/broken"])
    assert broken.exit_code == 1
    assert "helm/broken/Chart.yaml: helm template failed: parse error" in broken.stderr
    no_chart = runner.invoke(main, ["images", "find", "good/apps", "--set", "a=b"])
    assert no_chart.exit_code == 2 and "no path holds one" in no_chart.stderr
