"""WorkflowTemplates and CronWorkflows, one module per capability.

Each module exposes plain functions that take the validated platform config (or one
project of it) and return hera objects, and a `CAPABILITY` declaration that the registry
(argo_delivery/capabilities.py) lists; nothing is built at import time.
"""

from . import airgap, environments, generate_version, nightly, release, run_stream, streams

__all__ = ["airgap", "environments", "generate_version", "nightly", "release", "run_stream", "streams"]
