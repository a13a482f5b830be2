"""Services by name: kube-proxy (iptables) and CoreDNS (no upstream resolver)."""

from __future__ import annotations

import pytest

from tests.e2e.images import busybox_image, python_git_image

# busybox's own nslookup has a resolver of its own; its wget goes through static glibc's
# getaddrinfo, which segfaults on DNS (NSS in a static binary): HTTP clients use python3.
FETCH = """
import sys, time, urllib.request
for attempt in range(15):
    try:
        print(urllib.request.urlopen(sys.argv[1], timeout=3).read().decode()); sys.exit(0)
    except OSError as e:
        print("retry:", e); time.sleep(1)
sys.exit(1)
"""

pytestmark = pytest.mark.e2e

SECURITY = {"runAsNonRoot": True, "runAsUser": 65532, "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}


def _pod(name, namespace, script, labels=None, restart="Never", image=None):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
            "spec": {"restartPolicy": restart, "automountServiceAccountToken": False,
                     "containers": [{"name": "main", "image": image or busybox_image().name,
                                     "command": ["sh", "-c", script],
                                     "securityContext": SECURITY}]}}


def test_pod_reaches_a_service_by_dns_name(cluster, namespace):
    server = _pod("web", namespace, "mkdir -p /tmp/www && echo served-by-web > /tmp/www/index.html"
                  " && exec httpd -f -p 8080 -h /tmp/www", labels={"app": "web"}, restart="Always")
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": namespace},
               "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}}
    cluster.kube.apply([server, service])
    cluster.wait_pod(namespace, "web", phases=("Running",))
    fqdn = f"web.{namespace}.svc.cluster.local"
    client = _pod("client", namespace,
                  f"getent hosts {fqdn}; python3 -c '{FETCH}' http://web/",
                  image=python_git_image().name)
    cluster.kube.apply([client])
    cluster.wait_pod(namespace, "client", timeout=60)
    logs = cluster.pod_logs(namespace, "client")
    cluster_ip = cluster.get("v1", "Service", "web", namespace)["spec"]["clusterIP"]
    assert cluster_ip in logs  # nslookup answered with the Service's IP
    assert "served-by-web" in logs


def test_dns_does_not_forward(cluster, namespace):
    """A name outside the cluster gets no answer from upstream: nothing is forwarded."""
    client = _pod("outside", namespace, "nslookup example.com; echo exit=$?")
    cluster.kube.apply([client])
    cluster.wait_pod(namespace, "outside", timeout=60)
    logs = cluster.pod_logs(namespace, "outside")
    assert "exit=1" in logs, logs
