"""Real git repositories for flow tests: local bare repos, and a `git daemon` on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "argo-delivery tests", "GIT_AUTHOR_EMAIL": "tests@argo-delivery.invalid",
    "GIT_COMMITTER_NAME": "argo-delivery tests", "GIT_COMMITTER_EMAIL": "tests@argo-delivery.invalid",
    "GIT_CONFIG_NOSYSTEM": "1", "HOME": os.devnull,
}


def git(*args: str, cwd: Path | None = None) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV},
                            capture_output=True, text=True, check=True)
    return result.stdout.strip()


@dataclass
class Repo:
    """A bare repository and the head commit of each of its branches."""

    name: str
    path: Path
    heads: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.path.as_uri()


def make_repo(root: Path, name: str, branches: dict[str, int], files: int = 0) -> Repo:
    """A bare repo at root/<name>.git with `count` commits on each branch.

    `files` adds that many 1 KiB source files to the first commit, for repos of a realistic size.
    """
    bare = root / f"{name}.git"
    work = root / f".work-{name}"
    git("init", "-q", "--bare", "-b", "main", str(bare))
    git("init", "-q", "-b", "main", str(work))
    repo = Repo(name, bare)
    for index in range(files):
        (work / "src").mkdir(exist_ok=True)
        (work / "src" / f"module_{index}.py").write_text(f"# {name} {index}\n" + "x = 1\n" * 170)
    if files:
        git("add", "src", cwd=work)
    base = None
    for branch, count in branches.items():
        if base is not None:
            git("checkout", "-q", "-B", branch, base, cwd=work)
        for index in range(count):
            (work / "file.txt").write_text(f"{name} {branch} {index}\n")
            git("add", "file.txt", cwd=work)
            git("commit", "-q", "-m", f"{branch} {index}", cwd=work)
        repo.heads[branch] = git("rev-parse", "HEAD", cwd=work)
        if base is None:
            base = repo.heads[branch]
        git("push", "-q", str(bare), f"HEAD:refs/heads/{branch}", cwd=work)
    return repo


def push_commit(repo: Repo, branch: str = "main") -> str:
    """One more commit on `branch` of `repo`, pushed as a developer would; its SHA."""
    work = repo.path.parent / f".work-{repo.name}"
    git("checkout", "-q", branch, cwd=work)
    (work / "file.txt").write_text((work / "file.txt").read_text() + "more\n")
    git("commit", "-q", "-am", "another change", cwd=work)
    git("push", "-q", str(repo.path), f"HEAD:refs/heads/{branch}", cwd=work)
    repo.heads[branch] = git("rev-parse", "HEAD", cwd=work)
    return repo.heads[branch]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class GitDaemon:
    """`git daemon` serving every repo under `base` over git:// on a port of `host` (loopback
    by default; the end-to-end tests bind the cluster's node IP, which pods reach)."""

    def __init__(self, base: Path, host: str = "127.0.0.1"):
        self.base = base
        self.host = host
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, repo: Repo) -> str:
        return f"git://{self.host}:{self.port}/{repo.path.relative_to(self.base).as_posix()}"

    def __enter__(self) -> GitDaemon:
        self.process = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--export-all", f"--listen={self.host}",
             "--max-connections=128",
             f"--port={self.port}", f"--base-path={self.base}", str(self.base)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                if self.process.poll() is not None:
                    error = self.process.stderr.read().decode()
                    raise RuntimeError(f"git daemon exited: {error}") from None
                time.sleep(0.05)
        raise RuntimeError("git daemon did not start listening within 10 s")

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(timeout=10)


class GitHttpServer:
    """Smart HTTP (`git http-backend` as CGI) on loopback, behind HTTP Basic auth."""

    def __init__(self, base: Path, username: str, password: str):
        import base64
        import http.server
        import threading

        self.base = base
        expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        server_ref = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def _serve(self) -> None:
                if self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.end_headers()
                    return
                path, _, query = self.path.partition("?")
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                env = {"PATH": os.environ["PATH"], "GIT_PROJECT_ROOT": str(server_ref.base),
                       "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path, "QUERY_STRING": query,
                       "REQUEST_METHOD": self.command, "REMOTE_USER": username,
                       "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                       "CONTENT_LENGTH": str(len(body))}
                out = subprocess.run(["git", "http-backend"], input=body, env=env,
                                     capture_output=True, check=True).stdout
                head, _, payload = out.partition(b"\r\n\r\n")
                headers = [line.split(": ", 1) for line in head.decode().split("\r\n") if line]
                status = next((int(v.split()[0]) for k, v in headers if k.lower() == "status"), 200)
                self.send_response(status)
                for key, value in headers:
                    if key.lower() != "status":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _serve

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, repo: Repo) -> str:
        return f"http://127.0.0.1:{self.port}/{repo.path.name}"

    def __enter__(self) -> GitHttpServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def commit_files(repo: Repo, branch: str, files: dict[str, str], message: str = "files") -> str:
    """One commit on `branch` of `repo` writing `files` (path -> text; None deletes), pushed;
    its SHA."""
    work = repo.path.parent / f".work-{repo.name}"
    git("checkout", "-q", branch, cwd=work)
    for path, text in files.items():
        target = work / path
        if text is None:
            git("rm", "-q", "-r", path, cwd=work)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        git("add", path, cwd=work)
    git("commit", "-q", "-m", message, cwd=work)
    git("push", "-q", str(repo.path), f"HEAD:refs/heads/{branch}", cwd=work)
    repo.heads[branch] = git("rev-parse", "HEAD", cwd=work)
    return repo.heads[branch]


class HangingGitServer:
    """A git server that hangs: it accepts every connection on a port of `host` and never
    answers, holding the connection open (what a wedged server or a black-holing proxy does).
    `url(path)` is a git:// URL on it; `connections` counts the accepted ones. Stopped, and
    every connection closed, on exit."""

    def __init__(self, host: str = "127.0.0.1"):
        import threading

        self.host = host
        self.connections = 0
        self._held: list[socket.socket] = []
        self._sock = socket.create_server((host, 0))
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="hanging-git", daemon=True)

    def url(self, path: str) -> str:
        return f"git://{self.host}:{self.port}/{path}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            self._held.append(conn)

    def __enter__(self) -> HangingGitServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self._held:
            conn.close()
        self._sock.close()
