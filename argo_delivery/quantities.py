"""Kubernetes resource quantities as the config writes them: `500m`, `2`, `256Mi`, `8Gi`, `1e3`."""

from __future__ import annotations

import math
import re
from decimal import Decimal

__all__ = ["QUANTITY_PATTERN", "format_quantity", "parse_quantity"]

# A subset of Kubernetes' quantity grammar (no sign, no negative exponent): what a quota or a
# container default plausibly is. The schema uses the same pattern.
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?([eE][0-9]+|[numkMGTPE]|[KMGTPE]i)?$"
_SUFFIXES = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"),
    **{f"{p}i": Decimal(1024) ** (i + 1) for i, p in enumerate("KMGTPE")},
}


def parse_quantity(text: str | int) -> Decimal:
    """The value of a quantity (cores or bytes); ValueError for what the pattern refuses."""
    text = str(text)
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(.*)", text)
    if not match or not re.fullmatch(QUANTITY_PATTERN, text):
        raise ValueError(f"expected a quantity such as 500m, 2 or 256Mi, found {text!r}")
    number, suffix = match.groups()
    if suffix[:1] in ("e", "E"):
        return Decimal(number) * Decimal(10) ** int(suffix[1:])
    return Decimal(number) * _SUFFIXES[suffix]


def format_quantity(value: Decimal, memory: bool) -> str:
    """A quantity as Kubernetes writes one: bytes in Mi (or Gi when whole), cores whole or in m
    (rounded up to what the unit can say)."""
    if memory:
        mebibytes = math.ceil(value / 2**20)
        return f"{mebibytes // 1024}Gi" if mebibytes % 1024 == 0 else f"{mebibytes}Mi"
    millicores = math.ceil(value * 1000)
    return f"{millicores // 1000}" if millicores % 1000 == 0 else f"{millicores}m"
