"""The `argo-delivery` command line: render, init, lint, version hash."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from argo_delivery import __version__
from argo_delivery.bundle import BundleError, build_bundle, check_bundle, write_bundle
from argo_delivery.config import ConfigError, default_config_text, load_config
from argo_delivery.images import ImageError

__all__ = ["main"]

EXIT_FINDINGS = 1
EXIT_USAGE = 2

_stdout = Console(highlight=False, soft_wrap=True)
_stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def _fail(message: str, code: int) -> None:
    _stderr.print(f"[bold red]error:[/] {message}", markup=True)
    sys.exit(code)


def _load(config_path: str | None):
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        for problem in exc.problems:
            _stderr.print(f"[bold red]error:[/] {problem}", markup=True, highlight=False)
        noun = "problem" if len(exc.problems) == 1 else "problems"
        _stderr.print(f"{len(exc.problems)} {noun}; nothing was written.")
        sys.exit(EXIT_USAGE)
    for warning in config.warnings:  # likely mistakes and notes, located; they stop nothing
        _stderr.print(f"{warning.severity}: {warning}", markup=False, highlight=False)
    return config


def _build(config: Any):
    try:
        return build_bundle(config)
    except (BundleError, ImageError) as exc:
        _fail(str(exc), EXIT_USAGE)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="argo-delivery")
def main() -> None:
    """Render the argo-delivery pipeline into versioned, air-gap-ready bundles."""


@main.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Platform config (YAML). Default: the embedded default platform.")
@click.option("--out", "out_dir", default="dist", show_default=True, type=click.Path(file_okay=False),
              help="Folder that holds one sub-folder per bundle version.")
@click.option("--check", is_flag=True,
              help="Write nothing; exit 1 when <out>/<version> differs from a fresh render.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def render(config_path: str | None, out_dir: str, check: bool, as_json: bool) -> None:
    """Render the platform into OUT/<bundle-version>/ (immutable once written)."""
    config = _load(config_path)
    bundle = _build(config)
    target = Path(out_dir) / bundle.version
    summary: dict[str, Any] = {"name": bundle.name, "version": bundle.version,
                               "digest": bundle.digest, "path": str(target),
                               "resources": len(bundle.resources), "kinds": dict(bundle.kinds()),
                               "images": bundle.images}
    if check:
        differences = check_bundle(bundle, out_dir)
        summary["upToDate"] = not differences
        summary["differences"] = differences
        if as_json:
            click.echo(json.dumps(summary, indent=2))
        elif differences:
            for line in differences:
                _stderr.print(f"  {line}")
            _stderr.print(f"{target} is not what the config renders; run `argo-delivery render` "
                          "(and bump bundle.version if that version was already released).")
        else:
            _stdout.print(f"{target} is up to date ({bundle.digest}).")
        sys.exit(EXIT_FINDINGS if differences else 0)
    try:
        result = write_bundle(bundle, out_dir)
    except BundleError as exc:
        _fail(str(exc), EXIT_FINDINGS)
    summary["created"] = result.created
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    table = Table(title=f"{bundle.name} {bundle.version}", show_edge=False)
    table.add_column("kind")
    table.add_column("count", justify="right")
    for kind, count in bundle.kinds():
        table.add_row(kind, str(count))
    _stdout.print(table)
    state = "written to" if result.created else "unchanged at"
    _stdout.print(f"{len(bundle.resources)} resources, {len(bundle.images)} images, "
                  f"{state} {target}\n{bundle.digest}")


@main.command()
@click.argument("path", default="platform.yaml", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
def init(path: str, force: bool) -> None:
    """Write the embedded default platform config to PATH for you to edit."""
    target = Path(path)
    if target.exists() and not force:
        _fail(f"{target} exists; pass --force to overwrite it", EXIT_USAGE)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(default_config_text())
    _stdout.print(f"wrote {target}; edit it, then `argo-delivery render --config {target}`")


@main.command()
@click.argument("bundle_dir", required=False, type=click.Path(exists=True, file_okay=True))
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Without BUNDLE_DIR: render this config (default: the embedded one) and lint it.")
@click.option("--no-upstream", is_flag=True, help="Skip Argo's own validators even when built.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def lint(bundle_dir: str | None, config_path: str | None, no_upstream: bool, as_json: bool) -> None:
    """Check a bundle (or any folder of manifests): schemas, Argo's validators, policy rules.

    Exit 0 when clean, 1 with findings, 2 on a usage error.
    """
    from argo_delivery.lint import lint_paths
    from argo_delivery.upstream import UpstreamToolError

    with tempfile.TemporaryDirectory(prefix="argo-delivery-lint-") as scratch:
        if bundle_dir is None:
            bundle = _build(_load(config_path))
            root = Path(write_bundle(bundle, scratch).path)
        else:
            root = Path(bundle_dir)
        try:
            findings, notes = lint_paths([root], upstream=not no_upstream)
        except UpstreamToolError as exc:
            _fail(str(exc), EXIT_USAGE)
        except Exception as exc:  # a file that is not YAML, say
            _fail(f"cannot lint {root}: {exc}", EXIT_USAGE)
    if as_json:
        click.echo(json.dumps({"findings": [f.to_dict() for f in findings], "notes": notes},
                              indent=2))
    else:
        for note in notes:
            _stderr.print(f"note: {note}")
        for finding in findings:
            _stdout.print(str(finding))
        _stdout.print(f"{len(findings)} finding(s)" if findings else "clean: no findings")
    sys.exit(EXIT_FINDINGS if findings else 0)


@main.group()
def version() -> None:
    """Platform Versions."""


@version.command("hash")
@click.option("--project", required=True, help="Project name.")
@click.option("--component", "components", multiple=True, required=True, metavar="NAME=REPO@COMMIT",
              help="A component's exact commit; repeat for each component.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the hash, the Version name and the canonical JSON.")
def version_hash_command(project: str, components: tuple[str, ...], as_json: bool) -> None:
    """Compute a Version's hash exactly as the generate-version step does."""
    from argo_delivery.versionhash import VersionHashError, canonical_json, version_hash, version_name

    parsed = []
    for text in components:
        name, sep, rest = text.partition("=")
        repo, at, commit = rest.rpartition("@")
        if not (sep and at and name and repo and commit):
            _fail(f"--component {text!r}: expected NAME=REPO@COMMIT", EXIT_USAGE)
        parsed.append({"name": name, "repo": repo, "commit": commit})
    try:
        digest = version_hash(project, parsed)
        canonical = canonical_json(project, parsed).decode()
    except VersionHashError as exc:
        _fail(str(exc), EXIT_USAGE)
    if as_json:
        click.echo(json.dumps({"hash": digest, "name": version_name(project, digest),
                               "canonical": canonical}, indent=2))
    else:
        click.echo(digest)


if __name__ == "__main__":
    main()
