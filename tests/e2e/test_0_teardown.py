"""A start that fails half-way leaves nothing behind (runs first: before the session cluster).

The node is brought up to the point where containerd, etcd, the apiserver, kcm, the scheduler,
the kubelet and kube-proxy run (bridge, guard chain, sysctls, cgroups, kubelet mounts,
iptables chains all exist), then the wait for the node fails by injection. Cluster.start()
must undo everything: this compares the host with what it was before.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.e2e import cluster as e2e_cluster
from tests.e2e import hoststate

pytestmark = pytest.mark.e2e


def _chains() -> set[str]:
    out = set()
    for cmd in ("iptables-save", "ip6tables-save"):
        for line in subprocess.run([cmd], capture_output=True, text=True).stdout.splitlines():
            if line.startswith(":"):
                out.add(f"{cmd}:{line[1:].split()[0]}")
    return out


def test_failed_start_is_undone(tmp_path: Path, monkeypatch):
    if Path(f"/sys/class/net/{e2e_cluster.BRIDGE}").exists():
        pytest.fail(f"{e2e_cluster.BRIDGE} exists: this test must run before the session cluster "
                    "starts (it does in file order) and with no `make cluster-up` running",
                    pytrace=False)
    before = {"sysctls": hoststate.read_sysctls(), "chains": _chains(),
              "netns": hoststate.netns_entries(), "links": set(Path("/sys/class/net").iterdir())}

    def injected(self, timeout=90):
        # everything up to the kubelet runs; wait until its mounts and chains exist
        self.wait_for("kubelet root mounted", lambda: hoststate.mounts_under([self.workdir]), 30)
        raise e2e_cluster.ClusterError("injected failure while waiting for the node")

    monkeypatch.setattr(e2e_cluster.Cluster, "wait_node_ready", injected)
    c = e2e_cluster.Cluster(tmp_path / "run")
    with pytest.raises(e2e_cluster.ClusterError, match="injected failure"):
        c.start()
    procs = c.state.data.get("processes")
    assert procs is None, "the state file still lists processes"
    log = (tmp_path / "run" / "teardown.log").read_text()
    assert "kubelet" in log and "containerd" in log
    assert not hoststate.mounts_under([tmp_path])
    assert not hoststate.cgroup_dirs(e2e_cluster.CGROUP_NAME)
    assert set(Path("/sys/class/net").iterdir()) == before["links"]
    assert _chains() == before["chains"]
    assert hoststate.netns_entries() == before["netns"]
    assert hoststate.read_sysctls() == before["sysctls"]
