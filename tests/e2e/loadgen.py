"""A bounded load generator of signed push webhooks, and the accounting of what they became.

Used by tests/e2e/test_reliability.py (N = 50) and bench/load.py (N = 50, 200, and the
saturation sweep). It only talks to the EventSource's Service on the test cluster's bridge
(from the host) and to the git repositories it is given; it sends at most `pushes` requests
and stops by itself after `seconds` + `grace`, whatever the cluster does.

The plan: `rounds` rounds, each one new commit on one component (round-robin), so that the
tracked heads form a new commit set per round; the round's `pushes / rounds` deliveries are
its own push, exact redeliveries of it (same body, same X-GitHub-Delivery: what a provider
does when it is unsure the first one arrived), and pushes of the other components' current
heads (interleaved pushes, which change no commit set). Deliveries go out at an even pace over
`seconds`, up to `concurrency` at once. Each original delivery's `sender.login` is
`load-<index>`, so every Workflow it starts can be traced back to it.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import hmac
import json
import random
import statistics
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PAYLOAD = Path(__file__).resolve().parents[1] / "conformance" / "payloads" / "github-push.json"
MAX_PUSHES = 1000          # a hard bound, whatever the caller asks
REQUEST_TIMEOUT = 10.0     # seconds per POST
ATTEMPTS = 3               # a connection error or a 5xx is retried, as providers do


@dataclass(frozen=True)
class Component:
    owner: str
    name: str
    branch: str


@dataclass
class Delivery:
    index: int                 # its own; a redelivery keeps the index of what it repeats
    round: int
    component: Component
    commit: str
    delivery_id: str
    body: bytes
    redelivery: bool = False
    interleaved: bool = False
    sent_at: float = 0.0       # wall clock (time.time()) of the first attempt
    status: int | None = None  # the last HTTP status, None: no answer
    attempts: int = 0
    error: str = ""
    history: list[str] = field(default_factory=list)   # each attempt: its status or error

    @property
    def sender(self) -> str:
        return f"load-{self.index}"


@dataclass
class LoadResult:
    deliveries: list[Delivery]
    started: float
    finished: float
    stopped_early: bool = False
    commits: dict[int, str] = field(default_factory=dict)   # round -> its new commit

    @property
    def accepted(self) -> list[Delivery]:
        return [d for d in self.deliveries if d.status is not None and 200 <= d.status < 300]

    @property
    def refused(self) -> list[Delivery]:
        return [d for d in self.deliveries if d not in self.accepted]


def payload(component: Component, commit: str, sender: str) -> bytes:
    data = json.loads(PAYLOAD.read_text())
    data["ref"], data["after"] = f"refs/heads/{component.branch}", commit
    data["repository"].update(full_name=f"{component.owner}/{component.name}", name=component.name,
                              clone_url=f"https://github.com/{component.owner}/{component.name}.git")
    data["sender"]["login"] = sender
    return json.dumps(data).encode()


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(url: str, body: bytes, secret: str, delivery_id: str) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery_id, "X-Hub-Signature-256": sign(body, secret)})
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as answer:
            return answer.status
    except urllib.error.HTTPError as e:
        return e.code


def run_load(url: str, secret: str, components: list[Component],
             commit: Callable[[Component], str], heads: Callable[[Component], str], *,
             pushes: int, rounds: int, seconds: float, redeliveries: float = 0.2,
             interleaved: float = 0.2, concurrency: int = 16, grace: float = 30.0,
             seed: int = 0, progress: Callable[[str], None] | None = None,
             observe: Callable[[Delivery], None] | None = None) -> LoadResult:
    """Send the plan (module docstring). `commit(component)` makes and pushes a new commit and
    returns it; `heads(component)` is a component's current head. Returns every delivery with
    its outcome; the caller accounts for what the cluster made of them. `observe` sees each
    delivery once it has been answered (a fault test starts its fault from there)."""
    if not 0 < rounds <= pushes <= MAX_PUSHES:
        raise ValueError(f"need 0 < rounds <= pushes <= {MAX_PUSHES}, got {rounds}, {pushes}")
    rng = random.Random(seed)
    per_round = [pushes // rounds + (1 if r < pushes % rounds else 0) for r in range(rounds)]
    interval = seconds / pushes
    started = time.time()
    deadline = time.monotonic() + seconds + grace
    result = LoadResult([], started, 0.0)
    lock = threading.Lock()

    def send(delivery: Delivery) -> None:
        for attempt in range(1, ATTEMPTS + 1):
            if time.monotonic() > deadline:
                delivery.error = delivery.error or "not sent: the load's time was up"
                return
            if attempt == 1:
                delivery.sent_at = time.time()
            delivery.attempts = attempt
            try:
                delivery.status = post(url, delivery.body, secret, delivery.delivery_id)
                delivery.error = ""
            except OSError as e:
                delivery.status, delivery.error = None, f"{type(e).__name__}: {e}"
            delivery.history.append(str(delivery.status or delivery.error))
            if delivery.status is not None and delivery.status < 500:
                break
            if attempt < ATTEMPTS:
                time.sleep(min(2.0 * attempt, max(0.0, deadline - time.monotonic())))
        if observe:
            observe(delivery)

    t0 = time.monotonic()
    index = 0
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        futures = []
        for r, count in enumerate(per_round):
            component = components[r % len(components)]
            result.commits[r] = commit(component)
            own: Delivery | None = None
            for k in range(count):
                wait = t0 + index * interval - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                if time.monotonic() > deadline:
                    result.stopped_early = True
                    break
                if own is not None and rng.random() < redeliveries:
                    delivery = Delivery(own.index, r, own.component, own.commit, own.delivery_id,
                                        own.body, redelivery=True)
                elif k > 0 and len(components) > 1 and rng.random() < interleaved:
                    other = rng.choice([c for c in components if c != component])
                    head = heads(other)
                    delivery = Delivery(index, r, other, head, str(uuid.uuid4()),
                                        payload(other, head, f"load-{index}"), interleaved=True)
                else:
                    head = result.commits[r]
                    delivery = Delivery(index, r, component, head, str(uuid.uuid4()),
                                        payload(component, head, f"load-{index}"))
                    own = own or delivery
                with lock:
                    result.deliveries.append(delivery)
                futures.append(pool.submit(send, delivery))
                index += 1
                if progress and index % 10 == 0:
                    progress(f"{index}/{pushes} pushes sent")
            if result.stopped_early:
                break
        concurrent.futures.wait(futures)
    result.finished = time.time()
    return result


def redeliver(url: str, secret: str, deliveries: list[Delivery], *, seconds: float = 120,
              pause: float = 3.0) -> list[Delivery]:
    """What a provider does with the deliveries it got no 2xx for: send each again (same body,
    same delivery id) until it is accepted or `seconds` are up. Returns those still refused."""
    deadline = time.monotonic() + seconds
    waiting = [d for d in deliveries if d.status is None or not 200 <= d.status < 300]
    while waiting and time.monotonic() < deadline:
        for d in list(waiting):
            d.attempts += 1
            try:
                d.status, d.error = post(url, d.body, secret, d.delivery_id), ""
            except OSError as e:
                d.status, d.error = None, f"{type(e).__name__}: {e}"
            d.history.append(str(d.status or d.error))
            if d.status is not None and 200 <= d.status < 300:
                waiting.remove(d)
        if waiting:
            time.sleep(pause)
    return waiting


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p95 and max (nearest-rank), rounded to 0.1."""
    if not values:
        return {}
    ordered = sorted(values)

    def rank(p: float) -> float:
        return ordered[max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))]
    return {"p50": round(rank(50), 1), "p95": round(rank(95), 1), "max": round(ordered[-1], 1),
            "mean": round(statistics.fmean(ordered), 1)}
