"""Resolve the heads of 100 component repos: the rendered generate-version step vs clones.

The step's `resolve_component_heads` (taken from the rendered YAML, as the cluster runs it)
does one `git ls-remote` per repo, in parallel, in one process. The baseline is the naive
approach, measured in the same run: a shallow clone of each repo, one after another. Repos
are served by `git daemon` on loopback, so both go through the git protocol.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from argo_delivery.bundle import build_bundle  # noqa: E402
from argo_delivery.config import load_default  # noqa: E402
from tests.gitrepos import GIT_ENV, GitDaemon, make_repo  # noqa: E402
from tests.stepscripts import load_step_module, script_template  # noqa: E402


def naive(urls: list[str], scratch: Path) -> list[str]:
    heads = []
    for index, url in enumerate(urls):
        target = scratch / f"clone-{index}"
        subprocess.run(["git", "clone", "-q", "--depth", "1", "--branch", "main", url, str(target)],
                       check=True, env={**GIT_ENV, "PATH": "/usr/bin:/bin"})
        heads.append(subprocess.run(["git", "-C", str(target), "rev-parse", "HEAD"], check=True,
                                    capture_output=True, text=True).stdout.strip())
    return heads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repos", type=int, default=100)
    parser.add_argument("--files", type=int, default=200, help="files per repo (clone size)")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each; the median counts")
    args = parser.parse_args()
    bundle = build_bundle(load_default())
    step = load_step_module(script_template(
        bundle.files["namespaces/core-team/workflowtemplate/generate-version.yaml"], "generate-version"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repos"
        root.mkdir()
        repos = [make_repo(root, f"component-{i:03d}", {"main": 3}, files=args.files)
                 for i in range(args.repos)]
        with GitDaemon(root) as daemon:
            components = [{"name": r.name, "repo": daemon.url(r), "branch": "main"} for r in repos]
            ours_runs, baseline_runs = [], []
            for attempt in range(args.repeats):
                start = time.perf_counter()
                heads = step.resolve_component_heads(components)
                ours_runs.append(time.perf_counter() - start)
                scratch = Path(tmp) / f"clones-{attempt}"
                scratch.mkdir()
                start = time.perf_counter()
                baseline_heads = naive([c["repo"] for c in components], scratch)
                baseline_runs.append(time.perf_counter() - start)
    assert [h["commit"] for h in heads] == baseline_heads == [r.heads["main"] for r in repos]
    ours, baseline = statistics.median(ours_runs), statistics.median(baseline_runs)
    print(f"{args.repos} repos of {args.files} files, median of {args.repeats} runs: rendered step "
          f"(ls-remote, parallel, one process) {ours:.2f} s "
          f"(runs {', '.join(f'{t:.2f}' for t in ours_runs)}); shallow clone of each, one after "
          f"another {baseline:.2f} s (runs {', '.join(f'{t:.2f}' for t in baseline_runs)}); "
          f"speed-up {baseline / ours:.1f}x")

if __name__ == "__main__":
    main()
