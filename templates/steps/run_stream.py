# run-stream steps: claim a Version for a stream run, watch its suites, record the results;
# and the release step.
#
# Standard library only. The renderer prepends argo_delivery/steplib.py (StepError, log, Kube)
# and argo_delivery/promotion.py (the journey's rules), so the CLI reads a Version's status
# with the very rules that wrote it. One script, six modes (AD_MODE):
#
#   start    pick (nightly) or take the Version, claim the stream run in its status, print
#            the runs as JSON for the suites (their environment) and the watcher
#   watch    follow this run's suite nodes in the Workflow, write progress and the result
#   finish   the exit handler: a run the watcher could not finish (deadline, a failed start)
#            is recorded as an error, never left Running
#   release  a candidate the product owner approved becomes released
#   export-read, export-record  the air-gap export around its pack step (templates/airgap.py):
#            hand the released Version to the pack step, then record the archive it made
#
# Inputs arrive as environment variables set by the template (suite names and timeouts come
# from the rendered config, the Version name from the Sensor); nothing is shell or source.
# ruff: noqa: F821

import datetime
import json
import os
import re
import sys
import time

NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
TRIGGERS = ("created", "rerun", "schedule", "manual")
GROUP = "/apis/argo-delivery.io/v1alpha1/namespaces/"
WORKFLOWS = "/apis/argoproj.io/v1alpha1/namespaces/"
POLL_SECONDS = float(os.environ.get("AD_POLL_SECONDS", "2"))


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def env_json(name, default):
    text = os.environ.get(name, "")
    return json.loads(text) if text else default


class Versions:
    """Reads and writes Versions of one namespace; every status write is an update of the
    status subresource carrying the resourceVersion it read (a conflict is read again)."""

    def __init__(self, kube, namespace):
        self.kube = kube
        self.path = GROUP + namespace + "/versions"

    def get(self, name):
        status, document = self.kube.request("GET", f"{self.path}/{name}")
        if status == 404:
            raise StepError(f"Version {name} does not exist", EXIT_PERMANENT)
        if status != 200:
            raise StepError(f"cannot read Version {name}: {document.get('message', status)}",
                            EXIT_TRANSIENT if status >= 500 else EXIT_PERMANENT)
        return document

    def list(self):
        status, document = self.kube.request("GET", self.path)
        if status != 200:
            raise StepError(f"cannot list Versions: {document.get('message', status)}",
                            EXIT_TRANSIENT if status >= 500 else EXIT_PERMANENT)
        return document.get("items") or []

    def update_status(self, name, change, attempts=8):
        """Apply `change(version) -> new status or None (nothing to do)` until it sticks."""
        for _ in range(attempts):
            version = self.get(name)
            status = change(version)
            if status is None:
                return version, False
            body = {"apiVersion": version["apiVersion"], "kind": version["kind"],
                    "metadata": {"name": name, "namespace": version["metadata"]["namespace"],
                                 "resourceVersion": version["metadata"]["resourceVersion"]},
                    "spec": version["spec"], "status": status}
            code, document = self.kube.request("PUT", f"{self.path}/{name}/status", body)
            if code == 200:
                return document, True
            if code != 409:
                raise StepError(f"cannot write the status of Version {name}: "
                                f"{document.get('message', code)}", EXIT_PERMANENT)
            time.sleep(0.2)
        raise StepError(f"the status of Version {name} kept changing under us "
                        f"({attempts} conflicts)", EXIT_TRANSIENT)


def suites():
    """[{name, timeout}] of this stream, from the rendered config."""
    if os.environ.get("AD_SUITES"):
        return env_json("AD_SUITES", [])
    return env_json("AD_STREAM_SUITES", {}).get(os.environ.get("AD_STREAM", ""), [])


def pending_results():
    return [{"suite": s["name"], "phase": "Pending", "reason": "Pending",
             "message": "waiting for the suite to start"} for s in suites()]


def settle(version, status):
    return settled(status, version["spec"].get("approval"), now())


def facts(version):
    """What a suite sees of the Version (its environment): name, hash, components."""
    components = version["spec"]["components"]
    # `components` is a list, not a JSON string: Argo writes a list item field as JSON text,
    # but keeps the escaping of quotes inside a string field (AD_COMPONENTS would not parse)
    run = {"version": version["metadata"]["name"], "hash": version["spec"]["hash"],
           "components": [{k: c.get(k, "") for k in ("name", "repo", "commit")}
                          for c in components]}
    by_name = {c["name"]: c for c in components}
    for name in env_json("AD_COMPONENT_NAMES", []):
        found = by_name.get(name, {})
        run[f"repo-{name}"] = found.get("repo", "")
        run[f"commit-{name}"] = found.get("commit", "")
    return run


def start():
    stream = os.environ.get("AD_STREAM", "")
    if stream not in STREAMS:
        raise StepError(f"unknown stream {stream!r}; streams are {', '.join(STREAMS)}",
                        EXIT_PERMANENT)
    trigger = os.environ.get("AD_TRIGGER", "manual") or "manual"
    if trigger not in TRIGGERS:
        raise StepError(f"unknown trigger {trigger!r}", EXIT_PERMANENT)
    project, workflow = os.environ["AD_PROJECT"], os.environ["AD_WORKFLOW"]
    versions = Versions(Kube(), os.environ["AD_NAMESPACE"])
    name = os.environ.get("AD_VERSION", "")
    if name:
        if not NAME.match(name) or len(name) > 253:
            raise StepError(f"{name!r} is not a Version name", EXIT_PERMANENT)
        names = [name]
    elif stream == "nightly":
        count = int(os.environ.get("AD_COUNT", "1"))
        names = [v["metadata"]["name"] for v in pick_nightly(
            [v for v in versions.list() if v["spec"].get("project") == project], count)]
        log("picked", stream=stream, versions=names, limit=count)
    else:
        raise StepError(f"the {stream} stream needs a Version name", EXIT_PERMANENT)

    runs = []
    for name in names:
        request = {"created": "created", "schedule": "schedule", "manual": workflow}.get(trigger)

        def claim(version, name=name, request=request):
            if version["spec"].get("project") != project:
                raise StepError(f"Version {name} belongs to project "
                                f"{version['spec'].get('project')!r}, not {project!r}",
                                EXIT_PERMANENT)
            status = version.get("status") or {}
            current = (status.get("streams") or {}).get(stream) or {}
            if status.get("releasedAt"):
                log("skipped", version=name, why="released Versions are never re-run")
                return None
            if trigger == "rerun":
                request = ((version["metadata"].get("annotations") or {})
                           .get(RERUN_ANNOTATION.format(stream=stream), ""))
                if not request or current.get("request") == request:
                    log("skipped", version=name, why="this re-run request was already taken")
                    return None
            elif trigger == "created" and current:
                log("skipped", version=name, why=f"the {stream} stream already ran or runs "
                    f"({current.get('workflow')})")
                return None
            elif trigger == "schedule" and not nightly_due(version):
                log("skipped", version=name, why="no longer waiting for its nightly run")
                return None
            if current.get("workflow") == workflow:
                return None
            run = {"phase": "Running", "reason": "Running", "message": f"{len(suites())} suites",
                   "startedAt": now(), "workflow": workflow, "request": request,
                   "results": pending_results()}
            return settle(version, with_run(status, stream, run))

        version, claimed = versions.update_status(name, claim)
        current = ((version.get("status") or {}).get("streams") or {}).get(stream) or {}
        if claimed or current.get("workflow") == workflow:
            runs.append(facts(version))
            log("claimed", version=name, stream=stream, workflow=workflow)
    with open(os.environ.get("AD_OUTPUT", "/tmp/runs.json"), "w") as handle:
        json.dump(runs, handle, sort_keys=True)
    with open(os.environ.get("AD_STREAM_OUTPUT", "/tmp/stream"), "w") as handle:
        handle.write(stream)


def suite_nodes(workflow, prefix):
    """Each suite's node in this run (`<prefix>.suite-<name>`), by suite name."""
    by_name = {n.get("name"): n for n in ((workflow.get("status") or {}).get("nodes") or {}).values()}
    return {s["name"]: by_name.get(f"{prefix}.suite-{s['name']}") for s in suites()}


def _exit_code(node):
    code = ((node or {}).get("outputs") or {}).get("exitCode")
    try:
        return int(code) if code not in (None, "") else None
    except ValueError:
        return None


def result_of(suite, node, pending):
    """One suite's result from its node, as the Version's status records it."""
    result = {"suite": suite["name"]}
    phase = (node or {}).get("phase", "Pending")
    if node and node.get("startedAt"):
        result["startedAt"] = node["startedAt"]
    if phase in ("Pending", "Running", ""):
        message = (node or {}).get("message") or (
            "running" if phase == "Running" else "waiting for the suite to start")
        return {**result, "phase": phase or "Pending", "reason": phase or "Pending",
                "message": message}
    if phase in ("Skipped", "Omitted"):
        return {**result, "phase": "Error", "reason": "Error",
                "message": f"the suite was {phase.lower()}: {node.get('message', '')}".strip()}
    code = _exit_code(node)
    verdict, reason, message = classify_suite(phase, node.get("message"), code,
                                              pending.get(suite["name"]), suite["timeout"])
    result.update(phase=verdict, reason=reason, message=message)
    if code is not None:
        result["exitCode"] = code
    if node.get("finishedAt"):
        result["finishedAt"] = node["finishedAt"]
    return result


def watch():
    stream, name, workflow = os.environ["AD_STREAM"], os.environ["AD_VERSION"], os.environ["AD_WORKFLOW"]
    node_name = os.environ["AD_NODE"]
    prefix = node_name[:node_name.rfind(".")] if "." in node_name else node_name
    kube = Kube()
    versions = Versions(kube, os.environ["AD_NAMESPACE"])
    path = WORKFLOWS + os.environ["AD_NAMESPACE"] + "/workflows/" + workflow
    pending, written = {}, None
    while True:
        code, document = kube.request("GET", path)
        if code != 200:
            raise StepError(f"cannot read Workflow {workflow}: {document.get('message', code)}",
                            EXIT_TRANSIENT)
        nodes = suite_nodes(document, prefix)
        for suite, node in nodes.items():
            if node and node.get("phase") == "Pending" and node.get("message"):
                pending[suite] = node["message"]
        results = [result_of(s, nodes[s["name"]], pending) for s in suites()]
        done = all(r["phase"] in FINISHED for r in results)
        if results != written or done:
            def record(version, results=results, done=done):
                status = version.get("status") or {}
                current = dict((status.get("streams") or {}).get(stream) or {})
                if current.get("workflow") != workflow:
                    raise StepError(f"the {stream} run of {name} now belongs to "
                                    f"{current.get('workflow')}; not overwriting it",
                                    EXIT_PERMANENT)
                current["results"] = results
                if done:
                    phase, reason, message = stream_outcome(results)
                    current.update(phase=phase, reason=reason, message=message,
                                   finishedAt=now())
                runs = dict(status.get("streams") or {})
                runs[stream] = current
                return settle(version, {**status, "streams": runs})

            versions.update_status(name, record)
            written = results
            log("recorded", version=name, stream=stream, done=done,
                suites={r["suite"]: r["phase"] for r in results})
        if done:
            return
        time.sleep(POLL_SECONDS)


def finish():
    workflow = os.environ["AD_WORKFLOW"]
    failures = env_json("AD_FAILURES", []) or []
    if isinstance(failures, str):  # Argo quotes the JSON once more
        failures = json.loads(failures or "[]") or []
    why = "; ".join(f"{f.get('displayName')}: {f.get('message')}" for f in failures
                    if f.get("message"))[:2000]
    versions = Versions(Kube(), os.environ["AD_NAMESPACE"])
    for version in versions.list():
        for name, run in ((version.get("status") or {}).get("streams") or {}).items():
            if run.get("workflow") != workflow or run.get("phase") != "Running":
                continue

            def fail(version, name=name):
                status = version.get("status") or {}
                current = dict((status.get("streams") or {}).get(name) or {})
                if current.get("workflow") != workflow or current.get("phase") != "Running":
                    return None
                current["results"] = [
                    r if r.get("phase") in FINISHED else
                    {**r, "phase": "Error", "reason": "Error",
                     "message": "the stream's Workflow ended before the suite did"}
                    for r in current.get("results") or []]
                current.update(phase="Error", reason=REASON_WORKFLOW_FAILED, finishedAt=now(),
                               message=f"Workflow {workflow} ended "
                                       f"{os.environ.get('AD_WORKFLOW_STATUS', '')}: "
                                       f"{why or 'before the results were recorded'}")
                runs = dict(status.get("streams") or {})
                runs[name] = current
                return settle(version, {**status, "streams": runs})

            versions.update_status(version["metadata"]["name"], fail)
            log("recorded-error", version=version["metadata"]["name"], stream=name,
                workflow=workflow)


def release():
    name = os.environ.get("AD_VERSION", "")
    if not NAME.match(name):
        raise StepError(f"{name!r} is not a Version name", EXIT_PERMANENT)
    versions = Versions(Kube(), os.environ["AD_NAMESPACE"])

    def released(version):
        status = version.get("status") or {}
        if status.get("releasedAt"):
            log("already-released", version=name, at=status["releasedAt"])
            return None
        if not version["spec"].get("approval"):
            raise StepError(f"Version {name} has no approval", EXIT_PERMANENT)
        if stream_of(status) != "candidate":
            raise StepError(f"Version {name} is {stream_of(status)!r}, not a candidate",
                            EXIT_PERMANENT)
        return settle(version, {**status, "releasedAt": now()})

    version, changed = versions.update_status(name, released)
    if changed:
        log("released", version=name, approvedBy=version["spec"]["approval"]["approvedBy"])
        follow_release(versions.kube, os.environ["AD_NAMESPACE"], name)


def follow_release(kube, namespace, name):
    """Demo environments follow the latest release: each gets spec.version = the Version just
    released (its Sensor then redeploys it, without re-vending)."""
    path = f"/apis/argo-delivery.io/v1alpha1/namespaces/{namespace}/environments"
    status, body = kube.request("GET", path)
    if status != 200:
        raise StepError(f"LIST Environments in {namespace}: HTTP {status}: "
                        f"{body.get('message')}", EXIT_TRANSIENT)
    for environment in body.get("items") or []:
        spec, meta = environment.get("spec") or {}, environment["metadata"]
        if not spec.get("demo") or spec.get("version") == name or meta.get("deletionTimestamp"):
            continue
        status, answer = kube.merge_patch(f"{path}/{meta['name']}", {"spec": {"version": name}})
        if status != 200:
            raise StepError(f"demo Environment {meta['name']}: HTTP {status}: "
                            f"{answer.get('message')}", EXIT_TRANSIENT)
        log("demo-follows", environment=meta["name"], version=name,
            previous=spec.get("version"))


def export_read():
    """The export's first step: the released Version, as JSON for the pack step (which runs
    with no token), and status.export = Packing."""
    name = os.environ.get("AD_VERSION", "")
    if not NAME.match(name):
        raise StepError(f"{name!r} is not a Version name", EXIT_PERMANENT)
    versions = Versions(Kube(), os.environ["AD_NAMESPACE"])

    def packing(version):
        status = version.get("status") or {}
        if not status.get("releasedAt"):
            raise StepError(f"Version {name} is {stream_of(status) or 'new'}, not released: only "
                            "a released Version is exported", EXIT_PERMANENT)
        export = {"phase": "Packing", "workflow": os.environ.get("AD_WORKFLOW", ""),
                  "startedAt": now()}
        return {**status, "export": export}

    version, _ = versions.update_status(name, packing)
    document = {k: version[k] for k in ("apiVersion", "kind", "spec", "status")}
    document["metadata"] = {k: version["metadata"][k] for k in ("name", "namespace")}
    with open(os.environ["AD_OUTPUT"], "w") as out:
        json.dump(document, out, sort_keys=True)
    log("export-started", version=name)


def pack_summary(kube):
    """The pack step's summary output ({sha256, size, images, ...}), read from this Workflow:
    a parameter could not carry it, since a pack pod that never ran has no outputs to name."""
    path = f"{WORKFLOWS}{os.environ['AD_NAMESPACE']}/workflows/{os.environ['AD_WORKFLOW']}"
    status, workflow = kube.request("GET", path)
    if status != 200:
        raise StepError(f"cannot read Workflow {os.environ['AD_WORKFLOW']}: "
                        f"{workflow.get('message', status)}", EXIT_TRANSIENT)
    nodes = [n for n in ((workflow.get("status") or {}).get("nodes") or {}).values()
             if n.get("displayName") == "pack" and n.get("phase") == "Succeeded"]
    for node in sorted(nodes, key=lambda n: n.get("type") != "Retry"):
        for parameter in (node.get("outputs") or {}).get("parameters") or []:
            if parameter.get("name") == "summary" and parameter.get("value"):
                return json.loads(parameter["value"])
    return {}


def export_record():
    """The export's last step: what the pack step made (or why it failed) in status.export."""
    name = os.environ.get("AD_VERSION", "")
    phase = os.environ.get("AD_PACK_PHASE", "")
    versions = Versions(Kube(), os.environ["AD_NAMESPACE"])
    summary = pack_summary(versions.kube) if phase == "Succeeded" else {}
    ok = bool(summary.get("sha256"))

    def record(version):
        status = version.get("status") or {}
        export = {**(status.get("export") or {}), "phase": "Succeeded" if ok else "Failed",
                  "finishedAt": now()}
        if ok:
            artifact = {"key": os.environ["AD_ARTIFACT_KEY"]}
            repository = env_json("AD_ARTIFACT_REPOSITORY_REF", None)
            if repository:
                artifact["repositoryRef"] = repository
            export.update(artifact=artifact, sha256=summary["sha256"], size=summary["size"],
                          images=summary["images"])
            export.pop("message", None)
        else:
            export["message"] = (f"the pack step ended {phase or 'without a phase'}; see the "
                                 f"logs of Workflow {export.get('workflow') or '?'}")
        return {**status, "export": export}

    versions.update_status(name, record)
    if not ok:
        raise StepError(f"the export of Version {name} failed (pack step: {phase})",
                        EXIT_PERMANENT)
    log("exported", version=name, sha256=summary["sha256"], size=summary["size"])


if __name__ == "__main__":
    modes = {"start": start, "watch": watch, "finish": finish, "release": release,
             "export-read": export_read, "export-record": export_record}
    mode = os.environ.get("AD_MODE", "")
    if mode not in modes:
        log("failed", message=f"AD_MODE must be one of {', '.join(modes)}, found {mode!r}")
        sys.exit(EXIT_PERMANENT)
    try:
        modes[mode]()
    except StepError as exc:
        log("failed", message=str(exc))
        sys.exit(exc.exit_code)
