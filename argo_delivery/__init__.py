"""argo-delivery: a delivery pipeline on Argo Workflows and Argo Events, rendered into bundles."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("argo-delivery")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
