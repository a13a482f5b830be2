"""Durations as the config and the TTL annotations write them: `90m`, `8h`, `1d12h`, `1.5h`."""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["format_duration", "go_duration", "parse_duration"]

_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """Parse a Go-style duration with an added `d` unit; raise ValueError otherwise."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"expected a duration such as 30m or 8h, found {text!r}")
    pos, seconds = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise ValueError(f"expected a duration such as 30m or 8h, found {text!r}")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """The shortest `XhYmZs` form of a whole number of seconds (for messages and YAML)."""
    total = int(delta.total_seconds())
    if total == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def go_duration(delta: timedelta) -> str:
    """A whole number of seconds as Go's time.ParseDuration (and CEL's duration()) read it:
    hours, minutes and seconds only (`72h`, `1h30m`), never days."""
    total = int(delta.total_seconds())
    if total == 0:
        return "0s"
    parts = []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
