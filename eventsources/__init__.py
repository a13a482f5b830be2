"""EventSources; each function takes the validated config and returns manifests."""

from . import git_push, versions

__all__ = ["git_push", "versions"]
