"""The Sensor admission policy names every field of a Workflow spec: the list is checked
against the full Workflow CRD of the pinned Argo Workflows release."""

from __future__ import annotations

import pytest
import yaml

from argo_delivery.admission import PARAMETER_EXTRAS, WORKFLOW_SPEC_FIELDS
from tests.support import go_module_dir, pinned_version

pytestmark = pytest.mark.conformance

MODULE = "github.com/argoproj/argo-workflows/v4"


def test_workflow_spec_fields_match_the_pinned_crd():
    root = go_module_dir(MODULE, pinned_version("argo-workflows-lint", MODULE))
    crd = yaml.safe_load((root / "manifests/base/crds/full/argoproj.io_workflows.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert sorted(WORKFLOW_SPEC_FIELDS) == sorted(schema["properties"])
    parameter = schema["properties"]["arguments"]["properties"]["parameters"]["items"]["properties"]
    assert sorted(PARAMETER_EXTRAS) == sorted(set(parameter) - {"name", "value"})
