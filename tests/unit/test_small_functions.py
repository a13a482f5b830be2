"""Durations, image references and the YAML serialiser."""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml

from argo_delivery.durations import format_duration, parse_duration
from argo_delivery.images import ImageError, collect_images, parse_image, rewrite_image
from argo_delivery.serialize import dump_yaml, order_keys

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize("text, seconds", [("30m", 1800), ("8h", 28800), ("1d12h", 129600),
                                           ("1.5h", 5400), ("500ms", 0.5), ("90s", 90)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "10", "10 minutes", "h", "1h 30m", "-5m", "1w"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(text)


def test_format_duration_round_trips():
    for text in ("1d12h", "8h", "45m", "1h1m1s", "0s"):
        assert format_duration(parse_duration(text)) == text


@pytest.mark.parametrize("reference, expected", [
    ("python:3.12", "docker.io/library/python:3.12"),
    ("hashicorp/terraform:1.9.8", "docker.io/hashicorp/terraform:1.9.8"),
    ("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"),
    ("localhost:5000/team/app", "localhost:5000/team/app:latest"),
    (f"ghcr.io/acme/app@{DIGEST}", f"ghcr.io/acme/app@{DIGEST}"),
])
def test_images_are_fully_qualified(reference, expected):
    assert rewrite_image(reference) == expected


def test_mirror_keeps_source_registry_in_path():
    assert rewrite_image("python:3.12", "mirror.site:5000") == \
        "mirror.site:5000/docker.io/library/python:3.12"
    assert rewrite_image(f"ghcr.io/acme/app:1@{DIGEST}", "mirror.site/base/") == \
        f"mirror.site/base/ghcr.io/acme/app:1@{DIGEST}"


def test_a_source_registry_with_a_port_becomes_a_valid_path_component_on_the_mirror():
    mirrored = rewrite_image("Registry.Example.com:5000/team/app:1", "mirror.site:5000")
    assert mirrored == "mirror.site:5000/registry.example.com__5000/team/app:1"
    # it parses back as the mirror's registry and one repository path (the docker reference
    # grammar: no `:` and no upper case in a path component)
    ref = parse_image(mirrored)
    assert (ref.registry, ref.repository, ref.tag) == \
        ("mirror.site:5000", "registry.example.com__5000/team/app", "1")
    assert rewrite_image("registry.example.com-5000/team/app:1", "m") != \
        rewrite_image("registry.example.com:5000/team/app:1", "m")


def test_require_digest():
    with pytest.raises(ImageError, match="not pinned by digest"):
        rewrite_image("python:3.12", require_digest=True)
    assert rewrite_image(f"python:3.12@{DIGEST}", require_digest=True).endswith(DIGEST)


def test_bad_digest_is_rejected():
    with pytest.raises(ImageError, match="digest must be sha256"):
        parse_image("python@sha256:abc")


def test_collect_images_finds_every_container():
    docs = [{"spec": {"templates": [{"script": {"image": "b"}}, {"container": {"image": "a"}}]}},
            {"spec": {"template": {"container": {"image": "a"}}}}]
    assert collect_images(docs) == ["a", "b"]


def test_key_order_is_manifest_order_then_alphabetical():
    doc = {"spec": {"z": 1, "a": 2}, "metadata": {"name": "x"}, "kind": "K", "apiVersion": "v1"}
    assert list(order_keys(doc)) == ["apiVersion", "kind", "metadata", "spec"]
    assert list(order_keys(doc)["spec"]) == ["a", "z"]


def test_yaml_quotes_yaml11_booleans_and_uses_literal_blocks():
    text = dump_yaml({"a": "y", "b": "no", "c": "line1\nline2\n", "d": "{{x}}"})
    assert "a: 'y'" in text and "b: 'no'" in text
    assert "c: |\n  line1\n  line2\n" in text
    assert yaml.safe_load(text) == {"a": "y", "b": "no", "c": "line1\nline2\n", "d": "{{x}}"}


def test_c_and_python_emitters_agree():
    doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"},
           "data": {"script": "print('hi')\n  indented\n", "unicode": "Grüße", "long": "w " * 200,
                    "num": "0123", "colon": "a: b", "empty": ""}}
    assert dump_yaml(doc, use_c=True) == dump_yaml(doc, use_c=False)
