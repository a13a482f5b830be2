"""The state file of `argo-delivery state export`: its format, its mode, what it refuses."""

from __future__ import annotations

import json
import stat

import pytest

from argo_delivery.naming import ANNOTATION_RESTORED
from argo_delivery.state import (
    FILE_API_VERSION,
    StateError,
    comparable,
    read_state_file,
    state_document,
    write_state_file,
)


def test_a_sensitive_file_is_written_0600_whatever_the_umask(tmp_path):
    path = tmp_path / "backup.json"
    path.write_text("old")
    path.chmod(0o644)
    write_state_file(str(path), state_document([], exported_at="t", server="s", sensitive=True))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = read_state_file(str(path))
    assert document["apiVersion"] == FILE_API_VERSION and document["metadata"]["sensitive"]
    assert "Terraform state" in document["metadata"]["warning"]


def test_another_format_is_refused(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"apiVersion": "state.argo-delivery.io/v9", "kind": "State",
                                "items": []}))
    with pytest.raises(StateError, match="this argo-delivery reads state.argo-delivery.io/v1"):
        read_state_file(str(path))
    path.write_text("kind: ConfigMap\n")
    with pytest.raises(StateError, match="no argo-delivery state file"):
        read_state_file(str(path))


def test_comparable_ignores_what_the_server_and_the_restore_set():
    live = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "data": {"a": "Yg=="},
            "metadata": {"name": "s", "namespace": "n", "uid": "1", "resourceVersion": "2",
                         "creationTimestamp": "t", "managedFields": [], "generation": 3,
                         "annotations": {ANNOTATION_RESTORED: "t"},
                         "ownerReferences": [{"kind": "Environment", "name": "e", "uid": "9"}]}}
    assert comparable(live) == {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                                "data": {"a": "Yg=="},
                                "metadata": {"name": "s", "namespace": "n", "ownerReferences": [
                                    {"kind": "Environment", "name": "e"}]}}
