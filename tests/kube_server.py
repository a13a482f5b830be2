"""A real kube-apiserver + etcd for the test suite.

`KubeServer` starts Debian's `etcd` and `.cache/bin/kube-apiserver` (built by `make tools`
from tools/kube-apiserver) on free loopback ports, installs Argo Workflows' full CRDs,
Argo Events' CRDs and argo-delivery's own CRDs, and offers small helpers on top of the REST
API (server-side apply, TokenRequest, raw requests).

The `kube` session fixture below wraps it. A conftest.py makes it available by importing
it, plus the hook that prints the servers' log tails when a test failed (see
tests/apiserver/conftest.py):

    from tests.kube_server import kube, kube_terminal_summary  # noqa: F401

    def pytest_terminal_summary(terminalreporter, exitstatus, config):
        kube_terminal_summary(terminalreporter, config)

Each conftest.py that imports `kube` defines its own session fixture, i.e. its own server:
import it in one conftest.py above every folder that needs it.

Identity: the admin authenticates with a static bearer token (--token-auth-file) as user
"admin" in group system:masters; the people of `PEOPLE` (users in the default platform's member
groups) have static tokens too (`user_token`, `write_kubeconfig`); service accounts get bound
tokens via the TokenRequest API.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
import urllib3
import yaml

from argo_delivery.bundle import APPLY_ORDER as BUNDLE_APPLY_ORDER
from tests.support import go_module_dir, pinned_version

REPO_ROOT = Path(__file__).resolve().parents[1]
APISERVER_BIN = REPO_ROOT / ".cache" / "bin" / "kube-apiserver"

ARGO_WORKFLOWS_MODULE = "github.com/argoproj/argo-workflows/v4"
ARGO_EVENTS_MODULE = "github.com/argoproj/argo-events"
PROMETHEUS_OPERATOR_MODULE = "github.com/prometheus-operator/prometheus-operator"
VELERO_MODULE = "github.com/vmware-tanzu/velero"

SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
READY_TIMEOUT = 90.0
CRD_TIMEOUT = 60.0
LOG_TAIL_LINES = 200
CRD_PARALLEL = int(os.environ.get("KUBE_TEST_CRD_PARALLEL", "3"))

# People with static tokens: user -> groups (the default platform's member groups). A test binds
# Roles to them (or to their groups) in its own namespaces; nothing is bound here.
PEOPLE = {
    "ada": ("acme:product-owners",),       # core-team's product owner
    "bob": ("acme:core-developers",),      # core-team's developer
    "nia": ("northwind:engineers",),       # northwind's developer
    "eve": (),                             # authenticated, in no project group
}

# Server-side apply order: the bundle's own (what others depend on first); other kinds keep
# their relative order after them.
APPLY_ORDER = list(BUNDLE_APPLY_ORDER)


class ApiError(Exception):
    """A non-2xx answer of the API server; `message` is the server's Status message."""

    def __init__(self, method: str, path: str, status: int, body: Any):
        self.method, self.path, self.status, self.body = method, path, status, body
        if isinstance(body, dict):
            self.message = body.get("message", json.dumps(body))
            self.reason = body.get("reason", "")
        else:
            self.message, self.reason = str(body), ""
        super().__init__(f"{method} {path}: HTTP {status} {self.reason}: {self.message}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"({path.name}: no log)"
    return "\n".join(text.splitlines()[-lines:])


def upstream_crd_files() -> list[Path]:
    """Argo Workflows' full CRDs, Argo Events' CRDs, the prometheus-operator's and Velero's,
    from the Go module cache."""
    wf_version = pinned_version("argo-workflows-lint", ARGO_WORKFLOWS_MODULE)
    ev_version = pinned_version("argo-events-lint", ARGO_EVENTS_MODULE)
    files = []
    po_version = pinned_version("crds/prometheus-operator", PROMETHEUS_OPERATOR_MODULE)
    velero_version = pinned_version("crds/velero", VELERO_MODULE)
    for module, version, sub, pattern in [
        (ARGO_WORKFLOWS_MODULE, wf_version, "manifests/base/crds/full", "argoproj.io_*.yaml"),
        (ARGO_EVENTS_MODULE, ev_version, "manifests/base/crds", "argoproj.io_*.yaml"),
        # PrometheusRule and PodMonitor (monitoring.*), validated like our other kinds
        (PROMETHEUS_OPERATOR_MODULE, po_version, "example/prometheus-operator-crd",
         "monitoring.coreos.com_*.yaml"),
        # Schedule (backup.velero), validated like our other kinds; Backup and Restore for the
        # restore the README prescribes
        (VELERO_MODULE, velero_version, "config/crd/v1/bases", "velero.io_*.yaml"),
    ]:
        found = sorted((go_module_dir(module, version) / sub).glob(pattern))
        if not found:
            pytest.fail(f"no CRDs under {sub} in {module}@{version}")
        files += found
    return files


def _crd_name_from_yaml(text: str) -> str:
    m = re.search(r"^metadata:\s*\n(?:[ \t]+.*\n)*?[ \t]+name:[ \t]*['\"]?([^'\"\s]+)", text, re.M)
    if not m:
        raise ValueError("no metadata.name in CRD")
    return m.group(1)


def _generate_rsa_key(path: Path) -> None:
    """An RSA private key (PEM) for signing service-account tokens."""
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
    except ImportError:
        openssl = shutil.which("openssl")
        if openssl is None:
            pytest.fail("need the `cryptography` package or `openssl` (apt-get install openssl) "
                        "to generate the service-account signing key")
        subprocess.run([openssl, "genrsa", "-out", str(path), "2048"], check=True,
                       capture_output=True)
        return
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


class KubeServer:
    """etcd + kube-apiserver in `workdir`; see the module docstring."""

    def __init__(self, workdir: Path, *, apiserver_bin: Path = APISERVER_BIN,
                 etcd_bin: str | None = None):
        self.workdir = Path(workdir)
        self.apiserver_bin = Path(apiserver_bin)
        self.etcd_bin = etcd_bin or shutil.which("etcd")
        self.etcd_log = self.workdir / "etcd.log"
        self.apiserver_log = self.workdir / "kube-apiserver.log"
        self.kubeconfig = self.workdir / "kubeconfig"
        self.cert_dir = self.workdir / "certs"
        self.ca_file = self.cert_dir / "apiserver.crt"
        self.admin_token = secrets.token_hex(24)
        self.people_tokens = {user: secrets.token_hex(24) for user in PEOPLE}
        # Where the API server listens; the e2e cluster (tests/e2e/cluster.py) sets its node IP
        # and a fixed port so that pods reach it.
        self.host = "127.0.0.1"
        self.port: int | None = None
        self.server = ""
        self.etcd_url = ""
        self.timings: dict[str, float] = {}
        self.crd_names: list[str] = []
        self._procs: list[tuple[str, subprocess.Popen]] = []
        self._http: urllib3.PoolManager | None = None
        self._discovery: dict[str, dict[str, dict]] = {}
        self._api_client = None

    # ---------------------------------------------------------------- lifecycle
    def check_binaries(self) -> None:
        if not self.etcd_bin:
            pytest.fail("`etcd` is not on PATH: run `apt-get install -y etcd-server` "
                        "(or `make debs`)")
        if not os.access(self.apiserver_bin, os.X_OK):
            rel = self.apiserver_bin.relative_to(REPO_ROOT) if self.apiserver_bin.is_relative_to(
                REPO_ROOT) else self.apiserver_bin
            pytest.fail(f"{rel} is missing: run `make tools` from the repository root")

    def start(self, *, crds: bool = True) -> KubeServer:
        t0 = time.monotonic()
        self.check_binaries()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._start_etcd()
        self.timings["etcd"] = time.monotonic() - t0
        self._start_apiserver()
        self.timings["apiserver"] = time.monotonic() - t0
        if crds:
            self.install_crds()
        self.timings["ready"] = time.monotonic() - t0
        return self

    def _spawn(self, name: str, argv: list[str], log: Path,
               env: dict[str, str] | None = None) -> subprocess.Popen:
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=self.workdir,
                                    env={**os.environ, **(env or {})})
        self._procs.append((name, proc))
        return proc

    def _start_etcd(self) -> None:
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        peer_url = f"http://127.0.0.1:{peer}"
        proc = self._spawn("etcd", [
            self.etcd_bin,
            "--name=kube-test",
            f"--data-dir={self.workdir / 'etcd-data'}",
            f"--listen-client-urls={self.etcd_url}",
            f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=kube-test={peer_url}",
            "--initial-cluster-state=new",
            "--logger=zap",
            "--log-outputs=stderr",
        ], self.etcd_log)
        http = urllib3.PoolManager(retries=False, timeout=2.0)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self._fail_start(f"etcd exited with code {proc.returncode}")
            try:
                r = http.request("GET", f"{self.etcd_url}/health")
                if r.status == 200 and json.loads(r.data).get("health") == "true":
                    return
            except (urllib3.exceptions.HTTPError, ValueError):
                pass
            time.sleep(0.1)
        self._fail_start("etcd did not become healthy within 30s")

    def apiserver_args(self, port: int) -> list[str]:
        sa_key = self.workdir / "sa.key"
        return [
            f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={self.cert_dir}",
            f"--token-auth-file={self.workdir / 'tokens.csv'}",
            "--authorization-mode=Node,RBAC",
            f"--service-account-issuer={SA_ISSUER}",
            f"--service-account-key-file={sa_key}",
            f"--service-account-signing-key-file={sa_key}",
            f"--api-audiences={SA_ISSUER}",
            "--service-cluster-ip-range=10.96.0.0/16",
            # The endpoint reconciler refuses a loopback advertise address.
            "--endpoint-reconciler-type=none",
            # No controller manager runs, so nothing creates the `default` ServiceAccount
            # of a namespace; the ServiceAccount admission plugin would reject every Pod.
            "--disable-admission-plugins=ServiceAccount",
            "--allow-privileged=true",
            "--profiling=false",
            # Debian's etcd 3.4 lacks RequestWatchProgress: with WatchList on, client-go
            # watches end with "a watch stream was requested by the client but the required
            # storage feature RequestWatchProgress is disabled" and informers only see changes
            # on relists (tests/e2e/README.md).
            "--feature-gates=WatchList=false",
        ]

    def _start_apiserver(self) -> None:
        self.cert_dir.mkdir(exist_ok=True)
        _generate_rsa_key(self.workdir / "sa.key")
        (self.workdir / "tokens.csv").write_text(
            f'{self.admin_token},admin,admin-uid,"system:masters"\n'
            + "".join(f'{self.people_tokens[user]},{user},{user}-uid'
                      + (f',"{",".join(groups)}"' if groups else "") + "\n"
                      for user, groups in PEOPLE.items()))
        port = self.port or free_port()
        self.server = f"https://{self.host}:{port}"
        # GOGC=400: installing Argo's multi-megabyte CRDs is mostly garbage collection at
        # the default of 100; 400 cuts the API server's CPU time for it by about a third.
        gogc = os.environ.get("KUBE_TEST_GOGC", "400")
        proc = self._spawn("kube-apiserver", [str(self.apiserver_bin), *self.apiserver_args(port)],
                           self.apiserver_log, env={"GOGC": gogc})
        deadline = time.monotonic() + READY_TIMEOUT
        last = "no answer"
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self._fail_start(f"kube-apiserver exited with code {proc.returncode}")
            if self.ca_file.exists():
                try:
                    r = self.http.request("GET", f"{self.server}/readyz", headers=self._auth(),
                                          timeout=2.0)
                    last = f"HTTP {r.status}: {r.data.decode(errors='replace')[-2000:]}"
                    if r.status == 200:
                        break
                except urllib3.exceptions.HTTPError as e:
                    last = repr(e)
            time.sleep(0.2)
        else:
            self._fail_start(f"kube-apiserver not ready within {READY_TIMEOUT:.0f}s; "
                             f"last /readyz: {last}")
        self._write_kubeconfig()

    def _fail_start(self, why: str) -> None:
        tails = self.logs()
        self.stop()
        pytest.fail(f"{why}\n{tails}", pytrace=False)

    def stop(self) -> None:
        # API server first, so it does not log a storm of etcd connection errors.
        for _name, proc in reversed(self._procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        self._procs.clear()
        if self._api_client is not None:
            self._api_client.close()
            self._api_client = None

    def logs(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last `lines` lines of the etcd and kube-apiserver logs."""
        out = []
        for log in (self.etcd_log, self.apiserver_log):
            out.append(f"----- last {lines} lines of {log.name} ({log}) -----")
            out.append(_tail(log, lines))
        return "\n".join(out)

    # ---------------------------------------------------------------- clients
    @property
    def http(self) -> urllib3.PoolManager:
        if self._http is None:
            self._http = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=str(self.ca_file),
                                             retries=False, timeout=60.0, maxsize=4)
        return self._http

    def _auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.admin_token}"}

    def _write_kubeconfig(self) -> None:
        self.write_kubeconfig(self.kubeconfig, "admin", self.admin_token)

    def write_kubeconfig(self, path: Path, user: str, token: str | None = None,
                         namespace: str | None = None) -> Path:
        """A kubeconfig at `path` that authenticates as `user` (one of PEOPLE, or `token`), its
        context `test` with `namespace` if given."""
        context: dict[str, str] = {"cluster": "test", "user": user}
        if namespace:
            context["namespace"] = namespace
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "test", "cluster": {
                "server": self.server,
                "certificate-authority-data": base64.b64encode(self.ca_file.read_bytes()).decode(),
            }}],
            "users": [{"name": user, "user": {"token": token or self.user_token(user)}}],
            "contexts": [{"name": "test", "context": context}],
            "current-context": "test",
        }
        path = Path(path)
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def user_token(self, user: str) -> str:
        """The static token of one of PEOPLE (authenticates as `user` in its groups)."""
        if user not in self.people_tokens:
            raise KeyError(f"{user!r} is not one of tests.kube_server.PEOPLE: {', '.join(PEOPLE)}")
        return self.people_tokens[user]

    @property
    def api_client(self):
        """A `kubernetes.client.ApiClient` for the admin kubeconfig."""
        if self._api_client is None:
            from kubernetes import config

            self._api_client = config.new_client_from_config(config_file=str(self.kubeconfig))
        return self._api_client

    def api_client_for_token(self, token: str):
        """A `kubernetes.client.ApiClient` that authenticates with `token`."""
        from kubernetes import client

        cfg = client.Configuration()
        cfg.host = self.server
        cfg.ssl_ca_cert = str(self.ca_file)
        cfg.api_key = {"authorization": token}
        cfg.api_key_prefix = {"authorization": "Bearer"}
        return client.ApiClient(cfg)

    def request(self, method: str, path: str, body: Any = None, *,
                query: dict[str, Any] | Sequence[tuple[str, Any]] | None = None,
                token: str | None = None, content_type: str = "application/json",
                ok: Iterable[int] = (), as_user: tuple[str, Sequence[str]] | None = None) -> Any:
        """One REST call as admin (or as `token`); returns the decoded JSON answer.

        `body` may be a dict/list (sent as JSON) or str/bytes (sent as is). Raises ApiError
        for a non-2xx status unless that status is in `ok`. `as_user` = (name, groups): the
        admin impersonates that user (RBAC and admission see the user and its groups).
        """
        url = self.server + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        headers = urllib3.HTTPHeaderDict({**self._auth(token), "Accept": "application/json"})
        if as_user is not None:
            headers["Impersonate-User"] = as_user[0]
            for group in as_user[1]:
                headers.add("Impersonate-Group", group)
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        r = self.http.request(method, url, body=data, headers=headers)
        try:
            answer = json.loads(r.data) if r.data else None
        except ValueError:
            answer = r.data.decode(errors="replace")
        if not 200 <= r.status < 300 and r.status not in ok:
            raise ApiError(method, path, r.status, answer)
        return answer

    @contextlib.contextmanager
    def policies_kept_as_found(self, names: Iterable[str]):
        """Around a test that applies ValidatingAdmissionPolicies `names` (and their bindings):
        afterwards, those that did not exist before (a bundle may have installed them) are
        removed."""
        base = "/apis/admissionregistration.k8s.io/v1"
        existed = {name: self.request("GET", f"{base}/validatingadmissionpolicies/{name}",
                                      ok=(404,)).get("kind") for name in names}
        yield
        for name, kind in existed.items():
            if not kind:
                for plural in ("validatingadmissionpolicybindings", "validatingadmissionpolicies"):
                    self.request("DELETE", f"{base}/{plural}/{name}", ok=(404,))

    # ---------------------------------------------------------------- discovery
    def resource_for(self, api_version: str, kind: str, *, refresh: bool = False) -> dict:
        """The discovery entry (name, namespaced, ...) of `kind` in `api_version`."""
        if refresh or api_version not in self._discovery:
            path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            try:
                listing = self.request("GET", path)
            except ApiError as e:
                if e.status != 404:
                    raise
                listing = {"resources": []}
            self._discovery[api_version] = {
                r["kind"]: r for r in listing.get("resources", []) if "/" not in r["name"]}
        found = self._discovery[api_version].get(kind)
        if found is None and not refresh:
            return self.resource_for(api_version, kind, refresh=True)
        if found is None:
            raise LookupError(f"the API server does not serve {kind} in {api_version}")
        return found

    def path_for(self, api_version: str, kind: str, name: str | None = None,
                 namespace: str | None = None) -> str:
        res = self.resource_for(api_version, kind)
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        if res["namespaced"]:
            if not namespace:
                raise ValueError(f"{kind} {name} is namespaced but has no namespace")
            base += f"/namespaces/{namespace}"
        base += f"/{res['name']}"
        return f"{base}/{name}" if name else base

    # ---------------------------------------------------------------- apply
    def apply_one(self, doc: dict | str, *, dry_run: bool = False,
                  field_manager: str = "argo-delivery", field_validation: str = "Strict",
                  force_conflicts: bool = False, api_version: str | None = None,
                  kind: str | None = None, name: str | None = None,
                  namespace: str | None = None) -> dict:
        """Server-side apply one manifest (a dict, or YAML text with api_version/kind/name)."""
        if isinstance(doc, dict):
            meta = doc.get("metadata") or {}
            api_version = doc["apiVersion"]
            kind = doc["kind"]
            name = meta["name"]
            namespace = meta.get("namespace", namespace)
        res = self.resource_for(api_version, kind)
        if res["namespaced"] and not namespace:
            namespace = "default"
        query = [("fieldManager", field_manager), ("fieldValidation", field_validation)]
        if dry_run:
            query.append(("dryRun", "All"))
        if force_conflicts:
            query.append(("force", "true"))
        deadline = time.monotonic() + 30
        while True:
            try:
                return self.request("PATCH", self.path_for(api_version, kind, name, namespace),
                                    doc, query=query, content_type="application/apply-patch+yaml")
            except ApiError as exc:
                # as argo_delivery.apply does: a policy's parameter (a Project created in the
                # same batch) not yet seen by its informer is refused "no params found"
                if dry_run or "no params found" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def apply(self, docs: Iterable[dict], dry_run: bool = False,
              field_manager: str = "argo-delivery", *, field_validation: str = "Strict",
              force_conflicts: bool = False) -> list[dict]:
        """Server-side apply `docs`; returns the server's objects in the order of `docs`.

        Applies CRDs, Namespaces, ServiceAccounts, (Cluster)Roles, bindings, then the rest;
        waits for applied CRDs to be Established before any custom resource. With dry_run
        nothing is created, so objects in a Namespace (or of a CRD) that only this batch
        would create are rejected: apply those first for real.

        Errors are ApiError. Note that server-side apply checks the patch against the
        structural schema before validation proper: a wrong type or an undeclared field
        fails with "failed to create typed patch object (...): .spec.x: expected string,
        got ..." / "field not declared in schema", as HTTP 500 (upstream bug
        kubernetes/kubernetes#139253), whatever `field_validation` says. Use create() to
        get the schema validator's 4xx messages ("must be of type string").
        """
        docs = [d for d in docs if d]
        rank = {kind: i for i, kind in enumerate(APPLY_ORDER)}
        order = sorted(range(len(docs)), key=lambda i: rank.get(docs[i]["kind"], len(rank)))
        results: list[dict | None] = [None] * len(docs)
        crds: list[str] = []
        for i in order:
            doc = docs[i]
            if doc["kind"] != "CustomResourceDefinition" and crds:
                self.wait_for_crds(crds)
                crds = []
            results[i] = self.apply_one(doc, dry_run=dry_run, field_manager=field_manager,
                                        field_validation=field_validation,
                                        force_conflicts=force_conflicts)
            if doc["kind"] == "CustomResourceDefinition" and not dry_run:
                crds.append(doc["metadata"]["name"])
        if crds:
            self.wait_for_crds(crds)
        return results  # type: ignore[return-value]

    def create(self, doc: dict, *, dry_run: bool = False, field_validation: str = "Strict",
               field_manager: str = "argo-delivery") -> dict:
        """POST one manifest (like `kubectl create`); returns the server's object.

        The plain create path reports schema errors the way validation does (HTTP 422
        "spec.x: Invalid value: ...: must be of type string", or 400 'unknown field
        "spec.y"' with fieldValidation=Strict), where server-side apply fails earlier.
        """
        meta = doc.get("metadata") or {}
        res = self.resource_for(doc["apiVersion"], doc["kind"])
        namespace = (meta.get("namespace") or "default") if res["namespaced"] else None
        query = [("fieldManager", field_manager), ("fieldValidation", field_validation)]
        if dry_run:
            query.append(("dryRun", "All"))
        return self.request("POST", self.path_for(doc["apiVersion"], doc["kind"], None, namespace),
                            doc, query=query)

    def wait_for_crds(self, names: Iterable[str], timeout: float = CRD_TIMEOUT) -> None:
        """Wait until every named CRD is Established (and drop stale discovery).

        Polls discovery, which lists a CRD's resource only once it is Established, instead
        of re-reading the CRDs (Argo's are megabytes each), then checks each condition once.
        """
        crd_path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
        pending = {}  # name -> (group/version paths, plural)
        for name in names:
            crd = self.request("GET", crd_path + name, query={"resourceVersion": "0"})
            spec = crd["spec"]
            paths = [f"/apis/{spec['group']}/{v['name']}" for v in spec["versions"] if v["served"]]
            pending[name] = (paths, spec["names"]["plural"])
        deadline = time.monotonic() + timeout
        while pending:
            served: dict[str, set[str]] = {}
            for path in {p for paths, _ in pending.values() for p in paths}:
                listing = self.request("GET", path, ok=(404, 503))
                listing = listing if isinstance(listing, dict) else {}
                served[path] = {r["name"] for r in listing.get("resources") or []}
            for name, (paths, plural) in list(pending.items()):
                if all(plural in served[p] for p in paths):
                    crd = self.request("GET", crd_path + name)
                    conds = {c["type"]: c
                             for c in (crd.get("status") or {}).get("conditions") or []}
                    if conds.get("Established", {}).get("status") == "True":
                        del pending[name]
            if pending and time.monotonic() > deadline:
                conditions = {name: (self.request("GET", crd_path + name).get("status") or {})
                              .get("conditions") for name in pending}
                raise AssertionError(f"CRDs not Established within {timeout:.0f}s: "
                                     f"{json.dumps(conditions, indent=1)}\n{self.logs(50)}")
            if pending:
                time.sleep(0.1)
        self._discovery.clear()

    def install_crds(self) -> None:
        """Argo Workflows' full CRDs, Argo Events' CRDs and argo-delivery's CRDs."""
        t0 = time.monotonic()
        crd_kw = dict(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition",
                      field_manager="kube-server-fixture")

        def send(path: Path) -> str:
            # Sent as YAML: the server parses 11 MB of YAML much faster than PyYAML would.
            text = path.read_text()
            name = _crd_name_from_yaml(text)
            self.apply_one(text, name=name, **crd_kw)
            return name

        # A few at a time, largest first, so both of the server's cores stay busy.
        files = sorted(upstream_crd_files(), key=lambda p: -p.stat().st_size)
        with concurrent.futures.ThreadPoolExecutor(CRD_PARALLEL) as pool:
            names = list(pool.map(send, files))
        self.timings["upstream_crds_sent"] = time.monotonic() - t0
        for crd in _own_crds():
            self.apply_one(crd, field_manager="kube-server-fixture")
            names.append(crd["metadata"]["name"])
        self.wait_for_crds(names)
        self.crd_names = names
        self.timings["crds"] = time.monotonic() - t0

    # ---------------------------------------------------------------- tokens
    def token_for(self, namespace: str, service_account: str,
                  audiences: Sequence[str] | None = None, expiration_seconds: int = 3600) -> str:
        """A bound token for `namespace`/`service_account` from the TokenRequest API.

        Creates the Namespace and ServiceAccount if they do not exist.
        """
        self.apply([
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
            {"apiVersion": "v1", "kind": "ServiceAccount",
             "metadata": {"name": service_account, "namespace": namespace}},
        ], field_manager="kube-server-fixture")
        spec: dict[str, Any] = {"expirationSeconds": expiration_seconds}
        if audiences:
            spec["audiences"] = list(audiences)
        answer = self.request(
            "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})
        return answer["status"]["token"]


def _own_crds() -> list[dict]:
    try:
        from argo_delivery.crds import crd_manifests
    except ImportError as e:
        pytest.fail(f"cannot import argo_delivery.crds.crd_manifests: {e}")
    return list(crd_manifests())


# -------------------------------------------------------------------- pytest glue
_LOG_KEY = pytest.StashKey[str]()


@pytest.fixture(scope="session")
def kube(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A started KubeServer with all CRDs Established; stopped at the end of the session."""
    server = KubeServer(tmp_path_factory.mktemp("kube"))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        if request.session.testsfailed:
            request.config.stash[_LOG_KEY] = server.logs()


def kube_terminal_summary(terminalreporter, config) -> None:
    """Print the server logs' tails after the test summary when a test failed."""
    logs = config.stash.get(_LOG_KEY, None)
    if logs:
        terminalreporter.section("kube-apiserver and etcd logs")
        terminalreporter.write_line(logs)
