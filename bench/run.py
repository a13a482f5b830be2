"""Render benchmarks: our render path against hera's own `to_yaml()`, on the same objects.

Run with `make bench`. Each measurement is the best of several repeats (wall clock,
time.perf_counter); ratios compare numbers taken in this same run.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from argo_delivery.bundle import build_bundle, to_manifest  # noqa: E402
from argo_delivery.config import PlatformConfig, load_default, parse_config  # noqa: E402
from argo_delivery.serialize import dump_yaml  # noqa: E402
from argo_delivery.templates.generate_version import generate_version  # noqa: E402


def synthetic_config(projects: int, components_per_project: int = 20) -> PlatformConfig:
    """A valid platform with `projects` projects of `components_per_project` components each."""
    default = yaml.safe_load((Path(__file__).resolve().parent.parent
                              / "argo_delivery/data/default-platform.yaml").read_text())
    components, project_list = [], []
    for p in range(projects):
        names = []
        for c in range(components_per_project):
            name = f"p{p}-component-{c}"
            names.append(name)
            components.append({"name": name, "repo": f"https://github.com/team-{p}/{name}.git",
                               "branch": "main", "deployPath": "deploy"})
        suite = {"image": "python:3.12-slim", "command": ["pytest"], "timeout": "30m"}
        project_list.append({
            "name": f"project-{p}", "type": "internal" if p % 2 else "external",
            "members": {"developers": [f"team-{p}:dev"], "productOwners": [f"team-{p}:po"]},
            "components": names,
            "testSuites": {"alpha": [{"name": "smoke", **suite}, {"name": "contract", **suite}],
                           "nightly": [{"name": "e2e", **suite}]},
            "environments": {"terraformModule": "./infra", "defaultTTL": "8h", "maxTTL": "1d"},
        })
    default["components"], default["projects"] = components, project_list
    return parse_config(yaml.safe_dump(default), f"<synthetic {projects} projects>")


def best_of(function: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    sizes = [("default", load_default())] + [(f"{n} projects x 20 components", synthetic_config(n))
                                              for n in (10, 100)]
    print("| platform | resources | hera to_yaml() | our serialiser | speed-up | full render | per project |")
    print("|---|---|---|---|---|---|---|")
    per_project = {}
    for label, config in sizes:
        # the same hera objects for both paths
        objects = [generate_version(project, config) for project in config.projects]
        hera_time = best_of(lambda objects=objects: [o.to_yaml() for o in objects], args.repeats)
        ours_time = best_of(lambda objects=objects: [dump_yaml(to_manifest(o)) for o in objects],
                            args.repeats)
        bundle = build_bundle(config)
        render_time = best_of(lambda config=config: build_bundle(config), max(1, args.repeats // 2))
        per_project[label] = render_time / len(config.projects)
        print(f"| {label} | {len(bundle.resources)} | {hera_time * 1000:.1f} ms | "
              f"{ours_time * 1000:.1f} ms | {hera_time / ours_time:.2f}x | "
              f"{render_time * 1000:.0f} ms | {per_project[label] * 1000:.1f} ms |")
    small, large = per_project["10 projects x 20 components"], per_project["100 projects x 20 components"]
    print(f"\nrender time per project, 100 vs 10 projects: {large / small:.2f}x "
          "(1.00x is perfectly linear)")


if __name__ == "__main__":
    main()
