"""The version hash: a contract other tools must be able to recompute.

sha256 over the canonical JSON (keys sorted, no whitespace, UTF-8) of
``{"project": <name>, "components": [{"name", "repo", "commit"}, ...]}`` with components
sorted by name and each repo normalised (lower-case scheme and host, no credentials, no
trailing slash, no trailing ``.git``). The branch is metadata, not identity.

This module is standard library only and self-contained: the in-cluster
``generate-version`` step embeds its source verbatim, so the CLI and the cluster compute
the hash with the same code.
"""

import hashlib
import json
import re
import urllib.parse

VERSION_NAME_HEX = 16
_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>(?!//).*)$")
_COMMIT = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


class VersionHashError(ValueError):
    """Components that have no version hash: a commit that is not a full SHA, a name used twice."""


def normalise_repo(url):
    """Canonical form of a git URL for hashing: same repo, same string."""
    url = url.strip()
    if "://" in url:
        parts = urllib.parse.urlsplit(url)
        host = (parts.hostname or "").lower()
        netloc = host + (f":{parts.port}" if parts.port else "")
        path = _strip_suffixes(parts.path)
        return urllib.parse.urlunsplit((parts.scheme.lower(), netloc, path, "", ""))
    scp = _SCP_LIKE.match(url)
    if scp:
        return f"{scp.group('host').lower()}:{_strip_suffixes(scp.group('path'))}"
    return _strip_suffixes(url)


def _strip_suffixes(path):
    path = path.rstrip("/")
    if path.endswith(".git"):
        path = path[: -len(".git")].rstrip("/")
    return path


def canonical_json(project, components):
    """The exact bytes that are hashed: components are dicts with name, repo and commit."""
    entries = []
    for component in components:
        commit = component["commit"].lower()
        if not _COMMIT.match(commit):
            raise VersionHashError(f"component {component['name']!r}: expected a full commit SHA "
                                   f"(40 or 64 hex digits), found {component['commit']!r}")
        entries.append({"name": component["name"], "repo": normalise_repo(component["repo"]),
                        "commit": commit})
    entries.sort(key=lambda entry: entry["name"])
    names = [entry["name"] for entry in entries]
    if len(set(names)) != len(names):
        raise VersionHashError(f"component names must be unique, found {names}")
    document = {"project": project, "components": entries}
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def version_hash(project, components):
    """``sha256:<64 hex>`` over the canonical JSON of the project and its component commits."""
    return "sha256:" + hashlib.sha256(canonical_json(project, components)).hexdigest()


def version_name(project, hash_value):
    """The Version's object name: the project as a readable prefix plus 16 hex digits of the hash."""
    digest = hash_value.split(":", 1)[1]
    return f"{project[: 63 - VERSION_NAME_HEX - 1]}-{digest[:VERSION_NAME_HEX]}"
