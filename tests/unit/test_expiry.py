"""When an Environment expires and what the reaper decides (argo_delivery/expiry.py)."""

from __future__ import annotations

import datetime

import pytest

from argo_delivery.expiry import decide, expires_at, parse_go_duration

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
HOUR = datetime.timedelta(hours=1)


def env(name, created="2026-11-29T00:00:00Z", namespace="core-team", demo=False, deleting=False,
        **annotations):
    meta = {"name": name, "namespace": namespace, "creationTimestamp": created,
            "annotations": {f"argo-delivery.io/{k}": v for k, v in annotations.items()}}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-29T11:00:00Z"
    return {"metadata": meta, "spec": {"demo": demo}}


@pytest.mark.parametrize("text, seconds", [("8h", 28800), ("1h30m", 5400), ("90s", 90),
                                           ("1.5h", 5400), ("250ms", 0.25)])
def test_go_durations(text, seconds):
    assert parse_go_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "2d", "8", "h", "8h ", "-1h", "forever"])
def test_not_go_durations(text):
    with pytest.raises(ValueError):
        parse_go_duration(text)


def test_expiry_order_of_precedence():
    assert expires_at(env("d", demo=True, ttl="1h"), 8 * HOUR) is None
    assert expires_at(env("e", expires="2026-11-30T08:00:00+02:00", ttl="1h"), 8 * HOUR) == \
        datetime.datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
    assert expires_at(env("t", ttl="3h"), 8 * HOUR) == datetime.datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
    assert expires_at(env("default"), 8 * HOUR) == datetime.datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    assert expires_at(env("no-default"), None) is None


def test_decide():
    environments = [
        env("expired", ttl="11h"),                       # 11:00 < now
        env("exactly-now", ttl="12h"),
        env("soon", ttl="12h30m"),                       # inside a 1 h window
        env("later", ttl="20h"),
        env("demo", demo=True),
        env("being-destroyed", ttl="1h", deleting=True),
        env("bad", ttl="2d"),
        env("partner-default", namespace="partner", created="2026-11-29T07:00:00Z"),   # 4 h
    ]
    decision = decide(environments, NOW, {"core-team": 8 * HOUR, "partner": 4 * HOUR}, HOUR)
    # partner's default TTL (4 h from 07:00) ended at 11:00
    assert [name for _, name, _ in decision["delete"]] == ["expired", "exactly-now", "partner-default"]
    assert [name for _, name, _ in decision["warn"]] == ["soon"]
    assert decision["keep"] == 3   # later, demo, being-destroyed
    assert [(name, why) for _, name, why in decision["invalid"]] == [
        ("bad", "expected a duration such as 8h or 90m, found '2d'")]
