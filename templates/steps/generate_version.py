# generate-version step: resolve every component's head commit, hash, create the Version.
#
# Standard library only. The renderer prepends argo_delivery/steplib.py (StepError, log,
# Kube, the exit codes) and argo_delivery/versionhash.py to this file, so `version_hash`,
# `version_name` and `normalise_repo` are the very functions the CLI uses. Every input arrives as an
# environment variable: nothing from a webhook payload is ever part of this source or of
# a shell string.
# ruff: noqa: F821

import base64
import binascii
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

_PERMANENT_GIT_ERRORS = re.compile(
    r"not found|does not appear to be a git repository|does not exist|no such|"
    # git daemon answers a missing repository so (it does not tell the two apart)
    r"access denied or repository not exported|"
    r"authentication failed|could not read (username|password)|permission denied|"
    r"terminal prompts disabled|invalid|not a valid",
    re.IGNORECASE,
)


_AUTH_ERRORS = re.compile(
    r"could not read (username|password)|authentication failed|terminal prompts disabled|"
    r"permission denied \(publickey", re.IGNORECASE)


# query parameters that carry a credential (GitLab's private_token, OAuth access_token, ...)
_SECRET_QUERY = re.compile(r"([?&](?:[a-z_]*token|access_token|password|passwd|secret|key|"
                           r"client_secret|sig|signature)=)[^&#\s'\"]+", re.IGNORECASE)


def redact(text):
    """Drop credentials from URLs (user:password@, secret query parameters) before anything
    reaches the logs."""
    return _SECRET_QUERY.sub(r"\1***", re.sub(r"(://)[^/@\s]+@", r"\1***@", text))


def git_environment():
    env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
           "HOME": os.environ.get("HOME", "/tmp"),
           "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/false", "SSH_ASKPASS": "/bin/false",
           "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C"}
    creds = os.environ.get("AD_GIT_CREDENTIALS", "")
    config = []
    if creds and os.path.isfile(os.path.join(creds, ".git-credentials")):
        config.append(("credential.helper",
                       "store --file=" + os.path.join(creds, ".git-credentials")))
    if creds and os.path.isfile(os.path.join(creds, "ssh-privatekey")):
        known = os.path.join(creds, "known_hosts")
        env["GIT_SSH_COMMAND"] = (
            "ssh -F /dev/null -o IdentitiesOnly=yes -o BatchMode=yes"
            f" -i {os.path.join(creds, 'ssh-privatekey')}"
            + (f" -o UserKnownHostsFile={known}" if os.path.isfile(known)
               else " -o StrictHostKeyChecking=yes"))
    env["GIT_CONFIG_COUNT"] = str(len(config))
    for index, (key, value) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


def ls_remote(component, attempts, timeout):
    """The commit at the head of the component's branch, with backoff on network errors."""
    ref = "refs/heads/" + component["branch"]
    command = ["git", "ls-remote", "--exit-code", "--end-of-options", component["repo"], ref]
    delay = 1.0
    for attempt in range(1, attempts + 1):
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                    env=git_environment(), stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            reason = f"git ls-remote timed out after {timeout}s"
        else:
            if result.returncode == 0:
                for line in result.stdout.splitlines():
                    sha, _, name = line.partition("\t")
                    if name == ref:
                        return sha.strip()
                reason = f"git ls-remote printed no line for {ref}"
            elif result.returncode == 2:
                raise StepError(f"component {component['name']}: branch {component['branch']!r} "
                                f"does not exist in {redact(component['repo'])}", EXIT_PERMANENT)
            else:
                reason = redact(result.stderr.strip()) or f"git exited with {result.returncode}"
                if _AUTH_ERRORS.search(reason):
                    raise StepError(f"component {component['name']}: {redact(component['repo'])} "
                                    "asks for credentials and the git credentials Secret has none "
                                    f"that work for it: {reason}", EXIT_PERMANENT)
                if _PERMANENT_GIT_ERRORS.search(reason):
                    raise StepError(f"component {component['name']}: cannot read "
                                    f"{redact(component['repo'])}: {reason}", EXIT_PERMANENT)
        if attempt == attempts:
            raise StepError(f"component {component['name']}: {reason} "
                            f"(gave up after {attempts} attempts)", EXIT_TRANSIENT)
        log("retry", component=component["name"], attempt=attempt, reason=reason, wait=delay)
        time.sleep(delay)
        delay = min(delay * 2, 30.0)
    raise AssertionError("unreachable")


def resolve_component_heads(components, attempts=4, timeout=60):
    """Every component's head commit, resolved in parallel, in one process."""
    # Each ls-remote is a short round trip; 16 at once keeps a small pod busy without
    # opening more connections than a git server accepts from one client at a time.
    workers = max(1, min(int(os.environ.get("AD_GIT_PARALLELISM", "16")), len(components)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(ls_remote, c, attempts, timeout) for c in components]
        errors, heads = [], []
        for component, future in zip(components, futures, strict=True):
            try:
                heads.append({"name": component["name"], "repo": component["repo"],
                              "ref": component["branch"], "commit": future.result()})
            except StepError as exc:
                errors.append(exc)
    if errors:
        for exc in errors:
            log("error", message=str(exc))
        raise StepError("; ".join(str(e) for e in errors), max(e.exit_code for e in errors))
    return heads


def trigger():
    """What caused this run: the push fields, base64-encoded by the Sensor, decoded here."""
    fields = {"repo": "AD_TRIGGER_REPO", "branch": "AD_TRIGGER_BRANCH",
              "commit": "AD_TRIGGER_COMMIT", "sender": "AD_TRIGGER_SENDER"}
    found = {}
    for key, var in fields.items():
        encoded = os.environ.get(var, "")
        try:
            value = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise StepError(f"parameter {key} is not base64 of UTF-8 text; the on-push Sensor "
                            "encodes it, a manual run leaves it empty", EXIT_PERMANENT) from None
        if value:
            found[key] = value
    return {"type": "push" if found else "manual", **found}


def _identity(project, components):
    """What the hash stands for: project and each component's name, normalised repo, commit."""
    return [project] + sorted(f"{c.get('name')}={normalise_repo(str(c.get('repo')))}@{c.get('commit')}"
                              for c in components)


def main():
    project = os.environ["AD_PROJECT"]
    namespace = os.environ["AD_NAMESPACE"]
    group = "/apis/argo-delivery.io/v1alpha1/namespaces/" + namespace
    cause = trigger()
    kube = Kube()
    status, document = kube.request("GET", f"{group}/projects/{project}")
    if status != 200:
        raise StepError(f"cannot read Project {project} in namespace {namespace}: "
                        f"{document.get('message', status)}", EXIT_PERMANENT)
    components = document["spec"]["components"]
    heads = resolve_component_heads(components,
                                    attempts=int(os.environ.get("AD_ATTEMPTS", "4")),
                                    timeout=int(os.environ.get("AD_GIT_TIMEOUT", "60")))
    digest = version_hash(project, heads)
    name = version_name(project, digest)
    version = {
        "apiVersion": "argo-delivery.io/v1alpha1",
        "kind": "Version",
        "metadata": {"name": name, "namespace": namespace, "labels": {
            "app.kubernetes.io/part-of": "argo-delivery", "argo-delivery.io/project": project}},
        "spec": {"project": project, "hash": digest, "trigger": cause, "components": sorted(
            ({"name": h["name"], "repo": normalise_repo(h["repo"]), "ref": h["ref"],
              "commit": h["commit"]} for h in heads), key=lambda c: c["name"])},
    }
    status, document = kube.request("POST", f"{group}/versions?fieldValidation=Strict", version)
    if status == 201:
        outcome = "created"
    elif status == 409:
        status, existing = kube.request("GET", f"{group}/versions/{name}")
        if status != 200:
            raise StepError(f"Version {name} exists but cannot be read: "
                            f"{existing.get('message', status)}", EXIT_TRANSIENT)
        theirs = existing["spec"]
        if theirs.get("hash") != digest:
            raise StepError(f"Version {name} exists with hash {theirs.get('hash')}, "
                            f"not {digest}: a name collision", EXIT_PERMANENT)
        ours, found = _identity(project, version["spec"]["components"]), \
            _identity(theirs.get("project"), theirs.get("components") or [])
        if found != ours:
            raise StepError(f"Version {name} exists with the right name and hash but describes "
                            f"{found}, not the resolved {ours}: it was not created from these "
                            "commits; delete it and push again", EXIT_PERMANENT)
        outcome = "exists"
    else:
        raise StepError(f"cannot create Version {name}: {document.get('message', status)}",
                        EXIT_PERMANENT)
    output = os.environ.get("AD_OUTPUT", "/tmp/version-name")
    if output:
        with open(output, "w") as handle:
            handle.write(name)
    result = os.environ.get("AD_RESULT_OUTPUT")
    if result:   # created or exists: a label of the template's metric delivery_versions_total
        with open(result, "w") as handle:
            handle.write(outcome)
    log(outcome, version=name, hash=digest, components=[
        {"name": h["name"], "commit": h["commit"]} for h in heads])


if __name__ == "__main__":
    try:
        main()
    except StepError as exc:
        log("failed", message=str(exc))
        sys.exit(exc.exit_code)
