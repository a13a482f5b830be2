"""EventSources; each function takes the validated config and returns manifests."""

from . import git_push

__all__ = ["git_push"]
