# Environment steps (flows F5-F7): vend, deploy, destroy, reap.
#
# One script, several modes (AD_MODE), each a step of vend-environment, destroy-environment or
# the reaper. Standard library only; steplib (Kube, StepError, log), envmodel (names, the
# objects a vend creates) and expiry (when an Environment expires) are prepended. Every tool
# runs as an argv list (subprocess, never a shell string): variables reach Terraform as a
# tfvars JSON file.
# ruff: noqa: F821
import base64
import json
import os
import shutil
import subprocess
import sys
import urllib.parse

SA_TOKEN = SA_DIR + "/token"
SA_CA = SA_DIR + "/ca.crt"
MODULE_DIR = "/scratch/module"
ROOT_DIR = "/scratch/root"
TFVARS = "argo-delivery.tfvars.json"
BACKEND_FILE = "zz_argo_delivery_backend.tf"
TAIL_LINES = 25
OUT = os.environ.get("AD_OUTPUT_DIR", "/tmp")  # where output parameters are written
# The state lock (the backend's Lease): its lock information, and the pod names (the
# hostname in its `Who`) of our own vend and destroy steps: Workflows of the templates
# vend-environment and destroy-environment (templates/vend.py VEND, DESTROY).
LOCK_INFO_ANNOTATION = "app.terraform.io/lock-info"
OUR_LOCK_HOLDERS = ("vend-environment-", "destroy-environment-")


def env(name, default=None):
    value = os.environ.get(name, default)
    if value is None:
        raise StepError(f"the step's environment has no {name}", EXIT_PERMANENT)
    return value


def write(path, text, mode=0o644):
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)
    os.chmod(path, mode)


class Environments:
    """The Environment this workflow is about, read and written through the API server."""

    def __init__(self, kube, namespace, name):
        self.kube, self.namespace, self.name = kube, namespace, name
        self.path = environment_path(namespace, name)

    def get(self):
        status, body = self.kube.request("GET", self.path)
        if status == 404:
            return None
        if status != 200:
            raise StepError(f"GET Environment {self.namespace}/{self.name}: HTTP {status}: "
                            f"{body.get('message')}", EXIT_TRANSIENT)
        return body

    def set_status(self, change, environment=None):
        """Merge `change` into status (conditions given whole), retrying on conflicts."""
        for _ in range(8):
            current = environment or self.get()
            environment = None
            if current is None:
                return None
            status = dict(current.get("status") or {})
            status.update(change)
            body = {"apiVersion": current["apiVersion"], "kind": current["kind"],
                    "metadata": {"name": self.name, "namespace": self.namespace,
                                 "resourceVersion": current["metadata"]["resourceVersion"]},
                    "spec": current["spec"], "status": status}
            code, answer = self.kube.request("PUT", self.path + "/status", body)
            if code == 200:
                return answer
            if code == 404:
                return None
            if code != 409:
                raise StepError(f"status of Environment {self.namespace}/{self.name}: HTTP "
                                f"{code}: {answer.get('message')}", EXIT_TRANSIENT)
        raise StepError(f"status of Environment {self.namespace}/{self.name}: conflicts kept "
                        "coming", EXIT_TRANSIENT)

    def condition(self, kind, status, reason, message, extra=None):
        current = self.get()
        if current is None:
            return None
        conditions = with_condition((current.get("status") or {}).get("conditions"), kind,
                                    status, reason, message)
        return self.set_status({"conditions": conditions, **(extra or {})}, current)

    def fail(self, reason, message):
        log("environment-failed", environment=self.name, reason=reason, message=message)
        current = self.get()
        if current is None:
            return None
        conditions = with_condition((current.get("status") or {}).get("conditions"), FAILED,
                                    "True", reason, message)
        conditions = with_condition(conditions, READY, "False", reason, message)
        return self.set_status({"phase": "Failed", "message": message,
                                "conditions": conditions}, current)

    def finalizers(self, add):
        """Add (True) or remove (False) our finalizer, with the resourceVersion read."""
        for _ in range(8):
            current = self.get()
            if current is None:
                return None
            present = (current["metadata"].get("finalizers") or [])
            if (FINALIZER in present) == add:
                return current
            wanted = present + [FINALIZER] if add else [f for f in present if f != FINALIZER]
            code, answer = self.kube.merge_patch(self.path, {"metadata": {
                "finalizers": wanted, "resourceVersion": current["metadata"]["resourceVersion"]}})
            if code == 200:
                log("finalizer-added" if add else "finalizer-removed", environment=self.name)
                return answer
            if code == 404:
                return None
            if code != 409:
                raise StepError(f"finalizer of Environment {self.namespace}/{self.name}: HTTP "
                                f"{code}: {answer.get('message')}", EXIT_PERMANENT)
        raise StepError("finalizer: conflicts kept coming", EXIT_TRANSIENT)


def parse_module(source):
    """git::REPO//PATH?ref=REF -> (repo, path, ref)."""
    if not source.startswith("git::"):
        raise StepError(f"module {source!r}: only git::REPO//PATH?ref=REF sources are fetched",
                        EXIT_PERMANENT)
    rest = source[len("git::"):]
    rest, _, query = rest.partition("?")
    ref = urllib.parse.parse_qs(query).get("ref", ["HEAD"])[0]
    scheme, sep, after = rest.partition("://")
    repo_tail, _, path = after.partition("//") if sep else rest.partition("//")
    repo = f"{scheme}{sep}{repo_tail}" if sep else repo_tail
    return repo, path.strip("/"), ref


def run(argv, cwd=None, extra_env=None, what=None, timeout=None):
    """Run a tool, streaming its output to the log; StepError with the output's tail on failure."""
    log("run", argv=argv[:3] + (["..."] if len(argv) > 3 else []), cwd=cwd)
    environment = dict(os.environ, **(extra_env or {}))
    process = subprocess.Popen(argv, cwd=cwd, env=environment, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    tail = []
    for line in process.stdout:
        sys.stdout.write(line)
        tail = (tail + [line.rstrip()])[-TAIL_LINES:]
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise StepError(f"{what or argv[0]} did not finish in {timeout} s", EXIT_TRANSIENT) from None
    sys.stdout.flush()
    if code != 0:
        detail = "\n".join(line for line in tail if line.strip())
        raise StepError(f"{what or ' '.join(argv[:2])} failed (exit {code}):\n{detail}", code)
    return "\n".join(tail)


def git_checkout(repo, ref, directory):
    """The tree of `repo` at `ref` (a branch, tag or commit) in `directory`, history depth 1."""
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    run(["git", "init", "-q", directory], what="git init")
    run(["git", "-C", directory, "fetch", "-q", "--depth", "1", repo, ref],
        what=f"git fetch {repo} {ref}", timeout=300)
    run(["git", "-C", directory, "checkout", "-q", "FETCH_HEAD"], what="git checkout")
    return subprocess.run(["git", "-C", directory, "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()


def version_facts(kube, namespace, name):
    status, version = kube.request("GET", f"{API}/namespaces/{namespace}/versions/{name}")
    if status == 404:
        return None
    if status != 200:
        raise StepError(f"GET Version {namespace}/{name}: HTTP {status}: "
                        f"{version.get('message')}", EXIT_TRANSIENT)
    return version


def tfvars(environment, version_hash):
    """Project defaults < the Environment's variables < the facts nobody may override."""
    spec = environment["spec"]
    meta = environment["metadata"]
    values = dict(json.loads(os.environ.get("AD_DEFAULT_VARIABLES", "{}")))
    values.update((spec.get("infrastructure") or {}).get("variables") or {})
    values.update({"name": meta["name"], "namespace": meta["namespace"],
                   "project": spec["project"], "version_name": spec.get("version", ""),
                   "version_hash": version_hash, "owner": spec["owner"]})
    return values


# ---------------------------------------------------------------------------- vend: prepare
def prepare(kube, envs):
    """Check what admission could not, take the finalizer, say what the vend will do."""
    out = {"skip": "true", "apply": "false", "tfvars": "{}", "components": "[]"}
    environment = envs.get()
    try:
        if environment is None:
            log("gone", environment=envs.name)
            return out
        if is_deleting(environment):
            log("deleting", environment=envs.name, detail="the destroy takes it from here")
            return out
        spec, meta = environment["spec"], environment["metadata"]
        if not spec.get("version"):
            envs.set_status({"phase": "Pending", "workflow": env("AD_WORKFLOW"),
                             "message": f"waiting for the first released Version of project "
                                        f"{spec['project']}"})
            log("waiting-for-release", environment=envs.name)
            return out
        module = (spec.get("infrastructure") or {}).get("module")
        if module and module != env("AD_MODULE"):
            envs.fail("ModuleNotAllowed", f"spec.infrastructure.module {module!r}: environments "
                      f"of project {spec['project']} are vended from its own module only "
                      f"({env('AD_MODULE')})")
            raise StepError("module not allowed", EXIT_PERMANENT)
        version = version_facts(kube, envs.namespace, spec["version"])
        problem = None
        if version is None:
            problem = ("VersionNotFound", f"Version {spec['version']} does not exist in namespace "
                                          f"{envs.namespace}")
        elif version["spec"].get("project") != spec["project"]:
            problem = ("VersionOfAnotherProject", f"Version {spec['version']} belongs to project "
                       f"{version['spec'].get('project')}, not {spec['project']}")
        elif (version.get("status") or {}).get("stream") == "failed":
            problem = ("VersionFailed", f"Version {spec['version']} failed its tests: it is not "
                                        "deployed")
        default_ttl = parse_go_duration(env("AD_DEFAULT_TTL"))
        max_ttl = parse_go_duration(env("AD_MAX_TTL"))
        expiry = expires_at(environment, default_ttl)
        created = parse_time(meta["creationTimestamp"])
        if problem is None and expiry is not None and expiry > created + max_ttl:
            problem = ("ExpiryBeyondMaxTTL", f"it would expire at {now_text(expiry)}, later than "
                       f"its creation plus the project's maxTTL {env('AD_MAX_TTL')} "
                       f"({now_text(created + max_ttl)})")
        if problem:
            envs.fail(*problem)
            raise StepError(problem[1], EXIT_PERMANENT)
        environment = envs.finalizers(add=True)
        if environment is None or is_deleting(environment):
            return out
        ready = condition(environment, READY)
        deploy_only = bool(spec.get("demo") and ready and ready.get("status") == "True"
                           and (environment.get("status") or {}).get("outputsSecret"))
        phase = "Deploying" if deploy_only else "Provisioning"
        change = {"phase": phase, "workflow": env("AD_WORKFLOW"),
                  "message": (f"deploying Version {spec['version']}" if deploy_only
                              else f"vending with module {env('AD_MODULE')}")}
        if expiry is not None:
            change["expiresAt"] = now_text(expiry)
        conditions = with_condition((environment.get("status") or {}).get("conditions"), READY,
                                    "False", phase, change["message"])
        conditions = [c for c in conditions if c["type"] != FAILED]
        envs.set_status({**change, "conditions": conditions}, environment)
        deploy_paths = json.loads(env("AD_DEPLOY_PATHS"))
        components = [{"name": c["name"], "repo": c["repo"], "commit": c["commit"],
                       "deployPath": deploy_paths.get(c["name"], "deploy")}
                      for c in version["spec"]["components"]]
        out.update(skip="false", apply="false" if deploy_only else "true",
                   tfvars=json.dumps(tfvars(environment, version["spec"]["hash"]), sort_keys=True),
                   components=json.dumps(components, sort_keys=True))
        log("prepared", environment=envs.name, version=spec["version"], phase=phase,
            expires=change.get("expiresAt"))
        return out
    finally:
        for key, value in out.items():
            write(f"{OUT}/out-{key}", value)


# ------------------------------------------------------------------------------ clone
def clone():
    """Fetch the project's module (git::REPO//PATH?ref=REF) into the output artifact."""
    repo, path, ref = parse_module(env("AD_MODULE"))
    commit = git_checkout(repo, ref, "/tmp/checkout")
    source = os.path.join("/tmp/checkout", path) if path else "/tmp/checkout"
    if not os.path.isdir(source):
        raise StepError(f"module {env('AD_MODULE')}: no directory {path!r} in {repo} at {ref}",
                        EXIT_PERMANENT)
    shutil.rmtree("/tmp/module", ignore_errors=True)
    shutil.copytree(source, "/tmp/module", ignore=shutil.ignore_patterns(".git", ".terraform"))
    write("/tmp/module-commit", commit)
    log("module", repo=repo, path=path, ref=ref, commit=commit)


# ---------------------------------------------------------------------------- terraform
def backend_kubeconfig():
    """A kubeconfig for the state backend: the step's own token, by file (no secret in it)."""
    path = "/scratch/backend.kubeconfig"
    server = Kube().server
    write(path, json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "step",
        "clusters": [{"name": "api", "cluster": {"server": server,
                                                 "certificate-authority": SA_CA}}],
        "users": [{"name": "step", "user": {"tokenFile": SA_TOKEN}}],
        "contexts": [{"name": "step", "context": {"cluster": "api", "user": "step",
                                                  "namespace": env("AD_NAMESPACE")}}]}), 0o600)
    return path


def terraform_root(environment_name, values):
    """/scratch/root: the module, our backend file and the variables file; init it."""
    shutil.rmtree(ROOT_DIR, ignore_errors=True)
    shutil.copytree(MODULE_DIR, ROOT_DIR)
    write(os.path.join(ROOT_DIR, BACKEND_FILE), 'terraform {\n  backend "kubernetes" {}\n}\n')
    write(os.path.join(ROOT_DIR, TFVARS), json.dumps(values, indent=2, sort_keys=True), 0o600)
    engine = env("AD_ENGINE")
    extra = {"KUBE_CONFIG_PATH": backend_kubeconfig(), "TF_IN_AUTOMATION": "1", "TF_INPUT": "0",
             "TF_DATA_DIR": "/scratch/data", "HOME": "/tmp"}
    run([engine, "init", "-input=false", "-no-color",
         f"-backend-config=secret_suffix={environment_name}",
         f"-backend-config=namespace={env('AD_NAMESPACE')}",
         f"-backend-config=config_path={extra['KUBE_CONFIG_PATH']}"],
        cwd=ROOT_DIR, extra_env=extra, what=f"{engine} init")
    return engine, extra


def apply(kube, envs):
    environment = envs.get()
    if environment is None or is_deleting(environment):
        log("skip-apply", environment=envs.name, why="gone or being deleted")
        return
    timeout = int(env("AD_APPLY_TIMEOUT_SECONDS"))
    try:
        engine, extra = terraform_root(envs.name, json.loads(env("AD_TFVARS")))
        break_stale_lock(kube, envs, engine, extra)
        run([engine, "apply", "-input=false", "-no-color", "-auto-approve", "-lock-timeout=10m",
             f"-var-file={TFVARS}"], cwd=ROOT_DIR, extra_env=extra, what=f"{engine} apply",
            timeout=timeout)
        outputs = json.loads(subprocess.run(
            [engine, "output", "-json", "-no-color"], cwd=ROOT_DIR, env=dict(os.environ, **extra),
            capture_output=True, text=True, check=True).stdout or "{}")
    except StepError as exc:
        envs.fail("ApplyFailed", str(exc))
        raise
    environment = envs.get()
    if environment is None:
        return
    put(kube, "/api/v1", "secrets", outputs_secret_manifest(environment, outputs))
    for manifest in reader_manifests(environment):
        put(kube, "/apis/rbac.authorization.k8s.io/v1",
            "roles" if manifest["kind"] == "Role" else "rolebindings", manifest)
    envs.set_status({"phase": "Deploying", "outputsSecret": outputs_secret(envs.name),
                     "outputs": public_outputs(outputs),
                     "message": f"{len(outputs)} output(s); deploying"}, environment)
    log("applied", environment=envs.name, outputs=sorted(outputs))


def break_stale_lock(kube, envs, engine, extra):
    """Release a state lock left by one of our own steps that was killed mid-apply/destroy.

    Every vend and destroy of an Environment holds its Argo mutex, and their steps run one
    after the other: while this step runs, no other step of ours can hold the lock, so a lock
    held by one of our pods is a dead one's (its pod deleted, OOM-killed, its node gone), and
    `-lock-timeout` would only wait for it in vain. A lock held by anybody else (an operator's
    `tofu` by hand) is left alone: the apply waits for it, then fails naming the holder.
    """
    path = (f"/apis/coordination.k8s.io/v1/namespaces/{envs.namespace}/leases/"
            f"{state_lease(envs.name)}")
    code, lease = kube.request("GET", path)
    if code == 404:
        return None
    if code != 200:
        raise StepError(f"GET Lease {envs.namespace}/{state_lease(envs.name)}: HTTP {code}: "
                        f"{lease.get('message')}", EXIT_TRANSIENT)
    holder = (lease.get("spec") or {}).get("holderIdentity")
    if not holder:
        return None
    try:
        info = json.loads((lease["metadata"].get("annotations") or {}).get(LOCK_INFO_ANNOTATION)
                          or "{}")
    except ValueError:
        info = {}
    who = str(info.get("Who") or "")
    facts = {"environment": envs.name, "lock": holder, "who": who,
             "operation": info.get("Operation"), "created": info.get("Created")}
    if not who.rpartition("@")[2].startswith(OUR_LOCK_HOLDERS):
        log("state-locked", **facts, detail="held by somebody else: waiting for it")
        return None
    log("stale-lock", **facts, detail="held by a step of ours that is gone: releasing it")
    run([engine, "force-unlock", "-force", holder], cwd=ROOT_DIR, extra_env=extra,
        what=f"{engine} force-unlock")
    return holder


def put(kube, api, plural, manifest):
    """Create `manifest`, or replace it when it exists."""
    meta = manifest["metadata"]
    base = f"{api}/namespaces/{meta['namespace']}/{plural}"
    code, answer = kube.request("POST", base, manifest)
    if code == 409:
        code, current = kube.request("GET", f"{base}/{meta['name']}")
        if code == 200:
            manifest = dict(manifest, metadata=dict(
                meta, resourceVersion=current["metadata"]["resourceVersion"]))
            code, answer = kube.request("PUT", f"{base}/{meta['name']}", manifest)
    if code not in (200, 201):
        raise StepError(f"{manifest['kind']} {meta['namespace']}/{meta['name']}: HTTP {code}: "
                        f"{answer.get('message')}", EXIT_TRANSIENT)


# ------------------------------------------------------------------------------ deploy
def deploy(kube, envs):
    """Apply each component's deploy manifests, at the Version's exact commits, onto the
    Environment with its kubeconfig output (kubectl apply --server-side; -k for a kustomization)."""
    environment = envs.get()
    if environment is None or is_deleting(environment):
        log("skip-deploy", environment=envs.name, why="gone or being deleted")
        return
    secret = (environment.get("status") or {}).get("outputsSecret") or outputs_secret(envs.name)
    code, body = kube.request("GET", f"/api/v1/namespaces/{envs.namespace}/secrets/{secret}")
    if code != 200 or KUBECONFIG_KEY not in (body.get("data") or {}):
        envs.fail("NoKubeconfig", f"Secret {secret} has no {KUBECONFIG_KEY}: the module must "
                                  f"output {KUBECONFIG_KEY} (HTTP {code})")
        raise StepError("no kubeconfig output", EXIT_PERMANENT)
    write("/scratch/env.kubeconfig", base64.b64decode(body["data"][KUBECONFIG_KEY]).decode(), 0o600)
    version = environment["spec"]["version"]
    try:
        for component in json.loads(env("AD_COMPONENTS")):
            checkout = f"/scratch/src/{component['name']}"
            git_checkout(component["repo"], component["commit"], checkout)
            path = os.path.join(checkout, component["deployPath"])
            if not os.path.isdir(path):
                raise StepError(f"component {component['name']} has no {component['deployPath']} "
                                f"at {component['commit'][:12]}", EXIT_PERMANENT)
            kustomized = any(os.path.exists(os.path.join(path, name)) for name in
                             ("kustomization.yaml", "kustomization.yml", "Kustomization"))
            run(["kubectl", "--kubeconfig", "/scratch/env.kubeconfig", "apply", "--server-side",
                 "--field-manager=argo-delivery", "--force-conflicts",
                 *(["-k", path] if kustomized else ["-R", "-f", path])],
                what=f"deploy of {component['name']} at {component['commit'][:12]}", timeout=600)
            log("deployed", environment=envs.name, component=component["name"],
                commit=component["commit"])
    except StepError as exc:
        envs.fail("DeployFailed", str(exc))
        raise
    current = envs.get()
    if current is None:
        return
    conditions = with_condition((current.get("status") or {}).get("conditions"), READY, "True",
                                "Deployed", f"Version {version} deployed")
    conditions = [c for c in conditions if c["type"] != FAILED]
    envs.set_status({"phase": "Ready", "deployedVersion": version, "conditions": conditions,
                     "message": f"Version {version} deployed"}, current)
    log("ready", environment=envs.name, version=version)


# ------------------------------------------------------------------------------ destroy
def destroy_start(kube, envs):
    out = {"skip": "true", "tfvars": "{}", "labels": "{}"}
    try:
        environment = envs.get()
        if environment is None or not has_finalizer(environment):
            log("nothing-to-destroy", environment=envs.name)
            return out
        spec = environment["spec"]
        version = version_facts(kube, envs.namespace, spec["version"]) if spec.get("version") \
            else None
        conditions = with_condition((environment.get("status") or {}).get("conditions"), READY,
                                    "False", "Destroying", "destroying")
        conditions = [c for c in conditions if c["type"] != FAILED]  # a retry starts afresh
        envs.set_status({"phase": "Destroying", "workflow": env("AD_WORKFLOW"),
                         "message": "destroying", "conditions": conditions}, environment)
        out.update(skip="false", tfvars=json.dumps(tfvars(
            environment, version["spec"]["hash"] if version else ""), sort_keys=True),
            labels=json.dumps(environment["metadata"].get("labels") or {}, sort_keys=True))
        return out
    finally:
        for key, value in out.items():
            write(f"{OUT}/out-{key}", value)


def destroy(kube, envs):
    namespace = envs.namespace
    secret_path = f"/api/v1/namespaces/{namespace}/secrets/{state_secret(envs.name)}"
    code, _ = kube.request("GET", secret_path)
    try:
        if code == 200:
            engine, extra = terraform_root(envs.name, json.loads(env("AD_TFVARS")))
            break_stale_lock(kube, envs, engine, extra)
            run([engine, "destroy", "-input=false", "-no-color", "-auto-approve",
                 "-lock-timeout=10m", f"-var-file={TFVARS}"], cwd=ROOT_DIR, extra_env=extra,
                what=f"{engine} destroy", timeout=int(env("AD_APPLY_TIMEOUT_SECONDS")))
        else:
            log("no-state", environment=envs.name, detail="never applied: nothing to destroy")
    except StepError as exc:
        envs.fail("DestroyFailed", str(exc))
        raise
    # the backend leaves the default workspace's Secret and Lease behind: ours to remove
    for path in (secret_path,
                 f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{state_lease(envs.name)}",
                 f"/api/v1/namespaces/{namespace}/secrets/{outputs_secret(envs.name)}"):
        code, answer = kube.request("DELETE", path)
        if code not in (200, 202, 404):
            raise StepError(f"DELETE {path}: HTTP {code}: {answer.get('message')}", EXIT_TRANSIENT)
    log("destroyed", environment=envs.name)


def release(kube, envs):
    """Everything is gone: the finalizer goes, and the API server removes the Environment."""
    envs.finalizers(add=False)


def finish(kube, envs, flow):
    """Exit handler: a failed vend or destroy leaves a Failed Environment (finalizer kept)."""
    status = env("AD_WORKFLOW_STATUS")
    if status == "Succeeded":
        return
    current = envs.get()
    if current is None:
        return
    failures = os.environ.get("AD_FAILURES") or "[]"
    try:
        messages = [f"{item.get('displayName')}: {item.get('message')}"
                    for item in json.loads(failures) if item.get("message")]
    except ValueError:
        messages = []
    already = condition(current, FAILED)
    if (current.get("status") or {}).get("phase") == "Failed" and already \
            and already.get("status") == "True":
        return  # a step said why, in its own words
    reason = "DestroyFailed" if flow == "destroy" else "VendFailed"
    envs.fail(reason, f"{flow} workflow {env('AD_WORKFLOW')} {status}: "
                      + ("; ".join(messages) or "see the workflow's logs"))


# ------------------------------------------------------------------------------ reaper
def reap(kube):
    """One LIST of the namespace's Environments; delete the expired, warn the expiring, retry
    the failed destroys; `AD_DRY_RUN=true` only reports."""
    namespace = env("AD_NAMESPACE")
    dry_run = env("AD_DRY_RUN", "false") == "true"
    code, body = kube.request("GET", environment_path(namespace))
    if code != 200:
        raise StepError(f"LIST Environments in {namespace}: HTTP {code}: {body.get('message')}",
                        EXIT_TRANSIENT)
    items = body.get("items") or []
    now = datetime.datetime.now(datetime.timezone.utc)
    decision = decide(items, now, {namespace: parse_go_duration(env("AD_DEFAULT_TTL"))},
                      parse_go_duration(env("AD_EXPIRY_WARNING")))
    by_name = {item["metadata"]["name"]: item for item in items}
    retry = [item for item in items if is_deleting(item) and has_finalizer(item)
             and (condition(item, FAILED) or {}).get("status") == "True"]
    # requested, but no vend ever took it (its event was lost, say before the Sensor subscribed)
    unclaimed = [item for item in items if not is_deleting(item)
                 and not (item.get("status") or {}).get("phase")
                 and (now - parse_time(item["metadata"]["creationTimestamp"])).total_seconds()
                 > int(os.environ.get("AD_UNCLAIMED_SECONDS", UNCLAIMED_SECONDS))]
    report = {"dryRun": dry_run, "environments": len(items),
              "delete": [name for _, name, _ in decision["delete"]],
              "warn": [name for _, name, _ in decision["warn"]],
              "retryDestroy": [item["metadata"]["name"] for item in retry],
              "retryVend": [item["metadata"]["name"] for item in unclaimed],
              "invalid": [{"name": name, "why": why} for _, name, why in decision["invalid"]],
              "keep": decision["keep"]}
    log("reaper-decision", **report)
    numbers = state_numbers(items, now, parse_go_duration(env("AD_DEFAULT_TTL")), PHASES)
    numbers.update({f"action_{a}": 0 for a in REAPER_ACTIONS})
    if dry_run:
        write(f"{OUT}/report.json", json.dumps(report, sort_keys=True))
        write_metrics(numbers)
        return
    for _, name, expiry in decision["delete"]:
        code, answer = kube.request("DELETE", environment_path(namespace, name))
        numbers["action_deleted"] += code in (200, 202)
        log("reaped" if code in (200, 202) else "reap-failed", environment=name,
            expired=now_text(expiry), code=code, message=answer.get("message"))
    for _, name, expiry in decision["warn"]:
        item = by_name[name]
        previous = condition(item, EXPIRING_SOON)
        message = f"expires at {now_text(expiry)}: argo-delivery envs extend {name} --ttl ..."
        if previous and previous.get("status") == "True" and previous.get("message") == message:
            continue
        envs = Environments(kube, namespace, name)
        envs.condition(EXPIRING_SOON, "True", "WithinWarningWindow", message)
        code, answer = kube.request("POST", f"/api/v1/namespaces/{namespace}/events", {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"generateName": f"{name}-", "namespace": namespace},
            "involvedObject": {"apiVersion": f"{GROUP}/v1alpha1", "kind": "Environment",
                               "name": name, "namespace": namespace,
                               "uid": item["metadata"]["uid"]},
            "reason": "ExpiringSoon", "message": message, "type": "Warning",
            "source": {"component": "argo-delivery-reaper"},
            "firstTimestamp": now_text(now), "lastTimestamp": now_text(now), "count": 1})
        numbers["action_warned"] += 1
        log("warned", environment=name, expires=now_text(expiry), http=code)
    for items_, annotation, event, action in (
            (retry, RETRY_DESTROY_ANNOTATION, "destroy-retried", "retried_destroy"),
            (unclaimed, RETRY_VEND_ANNOTATION, "vend-retried", "retried_vend")):
        for item in items_:
            name = item["metadata"]["name"]
            code, answer = kube.merge_patch(environment_path(namespace, name), {"metadata": {
                "annotations": {annotation: now_text(now)}}})
            numbers[f"action_{action}"] += code == 200
            log(event if code == 200 else "retry-failed", environment=name, code=code,
                message=answer.get("message"))
    write(f"{OUT}/report.json", json.dumps(report, sort_keys=True))
    write_metrics(numbers)


# What the reaper counts (argo_delivery/metrics.py REAPER_ACTIONS: the template's metrics read
# one output parameter per number, from OUT/metric-<key with dashes>).
REAPER_ACTIONS = ("deleted", "warned", "retried_destroy", "retried_vend")


def write_metrics(numbers):
    for key, value in numbers.items():
        write(f"{OUT}/metric-{key.replace('_', '-')}", str(int(value)))


def main():
    mode = env("AD_MODE")
    if mode == "clone":
        clone()
        return
    kube = Kube()
    if mode == "reap":
        reap(kube)
        return
    envs = Environments(kube, env("AD_NAMESPACE"), env("AD_ENVIRONMENT"))
    steps = {"prepare": prepare, "apply": apply, "deploy": deploy,
             "destroy-start": destroy_start, "destroy": destroy, "release": release,
             "vend-finish": lambda k, e: finish(k, e, "vend"),
             "destroy-finish": lambda k, e: finish(k, e, "destroy")}
    if mode not in steps:
        raise StepError(f"unknown AD_MODE {mode!r}", EXIT_PERMANENT)
    steps[mode](kube, envs)


if __name__ == "__main__":
    try:
        main()
    except StepError as exc:
        log("error", message=str(exc), exit_code=exc.exit_code)
        print(str(exc), file=sys.stderr)
        sys.exit(exc.exit_code if 0 < exc.exit_code < 256 else 1)
