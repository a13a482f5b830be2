"""The steps' Kubernetes client (argo_delivery/steplib.py) against an HTTPS server on loopback.

The server plays an API server that was just restarted: it refuses (401/403) while its
/readyz is not yet 200, as kube-apiserver does until its RBAC and token caches are filled
(found on the end-to-end cluster, issue 15: a step got 403 and failed as permanent).
"""

from __future__ import annotations

import http.server
import json
import shutil
import ssl
import subprocess
import threading

import pytest

from argo_delivery.templates._steps import step_module

STEP = step_module("run_stream")


class FakeApiServer(http.server.ThreadingHTTPServer):
    """Answers `answers` in turn to API requests and `ready` in turn to /readyz (the last
    answer repeats); records every request's method, path and token."""

    def __init__(self, answers, ready):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answers, self.ready, self.seen = list(answers), list(ready), []


class _Handler(http.server.BaseHTTPRequestHandler):
    def _answer(self):
        server = self.server
        server.seen.append((self.command, self.path, self.headers.get("Authorization")))
        queue = server.ready if self.path == "/readyz" else server.answers
        code = queue.pop(0) if len(queue) > 1 else queue[0]
        body = (b"ok" if code == 200 else b"[-]informer-sync failed") if self.path == "/readyz" \
            else json.dumps({"kind": "Status", "code": code, "message": f"answer {code}"}
                            if code != 200 else {"kind": "Version", "ok": True}).encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def tls(tmp_path):
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("need `openssl` (apt-get install openssl) for the test server's certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return key, cert


@pytest.fixture
def serve(tls, tmp_path, monkeypatch):
    key, cert = tls
    servers = []
    sleeps = []
    monkeypatch.setattr(STEP, "time", type("Clock", (), {"sleep": staticmethod(sleeps.append)}))
    (tmp_path / "token").write_text("step-token\n")

    def start(answers, ready):
        server = FakeApiServer(answers, ready)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        monkeypatch.setenv("AD_API_SERVER", f"https://127.0.0.1:{server.server_address[1]}")
        monkeypatch.setenv("AD_TOKEN_FILE", str(tmp_path / "token"))
        monkeypatch.setenv("AD_CA_FILE", str(cert))
        return server, STEP.Kube()
    yield start, sleeps
    for server in servers:
        server.shutdown()
        server.server_close()


def api_requests(server):
    return [(method, path) for method, path, _ in server.seen if path != "/readyz"]


def test_a_refusal_while_the_api_server_is_not_ready_is_retried_until_it_is(serve, capsys):
    start, sleeps = serve
    server, kube = start(answers=[403, 401, 200], ready=[500, 500, 200])
    code, body = kube.request("GET", "/apis/x/v1/versions/v1")
    assert (code, body) == (200, {"kind": "Version", "ok": True})
    assert api_requests(server) == [("GET", "/apis/x/v1/versions/v1")] * 3
    assert sleeps == [2, 4]
    assert {token for _, _, token in server.seen} == {"Bearer step-token"}  # /readyz too
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(line["event"], line["code"], line["attempt"]) for line in lines] == [
        ("api-not-ready", 403, 1), ("api-not-ready", 401, 2)]


def test_a_refusal_from_a_ready_api_server_is_returned_at_once(serve):
    start, sleeps = serve
    server, kube = start(answers=[403], ready=[200])
    code, body = kube.request("PUT", "/apis/x/v1/versions/v1/status", {"status": {}})
    assert code == 403 and body["message"] == "answer 403"
    assert api_requests(server) == [("PUT", "/apis/x/v1/versions/v1/status")]
    assert sleeps == []


def test_an_api_server_that_never_gets_ready_fails_the_step_as_transient(serve):
    start, sleeps = serve
    server, kube = start(answers=[403], ready=[500])
    with pytest.raises(STEP.StepError, match=r"HTTP 403 while the API server was not ready "
                                             r"\(/readyz\), 4 tries") as caught:
        kube.request("GET", "/apis/x/v1/versions")
    assert caught.value.exit_code == STEP.EXIT_TRANSIENT
    assert len(api_requests(server)) == STEP.KUBE_ATTEMPTS
    assert sleeps == [2, 4, 8]


def test_a_4xx_other_than_401_and_403_does_not_ask_for_readiness(serve):
    start, sleeps = serve
    server, kube = start(answers=[404], ready=[500])
    assert kube.request("GET", "/apis/x/v1/versions/gone")[0] == 404
    assert [path for _, path, _ in server.seen] == ["/apis/x/v1/versions/gone"]
    assert sleeps == []


def test_5xx_is_retried_and_the_last_answer_returned(serve):
    start, sleeps = serve
    server, kube = start(answers=[503], ready=[200])
    assert kube.request("GET", "/apis/x/v1/versions")[0] == 503
    assert len(api_requests(server)) == STEP.KUBE_ATTEMPTS and sleeps == [2, 4, 8]

