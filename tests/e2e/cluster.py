"""A real single-node Kubernetes cluster for the end-to-end tests (see tests/e2e/README.md).

`Cluster(workdir).start()` brings up, all on this machine and all owned by the fixture:

* a Linux bridge with a private /24 of its own (node IP = the bridge's .1), a guard chain that
  drops anything pods would send off the machine, and a CNI conflist (bridge + host-local,
  no masquerade, routes only to the Service range);
* containerd (Debian's) with its own config, root, state and socket under `workdir`, runc,
  the CNI plugins from /usr/lib/cni, and the images of tests/e2e/images.py imported;
* etcd (Debian's) and kube-apiserver on the bridge IP (`--feature-gates=WatchList=false`:
  etcd 3.4 lacks RequestWatchProgress), with Argo's and argo-delivery's CRDs installed;
* kube-controller-manager, kube-scheduler, kubelet (cgroup v1: failCgroupV1 false, cgroupfs,
  its own cgroup root) and kube-proxy (iptables mode), built by `make e2e-tools`;
* optional parts on top: Argo Workflows' controller (`start_argo_workflows`, its metrics on)
  and a Prometheus scraping it (`start_prometheus`, the alerts loaded by `load_rules`), ...

Teardown (`stop`) works from the state file (tests/e2e/hoststate.py), so it also runs from
`make cluster-down` and after a run that died half-way: processes by PID, containers through
containerd then their shims by PID, netns entries, mounts under `workdir`, the cgroup root,
the bridge, our iptables chains and rules, and the sysctls as they were read before.

Run by hand:  python3 -m tests.e2e.cluster up [--no-events] | down | status
              (make cluster-up / cluster-down; `up` starts Argo Events' controller too)
"""

from __future__ import annotations

import atexit
import concurrent.futures
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from argo_delivery.monitoring import WORKFLOWS_MONITOR  # noqa: E402
from argo_delivery.security import executor_security_context  # noqa: E402
from tests.e2e import hoststate, images  # noqa: E402
from tests.kube_server import ApiError, KubeServer, _tail, free_port  # noqa: E402

BIN = REPO_ROOT / ".cache" / "bin"
DEFAULT_WORKDIR = REPO_ROOT / ".cache" / "e2e" / "run"
# Overridable when this /24 is taken on a machine; nothing is routed off the machine anyway.
SUBNET = ipaddress.ip_network(os.environ.get("E2E_SUBNET", "10.244.77.0/24"))
SERVICE_RANGE = ipaddress.ip_network(os.environ.get("E2E_SERVICE_RANGE", "10.96.77.0/24"))
BRIDGE = os.environ.get("E2E_BRIDGE", "e2e0")
NODE_NAME = "e2e-node"
CGROUP_NAME = "argo-e2e"
APISERVER_PORT = 6443
CLUSTER_DOMAIN = "cluster.local"
LOG_TAIL_LINES = 80

NODE_BINS = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet",
             "kube-proxy", "e2e-pause", "workflow-controller", "argoexec", "coredns", "versitygw",
             "prometheus"]
EVENTS_BINS = ["argo-events", "nats-server"]
DEBIAN = {"containerd": "containerd", "runc": "runc", "ctr": "containerd",
          "etcd": "etcd-server", "iptables": "iptables", "conntrack": "conntrack"}


class ClusterError(Exception):
    """The cluster could not start or a wait timed out; the message carries the evidence."""


def _which(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for d in ("/usr/sbin", "/sbin", "/usr/bin"):
        if os.access(f"{d}/{name}", os.X_OK):
            return f"{d}/{name}"
    return None


def missing_parts(extra_bins: Iterable[str] = ()) -> list[str]:
    """What is not built or installed, each with the command that provides it."""
    out = []
    for name in [*NODE_BINS, *extra_bins]:
        if not os.access(BIN / name, os.X_OK):
            out.append(f".cache/bin/{name} (run `make e2e-tools`)")
    for cmd, pkg in DEBIAN.items():
        if not _which(cmd):
            out.append(f"{cmd} (run `make debs`: Debian package {pkg})")
    if not Path("/usr/lib/cni/bridge").exists():
        out.append("/usr/lib/cni/bridge (run `make debs`: containernetworking-plugins)")
    return out


class ApiServer(KubeServer):
    """The repo's etcd + kube-apiserver fixture, listening on the node IP for pods."""

    def __init__(self, workdir: Path, host: str):
        super().__init__(workdir, apiserver_bin=BIN / "kube-apiserver")
        self.host, self.port = host, APISERVER_PORT
        self.on_spawn: Callable[[str, subprocess.Popen, Path, dict | None], None] | None = None

    def _spawn(self, name, argv, log, env=None):
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=self.workdir,
                                    env={**os.environ, **(env or {})}, start_new_session=True)
        self._procs.append((name, proc))
        if self.on_spawn:
            self.on_spawn(name, proc, log, env)
        return proc

    def apiserver_args(self, port: int) -> list[str]:
        sa_key = self.workdir / "sa.key"
        return [
            f"--etcd-servers={self.etcd_url}",
            f"--bind-address={self.host}",
            f"--advertise-address={self.host}",
            f"--secure-port={port}",
            f"--cert-dir={self.cert_dir}",
            f"--token-auth-file={self.workdir / 'tokens.csv'}",
            "--authorization-mode=Node,RBAC",
            f"--service-account-issuer=https://kubernetes.default.svc.{CLUSTER_DOMAIN}",
            f"--service-account-key-file={sa_key}",
            f"--service-account-signing-key-file={sa_key}",
            f"--api-audiences=https://kubernetes.default.svc.{CLUSTER_DOMAIN}",
            f"--service-cluster-ip-range={SERVICE_RANGE}",
            "--kubelet-preferred-address-types=InternalIP",
            # Debian's etcd 3.4 has no RequestWatchProgress: with WatchList on, every
            # client-go watch ends with "a watch stream was requested by the client but the
            # required storage feature RequestWatchProgress is disabled" and controllers only
            # see changes on relists (~50 s late).
            "--feature-gates=WatchList=false",
            "--allow-privileged=true",
            "--profiling=false",
        ]

    def _fail_start(self, why: str) -> None:
        raise ClusterError(f"{why}\n{self.logs(LOG_TAIL_LINES)}")

    def stop(self) -> None:  # processes are stopped by the Cluster, from its state file
        self._procs.clear()


class Cluster:
    """See the module docstring. `start()` returns self; `stop()` is idempotent."""

    def __init__(self, workdir: Path = DEFAULT_WORKDIR):
        self.workdir = Path(workdir)
        self.node_ip = str(next(SUBNET.hosts()))
        self.dns_ip = str(SERVICE_RANGE[10])
        self.state = hoststate.StateFile(self.workdir / "state.json")
        self.timings: dict[str, float] = {}
        self.kube: ApiServer | None = None
        self.containerd_sock = self.workdir / "containerd" / "containerd.sock"
        self.logs_dir = self.workdir / "logs"
        self.teardown_log: list[str] = []
        self._atexit = False
        self.extra_images: list[images.Image] = []
        self.workflows_metrics_port = 0
        # how each process was started (argv, environment), for `start_again` after `kill`
        self._launch: dict[str, tuple[list[str], dict[str, str]]] = {}
        self._down: dict[str, dict] = {}
        self.prometheus_url = ""

    # ================================================================ start
    def start(self, *, argo_workflows: bool = True, argo_events: bool = False,
              extra_images: Iterable[images.Image] = ()) -> Cluster:
        t0 = time.monotonic()
        missing = missing_parts(EVENTS_BINS if argo_events else ())
        if missing:
            raise ClusterError("the e2e cluster cannot start, missing:\n  " + "\n  ".join(missing))
        if os.geteuid() != 0:
            raise ClusterError("the e2e cluster needs root (bridges, iptables, mounts)")
        if self.workdir.exists() and self.state.data.get("processes") is not None:
            # A run that died, or a `make cluster-up` still running: clean its leftovers.
            self.teardown_log.append("found state of an earlier run; tearing it down first")
            self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir.mkdir(parents=True)
        self.logs_dir.mkdir()
        self.state = hoststate.StateFile(self.workdir / "state.json")
        self.state.data = {
            "workdir": str(self.workdir), "bridge": BRIDGE, "subnet": str(SUBNET),
            "sysctls_before": hoststate.read_sysctls(),
            "iptables_before": hoststate.iptables_snapshot(),
            "netns_before": hoststate.netns_entries(),
            "cgroup": CGROUP_NAME, "processes": [],
            # containerd's shims keep runc state, sockets and fifos under /run/containerd
            # whatever its config says; removed at the end when it was not there before.
            "run_containerd_existed": Path("/run/containerd").exists(),
            "netns_dir_existed": hoststate.NETNS_DIR.exists(),
        }
        self.state.save()
        if not self._atexit:
            atexit.register(self.stop)
            self._atexit = True
        self.extra_images = list(extra_images) + (images.events_images() if argo_events else [])
        try:
            self._start(t0, argo_workflows, argo_events)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, t0: float, argo_workflows: bool, argo_events: bool) -> None:
        # Images first (cached archives; a rebuild needs CPU the cluster would compete for).
        wanted = images.base_images() + self.extra_images
        try:
            built = images.build_all(wanted)
        except images.MissingInput as e:
            raise ClusterError(str(e)) from None
        self.timings["images"] = time.monotonic() - t0
        self.image_names = [i.name for i in wanted]
        self._network()
        self.timings["network"] = time.monotonic() - t0
        self._containerd()
        self.timings["containerd"] = time.monotonic() - t0
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            imported = pool.submit(self._import_images, [p for p, _, _ in built.values()])
            self._control_plane()
            self.timings["apiserver"] = time.monotonic() - t0
            crds = pool.submit(self._install_crds)
            self._node()
            imported.result()
            self.timings["images_imported"] = time.monotonic() - t0
            self.wait_node_ready()
            self.timings["node_ready"] = time.monotonic() - t0
            self.start_dns()
            self.start_storage()
            crds.result()
        self.timings["crds"] = time.monotonic() - t0
        if argo_workflows:
            self.start_s3()
            self.start_argo_workflows()
            self.timings["argo_workflows"] = time.monotonic() - t0
            self.start_prometheus()
            self.timings["prometheus"] = time.monotonic() - t0
        self.wait_dns()
        self.timings["dns"] = time.monotonic() - t0
        if argo_events:
            self.start_argo_events()
            self.timings["argo_events"] = time.monotonic() - t0
        self.timings["ready"] = time.monotonic() - t0

    # ---------------------------------------------------------------- processes
    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None
              ) -> subprocess.Popen:
        """Start a process owned by the cluster (log in logs/NAME.log, PID in the state)."""
        log = self.logs_dir / f"{name}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=self.workdir,
                                    env={**os.environ, **(env or {})}, start_new_session=True)
        self.state.add_process(name, proc.pid, argv[0], str(log))
        self._launch[name] = (list(argv), dict(env or {}))
        return proc

    def _record(self, name: str, proc: subprocess.Popen, log: Path,
                env: dict[str, str] | None = None) -> None:
        self.state.add_process(name, proc.pid, proc.args[0], str(log))
        self._launch[name] = (list(proc.args), dict(env or {}))

    def kill(self, name: str) -> None:
        """SIGKILL one of the cluster's processes, as a crash would (the fault tests of
        tests/e2e/test_reliability.py); it stays down until `start_again(name)`."""
        entry = next(p for p in self.state.data["processes"] if p["name"] == name)
        outcome = hoststate.stop_pid(entry["pid"], entry["exe"], timeout=5, sig=signal.SIGKILL)
        if hoststate.pid_alive(entry["pid"]):
            raise ClusterError(f"{name} (pid {entry['pid']}) {outcome}")
        self.state.data["processes"].remove(entry)
        self.state.save()
        self._down[name] = entry

    def start_again(self, name: str) -> subprocess.Popen:
        """Start a killed process as it was started first (argv, environment, log)."""
        entry = self._down.pop(name)
        argv, env = self._launch[name]
        with open(entry["log"], "ab") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=self.workdir,
                                    env={**os.environ, **env}, start_new_session=True)
        self.state.add_process(name, proc.pid, entry["exe"], entry["log"])
        return proc

    def kill_container(self, namespace: str, pod: str, container: str = "main") -> str:
        """SIGKILL every process of a pod's container through containerd, by the container id
        in the pod's status: no grace, no cleanup, as an OOM kill or a lost node. Its id."""
        status = self.kube.request("GET", f"/api/v1/namespaces/{namespace}/pods/{pod}")["status"]
        found = next((s.get("containerID") for s in status.get("containerStatuses") or []
                      if s["name"] == container), None)
        if not found:
            raise ClusterError(f"pod {namespace}/{pod} has no running container {container}")
        container_id = found.split("://", 1)[1]
        self._ctr("tasks", "kill", "--all", "--signal", "SIGKILL", container_id)
        return container_id

    def log_tail(self, name: str, lines: int = LOG_TAIL_LINES) -> str:
        return f"----- last {lines} lines of {name}.log -----\n" + _tail(
            self.logs_dir / f"{name}.log", lines)

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float,
                 logs: Iterable[str] = (), interval: float = 0.2) -> Any:
        """Poll `check` until it returns something truthy; ClusterError with logs on timeout."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            try:
                last = check()
                if last:
                    return last
            except (OSError, ApiError, subprocess.SubprocessError, ValueError, KeyError) as e:
                last = repr(e)
            # Any component that died ends the wait: nothing would bring it back.
            for p in self.state.data.get("processes") or []:
                if not hoststate.pid_alive(p["pid"]):
                    raise ClusterError(f"{p['name']} exited while waiting for {what}\n"
                                       + self.log_tail(p["name"]))
            if time.monotonic() > deadline:
                tails = "\n".join(self.log_tail(n) for n in logs)
                raise ClusterError(f"{what}: not within {timeout:.0f} s (last: {last!r})\n{tails}")
            time.sleep(interval)

    # ---------------------------------------------------------------- network
    def _sh(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(list(argv), capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise ClusterError(f"{' '.join(argv)}: exit {proc.returncode}: {proc.stderr.strip()}")
        return proc

    def _network(self) -> None:
        if Path(f"/sys/class/net/{BRIDGE}").exists():
            raise ClusterError(f"network interface {BRIDGE} exists already (another cluster? "
                               "`make cluster-down`, or set E2E_BRIDGE/E2E_SUBNET)")
        # Guard first: nothing from or to the pods' bridge is forwarded to another interface.
        self._sh("iptables", "-w", "-t", "mangle", "-N", "E2E-GUARD")
        self._sh("iptables", "-w", "-t", "mangle", "-A", "E2E-GUARD", "-i", BRIDGE, "!", "-o",
                 BRIDGE, "-j", "DROP")
        self._sh("iptables", "-w", "-t", "mangle", "-A", "E2E-GUARD", "-o", BRIDGE, "!", "-i",
                 BRIDGE, "-j", "DROP")
        self._sh("iptables", "-w", "-t", "mangle", "-I", "FORWARD", "1", "-j", "E2E-GUARD")
        self.state.data["bridge_created"] = True
        self.state.save()
        self._sh("ip", "link", "add", BRIDGE, "type", "bridge")
        self._sh("ip", "addr", "add", f"{self.node_ip}/{SUBNET.prefixlen}", "dev", BRIDGE)
        self._sh("ip", "link", "set", BRIDGE, "up")
        # Host -> Service IPs: kube-proxy DNATs them in OUTPUT; without a route of their own
        # they would follow the default route when no rule matches. Goes with the bridge.
        self._sh("ip", "route", "add", str(SERVICE_RANGE), "dev", BRIDGE, "src", self.node_ip)
        # Service traffic between pods on one bridge goes through iptables (kube-proxy's DNAT
        # and its reverse) only with bridge netfilter; forwarding for pod -> Service -> pod.
        hoststate.write_sysctl("net/bridge/bridge-nf-call-iptables", "1")
        hoststate.write_sysctl("net/ipv4/ip_forward", "1")
        netd = self.workdir / "cni" / "net.d"
        netd.mkdir(parents=True)
        conflist = {
            "cniVersion": "0.4.0", "name": "e2e",
            "plugins": [{
                "type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False,
                "hairpinMode": True,
                "ipam": {"type": "host-local", "dataDir": str(self.workdir / "cni" / "ipam"),
                         "ranges": [[{"subnet": str(SUBNET), "gateway": self.node_ip,
                                      "rangeStart": str(SUBNET[10])}]],
                         # Only the Service range is routed (via the node); no default route.
                         "routes": [{"dst": str(SERVICE_RANGE)}]},
            }, {"type": "loopback"}],
        }
        (netd / "10-e2e.conflist").write_text(json.dumps(conflist, indent=1))

    # ---------------------------------------------------------------- containerd
    def _containerd(self) -> None:
        base = self.workdir / "containerd"
        base.mkdir(exist_ok=True)
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        config = f"""version = 2
root = "{base / 'root'}"
state = "{base / 'state'}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{self.containerd_sock}"

[ttrpc]
  address = "{base / 'containerd.sock.ttrpc'}"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{base / 'opt'}"

[{cri}]
  sandbox_image = "{images.PAUSE_IMAGE}"
  # Root here lacks CAP_SYS_RESOURCE: runc cannot set a negative oom_score_adj and every
  # sandbox fails with "can't get final child's PID from pipe: EOF" unless this clamps it.
  restrict_oom_score_adj = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
  BinaryName = "{_which('runc')}"

[{cri}.cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "{self.workdir / 'cni' / 'net.d'}"
"""
        (base / "config.toml").write_text(config)
        # Nothing is ever pulled: images are imported. Should a pod name a missing image, the
        # pull goes to a proxy on a closed loopback port and fails at once ("proxyconnect
        # tcp: dial tcp 127.0.0.1:9: connect: connection refused") instead of resolving and
        # contacting a registry.
        no_pull = "http://127.0.0.1:9"
        self.spawn("containerd", [_which("containerd"), "--config", str(base / "config.toml")],
                   env={"HTTP_PROXY": no_pull, "HTTPS_PROXY": no_pull, "http_proxy": no_pull,
                        "https_proxy": no_pull, "NO_PROXY": "", "no_proxy": ""})
        self.wait_for("containerd", lambda: self._ctr("version", check=False).returncode == 0,
                      30, logs=["containerd"], interval=0.05)

    def _ctr(self, *args: str, check: bool = True, namespace: str = "k8s.io"
             ) -> subprocess.CompletedProcess:
        return self._sh(_which("ctr"), "--address", str(self.containerd_sock), "-n", namespace,
                        *args, check=check)

    def _import_images(self, archives: list[Path]) -> None:
        for archive in archives:
            self._ctr("images", "import", str(archive))

    def import_images(self, wanted: Iterable[images.Image]) -> None:
        """Build (if needed) and import more images into the running cluster."""
        try:
            built = images.build_all(list(wanted))
        except images.MissingInput as e:
            raise ClusterError(str(e)) from None
        self._import_images([p for p, _, _ in built.values()])

    # ---------------------------------------------------------------- control plane
    def _control_plane(self) -> None:
        self.kube = ApiServer(self.workdir / "apiserver", self.node_ip)
        self.kube.workdir.mkdir()
        self.kube.on_spawn = self._record
        self.kube.etcd_log = self.logs_dir / "etcd.log"
        self.kube.apiserver_log = self.logs_dir / "kube-apiserver.log"
        self.kube.check_binaries()
        self.kube._start_etcd()
        self.kube._start_apiserver()
        self.kubeconfig = self.kube.kubeconfig
        self.state.data["kubeconfig"] = str(self.kubeconfig)
        self.state.save()

    def _install_crds(self) -> None:
        t0 = time.monotonic()
        self.kube.install_crds()
        self.timings["crds_install"] = time.monotonic() - t0

    # ---------------------------------------------------------------- node
    def _node(self) -> None:
        kubeconfig = str(self.kubeconfig)
        # The self-signed serving chain is "serving cert, CA": pods and kcm's trust bundle
        # publisher get the CA alone ("entry 0 does not have the CA bit set" otherwise).
        pem = self.kube.ca_file.read_text()
        blocks = [b + "-----END CERTIFICATE-----\n" for b in pem.split("-----END CERTIFICATE-----")
                  if "BEGIN CERTIFICATE" in b]
        ca_path = self.kube.workdir / "ca.crt"
        ca_path.write_text(blocks[-1].lstrip())
        ca = str(ca_path)
        ports = {n: free_port() for n in ("kcm", "scheduler", "kubelet_healthz", "proxy_healthz",
                                          "proxy_metrics")}
        self.spawn("kube-controller-manager", [
            str(BIN / "kube-controller-manager"), f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1", f"--secure-port={ports['kcm']}",
            f"--root-ca-file={ca}",
            f"--service-account-private-key-file={self.kube.workdir / 'sa.key'}",
            "--use-service-account-credentials=false",
            # no cloud, no node IPAM (the CNI plugin hands out addresses)
            "--controllers=*,-nodeipam",
            f"--service-cluster-ip-range={SERVICE_RANGE}",
            "--leader-elect=false", "--profiling=false",
        ])
        self.spawn("kube-scheduler", [
            str(BIN / "kube-scheduler"), f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1", f"--secure-port={ports['scheduler']}",
            "--leader-elect=false", "--profiling=false",
        ])
        # The kubelet's cgroup root: our own, so that teardown removes exactly what it made.
        for h in sorted(hoststate.CGROUP_ROOT.iterdir()):
            if h.name == "unified" or not (h / "cgroup.procs").exists():
                continue
            d = h / CGROUP_NAME
            d.mkdir(exist_ok=True)
            if h.name.startswith("cpuset"):
                for f in ("cpuset.cpus", "cpuset.mems"):
                    (d / f).write_text((h / f).read_text())
        kubelet_dir = self.workdir / "kubelet"
        kubelet_dir.mkdir()
        kubelet_config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
            # cgroup v1 host: refused by default since v1.35 ("kubelet is configured to not
            # run on a host using cgroup v1").
            "failCgroupV1": False,
            "cgroupDriver": "cgroupfs", "cgroupRoot": f"/{CGROUP_NAME}",
            "containerRuntimeEndpoint": f"unix://{self.containerd_sock}",
            "address": self.node_ip, "port": 10250, "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1", "healthzPort": ports["kubelet_healthz"],
            "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
            "authorization": {"mode": "AlwaysAllow"},
            "clusterDNS": [self.dns_ip], "clusterDomain": CLUSTER_DOMAIN,
            "resolvConf": "",
            "failSwapOn": False,
            "podLogsDir": str(self.workdir / "pod-logs"),
            # The images are imported, not pulled: never garbage-collect them.
            "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%",
                             "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
            "serializeImagePulls": False,
            "syncFrequency": "10s", "fileCheckFrequency": "10s",
            "protectKernelDefaults": False,
            "maxPods": 110,
        }
        (kubelet_dir / "config.yaml").write_text(yaml.safe_dump(kubelet_config))
        self.spawn("kubelet", [
            str(BIN / "kubelet"), f"--config={kubelet_dir / 'config.yaml'}",
            f"--kubeconfig={kubeconfig}", f"--root-dir={kubelet_dir / 'root'}",
            f"--cert-dir={kubelet_dir / 'pki'}", f"--hostname-override={NODE_NAME}",
            f"--node-ip={self.node_ip}", "--v=1",
        ])
        proxy_config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
            "mode": "iptables", "clientConnection": {"kubeconfig": kubeconfig},
            "hostnameOverride": NODE_NAME, "clusterCIDR": str(SUBNET),
            "bindAddress": self.node_ip,
            "healthzBindAddress": f"127.0.0.1:{ports['proxy_healthz']}",
            "metricsBindAddress": f"127.0.0.1:{ports['proxy_metrics']}",
            # Leave the host's conntrack tunables alone.
            "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s",
                          "tcpCloseWaitTimeout": "0s"},
            "iptables": {"localhostNodePorts": False, "syncPeriod": "30s",
                         "minSyncPeriod": "0s"},
            "nodePortAddresses": [f"{self.node_ip}/32"],
        }
        (self.workdir / "kube-proxy.yaml").write_text(yaml.safe_dump(proxy_config))
        self.spawn("kube-proxy", [str(BIN / "kube-proxy"),
                                  f"--config={self.workdir / 'kube-proxy.yaml'}"])

    def wait_node_ready(self, timeout: float = 90) -> None:
        def ready():
            node = self.get("v1", "Node", NODE_NAME)
            conds = {c["type"]: c["status"] for c in
                     ((node or {}).get("status") or {}).get("conditions") or []}
            return conds.get("Ready") == "True"
        self.wait_for(f"node {NODE_NAME} Ready", ready, timeout,
                      logs=["kubelet", "containerd", "kube-controller-manager"])

    # ================================================================ cluster DNS
    def start_dns(self) -> None:
        """CoreDNS as a Deployment in kube-system behind the kube-dns Service (no forwarding)."""
        ns, name = "kube-system", "coredns"
        corefile = f""".:1053 {{
    errors
    health :8080
    ready :8181
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }}
    cache 30
    reload
}}
"""
        labels = {"k8s-app": "kube-dns"}
        self.kube.apply([
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns}},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
             "metadata": {"name": "e2e:coredns"},
             "rules": [{"apiGroups": [""], "resources": ["services", "pods", "namespaces"],
                        "verbs": ["list", "watch"]},
                       {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                        "verbs": ["list", "watch"]}]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
             "metadata": {"name": "e2e:coredns"},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                         "name": "e2e:coredns"},
             "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns},
             "data": {"Corefile": corefile}},
            {"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": name, "namespace": ns, "labels": labels},
             "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                      "template": {"metadata": {"labels": labels}, "spec": {
                          "serviceAccountName": name, "automountServiceAccountToken": True,
                          "dnsPolicy": "Default",
                          "securityContext": {"runAsNonRoot": True, "runAsUser": 65532,
                                              "seccompProfile": {"type": "RuntimeDefault"}},
                          "containers": [{
                              "name": "coredns", "image": images.coredns_image().name,
                              "imagePullPolicy": "IfNotPresent",
                              "args": ["-conf", "/etc/coredns/Corefile"],
                              "ports": [{"name": "dns", "containerPort": 1053, "protocol": "UDP"},
                                        {"name": "dns-tcp", "containerPort": 1053,
                                         "protocol": "TCP"}],
                              "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181},
                                                 "periodSeconds": 1},
                              "securityContext": {"allowPrivilegeEscalation": False,
                                                  "readOnlyRootFilesystem": True,
                                                  "capabilities": {"drop": ["ALL"]}},
                              "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns"}]}],
                          "volumes": [{"name": "config", "configMap": {"name": name}}]}}}},
            {"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": "kube-dns", "namespace": ns, "labels": labels},
             "spec": {"clusterIP": self.dns_ip, "selector": labels, "ports": [
                 {"name": "dns", "port": 53, "targetPort": 1053, "protocol": "UDP"},
                 {"name": "dns-tcp", "port": 53, "targetPort": 1053, "protocol": "TCP"}]}},
        ], field_manager="e2e-cluster")

    def wait_dns(self, timeout: float = 90) -> None:
        def ready():
            dep = self.get("apps/v1", "Deployment", "coredns", "kube-system")
            return ((dep or {}).get("status") or {}).get("readyReplicas", 0) >= 1
        try:
            self.wait_for("CoreDNS ready", ready, timeout, logs=["kubelet"])
        except ClusterError as e:
            raise ClusterError(f"{e}\n{self.dump_namespace('kube-system')}") from None

    # ================================================================ Argo Events
    EVENTS_NAMESPACE = "argo-events"

    def start_argo_events(self) -> None:
        """Argo Events' controller from upstream's install.yaml (CRDs left out: installed),
        in a pod: its config path /etc/argo-events is fixed, a ConfigMap volume gives it. The
        image pull policy becomes IfNotPresent (images are imported, there is no registry),
        and the JetStream sidecar images point at the local stand-ins, as an air-gapped site
        points them at its mirror."""
        from tests.support import go_module_dir

        missing = missing_parts(EVENTS_BINS)
        if missing:
            raise ClusterError("Argo Events cannot start, missing:\n  " + "\n  ".join(missing))
        self.import_images(images.events_images())
        version = images.go_pin("tools/e2e/argo-events/go.mod", "github.com/argoproj/argo-events")
        install = go_module_dir("github.com/argoproj/argo-events", version) / "manifests/install.yaml"
        nats_version = images.go_pin("tools/e2e/nats-server/go.mod",
                                     "github.com/nats-io/nats-server/v2").lstrip("v")
        docs = []
        for doc in yaml.safe_load_all(install.read_text()):
            if not doc or doc["kind"] == "CustomResourceDefinition":
                continue
            if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "argo-events-controller-config":
                config = yaml.safe_load(doc["data"]["controller-config.yaml"])
                js = config["eventBus"]["jetstream"]
                js["versions"] = [v for v in js["versions"] if v["version"] == nats_version]
                if not js["versions"]:
                    raise ClusterError(f"Argo Events {version}'s controller config has no "
                                       f"JetStream version {nats_version}")
                js["versions"][0].update({
                    "natsImage": images.nats_image().name,
                    "configReloaderImage": images.reloader_image().name,
                    "metricsExporterImage": images.exporter_image().name})
                # A single node: one replica per stream.
                js["streamConfig"] = js["streamConfig"].replace("replicas: 3", "replicas: 1")
                doc["data"]["controller-config.yaml"] = yaml.safe_dump(config)
            if doc["kind"] == "Deployment":
                c = doc["spec"]["template"]["spec"]["containers"][0]
                c["imagePullPolicy"] = "IfNotPresent"
                c["env"].append({"name": "IMAGE_PULL_POLICY", "value": "IfNotPresent"})
            docs.append(doc)
        self.kube.apply([{"apiVersion": "v1", "kind": "Namespace",
                          "metadata": {"name": self.EVENTS_NAMESPACE}}] + docs,
                        field_manager="e2e-cluster")

        def ready():
            dep = self.get("apps/v1", "Deployment", "controller-manager", self.EVENTS_NAMESPACE)
            return ((dep or {}).get("status") or {}).get("readyReplicas", 0) >= 1
        try:
            self.wait_for("Argo Events controller ready", ready, 120, logs=["kubelet"])
        except ClusterError as e:
            raise ClusterError(f"{e}\n{self.dump_namespace(self.EVENTS_NAMESPACE)}") from None

    # ================================================================ storage
    STORAGE_CLASS = "e2e-hostpath"
    VOLUMES = 8

    def start_storage(self) -> None:
        """A default StorageClass and a pool of hostPath PersistentVolumes under the run dir.

        No dynamic provisioner: PVCs (e.g. a JetStream EventBus with persistence) bind to
        these pre-made volumes (20Gi nominal each, not enforced; mode 0777 because the kubelet
        applies no fsGroup to hostPath volumes).
        """
        docs: list[dict] = [{
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": self.STORAGE_CLASS, "annotations": {
                "storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "kubernetes.io/no-provisioner",
            "volumeBindingMode": "WaitForFirstConsumer", "reclaimPolicy": "Retain"}]
        for i in range(self.VOLUMES):
            path = self.workdir / "volumes" / f"pv-{i}"
            path.mkdir(parents=True)
            path.chmod(0o777)
            docs.append({
                "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": f"e2e-pv-{i}"},
                "spec": {"capacity": {"storage": "20Gi"}, "accessModes": ["ReadWriteOnce"],
                         "storageClassName": self.STORAGE_CLASS,
                         "persistentVolumeReclaimPolicy": "Retain",
                         "hostPath": {"path": str(path), "type": "Directory"}}})
        self.kube.apply(docs, field_manager="e2e-cluster")

    # ================================================================ artifact repository
    S3_PORT = 7070
    S3_BUCKET = "argo-artifacts"
    S3_SECRET = "e2e-s3-credentials"

    def start_s3(self) -> None:
        """versitygw (S3 API, posix backend) on the node IP, a bucket for Argo's artifacts."""
        root = self.workdir / "s3"
        (root / self.S3_BUCKET).mkdir(parents=True)
        self.s3_access, self.s3_secret = "e2e" + secrets.token_hex(6), secrets.token_hex(20)
        self.s3_endpoint = f"{self.node_ip}:{self.S3_PORT}"
        self.spawn("versitygw", [str(BIN / "versitygw"), "--port", self.s3_endpoint, "posix",
                                 str(root)],
                   env={"ROOT_ACCESS_KEY_ID": self.s3_access,
                        "ROOT_SECRET_ACCESS_KEY": self.s3_secret})

        def listening():
            with socket.create_connection((self.node_ip, self.S3_PORT), timeout=1):
                return True
        self.wait_for("versitygw listening", listening, 30, logs=["versitygw"], interval=0.1)

    def artifact_repository_config(self) -> dict:
        """The controller's default artifact repository, as an operator configures it."""
        return {"s3": {"bucket": self.S3_BUCKET, "endpoint": self.s3_endpoint, "insecure": True,
                       "accessKeySecret": {"name": self.S3_SECRET, "key": "accesskey"},
                       "secretKeySecret": {"name": self.S3_SECRET, "key": "secretkey"}}}

    def artifact_credentials(self, namespace: str) -> None:
        """The S3 credentials Secret the artifact repository names, in `namespace`."""
        self.kube.apply([{"apiVersion": "v1", "kind": "Secret",
                          "metadata": {"name": self.S3_SECRET, "namespace": namespace},
                          "stringData": {"accesskey": self.s3_access,
                                         "secretkey": self.s3_secret}}],
                        field_manager="e2e-cluster")

    # ================================================================ Argo Workflows
    ARGO_NAMESPACE = "argo"
    # Exactly what the bundle README prescribes to operators (and `doctor` checks), so the
    # suite proves that snippet admits Argo's init and wait containers under `restricted`.
    EXECUTOR_SECURITY_CONTEXT = executor_security_context()

    @property
    def argoexec_image(self) -> str:
        return images.argoexec_image().name

    def start_argo_workflows(self) -> None:
        """Argo's workflow-controller as a process, configured the way an operator would."""
        ns = self.ARGO_NAMESPACE
        self.workflows_metrics_port = free_port()
        controller_config = {
            "executor": {"imagePullPolicy": "IfNotPresent",
                         "securityContext": self.EXECUTOR_SECURITY_CONTEXT},
            # On, as upstream ships it (https with its own self-signed certificate), on a port
            # of its own: the session's Prometheus scrapes it (start_prometheus).
            "metricsConfig": {"enabled": True, "port": self.workflows_metrics_port},
            "telemetryConfig": {"enabled": False},
            "artifactRepository": self.artifact_repository_config(),
        }
        self.kube.apply([
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
            {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "workflow-controller-configmap", "namespace": ns},
             "data": {k: yaml.safe_dump(v) for k, v in controller_config.items()}},
        ], field_manager="e2e-cluster")
        self.spawn("workflow-controller", [
            str(BIN / "workflow-controller"), f"--kubeconfig={self.kubeconfig}",
            f"--namespace={ns}", "--configmap=workflow-controller-configmap",
            f"--executor-image={self.argoexec_image}", "--loglevel=info",
        ], env={"LEADER_ELECTION_DISABLE": "true"})
        # Ready when it has processed its config (logs it) -- a Workflow created earlier is
        # picked up anyway.
        self.wait_for("workflow-controller started",
                      lambda: "Starting Workflow Controller" in
                      (self.logs_dir / "workflow-controller.log").read_text(errors="replace"),
                      60, logs=["workflow-controller"])

    # ================================================================ Prometheus
    # The job the bundle's PodMonitor gives the controller's target (the prometheus-operator
    # names a PodMonitor's job <namespace>/<name>): the alerts that read `up` use it.
    PROMETHEUS_JOB = f"argo-delivery/{WORKFLOWS_MONITOR}"
    SCRAPE_INTERVAL = "2s"

    def start_prometheus(self) -> None:
        """Prometheus (built by `make tools`) as a process on the host, scraping the workflow
        controller's metrics all session the way the bundle's PodMonitor does: https with the
        controller's self-signed certificate. Rules are loaded later (`load_rules`)."""
        root = self.workdir / "prometheus"
        (root / "rules").mkdir(parents=True)
        port = free_port()
        config = {
            "global": {"scrape_interval": self.SCRAPE_INTERVAL,
                       "evaluation_interval": self.SCRAPE_INTERVAL},
            "rule_files": [str(root / "rules" / "*.yaml")],
            "scrape_configs": [{
                "job_name": self.PROMETHEUS_JOB, "scheme": "https",
                "tls_config": {"insecure_skip_verify": True},
                "static_configs": [{"targets": [f"127.0.0.1:{self.workflows_metrics_port}"]}]}],
        }
        (root / "prometheus.yaml").write_text(yaml.safe_dump(config))
        self.spawn("prometheus", [
            str(BIN / "prometheus"), f"--config.file={root / 'prometheus.yaml'}",
            f"--storage.tsdb.path={root / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle", "--log.level=info"])
        self.prometheus_url = f"http://127.0.0.1:{port}"
        self.state.data["prometheus"] = self.prometheus_url
        self.state.save()
        self.wait_for("Prometheus scraping the workflow controller",
                      lambda: self.prometheus_query(
                          f'up{{job="{self.PROMETHEUS_JOB}"}} == 1'), 60,
                      logs=["prometheus", "workflow-controller"], interval=0.5)

    def prometheus_api(self, path: str, params: dict[str, str] | None = None,
                       method: str = "GET") -> Any:
        """A call of Prometheus's HTTP API; its `data` (raises ValueError on an error answer)."""
        url = f"{self.prometheus_url}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as r:
            body = r.read()
        if path.startswith("/-/"):
            return body
        answer = json.loads(body)
        if answer.get("status") != "success":
            raise ValueError(f"Prometheus {path}: {answer}")
        return answer["data"]

    def prometheus_query(self, expr: str) -> list[dict]:
        """An instant query's result vector."""
        return self.prometheus_api("/api/v1/query", {"query": expr})["result"]

    def load_rules(self, name: str, spec: dict) -> None:
        """Rule groups (a PrometheusRule's spec) into the session's Prometheus: written to its
        rule files, reloaded, and waited for until every group is evaluated."""
        (self.workdir / "prometheus" / "rules" / f"{name}.yaml").write_text(yaml.safe_dump(spec))
        self.prometheus_api("/-/reload", method="POST")
        wanted = {g["name"] for g in spec["groups"]}

        def loaded():
            groups = self.prometheus_api("/api/v1/rules")["groups"]
            return all(any(g["name"] == w and g.get("lastEvaluation", "").startswith("2")
                           for g in groups) for w in wanted)
        self.wait_for(f"rules {name} loaded into Prometheus", loaded, 30, logs=["prometheus"])

    def prometheus_alerts(self) -> list[dict]:
        return self.prometheus_api("/api/v1/alerts")["alerts"]

    # ================================================================ helpers for tests
    def new_namespace(self, prefix: str = "t", *, pod_security: str | None = "restricted",
                      labels: dict[str, str] | None = None) -> str:
        name = f"{prefix}-{secrets.token_hex(3)}"
        meta: dict[str, Any] = {"name": name, "labels": {"e2e.argo-delivery.io/test": "true",
                                                         **(labels or {})}}
        if pod_security:
            meta["labels"]["pod-security.kubernetes.io/enforce"] = pod_security
        self.kube.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": meta}],
                        field_manager="e2e-cluster")
        # The ServiceAccount admission plugin rejects pods until kcm made `default`.
        self.wait_for(f"ServiceAccount default in {name}", lambda: self.kube.request(
            "GET", f"/api/v1/namespaces/{name}/serviceaccounts/default", ok=(404,)
        ).get("kind") == "ServiceAccount", 30, logs=["kube-controller-manager"])
        if getattr(self, "s3_access", None):
            self.artifact_credentials(name)
        return name

    def delete_namespace(self, name: str) -> None:
        self.kube.request("DELETE", f"/api/v1/namespaces/{name}", ok=(404,))

    def workflow_service_account(self, namespace: str, name: str = "workflow") -> str:
        """A ServiceAccount with what Argo's executor needs (WorkflowTaskResults)."""
        self.kube.apply([
            {"apiVersion": "v1", "kind": "ServiceAccount",
             "metadata": {"name": name, "namespace": namespace}},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
             "metadata": {"name": f"{name}-executor", "namespace": namespace},
             "rules": [{"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"],
                        "verbs": ["create", "patch"]}]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
             "metadata": {"name": f"{name}-executor", "namespace": namespace},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                         "name": f"{name}-executor"},
             "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]},
        ], field_manager="e2e-cluster")
        return name

    # ---------------------------------------------------------------- git server
    def start_git_daemon(self, base: Path) -> str:
        """`git daemon` serving every repository under `base` (read-only, git://) on the node
        IP, where pods reach it; owned by the cluster (stopped with it). Returns the URL
        prefix: f"{prefix}/{repo_dir_name}"."""
        port = free_port()
        name = f"git-daemon-{port}"
        self.spawn(name, [shutil.which("git") or "git", "daemon", "--reuseaddr", "--export-all",
                          f"--listen={self.node_ip}", f"--port={port}", "--max-connections=64",
                          f"--base-path={base}", str(base)])

        def listening():
            with socket.create_connection((self.node_ip, port), timeout=1):
                return True
        self.wait_for("git daemon listening", listening, 15, logs=[name], interval=0.05)
        return f"git://{self.node_ip}:{port}"

    # ---------------------------------------------------------------- bundles
    def render_bundle(self, out: Path, config_text: str | None = None) -> Path:
        """Render a platform config (default: the embedded one) for this cluster.

        The step images (`images.python`, `images.git`) and suites on the public python image
        point at the locally built python3 + git image; everything else is as the config
        says. Returns the bundle dir.
        """
        from argo_delivery.bundle import build_bundle, write_bundle
        from argo_delivery.config import default_config_text, parse_config

        data = yaml.safe_load(config_text or default_config_text())
        local = images.python_git_image().name
        data.setdefault("images", {}).update({"python": local, "git": local})
        # suites that name the public python image run the local one (they fail fast there:
        # it has no pytest) rather than waiting out an image pull that cannot succeed
        for project in data.get("projects", []):
            for suites in (project.get("testSuites") or {}).values():
                for suite in suites:
                    if suite["image"].startswith("docker.io/library/python:"):
                        suite["image"] = local
        config = parse_config(yaml.safe_dump(data, sort_keys=False), source="e2e")
        return write_bundle(build_bundle(config), out).path

    def apply_bundle(self, bundle_dir: Path) -> list[dict]:
        """Apply a rendered bundle as its README tells an operator: its CRDs, wait until they
        are Established, then everything else (server-side apply, in the bundle's order)."""
        index = json.loads((Path(bundle_dir) / "bundle.json").read_text())
        docs = [yaml.safe_load((Path(bundle_dir) / r["path"]).read_text())
                for r in index["resources"]]
        return self.kube.apply(docs, field_manager="argo-delivery-e2e")

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None,
            ) -> dict | None:
        path = self.kube.path_for(api_version, kind, name, namespace)
        got = self.kube.request("GET", path, ok=(404,))
        return None if not got or got.get("kind") == "Status" else got

    def wait_workflow(self, namespace: str, name: str, phases: Iterable[str] = ("Succeeded",),
                      timeout: float = 120) -> dict:
        """Wait until the Workflow reaches a final phase; fail with evidence unless in `phases`."""
        phases = set(phases)
        final = {"Succeeded", "Failed", "Error"}

        def done():
            wf = self.get("argoproj.io/v1alpha1", "Workflow", name, namespace)
            phase = ((wf or {}).get("status") or {}).get("phase")
            return wf if phase in final | phases else None

        try:
            wf = self.wait_for(f"Workflow {namespace}/{name} finished", done, timeout,
                               logs=["workflow-controller"], interval=0.25)
        except ClusterError as e:
            raise ClusterError(f"{e}\n{self.dump_namespace(namespace)}") from None
        phase = wf["status"].get("phase")
        if phase not in phases:
            raise ClusterError(f"Workflow {namespace}/{name} ended {phase}, expected "
                               f"{sorted(phases)}: {wf['status'].get('message')}\n"
                               f"{self.dump_namespace(namespace)}")
        return wf

    def wait_condition(self, api_version: str, kind: str, name: str, namespace: str | None,
                       condition: str, timeout: float = 120, status: str = "True",
                       logs: Iterable[str] = ()) -> dict:
        """Wait until the resource has `condition` with `status` (e.g. an EventBus Deployed)."""
        def ok():
            obj = self.get(api_version, kind, name, namespace)
            conds = ((obj or {}).get("status") or {}).get("conditions") or []
            return obj if any(c.get("type") == condition and c.get("status") == status
                              for c in conds) else None

        try:
            return self.wait_for(f"{kind} {namespace}/{name} {condition}={status}", ok, timeout,
                                 logs=logs)
        except ClusterError as e:
            obj = self.get(api_version, kind, name, namespace)
            raise ClusterError(f"{e}\nstatus: {json.dumps((obj or {}).get('status'), indent=1)}"
                               f"\n{self.dump_namespace(namespace) if namespace else ''}") from None

    def wait_pod(self, namespace: str, name: str, phases: Iterable[str] = ("Succeeded",),
                 timeout: float = 60) -> dict:
        phases = set(phases)

        def done():
            pod = self.get("v1", "Pod", name, namespace)
            phase = ((pod or {}).get("status") or {}).get("phase")
            return pod if phase in phases | {"Failed", "Succeeded"} else None

        try:
            pod = self.wait_for(f"Pod {namespace}/{name}", done, timeout, logs=["kubelet"])
        except ClusterError as e:
            raise ClusterError(f"{e}\n{self.dump_namespace(namespace)}") from None
        if pod["status"]["phase"] not in phases:
            raise ClusterError(f"Pod {namespace}/{name} is {pod['status']['phase']}\n"
                               f"{self.dump_namespace(namespace)}")
        return pod

    def pod_logs(self, namespace: str, pod: str, container: str | None = None) -> str:
        """A container's log (the API's error text when there is none, e.g. not started)."""
        import urllib.parse

        url = f"{self.kube.server}/api/v1/namespaces/{namespace}/pods/{pod}/log"
        if container:
            url += "?" + urllib.parse.urlencode({"container": container})
        r = self.kube.http.request("GET", url, headers=self.kube._auth())
        return r.data.decode(errors="replace")

    def dump_namespace(self, namespace: str, log_lines: int = 60) -> str:
        """Pods (phase, container states), their logs and the namespace's events."""
        out = [f"===== namespace {namespace} ====="]
        try:
            pods = self.kube.request("GET", f"/api/v1/namespaces/{namespace}/pods")["items"]
            for pod in pods:
                name = pod["metadata"]["name"]
                st = pod.get("status") or {}
                out.append(f"--- pod {name}: {st.get('phase')} {st.get('reason', '')} "
                           f"{st.get('message', '')}")
                for cs in (st.get("initContainerStatuses") or []) + (
                        st.get("containerStatuses") or []):
                    out.append(f"    {cs['name']}: {json.dumps(cs.get('state'))}")
                    logs = self.pod_logs(namespace, name, cs["name"])
                    out += ["      | " + line for line in logs.splitlines()[-log_lines:]]
            events = self.kube.request("GET", f"/api/v1/namespaces/{namespace}/events")["items"]
            out.append("--- events")
            for ev in events[-40:]:
                obj = ev.get("involvedObject") or {}
                out.append(f"    {ev.get('type')} {obj.get('kind')}/{obj.get('name')} "
                           f"{ev.get('reason')}: {ev.get('message')}")
        except Exception as e:  # noqa: BLE001 - a dump must not hide the original failure
            out.append(f"(dump failed: {e!r})")
        return "\n".join(out)

    def logs(self, lines: int = LOG_TAIL_LINES) -> str:
        """Tails of every component's log."""
        return "\n".join(self.log_tail(p["name"], lines)
                         for p in self.state.data.get("processes") or [])

    # ================================================================ stop
    def stop(self) -> list[str]:
        """Undo everything the state file names; returns what was done (also in teardown.log)."""
        data = self.state.data
        if not data or data.get("processes") is None:
            return []  # never started, or torn down already
        log = self.teardown_log
        procs = {p["name"]: p for p in data.get("processes", [])}
        first = [n for n in procs if n not in (
            "kubelet", "containerd", "kube-proxy", "kube-apiserver", "etcd")]
        for name in [*reversed(first), "kubelet"]:
            if name in procs:
                p = procs[name]
                log.append(f"{name} (pid {p['pid']}): {hoststate.stop_pid(p['pid'], p['exe'])}")
        self._stop_containers(data, procs.get("containerd"), log)
        for name in ("kube-proxy", "kube-apiserver", "etcd"):
            if name in procs:
                p = procs[name]
                log.append(f"{name} (pid {p['pid']}): {hoststate.stop_pid(p['pid'], p['exe'])}")
        self._cleanup_host(data, log)
        data["processes"] = None
        self.state.save()
        try:
            (Path(data["workdir"]) / "teardown.log").write_text("\n".join(log) + "\n")
        except OSError:
            pass
        return log

    def _stop_containers(self, data: dict, containerd: dict | None, log: list[str]) -> None:
        workdir = Path(data["workdir"])
        sock = workdir / "containerd" / "containerd.sock"
        task_dir = workdir / "containerd" / "state" / "io.containerd.runtime.v2.task"
        ctr = _which("ctr")
        alive = containerd and hoststate.pid_runs(containerd["pid"], containerd["exe"])
        if alive and ctr:
            for ns in ("k8s.io", "default"):
                run = lambda *a, ns=ns: subprocess.run(  # noqa: E731
                    [ctr, "--address", str(sock), "-n", ns, *a], capture_output=True, text=True,
                    timeout=30)
                try:
                    tasks = [line.split()[0] for line in run("tasks", "ls").stdout.splitlines()[1:]
                             if line.strip()]
                    for t in tasks:
                        run("tasks", "kill", "-a", "-s", "SIGKILL", t)
                    deadline = time.monotonic() + 10
                    for t in tasks:
                        while time.monotonic() < deadline:
                            if run("tasks", "delete", t).returncode == 0:
                                break
                            time.sleep(0.1)
                    if tasks:
                        log.append(f"containerd: killed and deleted {len(tasks)} tasks in {ns}")
                except subprocess.TimeoutExpired as e:
                    log.append(f"ctr timed out: {e}")
        if containerd:
            log.append(f"containerd (pid {containerd['pid']}): "
                       f"{hoststate.stop_pid(containerd['pid'], containerd['exe'])}")
        # Whatever survived: container inits, then shims, by the PIDs in the state dir.
        for pidfile in sorted(task_dir.glob("*/*/init.pid")) + sorted(task_dir.glob("*/*/shim.pid")):
            try:
                pid = int(pidfile.read_text().strip())
            except (OSError, ValueError):
                continue
            if hoststate.pid_alive(pid):
                os.kill(pid, 9)
                log.append(f"killed {pidfile.name[:-4]} pid {pid} ({pidfile.parent.name[:12]})")

    def _cleanup_host(self, data: dict, log: list[str]) -> None:
        workdir = Path(data["workdir"])
        # Network namespaces the CRI made (not there before the start).
        before = set(data.get("netns_before") or [])
        new_netns = [n for n in hoststate.netns_entries() if n not in before and n.startswith("cni-")]
        for n in new_netns:
            path = hoststate.NETNS_DIR / n
            log.append(f"netns {n}: {hoststate.unmount(str(path))}")
            try:
                path.unlink()
            except OSError as e:
                log.append(f"rm {path}: {e}")
        if data.get("netns_dir_existed") is False:
            try:
                hoststate.NETNS_DIR.rmdir()
                log.append(f"{hoststate.NETNS_DIR}: removed")
            except OSError:
                pass
        # Mounts under the work dir (kubelet volumes, its root bind mount, container rootfs).
        for _ in range(3):
            points = hoststate.mounts_under([workdir])
            if not points:
                break
            for point in points:
                log.append(f"mount {point}: {hoststate.unmount(point)}")
        # The kubelet's cgroup root in every hierarchy.
        cg = data.get("cgroup")
        if cg:
            for d in hoststate.cgroup_dirs(cg):
                hoststate.remove_cgroup_tree(d, log)
            left = hoststate.cgroup_dirs(cg)
            log.append(f"cgroups /{cg}: " + ("removed" if not left else f"left: {left}"))
        bridge = data.get("bridge")
        if data.get("bridge_created") and bridge and Path(f"/sys/class/net/{bridge}").exists():
            # veths of pods whose netns is gone went with it; any left is on our bridge.
            links = subprocess.run(["ip", "-o", "link", "show", "master", bridge],
                                   capture_output=True, text=True).stdout
            for line in links.splitlines():
                veth = line.split(":")[1].strip().split("@")[0]
                subprocess.run(["ip", "link", "del", veth], capture_output=True)
                log.append(f"veth {veth}: deleted")
            proc = subprocess.run(["ip", "link", "del", bridge], capture_output=True, text=True)
            log.append(f"bridge {bridge}: {'deleted' if proc.returncode == 0 else proc.stderr}")
        if data.get("run_containerd_existed") is False:
            run = Path("/run/containerd")
            for d in sorted((p for p in run.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                try:
                    d.rmdir()
                except OSError:
                    pass
            try:
                run.rmdir()
                log.append("/run/containerd: removed")
            except OSError as e:
                log.append(f"/run/containerd: kept ({e})")
        if data.get("iptables_before"):
            hoststate.iptables_cleanup(data["iptables_before"], log)
        subnet = data.get("subnet")
        if subnet and _which("conntrack"):
            for flag in ("-s", "-d"):
                subprocess.run([_which("conntrack"), "-D", flag, subnet], capture_output=True)
        for name, value in (data.get("sysctls_before") or {}).items():
            now = hoststate.read_sysctls().get(name)
            if now is not None and now != value:
                try:
                    hoststate.write_sysctl(name, value)
                    log.append(f"sysctl {name}: {now} -> {value}")
                except OSError as e:
                    log.append(f"sysctl {name}: cannot restore {value}: {e}")


# -------------------------------------------------------------------- command line
def main(argv: list[str]) -> int:
    cmd = argv[1] if len(argv) > 1 else "status"
    cluster = Cluster(Path(os.environ.get("E2E_WORKDIR", DEFAULT_WORKDIR)))
    if cmd == "up":
        try:
            cluster.start(argo_events="--no-events" not in argv)
        except ClusterError as e:
            print(f"cluster-up failed: {e}", file=sys.stderr)
            return 1
        atexit.unregister(cluster.stop)
        print(json.dumps({k: round(v, 1) for k, v in cluster.timings.items()}))
        print(f"cluster is up; logs in {cluster.logs_dir}")
        print(f"export KUBECONFIG={cluster.kubeconfig}")
        if cluster.prometheus_url:
            print(f"Prometheus (scraping the workflow controller): {cluster.prometheus_url}")
        return 0
    if cmd == "down":
        for line in cluster.stop():
            print(line)
        return 0
    if cmd == "status":
        for p in cluster.state.data.get("processes") or []:
            print(f"{p['name']:24} pid {p['pid']:>7} "
                  f"{'running' if hoststate.pid_runs(p['pid'], p['exe']) else 'not running'}")
        if cluster.state.data.get("kubeconfig"):
            print(f"export KUBECONFIG={cluster.state.data['kubeconfig']}")
        return 0
    print("usage: python3 -m tests.e2e.cluster up [--no-events] | down | status", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
