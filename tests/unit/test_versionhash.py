"""The version hash contract (README "The version hash"), checked against an independent recomputation."""

from __future__ import annotations

import hashlib
import json
import subprocess

import pytest
from click.testing import CliRunner

from argo_delivery.cli import main
from argo_delivery.versionhash import (
    VersionHashError,
    canonical_json,
    normalise_repo,
    version_hash,
    version_name,
)

A = "0123456789abcdef0123456789abcdef01234567"
B = "89abcdef0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("url, expected", [
    ("https://GitHub.com/Acme/API.git", "https://github.com/Acme/API"),
    ("https://github.com/acme/api.git/", "https://github.com/acme/api"),
    ("https://user:s3cret@github.com/acme/api", "https://github.com/acme/api"),
    ("HTTPS://token@GITHUB.COM:8443/acme/api.git", "https://github.com:8443/acme/api"),
    ("ssh://git@git.example.com/acme/api.git", "ssh://git.example.com/acme/api"),
    ("git@GitHub.com:acme/api.git", "github.com:acme/api"),
    ("/srv/git/api.git/", "/srv/git/api"),
])
def test_normalise_repo(url, expected):
    assert normalise_repo(url) == expected


def test_hash_is_sha256_of_documented_canonical_json():
    components = [{"name": "web", "repo": "https://github.com/acme/web.git", "commit": B},
                  {"name": "api", "repo": "https://GitHub.com/acme/api/", "commit": A.upper()}]
    expected_doc = {"project": "core-team", "components": [
        {"name": "api", "repo": "https://github.com/acme/api", "commit": A},
        {"name": "web", "repo": "https://github.com/acme/web", "commit": B}]}
    canonical = json.dumps(expected_doc, sort_keys=True, separators=(",", ":")).encode()
    assert canonical_json("core-team", components) == canonical
    assert version_hash("core-team", components) == "sha256:" + hashlib.sha256(canonical).hexdigest()


def test_hash_recomputed_with_sha256sum():
    components = [{"name": "api", "repo": "https://github.com/acme/api", "commit": A}]
    out = subprocess.run(["sha256sum"], input=canonical_json("p", components), capture_output=True,
                         check=True).stdout.split()[0].decode()
    assert version_hash("p", components) == f"sha256:{out}"


def test_branch_is_not_identity_and_order_does_not_matter():
    one = [{"name": "api", "repo": "https://x/api", "commit": A, "ref": "main"},
           {"name": "web", "repo": "https://x/web", "commit": B}]
    two = [{"name": "web", "repo": "https://x/web.git", "commit": B, "ref": "release"},
           {"name": "api", "repo": "https://x/api", "commit": A}]
    assert version_hash("p", one) == version_hash("p", two)
    assert version_hash("p", one) != version_hash("q", one)


@pytest.mark.parametrize("commit", ["abc123", "z" * 40, ""])
def test_short_or_bad_commits_are_rejected(commit):
    with pytest.raises(VersionHashError, match="expected a full commit SHA"):
        version_hash("p", [{"name": "api", "repo": "r", "commit": commit}])


def test_version_name_is_a_readable_prefix_plus_hex():
    digest = version_hash("core-team", [{"name": "api", "repo": "r", "commit": A}])
    name = version_name("core-team", digest)
    assert name == "core-team-" + digest.split(":")[1][:16]
    assert len(version_name("p" * 63, digest)) <= 63


def test_cli_hash_matches_library():
    runner = CliRunner()
    args = ["hash", "--project", "core-team",
            "--component", f"api=https://github.com/acme/api.git@{A}",
            "--component", f"web=git@github.com:acme/web.git@{B}"]
    plain = runner.invoke(main, args)
    assert plain.exit_code == 0, plain.output
    expected = version_hash("core-team", [
        {"name": "api", "repo": "https://github.com/acme/api.git", "commit": A},
        {"name": "web", "repo": "git@github.com:acme/web.git", "commit": B}])
    assert plain.output.strip() == expected
    as_json = json.loads(runner.invoke(main, [*args, "--json"]).output)
    assert as_json["hash"] == expected
    assert as_json["name"] == version_name("core-team", expected)
    assert hashlib.sha256(as_json["canonical"].encode()).hexdigest() == expected.split(":")[1]


def test_cli_rejects_malformed_component():
    result = CliRunner().invoke(main, ["hash", "--project", "p", "--component", "api"])
    assert result.exit_code == 2
    assert "expected NAME=REPO@COMMIT" in result.stderr


def test_a_name_used_twice_has_no_hash():
    with pytest.raises(VersionHashError, match="component names must be unique"):
        version_hash("p", [{"name": "api", "repo": "r", "commit": A},
                           {"name": "api", "repo": "s", "commit": B}])


@pytest.mark.parametrize("components, message", [
    ([f"api=https://x/api@{A}", f"api=https://x/other@{B}"], "component names must be unique"),
    (["api=https://x/api@abc123"], "expected a full commit SHA"),
])
def test_cli_reports_components_without_a_hash(components, message):
    args = ["hash", "--project", "p"]
    for component in components:
        args += ["--component", component]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output
