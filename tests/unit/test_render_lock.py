"""Rendering with an images lock (`render --images-lock FILE`): every image pinned by digest.

The locks here hold test data: each digest is the sha256 of the image reference's text, well
formed but the digest of no real manifest (nothing here asks a registry).
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from argo_delivery.bundle import build_bundle
from argo_delivery.cli import main
from argo_delivery.config import ConfigError, default_config_text, load_config, load_default, parse_config
from argo_delivery.imagefinder import ControllerImages, find_images
from argo_delivery.imagelock import ImagesLock, LockedImage
from argo_delivery.images import ImageRef, parse_image
from tests.support import REPO_ROOT, require_binary

MIRROR = "registry.site:5000"
GIT_IMAGE = "docker.io/library/python:3.12-bookworm"  # images.git of the example, used nowhere else
NATS = "docker.io/library/nats:2.10.29"


def fake_digest(reference: str) -> str:
    """Test data: a well-formed digest, distinct for each reference."""
    return "sha256:" + hashlib.sha256(f"test lock: {reference}".encode()).hexdigest()


def example_images() -> list[str]:
    """Every image the example bundle runs (its images.txt), rendered without a lock."""
    return build_bundle(load_default()).images


def write_lock(path: Path, images: list[str], digests: dict[str, str] | None = None) -> Path:
    lock = ImagesLock()
    for image in images:
        lock.add(LockedImage(str(parse_image(image)), (digests or {}).get(image, fake_digest(image))))
    lock.write(path)
    return path


def render(*args: str):
    return CliRunner().invoke(main, ["render", *args])


def config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "platform.yaml"
    path.write_text(text)
    return path


def example_text(require_digests: bool = False, mirror: str | None = None) -> str:
    text = default_config_text()
    if require_digests:
        text = text.replace("requireDigests: false", "requireDigests: true")
    if mirror:
        text = text.replace("mirror: null", f"mirror: {mirror}")
    return text


def test_every_image_of_the_bundle_is_pinned_by_the_lock(tmp_path):
    require_binary("kustomize")  # a written bundle is a kustomization
    images = example_images()
    lock = write_lock(tmp_path / "images.lock.yaml", images)
    result = render("--example", "--images-lock", str(lock), "--out", str(tmp_path / "dist"))
    assert result.exit_code == 0, result.output
    assert f"images lock: {lock}" in result.stderr and "warning" not in result.stderr
    bundle_dir = tmp_path / "dist" / "0.1.0"

    config = load_default(images_lock=ImagesLock.read(lock))
    found = find_images([bundle_dir], controllers=ControllerImages.from_config(config))
    assert found.problems == [] and found.notes == []
    assert len(found.images) == len(images)
    for image in found.images:
        ref = parse_image(image.image)
        source = str(ImageRef(ref.registry, ref.repository, ref.tag, None))
        assert image.image == f"{source}@{fake_digest(source)}", image
    # what the bundle records: images.txt and bundle.json list the pinned references
    pinned = [found_image.image for found_image in found.images]
    assert (bundle_dir / "images.txt").read_text().splitlines() == pinned
    assert json.loads((bundle_dir / "bundle.json").read_text())["images"] == pinned
    readme = (bundle_dir / "README.md").read_text()
    assert f"quay.io/argoproj/argo-events:v1.9.11@{fake_digest('quay.io/argoproj/argo-events:v1.9.11')}" \
        in readme
    assert f"{NATS}@{fake_digest(NATS)}" in readme  # the controller's JetStream settings
    # --check with the same lock: up to date; without it, the bundle is not what it renders
    again = render("--example", "--images-lock", str(lock), "--out", str(tmp_path / "dist"), "--check")
    assert again.exit_code == 0, again.output
    assert render("--example", "--out", str(tmp_path / "dist"), "--check").exit_code == 1


def test_stdout_and_render_py_take_the_lock(tmp_path):
    lock = write_lock(tmp_path / "images.lock.yaml", example_images())
    result = render("--example", "--images-lock", str(lock), "--stdout")
    assert result.exit_code == 0, result.output
    images = set(re.findall(r"^\s*image: (\S+)$", result.stdout, re.M))
    assert images and all(image.endswith(fake_digest(image.split("@")[0])) for image in images)
    script = subprocess.run([sys.executable, str(REPO_ROOT / "render.py"), "--example",
                             "--images-lock", str(lock), "--out", str(tmp_path / "dist")],
                            capture_output=True, text=True, cwd=tmp_path)
    assert script.returncode == 0, script.stderr
    assert (tmp_path / "dist" / "0.1.0" / "images.txt").read_text().count("@sha256:") == len(example_images())


def test_no_lock_renders_as_before(default_config, default_bundle):
    assert load_default(images_lock=None) == default_config
    empty = load_default(images_lock=ImagesLock())
    assert empty == default_config and build_bundle(empty).files == default_bundle.files


def test_require_digests_accepts_a_complete_lock_for_the_jetstream_images_too(tmp_path):
    lock = write_lock(tmp_path / "images.lock.yaml", example_images())
    config = config_file(tmp_path, example_text(require_digests=True))  # no eventBusDigests
    result = render("--config", str(config), "--images-lock", str(lock), "--out", str(tmp_path / "d"))
    assert result.exit_code == 0, result.output
    assert all("@sha256:" in line for line in (tmp_path / "d/0.1.0/images.txt").read_text().splitlines())


def test_require_digests_refuses_an_image_the_lock_does_not_hold(tmp_path):
    lock = write_lock(tmp_path / "images.lock.yaml", [i for i in example_images() if i != GIT_IMAGE])
    text = example_text(require_digests=True)
    config = config_file(tmp_path, text)
    result = render("--config", str(config), "--images-lock", str(lock), "--out", str(tmp_path / "d"))
    assert result.exit_code == 2
    line = next(n for n, text_line in enumerate(text.splitlines(), 1)
                if text_line.strip() == f"git: {GIT_IMAGE}")
    assert (f"{config}:{line}:8: images.git: image '{GIT_IMAGE}' is not pinned by digest and the "
            f"images lock holds no {GIT_IMAGE}") in result.stderr
    assert "run `argo-delivery images lock`" in result.stderr and "add it to the lock" in result.stderr
    assert "1 problem; nothing was written." in result.stderr
    assert not (tmp_path / "d").exists()


def test_require_digests_refuses_a_jetstream_image_the_lock_does_not_hold(tmp_path):
    lock = write_lock(tmp_path / "images.lock.yaml", [i for i in example_images() if i != NATS])
    with pytest.raises(ConfigError) as caught:
        parse_config(example_text(require_digests=True), "p.yaml", images_lock=ImagesLock.read(lock))
    [problem] = caught.value.problems
    assert problem.path == "registry.requireDigests"
    assert "JetStream images nats:2.10.29 are not pinned by digest" in problem.message
    assert "the images lock holds none of them either: run `argo-delivery images lock`" in problem.message


def test_without_a_lock_require_digests_points_at_one(tmp_path):
    config = config_file(tmp_path, example_text(require_digests=True))
    result = render("--config", str(config), "--out", str(tmp_path / "d"))
    assert result.exit_code == 2
    assert "render with an images lock that holds it (--images-lock FILE" in result.stderr


def test_the_mirror_keeps_the_locked_digest(tmp_path):
    images = example_images()
    lock = write_lock(tmp_path / "images.lock.yaml", images)
    config = config_file(tmp_path, example_text(mirror=MIRROR))
    result = render("--config", str(config), "--images-lock", str(lock), "--out", str(tmp_path / "d"),
                    "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["images"] == [f"{MIRROR}/{image}@{fake_digest(image)}"
                                                   for image in images]
    manifests = [yaml.safe_load(p.read_text()) for p in (tmp_path / "d/0.1.0").rglob("*.yaml")]
    assert manifests and "image: docker.io/" not in json.dumps(manifests)


def test_a_lock_made_over_a_mirrored_bundle_pins_too():
    # `images lock` over a bundle rendered with the mirror keys each image under the mirror
    images = example_images()
    lock = ImagesLock()
    for image in images:
        lock.add(LockedImage(f"{MIRROR}/{image}", fake_digest(image)))
    config = parse_config(example_text(require_digests=True, mirror=MIRROR), images_lock=lock)
    assert build_bundle(config).images == [f"{MIRROR}/{image}@{fake_digest(image)}" for image in images]
    assert [w for w in config.warnings if w.severity == "warning"] == []


def test_a_lock_made_over_a_pinned_bundle_pins_the_tags_it_holds():
    # `images lock` over a bundle rendered with a lock keys each image with its digest
    images = example_images()
    lock = ImagesLock()
    for image in images:
        lock.add(LockedImage(f"{image}@{fake_digest(image)}", fake_digest(image)))
    config = parse_config(example_text(require_digests=True), images_lock=lock)
    assert build_bundle(config).images == [f"{image}@{fake_digest(image)}" for image in images]
    assert [w for w in config.warnings if w.severity == "warning"] == []
    # two digests for one tag: which one is meant is not guessed
    other = "sha256:" + "c" * 64
    lock.add(LockedImage(f"{GIT_IMAGE}@{other}", other))
    with pytest.raises(ConfigError) as caught:
        parse_config(example_text(), "p.yaml", images_lock=lock)
    [problem] = caught.value.problems
    assert problem.path == "images.git"
    assert f"image '{GIT_IMAGE}': the images lock gives it 2 digests" in problem.message


def test_a_digest_the_lock_contradicts_is_refused_where_it_is_written(tmp_path):
    written = "sha256:" + "a" * 64
    text = example_text().replace(f"git: {GIT_IMAGE}", f"git: {GIT_IMAGE}@{written}")
    config = config_file(tmp_path, text)
    lock = write_lock(tmp_path / "images.lock.yaml", example_images())
    result = render("--config", str(config), "--images-lock", str(lock), "--out", str(tmp_path / "d"))
    assert result.exit_code == 2
    assert re.search(rf"{re.escape(str(config))}:\d+:8: images.git: image '{GIT_IMAGE}@{written}' is "
                     rf"pinned to {written} here, but the images lock gives {GIT_IMAGE} the digest "
                     rf"{fake_digest(GIT_IMAGE)}", result.stderr), result.stderr
    assert not (tmp_path / "d").exists()
    # the same digest in both: accepted, whether the lock holds the tag or the pinned reference
    agreeing = write_lock(tmp_path / "agree.yaml", example_images(), {GIT_IMAGE: written})
    assert render("--config", str(config), "--images-lock", str(agreeing), "--stdout").exit_code == 0
    pinned = ImagesLock.read(lock)
    pinned.images.pop(GIT_IMAGE)
    pinned.add(LockedImage(f"{GIT_IMAGE}@{written}", written))
    assert GIT_IMAGE + "@" + written in build_bundle(parse_config(text, images_lock=pinned)).images


def test_an_eventbus_digest_the_lock_contradicts_is_refused_at_its_entry():
    written = "sha256:" + "b" * 64
    text = example_text().replace("  requireDigests: false\n", "  requireDigests: false\n"
                                  f'  eventBusDigests: {{nats:2.10.29: "{written}"}}\n')
    assert written in text
    lock = ImagesLock()
    for image in example_images():
        lock.add(LockedImage(image, fake_digest(image)))
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "p.yaml", images_lock=lock)
    [problem] = caught.value.problems
    assert problem.path == "registry.eventBusDigests.nats:2.10.29" and problem.line is not None
    assert f"the images lock gives {NATS} the digest {fake_digest(NATS)}" in problem.message


def test_a_lock_entry_the_config_never_uses_is_a_warning(tmp_path):
    unused = "docker.io/library/redis:7.2"
    lock = write_lock(tmp_path / "images.lock.yaml", [*example_images(), unused])
    result = render("--example", "--images-lock", str(lock), "--out", str(tmp_path / "d"))
    assert result.exit_code == 0, result.output
    assert (f"warning: <embedded default platform>: the images lock holds {unused}, which this "
            "config runs nowhere") in result.stderr
    config = load_config(None, images_lock=ImagesLock.read(lock))
    assert [w.severity for w in config.warnings if unused in w.message] == ["warning"]


@pytest.mark.parametrize("content, expected", [
    (None, "cannot read: No such file or directory"),
    ("images: [\n", "invalid YAML"),
    ("apiVersion: v1\nkind: ConfigMap\n", "not an image lock"),
    ("apiVersion: argo-delivery.io/v1alpha1\nkind: ImagesLock\n"
     "images:\n- image: nats:2\n  digest: sha256:12\n", "images[0]"),
], ids=["missing", "not-yaml", "not-a-lock", "bad-digest"])
def test_a_lock_that_cannot_be_read_is_a_usage_error_naming_it(tmp_path, content, expected):
    lock = tmp_path / "images.lock.yaml"
    if content is not None:
        lock.write_text(content)
    result = render("--example", "--images-lock", str(lock), "--out", str(tmp_path / "d"))
    assert result.exit_code == 2
    assert f"error: --images-lock: {lock}: " in result.stderr and expected in result.stderr
    assert not (tmp_path / "d").exists()
    as_json = render("--example", "--images-lock", str(lock), "--json")
    assert as_json.exit_code == 2 and json.loads(as_json.stdout)["exitCode"] == 2


def test_lint_renders_with_the_lock_and_hash_and_lint_refuse_it_where_no_config_is_read(tmp_path):
    lock = write_lock(tmp_path / "images.lock.yaml", example_images())
    result = CliRunner().invoke(main, ["lint", "--example", "--images-lock", str(lock), "--no-upstream"])
    assert result.exit_code == 0, result.output
    refused = CliRunner().invoke(main, ["lint", str(tmp_path), "--images-lock", str(lock)])
    assert refused.exit_code == 2 and "not both" in refused.stderr
    refused = CliRunner().invoke(main, ["hash", "--project", "core-team", "--images-lock", str(lock),
                                        "--component", f"api=https://github.com/acme/api.git@{'0' * 40}"])
    assert refused.exit_code == 2 and "not both" in refused.stderr
