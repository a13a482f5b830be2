"""What the end-to-end cluster changes on the host, recorded before and undone after.

Everything the cluster owns is written to a JSON state file as soon as it exists (processes
with their PID and binary, the bridge, our iptables chains, the sysctl values read before
any change, the netns entries and cgroups that were there before), so that teardown works
from that file alone: in the test session that started the cluster, in `make cluster-down`
(another process), and at the next start after a run that died half-way.

Only what the state file names is touched: processes by PID (after checking that the PID
still runs the binary we started), chains and rules that were not there before, netns
entries that were not there before, mounts under the cluster's work directory.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

# Kernel tunables that the kubelet (protectKernelDefaults: false), kube-proxy, the CNI bridge
# plugin or this fixture may change. Read before the start, written back after the stop.
SYSCTLS = [
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/forwarding",
    "net/ipv4/conf/all/route_localnet",
    "net/bridge/bridge-nf-call-iptables",
    "net/bridge/bridge-nf-call-ip6tables",
    "vm/overcommit_memory",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
    "net/netfilter/nf_conntrack_max",
    "net/netfilter/nf_conntrack_tcp_timeout_established",
    "net/netfilter/nf_conntrack_tcp_timeout_close_wait",
    "net/netfilter/nf_conntrack_tcp_be_liberal",
]
IPT_TABLES = ("filter", "nat", "mangle", "raw")
# Chains that the kubelet, kube-proxy and this fixture create.
OWN_CHAIN_PREFIXES = ("KUBE-", "E2E-", "CNI-")
NETNS_DIR = Path("/var/run/netns")
CGROUP_ROOT = Path("/sys/fs/cgroup")


def read_sysctls() -> dict[str, str]:
    values = {}
    for name in SYSCTLS:
        try:
            values[name] = (Path("/proc/sys") / name).read_text().strip()
        except OSError:
            pass
    return values


def write_sysctl(name: str, value: str) -> None:
    (Path("/proc/sys") / name).write_text(value + "\n")


def iptables_snapshot() -> dict[str, str]:
    """`iptables-save` per family and table (rules and chains before the start)."""
    snap = {}
    for cmd in ("iptables", "ip6tables"):
        for table in IPT_TABLES:
            proc = subprocess.run([f"{cmd}-save", "-t", table], capture_output=True, text=True)
            snap[f"{cmd}/{table}"] = proc.stdout if proc.returncode == 0 else ""
    return snap


def _chains_rules(dump: str) -> tuple[set[str], list[str]]:
    chains, rules = set(), []
    for line in dump.splitlines():
        if line.startswith(":"):
            chains.add(line[1:].split()[0])
        elif line.startswith("-A "):
            rules.append(line)
    return chains, rules


def _is_own(chain: str) -> bool:
    return chain.startswith(OWN_CHAIN_PREFIXES)


def iptables_cleanup(before: dict[str, str], log: list[str]) -> None:
    """Remove rules and chains added since `before` that belong to the cluster.

    A rule is ours when it is new and sits in one of our chains or jumps to one; a chain is
    ours when it is new and named KUBE-*, E2E-* or CNI-*.
    """
    for key, old in before.items():
        cmd, table = key.split("/")
        now = subprocess.run([f"{cmd}-save", "-t", table], capture_output=True, text=True).stdout
        old_chains, old_rules = _chains_rules(old)
        new_chains, new_rules = _chains_rules(now)
        added = [c for c in new_chains - old_chains if _is_own(c)]
        old_set = set(old_rules)
        for rule in new_rules:
            if rule in old_set:
                continue
            words = shlex.split(rule)
            chain = words[1]
            target = words[words.index("-j") + 1] if "-j" in words else ""
            if chain in added:
                continue  # flushed with its chain below
            if _is_own(chain) or _is_own(target):
                proc = subprocess.run([cmd, "-w", "-t", table, "-D", chain, *words[2:]],
                                      capture_output=True, text=True)
                log.append(f"{cmd} -t {table} -D {rule[3:]}: "
                           f"{'ok' if proc.returncode == 0 else proc.stderr.strip()}")
        for chain in added:
            subprocess.run([cmd, "-w", "-t", table, "-F", chain], capture_output=True)
        for chain in added:
            proc = subprocess.run([cmd, "-w", "-t", table, "-X", chain], capture_output=True,
                                  text=True)
            log.append(f"{cmd} -t {table} -X {chain}: "
                       f"{'ok' if proc.returncode == 0 else proc.stderr.strip()}")


def pid_alive(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def pid_runs(pid: int, exe: str) -> bool:
    """True when `pid` is alive and runs the binary `exe` (not a recycled PID)."""
    if not pid_alive(pid):
        return False
    try:
        real = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return False
    real = real.removesuffix(" (deleted)")
    return real == os.path.realpath(exe) or os.path.basename(real) == os.path.basename(exe)


def stop_pid(pid: int, exe: str, timeout: float = 10.0, sig: int = signal.SIGTERM) -> str:
    if not pid_runs(pid, exe):
        return "not running"
    os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return "stopped"
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.05)
    return "killed" if not pid_alive(pid) else "still running after SIGKILL"


def mounts_under(paths: list[Path]) -> list[str]:
    """Mount points at or below any of `paths`, deepest first."""
    found = []
    prefixes = [str(p).rstrip("/") for p in paths]
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if any(point == p or point.startswith(p + "/") for p in prefixes):
            found.append(point)
    return sorted(set(found), key=lambda p: -p.count("/"))


def unmount(point: str) -> str:
    proc = subprocess.run(["umount", point], capture_output=True, text=True)
    if proc.returncode == 0:
        return "unmounted"
    lazy = subprocess.run(["umount", "-l", point], capture_output=True, text=True)
    return "unmounted (lazy)" if lazy.returncode == 0 else proc.stderr.strip()


def netns_entries() -> list[str]:
    try:
        return sorted(p.name for p in NETNS_DIR.iterdir())
    except FileNotFoundError:
        return []


def cgroup_dirs(name: str) -> list[Path]:
    """/sys/fs/cgroup/<hierarchy>/<name> for every mounted hierarchy."""
    out = []
    try:
        for h in sorted(CGROUP_ROOT.iterdir()):
            if (h / name).is_dir():
                out.append(h / name)
    except FileNotFoundError:
        pass
    return out


def remove_cgroup_tree(path: Path, log: list[str]) -> None:
    for dirpath, _dirs, _ in sorted(os.walk(path), key=lambda t: -t[0].count("/")):
        try:
            os.rmdir(dirpath)
        except OSError as e:
            log.append(f"rmdir {dirpath}: {e}")


class StateFile:
    """The JSON record of everything a cluster owns (see the module docstring)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.data: dict = json.loads(self.path.read_text()) if self.path.exists() else {}

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        tmp.replace(self.path)

    def add_process(self, name: str, pid: int, exe: str, log: str) -> None:
        self.data.setdefault("processes", []).append(
            {"name": name, "pid": pid, "exe": exe, "log": log})
        self.save()
