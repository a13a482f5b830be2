"""When an Environment expires, and what the reaper does about it: pure functions.

Standard library only: the reaper's step will run this very file (prepended to its source, as
the stream steps run promotion.py), and the CLI imports it.

An Environment's expiry, in order (DESIGN.md, data model):
- a `demo` Environment never expires (the reaper leaves it alone);
- the annotation `argo-delivery.io/expires`, an RFC 3339 instant;
- the annotation `argo-delivery.io/ttl`, a Go duration counted from creation;
- otherwise its project's `defaultTTL`, counted from creation.
One decision over a LIST of every Environment: expired ones are deleted (destroy then runs
through their finalizer), those inside the warning window are warned, those already being
deleted are left to their destroy.
"""

from __future__ import annotations

import datetime
import re

TTL_ANNOTATION = "argo-delivery.io/ttl"
EXPIRES_ANNOTATION = "argo-delivery.io/expires"
_GO_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|h|m|s)")
_GO_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_go_duration(text):
    """A Go duration (`8h`, `1h30m`, `90s`, `1.5h`) as a timedelta; ValueError otherwise."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"expected a duration such as 8h or 90m, found {text!r}")
    position, seconds = 0, 0.0
    for match in _GO_PART.finditer(text):
        if match.start() != position:
            break
        seconds += float(match.group(1)) * _GO_UNITS[match.group(2)]
        position = match.end()
    if position != len(text):
        raise ValueError(f"expected a duration such as 8h or 90m, found {text!r}")
    return datetime.timedelta(seconds=seconds)


def parse_time(text):
    """An RFC 3339 instant (`2026-11-29T10:00:00Z`, offsets and fractions too), timezone-aware."""
    value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone")
    return value


def expires_at(environment, default_ttl):
    """When `environment` expires (None: a demo one, never); `default_ttl` is its project's
    defaultTTL (a timedelta, or None when the project has none: then it never expires)."""
    spec = environment.get("spec") or {}
    if spec.get("demo"):
        return None
    meta = environment.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    if annotations.get(EXPIRES_ANNOTATION):
        return parse_time(annotations[EXPIRES_ANNOTATION])
    created = parse_time(meta["creationTimestamp"])
    if annotations.get(TTL_ANNOTATION):
        return created + parse_go_duration(annotations[TTL_ANNOTATION])
    return created + default_ttl if default_ttl is not None else None


def decide(environments, now, default_ttls, warn_before):
    """The reaper's decision over every Environment: {"delete": [...], "warn": [...],
    "keep": n, "invalid": [(environment, why)]}, each list of (namespace, name, expiry).

    `default_ttls` maps a namespace to its project's defaultTTL (timedelta or None);
    `warn_before` is the warning window (timedelta).
    """
    decision = {"delete": [], "warn": [], "keep": 0, "invalid": []}
    for environment in environments:
        meta = environment.get("metadata") or {}
        key = (meta.get("namespace"), meta.get("name"))
        if meta.get("deletionTimestamp"):
            decision["keep"] += 1   # its destroy is running (or retried by it)
            continue
        try:
            expiry = expires_at(environment, default_ttls.get(meta.get("namespace")))
        except (KeyError, ValueError) as exc:
            decision["invalid"].append((*key, str(exc)))
            continue
        if expiry is None or expiry - warn_before > now:
            decision["keep"] += 1
        elif expiry <= now:
            decision["delete"].append((*key, expiry))
        else:
            decision["warn"].append((*key, expiry))
    return decision


def _transition(environment, kind):
    for item in (environment.get("status") or {}).get("conditions") or []:
        if item.get("type") == kind and item.get("lastTransitionTime"):
            return parse_time(item["lastTransitionTime"])
    return None


def phase_since(environment):
    """When `environment` entered its current phase, as near as its object tells: a Failed
    one when its Failed condition turned True, a Destroying one when its delete began, any
    other when its Ready condition last changed; else when it was created."""
    meta = environment.get("metadata") or {}
    phase = (environment.get("status") or {}).get("phase")
    if phase == "Failed" and _transition(environment, "Failed"):
        return _transition(environment, "Failed")
    if phase == "Destroying" and meta.get("deletionTimestamp"):
        return parse_time(meta["deletionTimestamp"])
    return _transition(environment, "Ready") or parse_time(meta["creationTimestamp"])


def state_numbers(environments, now, default_ttl, phases):
    """What the reaper reports as metrics about a project's Environments, by key:
    `phase_<phase>` how many are in each phase (`phase_none`: no phase yet), `age_<phase>`
    the seconds the longest-waiting one has been in it (0: none), `overdue` the seconds past
    its expiry of the most overdue one still there (0: none; demo ones never expire)."""
    numbers = {f"phase_{p.lower()}": 0 for p in (*phases, "none")}
    numbers.update({f"age_{p.lower()}": 0 for p in phases})
    numbers["overdue"] = 0
    for environment in environments:
        phase = (environment.get("status") or {}).get("phase")
        key = phase.lower() if phase in phases else "none"
        numbers[f"phase_{key}"] += 1
        try:
            if key != "none":
                age = int((now - phase_since(environment)).total_seconds())
                numbers[f"age_{key}"] = max(numbers[f"age_{key}"], age)
            expiry = expires_at(environment, default_ttl)
        except (KeyError, ValueError):
            continue   # the reaper's decision reports it as invalid
        if expiry is not None and expiry < now:
            numbers["overdue"] = max(numbers["overdue"], int((now - expiry).total_seconds()))
    return numbers
