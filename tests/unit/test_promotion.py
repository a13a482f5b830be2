"""The journey's rules (argo_delivery/promotion.py): pure functions the steps and the CLI share."""

from __future__ import annotations

import pytest

from argo_delivery.promotion import (
    HISTORY_LIMIT,
    classify_suite,
    conditions,
    pick_nightly,
    stream_of,
    stream_outcome,
    with_run,
)

NOW, LATER = "2026-11-29T10:00:00Z", "2026-11-29T11:00:00Z"


def runs(alpha=None, nightly=None, **extra):
    streams = {}
    if alpha:
        streams["alpha"] = {"phase": alpha}
    if nightly:
        streams["nightly"] = {"phase": nightly}
    return {"streams": streams, **extra}


@pytest.mark.parametrize("status, stream", [
    ({}, "alpha"),
    (runs(alpha="Running"), "alpha"),
    (runs(alpha="Succeeded"), "nightly"),
    (runs(alpha="Failed"), "failed"),
    (runs(alpha="Error"), "failed"),
    (runs(alpha="Succeeded", nightly="Running"), "nightly"),
    (runs(alpha="Succeeded", nightly="Succeeded"), "candidate"),
    (runs(alpha="Succeeded", nightly="Failed"), "failed"),
    (runs(alpha="Failed", nightly="Succeeded"), "failed"),   # a failed re-run of alpha
    (runs(alpha="Succeeded", nightly="Succeeded", releasedAt=NOW), "released"),
    (runs(alpha="Failed", releasedAt=NOW), "released"),      # nothing moves a released Version
])
def test_stream_of(status, stream):
    assert stream_of(status) == stream


@pytest.mark.parametrize("phase, message, code, pending, reason", [
    ("Succeeded", "", "0", None, "Completed"),
    ("Failed", "Error (exit code 3)", "3", None, "ExitCode"),
    ("Failed", "Error (exit code 2)", None, None, "ExitCode"),
    ("Failed", "Pod was active on the node longer than the specified deadline", None, None, "Timeout"),
    ("Failed", "timeout", None, None, "Timeout"),
    ("Failed", "timeout", None, 'ErrImagePull: failed to pull "x"', "ImageError"),
    ("Failed", "Pod was active on the node longer than the specified deadline", None,
     'ImagePullBackOff: Back-off pulling image "x"', "ImageError"),
    ("Failed", "OOMKilled (exit code 137)", "137", None, "OOMKilled"),
    ("Error", "pod deleted", None, None, "Error"),
    ("Failed", "timeout", None, "ContainerCreating", "Timeout"),   # pending, but not an image error
])
def test_classify_suite(phase, message, code, pending, reason):
    verdict, found, text = classify_suite(phase, message, code, pending, "5m")
    assert found == reason
    assert verdict == ("Succeeded" if reason == "Completed" else "Error" if phase == "Error" else "Failed")
    if reason == "Timeout":
        assert "5m" in text
    if reason == "ExitCode":
        assert f"exited with code {code or 2}" in text


def test_stream_outcome():
    assert stream_outcome([]) == ("Succeeded", "NoSuites", "the stream has no suites")
    ok = [{"suite": "a", "phase": "Succeeded"}, {"suite": "b", "phase": "Succeeded"}]
    assert stream_outcome(ok)[:2] == ("Succeeded", "AllSuitesPassed")
    bad = ok + [{"suite": "c", "phase": "Failed"}]
    assert stream_outcome(bad) == ("Failed", "SuitesFailed", "1 of 3 suites failed: c")


def test_a_rerun_keeps_a_bounded_history():
    status = {}
    for index in range(HISTORY_LIMIT + 3):
        status = with_run(status, "alpha", {"workflow": f"wf-{index}", "phase": "Succeeded"})
    alpha = status["streams"]["alpha"]
    assert alpha["workflow"] == f"wf-{HISTORY_LIMIT + 2}"
    assert [h["workflow"] for h in alpha["history"]] == \
        [f"wf-{i}" for i in range(HISTORY_LIMIT + 1, 1, -1)]
    assert all("history" not in h for h in alpha["history"])
    # the same Workflow writing its run again does not push itself into the history
    again = with_run(status, "alpha", {"workflow": f"wf-{HISTORY_LIMIT + 2}", "phase": "Failed"})
    assert again["streams"]["alpha"]["history"] == alpha["history"]


def test_conditions_keep_their_transition_time_until_they_change():
    status = runs(alpha="Running")
    first = conditions(status, None, NOW)
    assert {c["type"]: c["status"] for c in first} == {
        "AlphaPassed": "Unknown", "NightlyPassed": "Unknown", "Approved": "False", "Released": "False"}
    status["conditions"] = first
    same = conditions(status, None, LATER)
    assert {c["lastTransitionTime"] for c in same} == {NOW}
    status["streams"]["alpha"]["phase"] = "Succeeded"
    moved = {c["type"]: c for c in conditions(status, {"approvedBy": "po"}, LATER)}
    assert moved["AlphaPassed"]["status"] == "True" and moved["AlphaPassed"]["lastTransitionTime"] == LATER
    assert moved["NightlyPassed"]["lastTransitionTime"] == NOW
    assert moved["Approved"]["status"] == "True" and "po" in moved["Approved"]["message"]


def version(name, created, status):
    return {"metadata": {"name": name, "creationTimestamp": created}, "status": status}


def test_pick_nightly_takes_the_newest_due_versions():
    due = runs(alpha="Succeeded")
    versions = [version("old", "2026-11-27T00:00:00Z", due),
                version("new", "2026-11-29T00:00:00Z", due),
                version("mid", "2026-11-28T00:00:00Z", due),
                version("failed", "2026-11-29T01:00:00Z", runs(alpha="Failed")),
                version("done", "2026-11-29T02:00:00Z", runs(alpha="Succeeded", nightly="Succeeded")),
                version("running", "2026-11-29T03:00:00Z", runs(alpha="Running"))]
    assert [v["metadata"]["name"] for v in pick_nightly(versions, 1)] == ["new"]
    assert [v["metadata"]["name"] for v in pick_nightly(versions, 5)] == ["new", "mid", "old"]
    assert pick_nightly(versions, 0) == []
