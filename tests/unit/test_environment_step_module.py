"""The environment step's module source parser: what the clone step fetches."""

from __future__ import annotations

import pytest

from argo_delivery.templates._steps import step_module

STEP = step_module("environment", shared=("steplib", "envmodel", "expiry"))


@pytest.mark.parametrize(("source", "expected"), [
    ("git::https://github.com/acme/infra.git//modules/env?ref=v1.2.0",
     ("https://github.com/acme/infra.git", "modules/env", "v1.2.0")),
    ("git::git://10.244.77.1:9418/acme-platform/infra.git//env?ref=main",
     ("git://10.244.77.1:9418/acme-platform/infra.git", "env", "main")),
    ("git::ssh://git@git.example.com/infra.git//env", ("ssh://git@git.example.com/infra.git",
                                                        "env", "HEAD")),
    ("git::https://git.example.com/infra.git?ref=0123abc", ("https://git.example.com/infra.git",
                                                             "", "0123abc")),
])
def test_a_git_module_source_is_repo_path_and_ref(source, expected):
    assert STEP.parse_module(source) == expected


def test_anything_else_is_refused_with_the_source_named():
    with pytest.raises(STEP.StepError, match="only git::REPO//PATH"):
        STEP.parse_module("./infra")


def test_the_lock_holders_broken_as_stale_are_the_pods_of_our_vend_and_destroy_templates():
    from argo_delivery.templates.vend import DESTROY, VEND

    assert STEP.OUR_LOCK_HOLDERS == (VEND + "-", DESTROY + "-")
