"""What every script step shares: its error type, its log line, its Kubernetes API client.

Standard library only: the renderer prepends this file to a step's source (see
templates/_steps.py), so a step is one self-contained script any pinned Python image runs.
A step talks to the API server with its own ServiceAccount's token, mounted explicitly
(security.script_step(api_access=True)).
"""

from __future__ import annotations

import json
import os
import ssl
import time
import urllib.error
import urllib.request

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
EXIT_PERMANENT = 2  # retrying cannot help (a missing repo, a refused request, bad input)
EXIT_TRANSIENT = 3  # the network or the API server still failed after the step's own retries
KUBE_ATTEMPTS = 4  # tries of one API request (2, 4 and 8 s apart)


class StepError(Exception):
    def __init__(self, message, exit_code):
        super().__init__(message)
        self.exit_code = exit_code


def log(event, **fields):
    print(json.dumps({"event": event, **fields}, sort_keys=True), flush=True)


class Kube:
    """The few Kubernetes API calls a step makes, with its own ServiceAccount token."""

    def __init__(self):
        server = os.environ.get("AD_API_SERVER")
        if not server:
            host = os.environ["KUBERNETES_SERVICE_HOST"]
            port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
            server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
        self.server = server.rstrip("/")
        token_file = os.environ.get("AD_TOKEN_FILE", SA_DIR + "/token")
        try:
            with open(token_file) as handle:
                self.token = handle.read().strip()
        except OSError as exc:
            raise StepError(f"no API token at {token_file} ({exc.strerror}): this step needs its "
                            "ServiceAccount's token mounted (the template's api-token volume)",
                            EXIT_PERMANENT) from None
        self.context = ssl.create_default_context(
            cafile=os.environ.get("AD_CA_FILE", SA_DIR + "/ca.crt"))

    def request(self, method, path, body=None, content_type="application/json"):
        """(HTTP status, decoded JSON body). 5xx and connection errors are retried, and so are
        401 and 403 while the API server says it is not ready (/readyz): a freshly started API
        server refuses requests until its RBAC and token caches are filled. A refusal from a
        ready API server is returned at once (retrying cannot help)."""
        data = None if body is None else json.dumps(body).encode()
        for attempt in range(1, KUBE_ATTEMPTS + 1):
            req = urllib.request.Request(self.server + path, data=data, method=method, headers={
                "Authorization": "Bearer " + self.token, "Accept": "application/json",
                "Content-Type": content_type})
            try:
                with urllib.request.urlopen(req, context=self.context, timeout=30) as response:
                    return response.status, json.load(response)
            except urllib.error.HTTPError as exc:
                payload = exc.read()
                try:
                    document = json.loads(payload)
                except ValueError:
                    document = {"message": payload.decode(errors="replace")}
                if exc.code in (401, 403):
                    if self.ready():
                        return exc.code, document
                    log("api-not-ready", method=method, path=path, code=exc.code,
                        attempt=attempt)
                    if attempt == KUBE_ATTEMPTS:
                        raise StepError(f"{method} {path}: HTTP {exc.code} while the API server "
                                        f"was not ready (/readyz), {KUBE_ATTEMPTS} tries",
                                        EXIT_TRANSIENT) from None
                elif exc.code < 500 or attempt == KUBE_ATTEMPTS:
                    return exc.code, document
            except (urllib.error.URLError, OSError) as exc:
                if attempt == KUBE_ATTEMPTS:
                    raise StepError(f"Kubernetes API unreachable: {exc}", EXIT_TRANSIENT) from exc
            time.sleep(2 ** attempt)
        raise AssertionError("unreachable")

    def ready(self):
        """True when the API server's /readyz answers 200 (every group may read it: the
        system:public-info-viewer ClusterRole); False on any other answer or no answer."""
        req = urllib.request.Request(self.server + "/readyz", headers={
            "Authorization": "Bearer " + self.token})
        try:
            with urllib.request.urlopen(req, context=self.context, timeout=10) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def merge_patch(self, path, body):
        return self.request("PATCH", path, body, "application/merge-patch+json")
