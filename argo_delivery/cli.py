"""The `argo-delivery` command line: render, lint, verify, init, schema, hash, version,
completion, apply, diff, doctor, `versions` (list, show, approve, rerun, wait: the logic is
in argo_delivery/versions.py), `state` (export, import: in argo_delivery/state.py) and `envs`
(create, list, show, kubeconfig, extend, delete: in
argo_delivery/environments_cli.py).

Heavy modules (hera, jsonschema, the renderers) are imported inside the commands that need
them, so `--help` and `completion` answer at once. User text (config values, patterns,
paths, lint messages) is printed with rich's markup off: a branch called `dev[/x]` is text.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.text import Text

from argo_delivery import __version__

__all__ = ["CONFIG_ENV", "EXIT_FINDINGS", "EXIT_INTERNAL", "EXIT_OK", "EXIT_USAGE", "main"]

# Exit codes, the same for every command (README "Command line").
EXIT_OK = 0
EXIT_FINDINGS = 1  # lint findings, `render --check` or `verify` differences, an existing version differs
EXIT_USAGE = 2  # bad arguments, no or a bad config, a path that cannot be read or written
EXIT_INTERNAL = 70  # a bug in argo-delivery (EX_SOFTWARE); ARGO_DELIVERY_DEBUG=1 shows the traceback

CONFIG_ENV = "ARGO_DELIVERY_CONFIG"
DEFAULT_CONFIG_FILE = "platform.yaml"
SCHEMA_FILE = "platform.schema.json"
DEBUG_ENV = "ARGO_DELIVERY_DEBUG"

_stdout = Console(highlight=False, soft_wrap=True, markup=False, emoji=False)
_stderr = Console(stderr=True, highlight=False, soft_wrap=True, markup=False, emoji=False)


# --- output ------------------------------------------------------------------------------

def _json_mode() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.meta.get("argo_delivery.json"))


def _set_json(as_json: bool) -> None:
    click.get_current_context().meta["argo_delivery.json"] = as_json


def _emit_json(document: dict[str, Any]) -> None:
    click.echo(json.dumps(document, indent=2))


def _problem(message: str, source: str = "", line: int | None = None, column: int | None = None,
             path: str = "") -> dict[str, Any]:
    """One failure as data: where (source file, line, column, field path) and what."""
    return {"source": source, "line": line, "column": column, "path": path, "message": message}


def _error(text: str) -> None:
    """`error: <text>` on stderr; `text` is printed literally, never as markup."""
    _stderr.print(Text.assemble(("error:", "bold red"), " ", text))


def _note(text: str) -> None:
    _stderr.print(Text(text, style="dim"))


def _fail(message: str, code: int, problems: list[dict[str, Any]] | None = None) -> NoReturn:
    """Report a failure (as a JSON object on stdout with --json) and exit with `code`."""
    problems = problems if problems is not None else [_problem(message)]
    if _json_mode():
        _emit_json({"ok": False, "exitCode": code, "error": message, "problems": problems})
    else:
        if len(problems) > 1 or problems[0]["message"] != message:
            for problem in problems:
                _error(_problem_text(problem))
            _stderr.print(message)
        else:
            _error(message)
    sys.exit(code)


def _problem_text(problem: dict[str, Any]) -> str:
    where = problem["source"]
    if problem["line"] is not None:
        where += f":{problem['line']}:{problem['column']}"
    field = f" {problem['path']}:" if problem["path"] else ""
    return f"{where}:{field} {problem['message']}" if where else f"{field} {problem['message']}".strip()


class _Main(click.Group):
    """The top-level group: --json usage errors as JSON, and no traceback for a bug."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["argo_delivery.argv"] = list(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.exceptions.Exit:
            raise
        except click.ClickException as exc:
            if "--json" not in ctx.meta.get("argo_delivery.argv", ()):
                raise
            _emit_json({"ok": False, "exitCode": exc.exit_code, "error": exc.format_message(),
                        "problems": [_problem(exc.format_message())]})
            sys.exit(exc.exit_code)
        except (click.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:  # a bug: say so, without a traceback unless asked
            if os.environ.get(DEBUG_ENV):
                raise
            message = (f"internal error: {type(exc).__name__}: {exc}. This is a bug in "
                       f"argo-delivery {__version__}; please report it ({DEBUG_ENV}=1 shows "
                       "the traceback)")
            ctx.meta.setdefault("argo_delivery.json",
                                "--json" in ctx.meta.get("argo_delivery.argv", ()))
            with ctx:
                _fail(message, EXIT_INTERNAL)


# --- the config: one place that finds and loads it -------------------------------------------

def _config_source(config_path: str | None, example: bool) -> tuple[str | None, str]:
    """(path, how it was chosen); path None is the embedded example, "-" is stdin."""
    if config_path and example:
        _fail("--config and --example exclude each other", EXIT_USAGE)
    if config_path:
        return config_path, "--config"
    if example:
        return None, "--example"
    if Path(DEFAULT_CONFIG_FILE).is_file():
        return DEFAULT_CONFIG_FILE, "found in the current folder"
    if os.environ.get(CONFIG_ENV):
        return os.environ[CONFIG_ENV], f"from ${CONFIG_ENV}"
    _fail(f"no platform config: pass --config FILE, or run where ./{DEFAULT_CONFIG_FILE} is "
          f"(`argo-delivery init` writes one), or set {CONFIG_ENV}=FILE; --example renders the "
          "embedded example platform", EXIT_USAGE)


def _load(config_path: str | None, example: bool = False, folder_hint: str = "",
          images_lock_path: str | None = None):
    """Find the config (--config, --example, ./platform.yaml, $ARGO_DELIVERY_CONFIG), say which
    one is used (stderr), load and validate it, its images pinned by the lock at
    `images_lock_path` (--images-lock) if given; every problem is reported and exits 2."""
    from argo_delivery.config import DEFAULT_CONFIG_NAME, ConfigError, load_config, parse_config
    from argo_delivery.imagelock import ImagesLock, LockError

    path, how = _config_source(config_path, example)
    shown = DEFAULT_CONFIG_NAME if path is None else ("<stdin>" if path == "-" else path)
    _note(f"config: {shown} ({how})")
    if path not in (None, "-") and Path(path).is_dir():
        _fail(f"{path} is a folder; the config is one YAML file{folder_hint.format(path=path)}",
              EXIT_USAGE)
    lock = None
    if images_lock_path is not None:
        _note(f"images lock: {images_lock_path} (--images-lock)")
        try:
            lock = ImagesLock.read(images_lock_path)
        except LockError as exc:  # it names the file
            _fail(f"--images-lock: {exc}", EXIT_USAGE)
    try:
        config = (parse_config(sys.stdin.read(), "<stdin>", images_lock=lock) if path == "-"
                  else load_config(path, images_lock=lock))
    except ConfigError as exc:
        count = len(exc.problems)
        _fail(f"{count} {'problem' if count == 1 else 'problems'}; nothing was written.", EXIT_USAGE,
              [_problem(p.message, p.source, p.line, p.column, p.path) for p in exc.problems])
    for warning in config.warnings:  # likely mistakes and notes, located; they stop nothing
        _stderr.print(f"{warning.severity}: {warning}", markup=False, highlight=False)
    return config


def _build(config: Any):
    from argo_delivery.bundle import BundleError, build_bundle
    from argo_delivery.images import ImageError

    try:
        return build_bundle(config)
    except (BundleError, ImageError) as exc:
        _fail(str(exc), EXIT_USAGE)


def _config_options(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        function = click.option(
            "--images-lock", "images_lock", metavar="FILE", type=click.Path(dir_okay=False),
            help="Image lock (`argo-delivery images lock` writes one): pin every image the "
                 "config uses by the lock's digest, before registry.mirror applies.")(function)
        function = click.option(
            "--example", is_flag=True,
            help=f"{what} the embedded example platform (ACME) instead of a config file.")(function)
        return click.option(
            "--config", "config_path", metavar="FILE", type=click.Path(allow_dash=True),
            help=f"Platform config (YAML; `-` reads stdin). Default: ./{DEFAULT_CONFIG_FILE}, "
                 f"then ${CONFIG_ENV}.")(function)
    return decorate


_json_option = click.option("--json", "as_json", is_flag=True,
                            help="Machine-readable output on stdout, failures included.")

EXIT_CODES_HELP = (
    "\b\nExit codes:\n"
    "  0   success\n"
    "  1   findings: lint findings, differences (render --check, verify)\n"
    "  2   usage or config error\n"
    f"  {EXIT_INTERNAL}  internal error (a bug; {DEBUG_ENV}=1 shows the traceback)"
)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]},
             epilog="\b\nExamples:\n"
                    "  argo-delivery init                      # writes platform.yaml\n"
                    "  argo-delivery render                    # ./platform.yaml -> dist/<version>/\n"
                    "  argo-delivery lint dist/0.1.0\n"
                    "  argo-delivery verify dist/0.1.0\n"
                    "  argo-delivery render --example --stdout | kubectl apply --dry-run=client -f -\n\n"
                    + EXIT_CODES_HELP)
@click.version_option(__version__, "--version", prog_name="argo-delivery")
def main() -> None:
    """Render the argo-delivery pipeline into versioned, air-gap-ready bundles."""


# --- render ---------------------------------------------------------------------------------

@main.command(epilog="\b\nExamples:\n"
                     "  argo-delivery render                          # ./platform.yaml\n"
                     "  argo-delivery render --config site.yaml --out bundles\n"
                     "  argo-delivery render --check                  # CI: is dist/ up to date?\n"
                     "  argo-delivery render --stdout | less          # one YAML stream, writes nothing\n"
                     "  argo-delivery render --example                # the embedded example\n"
                     "  argo-delivery render --images-lock images.lock.yaml  # every image by digest\n\n"
                     "Exit codes: 0 written (or up to date), 1 --check found differences or the\n"
                     "version exists with other content, 2 usage or config error.")
@_config_options("Render")
@click.option("--out", "out_dir", default="dist", show_default=True, type=click.Path(file_okay=False),
              help="Folder that holds one sub-folder per bundle version.")
@click.option("--check", is_flag=True,
              help="Write nothing; exit 1 when <out>/<version> differs from a fresh render.")
@click.option("--stdout", "to_stdout", is_flag=True,
              help="Write nothing; print every resource as one multi-document YAML stream.")
@click.option("--force", is_flag=True,
              help="During setup: replace OUT/<version> with other content, as long as it was never "
                   "applied from there (no <version>.applied beside it).")
@_json_option
def render(config_path: str | None, example: bool, images_lock: str | None, out_dir: str,
           check: bool, to_stdout: bool, force: bool, as_json: bool) -> None:
    """Render the platform into OUT/<bundle-version>/ (immutable once written)."""
    from argo_delivery.bundle import BundleError, BundleExistsError, bundle_differences, write_bundle

    _set_json(as_json)
    if to_stdout and (check or as_json):
        _fail("--stdout excludes --check and --json", EXIT_USAGE)
    bundle = _build(_load(config_path, example, images_lock_path=images_lock))
    if to_stdout:
        _stream(bundle)
        return
    target = Path(out_dir) / bundle.version
    summary: dict[str, Any] = {"ok": True, "exitCode": EXIT_OK, "name": bundle.name,
                               "version": bundle.version, "digest": bundle.digest,
                               "path": str(target), "resources": len(bundle.resources),
                               "kinds": dict(bundle.kinds()), "images": bundle.images}
    if check:
        try:
            differences = bundle_differences(bundle, out_dir)
        except OSError as exc:
            _fail(f"cannot read {target}: {exc.strerror or exc}", EXIT_USAGE)
        code = EXIT_FINDINGS if differences else EXIT_OK
        summary.update(ok=not differences, exitCode=code, upToDate=not differences,
                       differences=[d.to_dict() for d in differences])
        if as_json:
            _emit_json(summary)
        elif differences:
            for difference in differences:
                _stderr.print(f"  {difference}")
            _stderr.print(f"{target} is not what the config renders; run `argo-delivery render` "
                          "(and bump bundle.version if that version was already released).")
        else:
            _stdout.print(f"{target} is up to date ({bundle.digest}).")
        sys.exit(code)
    try:
        result = write_bundle(bundle, out_dir, force=force)
    except BundleExistsError as exc:
        _fail(str(exc), EXIT_FINDINGS)
    except BundleError as exc:
        _fail(str(exc), EXIT_USAGE)
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        _fail(f"cannot write the bundle under --out {out_dir}:{where}: {exc.strerror or exc}",
              EXIT_USAGE, [_problem(f"{exc.strerror or exc}", str(exc.filename or out_dir))])
    summary["created"] = result.created
    if as_json:
        _emit_json(summary)
        return
    from rich.table import Table

    table = Table(title=Text(f"{bundle.name} {bundle.version}"), show_edge=False)
    table.add_column("kind")
    table.add_column("count", justify="right")
    for kind, count in bundle.kinds():
        table.add_row(Text(kind), str(count))
    _stdout.print(table)
    state = "written to" if result.created else "unchanged at"
    _stdout.print(f"{len(bundle.resources)} resources, {len(bundle.images)} images, "
                  f"{state} {target}\n{bundle.digest}")


def _stream(bundle: Any) -> None:
    """Every resource, in apply order, as one YAML stream (`# Source:` names its bundle file)."""
    from argo_delivery.bundle import resource_path

    try:
        for resource in bundle.resources:
            path = resource_path(resource)
            click.echo(f"---\n# Source: {path}\n{bundle.files[path].decode()}", nl=False)
        sys.stdout.flush()
    except BrokenPipeError:  # `render --stdout | head`: the reader has all it wants
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        sys.exit(EXIT_OK)


# --- init and schema ------------------------------------------------------------------------

@main.command(epilog="\b\nExamples:\n"
                     "  argo-delivery init                   # ./platform.yaml + ./platform.schema.json\n"
                     "  argo-delivery init sites/a.yaml\n"
                     "  argo-delivery init - > example.yaml  # the config alone, on stdout\n\n"
                     "Exit codes: 0 written, 2 the file exists (without --force) or cannot be "
                     "written.")
@click.argument("path", default=DEFAULT_CONFIG_FILE, type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
def init(path: str, force: bool) -> None:
    """Write the example platform config to PATH for you to edit.

    The config's first line points editors that use yaml-language-server (VS Code's YAML
    extension, Neovim, ...) at platform.schema.json, written next to it, for completion
    and checks while you type.
    """
    from argo_delivery.config import default_config_text

    if path == "-":
        click.echo(default_config_text(), nl=False)
        return
    target = Path(path)
    schema_target = target.parent / SCHEMA_FILE
    if target.exists() and not force:
        _fail(f"{target} exists; pass --force to overwrite it", EXIT_USAGE)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f"# yaml-language-server: $schema={SCHEMA_FILE}\n" + default_config_text())
        schema_target.write_text(_schema_text())
    except OSError as exc:
        _fail(f"cannot write {exc.filename or target}: {exc.strerror or exc}", EXIT_USAGE)
    _stdout.print(f"wrote {target} and {schema_target} (its JSON Schema, for your editor); edit "
                  f"it, then `argo-delivery render --config {target}`")


def _schema_text() -> str:
    from argo_delivery.config import platform_schema

    return json.dumps(platform_schema(), indent=2) + "\n"


@main.command(epilog="\b\nExamples:\n"
                     "  argo-delivery schema > platform.schema.json\n"
                     "  argo-delivery schema --out platform.schema.json")
@click.option("--out", "out_file", default="-", type=click.Path(dir_okay=False, allow_dash=True),
              help="Write the schema to this file instead of stdout.")
def schema(out_file: str) -> None:
    """Print the platform config's JSON Schema (Draft 2020-12).

    Point your editor at it: a first line `# yaml-language-server: $schema=platform.schema.json`
    in the config (what `argo-delivery init` writes) makes yaml-language-server use it.
    """
    text = _schema_text()
    if out_file == "-":
        click.echo(text, nl=False)
        return
    try:
        Path(out_file).write_text(text)
    except OSError as exc:
        _fail(f"cannot write {out_file}: {exc.strerror or exc}", EXIT_USAGE)
    _note(f"wrote {out_file}")


# --- lint and verify ------------------------------------------------------------------------

def _rule_ids(values: tuple[str, ...]) -> frozenset[str]:
    from argo_delivery.lint import RULES

    rules = frozenset(rule.strip().upper() for value in values for rule in value.split(",")
                      if rule.strip())
    unknown = sorted(rules - set(RULES))
    if unknown:
        _fail(f"--disable: unknown rule {', '.join(unknown)}; known rules: {', '.join(RULES)}",
              EXIT_USAGE)
    return rules


@main.command(epilog="\b\nExamples:\n"
                     "  argo-delivery lint dist/0.1.0                   # a bundle\n"
                     "  argo-delivery lint                              # render ./platform.yaml, lint it\n"
                     "  argo-delivery lint k8s/ --ignore-missing-schemas --disable AD005,AD006\n"
                     "  argo-delivery lint dist/0.1.0 --json | jq '.findings[].rule'\n\n"
                     "A resource can turn rules off for itself with the annotation\n"
                     "argo-delivery.io/lint-disable: AD005,AD006\n\n"
                     "Exit codes: 0 clean, 1 findings, 2 usage error (no manifests, a file that\n"
                     "is not YAML, a bad config), 70 internal error.")
@click.argument("bundle_dir", required=False, type=click.Path())
@_config_options("Lint")
@click.option("--no-upstream", is_flag=True, help="Skip Argo's own validators even when built.")
@click.option("--ignore-missing-schemas", is_flag=True,
              help="Skip resources of kinds no schema is known for, instead of reporting them.")
@click.option("--disable", "disabled", multiple=True, metavar="RULES",
              help="Rule IDs not to report, comma-separated (repeatable): --disable AD005,AD006.")
@_json_option
def lint(bundle_dir: str | None, config_path: str | None, example: bool, images_lock: str | None,
         no_upstream: bool, ignore_missing_schemas: bool, disabled: tuple[str, ...],
         as_json: bool) -> None:
    """Check a bundle (or any folder or file of manifests): schemas, Argo's validators, policy rules.

    Without BUNDLE_DIR it renders the config (as `render` finds it) and lints that.
    """
    from argo_delivery.bundle import write_bundle
    from argo_delivery.lint import LintOptions, ManifestError, lint_paths
    from argo_delivery.upstream import UpstreamToolError

    _set_json(as_json)
    options = LintOptions(disabled=_rule_ids(disabled), ignore_missing_schemas=ignore_missing_schemas)
    if bundle_dir is not None and (config_path or example or images_lock):
        _fail("pass either BUNDLE_DIR (manifests to lint) or --config/--example/--images-lock (a "
              "config to render and lint), not both", EXIT_USAGE)
    with tempfile.TemporaryDirectory(prefix="argo-delivery-lint-") as scratch:
        if bundle_dir is None:
            bundle = _build(_load(config_path, example, folder_hint=(
                "; to lint a folder of manifests, pass it as BUNDLE_DIR: "
                "`argo-delivery lint {path}`"), images_lock_path=images_lock))
            root = Path(write_bundle(bundle, scratch).path)
        else:
            root = Path(bundle_dir)
            if not root.exists():
                _fail(f"{root} does not exist", EXIT_USAGE)
            if root.is_dir() and next(root.rglob("*.y*ml"), None) is None:
                _fail(f"{root} holds no YAML files (*.yaml, *.yml): nothing to lint", EXIT_USAGE)
        try:
            result = lint_paths([root], upstream=not no_upstream, options=options)
        except ManifestError as exc:
            _fail(f"cannot lint {root}: {exc}", EXIT_USAGE,
                  [_problem(exc.message, exc.file, exc.line, exc.column)])
        except UpstreamToolError as exc:
            _fail(str(exc), EXIT_USAGE)
        except OSError as exc:
            _fail(f"cannot read {exc.filename or root}: {exc.strerror or exc}", EXIT_USAGE)
    if result.resources == 0:
        _fail(f"found no Kubernetes resources in {root} ({result.files} files)", EXIT_USAGE)
    findings = result.findings
    code = EXIT_FINDINGS if findings else EXIT_OK
    if as_json:
        _emit_json({"ok": not findings, "exitCode": code, "files": result.files,
                    "resources": result.resources, "findings": [f.to_dict() for f in findings],
                    "notes": result.notes})
    else:
        for note in result.notes:
            _note(f"note: {note}")
        for finding in findings:
            _stdout.print(str(finding))
        checked = f"checked {result.files} files, {result.resources} resources"
        _stdout.print(f"{checked}: {len(findings)} finding(s)" if findings
                      else f"{checked}: clean, no findings")
    sys.exit(code)


@main.command(epilog="\b\nExamples:\n"
                     "  argo-delivery verify dist/0.1.0\n"
                     "  argo-delivery verify /media/usb/acme-platform/0.1.0 --json\n\n"
                     "Exit codes: 0 intact, 1 a file or the digest does not match, 2 not a bundle\n"
                     "folder.")
@click.argument("bundle_dir", type=click.Path())
@_json_option
def verify(bundle_dir: str, as_json: bool) -> None:
    """Check a bundle folder: every file against SHA256SUMS, and the digest in bundle.json.

    The digest is sha256 over the SHA256SUMS-format listing of every file but README.md,
    bundle.json and SHA256SUMS, as `render` computes it.
    """
    from argo_delivery.bundle import BundleError, verify_bundle

    _set_json(as_json)
    root = Path(bundle_dir)
    try:
        differences = verify_bundle(root)
        files = sum(1 for p in root.rglob("*") if p.is_file())
        recorded = None
        if not any(d.path == "bundle.json" and d.change in ("missing", "unreadable")
                   for d in differences):
            recorded = json.loads((root / "bundle.json").read_text())["digest"]
    except BundleError as exc:
        _fail(str(exc), EXIT_USAGE)
    except OSError as exc:
        _fail(f"cannot read {exc.filename or root}: {exc.strerror or exc}", EXIT_USAGE)
    code = EXIT_FINDINGS if differences else EXIT_OK
    if as_json:
        _emit_json({"ok": not differences, "exitCode": code, "path": str(root), "files": files,
                    "digest": recorded, "differences": [d.to_dict() for d in differences]})
    elif differences:
        for difference in differences:
            _stdout.print(f"  {difference}")
        _error(f"{root} does not match its SHA256SUMS and digest: {len(differences)} difference(s)")
    else:
        _stdout.print(f"{root}: {files} files match SHA256SUMS; digest {recorded}")
    sys.exit(code)


# --- the version hash ---------------------------------------------------------------------

def _hash(project: str, components: tuple[str, ...], config_path: str | None, example: bool,
          images_lock: str | None, as_json: bool) -> None:
    _set_json(as_json)
    if components and (config_path or example or images_lock):
        _fail("pass either --component (exact commits) or --config/--example/--images-lock "
              "(resolve heads), not both", EXIT_USAGE)
    if components:
        _hash_of_components(project, components, as_json)
    else:
        _hash_of_heads(project, config_path, example, images_lock, as_json)


def _hash_of_components(project: str, components: tuple[str, ...], as_json: bool) -> None:
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
        _emit_json({"hash": digest, "name": version_name(project, digest), "canonical": canonical})
    else:
        click.echo(digest)


def _hash_of_heads(project_name: str, config_path: str | None, example: bool,
                   images_lock: str | None, as_json: bool) -> None:
    """Resolve every component's head with the generate-version step's own code."""
    from argo_delivery.templates._steps import step_module

    config = _load(config_path, example, images_lock_path=images_lock)
    project = next((p for p in config.projects if p.name == project_name), None)
    if project is None:
        _fail(f"no project {project_name!r} in the config; projects: "
              f"{', '.join(p.name for p in config.projects)}", EXIT_USAGE)
    step = step_module("generate_version")
    # The step logs JSON lines on stdout; here retries are notes on stderr, and errors are
    # reported once, from the StepError that follows them.
    step.log = lambda event, **fields: event == "error" or _note(
        json.dumps({"event": event, **fields}, sort_keys=True))
    components = [{"name": c.name, "repo": c.repo, "branch": c.branch} for c in project.components]
    try:
        heads = step.resolve_component_heads(components, attempts=2, timeout=30)
    except step.StepError as exc:
        _fail(f"cannot resolve the heads of project {project_name}: {exc}", EXIT_USAGE)
    except OSError as exc:  # no git on PATH
        _fail(f"cannot run git ls-remote: {exc.strerror or exc}", EXIT_USAGE)
    digest = step.version_hash(project_name, heads)
    name = step.version_name(project_name, digest)
    if as_json:
        _emit_json({"project": project_name, "hash": digest, "name": name,
                    "canonical": step.canonical_json(project_name, heads).decode(),
                    "components": [{"name": h["name"], "repo": step.normalise_repo(h["repo"]),
                                    "ref": h["ref"], "commit": h["commit"]} for h in heads]})
        return
    for head in heads:
        _stdout.print(f"{head['name']}  {head['ref']}  {head['commit']}")
    _stdout.print(f"Version {name}\n{digest}")


_HASH_HELP = """Compute a Version's hash exactly as the generate-version step does.

With --component, from exact commits. Without it, resolve the head of every component of
PROJECT in the config with `git ls-remote` (the step's own code, your git credentials) and
predict the Version a push would create now.
"""
_HASH_EPILOG = ("\b\nExamples:\n"
                "  argo-delivery hash --project core-team                 # heads, ./platform.yaml\n"
                "  argo-delivery hash --project core-team --config site.yaml --json\n"
                "  argo-delivery hash --project core-team \\\n"
                "      --component api=https://github.com/acme-platform/api.git@0123...4567\n\n"
                "Exit codes: 0 printed, 2 usage or config error, or a head cannot be resolved.")


def _hash_options(function: Callable[..., Any]) -> Callable[..., Any]:
    for decorator in reversed((
        click.option("--project", required=True, help="Project name."),
        click.option("--component", "components", multiple=True, metavar="NAME=REPO@COMMIT",
                     help="A component's exact commit; repeat for each component."),
        _config_options("Resolve heads of"),
        click.option("--json", "as_json", is_flag=True,
                     help="Print the hash, the Version name and the canonical JSON."),
    )):
        function = decorator(function)
    return function


@main.command("hash", help=_HASH_HELP, epilog=_HASH_EPILOG)
@_hash_options
def hash_command(project: str, components: tuple[str, ...], config_path: str | None, example: bool,
                 images_lock: str | None, as_json: bool) -> None:
    _hash(project, components, config_path, example, images_lock, as_json)


@main.group(invoke_without_command=True,
            epilog="\b\nExamples:\n  argo-delivery version\n  argo-delivery version --json")
@click.option("--json", "as_json", is_flag=True, help="{\"version\": ...} on stdout.")
@click.pass_context
def version(ctx: click.Context, as_json: bool) -> None:
    """Print argo-delivery's version (`version hash` is a deprecated alias of `hash`)."""
    if ctx.invoked_subcommand is None:
        click.echo(json.dumps({"version": __version__}) if as_json else f"argo-delivery {__version__}")


@version.command("hash", help="Deprecated alias of `argo-delivery hash`.", epilog=_HASH_EPILOG,
                 deprecated="Use `argo-delivery hash`.")
@_hash_options
def version_hash_alias(project: str, components: tuple[str, ...], config_path: str | None,
                       example: bool, images_lock: str | None, as_json: bool) -> None:
    _hash(project, components, config_path, example, images_lock, as_json)


# --- shell completion -----------------------------------------------------------------------

@main.command(epilog="\b\nExamples:\n"
                     "  eval \"$(argo-delivery completion bash)\"     # in ~/.bashrc\n"
                     "  eval \"$(argo-delivery completion zsh)\"      # in ~/.zshrc\n"
                     "  argo-delivery completion fish > ~/.config/fish/completions/argo-delivery.fish")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL (click's shell completion)."""
    from click.shell_completion import get_completion_class

    completer = get_completion_class(shell)
    assert completer is not None  # the Choice admits only shells click supports
    click.echo(completer(main, {}, "argo-delivery", "_ARGO_DELIVERY_COMPLETE").source())


# --- apply and diff ---------------------------------------------------------------------

_KUBE_OPTIONS = [
    click.option("--kubeconfig", type=click.Path(dir_okay=False),
                 help="Kubeconfig file. Default: $KUBECONFIG, then ~/.kube/config."),
    click.option("--context", help="Kubeconfig context. Default: the current one."),
]


def _kube_options(command):
    for option in reversed(_KUBE_OPTIONS):
        command = option(command)
    return command


def _bundle_dir(path: str):
    from argo_delivery.apply import ApplyError, read_bundle

    try:
        return read_bundle(path)
    except ApplyError as exc:
        _fail(str(exc), EXIT_USAGE)


def _print_diffs(differences, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps([d.to_dict() for d in differences], indent=2))
        return
    for difference in differences:
        _stdout.print(f"{difference.change}: {difference.resource}", markup=False)
        click.echo(difference.diff, nl=False)
    _stdout.print(f"{len(differences)} difference(s)" if differences else "no differences")


@main.command(epilog="\b\nExamples:\n"
                     "  argo-delivery apply dist/0.1.0 --dry-run\n"
                     "  argo-delivery apply dist/0.1.0 --context prod-orchestrator\n"
                     "  argo-delivery apply dist/0.2.0 --json > report.json")
@click.argument("bundle_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--dry-run", is_flag=True, help="Server-side dry run; delete nothing.")
@click.option("--no-prune", is_flag=True, help="Apply only; leave what the bundle no longer has.")
@click.option("--prune-namespaces", is_flag=True,
              help="Also delete Namespaces the bundle no longer has, with everything in them.")
@click.option("--prune-crds", is_flag=True,
              help="Also delete CRDs the bundle no longer has, with every resource of their kind.")
@click.option("--force-conflicts", is_flag=True,
              help="Take over fields another field manager owns (server-side apply --force-conflicts).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report.")
@_kube_options
def apply(bundle_dir: str, dry_run: bool, no_prune: bool, prune_namespaces: bool, prune_crds: bool,
          force_conflicts: bool, as_json: bool, kubeconfig: str | None, context: str | None) -> None:
    """Install BUNDLE_DIR on the cluster: CRDs (and wait), Namespaces, the rest, then prune.

    Server-side apply with field manager `argo-delivery`; the bundle is an ApplySet (parent
    Secret `<bundle>-applyset` in the orchestrator namespace), so what a previous version had
    and this one lacks is deleted. Namespaces and CRDs are kept unless asked.
    Exit 0 when applied, 1 when the cluster refused something (the object is named), 2 on a
    usage error.
    """
    from argo_delivery.apply import ApplyError, Cluster, apply_bundle

    _set_json(as_json)
    bundle = _bundle_dir(bundle_dir)
    try:
        cluster = Cluster.from_kubeconfig(kubeconfig, context)
        report = apply_bundle(bundle, cluster, dry_run=dry_run, prune=not no_prune,
                              prune_namespaces=prune_namespaces, prune_crds=prune_crds,
                              force_conflicts=force_conflicts,
                              progress=lambda line: _stderr.print(line, markup=False))
    except ApplyError as exc:
        _fail(str(exc), EXIT_FINDINGS)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    for line in report.pruned:
        _stdout.print(f"pruned: {line}", markup=False)
    for line in report.kept:
        _stdout.print(f"kept: {line}", markup=False)
    verb = "would apply" if dry_run else "applied"
    _stdout.print(f"{bundle.name} {bundle.version}: {verb} {len(report.applied)} resource(s), "
                  f"{len(report.changed)} changed, {len(report.pruned)} pruned, "
                  f"{len(report.kept)} kept", markup=False)


@main.command(epilog="\b\nExamples:\n"
                     "  argo-delivery diff dist/0.2.0                # against the cluster\n"
                     "  argo-delivery diff dist/0.1.0 dist/0.2.0     # between two bundles\n"
                     "  argo-delivery diff dist/0.2.0 --json | jq '.[].resource'")
@click.argument("bundle_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("other_dir", required=False, type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_kube_options
def diff(bundle_dir: str, other_dir: str | None, as_json: bool, kubeconfig: str | None,
         context: str | None) -> None:
    """What applying BUNDLE_DIR would change on the cluster, or (with OTHER_DIR) what changes
    from BUNDLE_DIR to OTHER_DIR. The version label is not a change.

    Exit 0 when nothing differs, 1 when something does, 2 on a usage error.
    """
    from argo_delivery.apply import ApplyError, Cluster, diff_bundles, diff_cluster

    _set_json(as_json)
    bundle = _bundle_dir(bundle_dir)
    try:
        if other_dir:
            differences = diff_bundles(bundle, _bundle_dir(other_dir))
        else:
            differences = diff_cluster(bundle, Cluster.from_kubeconfig(kubeconfig, context))
    except ApplyError as exc:
        _fail(str(exc), EXIT_USAGE)
    _print_diffs(differences, as_json)
    sys.exit(EXIT_FINDINGS if differences else 0)


@main.command(epilog="\b\nExamples:\n"
                     "  argo-delivery doctor                          # ./platform.yaml, current context\n"
                     "  argo-delivery doctor --workflows-namespace argo --events-namespace argo-events\n"
                     "  argo-delivery doctor --json | jq '.checks[] | select(.status == \"problem\")'")
@_config_options("Check the prerequisites of")
@click.option("--workflows-namespace", default="argo", show_default=True,
              help="Where Argo Workflows' controller and its ConfigMap live.")
@click.option("--events-namespace", default="argo-events", show_default=True,
              help="Where Argo Events' controller and its ConfigMap live.")
@_json_option
@_kube_options
def doctor(config_path: str | None, example: bool, images_lock: str | None, workflows_namespace: str,
           events_namespace: str, as_json: bool, kubeconfig: str | None, context: str | None) -> None:
    """Check on the cluster what the bundle expects but does not contain: the controllers'
    executor image and securityContext, templateReferencing, the JetStream images, the CRDs,
    and every referenced Secret (present, with its keys, not empty).

    Exit 0 when every prerequisite is met, 1 when one is not, 2 on a usage error.
    """
    from argo_delivery.apply import ApplyError, api_client
    from argo_delivery.doctor import run_checks

    _set_json(as_json)
    config = _load(config_path, example, images_lock_path=images_lock)
    try:
        checks = run_checks(config, api_client(kubeconfig, context),
                            workflows_namespace=workflows_namespace, events_namespace=events_namespace)
    except ApplyError as exc:
        _fail(str(exc), EXIT_USAGE)
    problems = [c for c in checks if c.status == "problem"]
    if as_json:
        click.echo(json.dumps({"ok": not problems, "checks": [c.to_dict() for c in checks]}, indent=2))
    else:
        for check in checks:
            _stdout.print(f"{check.status:8} {check.name}: {check.message}", markup=False)
        _stdout.print(f"{len(problems)} problem(s)" if problems else "every prerequisite is met",
                      markup=False)
    sys.exit(EXIT_FINDINGS if problems else 0)


# --- versions: the developer CLI (argo_delivery/versions.py) ---------------------------------

_OUTPUT_OPTION = click.option("-o", "--output", type=click.Choice(["table", "json", "yaml"]),
                              default="table", show_default=True, help="Output format.")


def _versions_options(command):
    """--kubeconfig, --context, -n/--namespace and --project, on every `versions` command."""
    for option in reversed([
        *_KUBE_OPTIONS,
        click.option("-n", "--namespace", metavar="NS",
                     help="Namespace of the Versions. Default: the one labelled "
                          "argo-delivery.io/project=PROJECT (with --project, when you may list "
                          "namespaces), else the kubeconfig context's namespace."),
        click.option("--project", metavar="P", help="Only Versions of project P (spec.project)."),
    ]):
        command = option(command)
    return command


def _versions_client(kubeconfig: str | None, context: str | None, namespace: str | None,
                     project: str | None, all_namespaces: bool = False):
    """(client, namespace): connected with the user's kubeconfig; says on stderr where it looks
    unless -n named the namespace. The namespace is None for all namespaces."""
    from argo_delivery.versions import VersionsClient

    with _versions_errors():
        client = VersionsClient.connect(kubeconfig, context)
        if all_namespaces:
            return client, None
        chosen, why = client.namespace_for(namespace, project)
    if why != "-n":
        _note(f"namespace: {chosen} ({why})")
    return client, chosen


@contextlib.contextmanager
def _versions_errors():
    """A VersionsError ends the command: exit 2 for usage, 1 for a refusal or a failure."""
    from argo_delivery.versions import VersionsError

    try:
        yield
    except VersionsError as exc:
        _fail(str(exc), EXIT_USAGE if exc.usage else EXIT_FINDINGS)


def _print_wide(*renderables: Any) -> None:
    """Tables fitted to a terminal; to a pipe or a file, at their natural width without trailing
    blanks (rich would fold them to 80 columns), so `grep` and `awk` see whole lines."""
    if _stdout.is_terminal:
        for renderable in renderables:
            _stdout.print(renderable)
        return
    import io

    wide = Console(file=io.StringIO(), width=100_000, color_system=None, highlight=False,
                   markup=False, emoji=False)
    for renderable in renderables:
        wide.print(renderable)
    for line in wide.file.getvalue().splitlines():
        click.echo(line.rstrip())


def _dump(document: Any, output: str) -> None:
    if output == "json":
        click.echo(json.dumps(document, indent=2))
    else:
        import yaml

        click.echo(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), nl=False)


_VERSIONS_EXIT = ("Exit codes: 0 done, 1 refused or failed (by the API server, or locally with "
                  "the reason), 2 usage or kubeconfig error.")


@main.group(epilog="\b\nExamples:\n"
                   "  argo-delivery versions list --project core-team\n"
                   "  argo-delivery versions show core-team-0123456789abcdef\n"
                   "  argo-delivery versions approve core-team-0123456789abcdef --comment 'QA ok'\n"
                   "  argo-delivery versions rerun core-team-0123456789abcdef --stream alpha\n"
                   "  argo-delivery versions wait core-team-0123456789abcdef --for stream=candidate\n\n"
                   + _VERSIONS_EXIT)
def versions() -> None:
    """Versions on the cluster, with your kubeconfig: list, show, approve, rerun, wait.

    The API server decides who may do what (RBAC and the bundle's admission policies); a
    refusal is explained in one sentence.
    """


@versions.command("list", epilog="\b\nExamples:\n"
                                 "  argo-delivery versions list\n"
                                 "  argo-delivery versions list --project core-team --stream candidate\n"
                                 "  argo-delivery versions list -n core-team -o json\n"
                                 "  argo-delivery versions list -A\n\n" + _VERSIONS_EXIT)
@click.option("--stream", type=click.Choice(["alpha", "nightly", "candidate", "released", "failed"]),
              help="Only Versions at this stream.")
@click.option("-A", "--all-namespaces", is_flag=True, help="Versions of every namespace you may list.")
@_OUTPUT_OPTION
@_versions_options
def versions_list(stream: str | None, all_namespaces: bool, output: str, kubeconfig: str | None,
                  context: str | None, namespace: str | None, project: str | None) -> None:
    """List Versions, newest first: name, project, stream, who approved, age."""
    from argo_delivery.versions import list_table, now, select, summary

    if all_namespaces and namespace:
        _fail("--all-namespaces and --namespace exclude each other", EXIT_USAGE)
    client, chosen = _versions_client(kubeconfig, context, namespace, project, all_namespaces)
    with _versions_errors():
        found = select(client.list(chosen), project, stream)
    at = now()
    rows = [summary(v, at) for v in found]
    if output != "table":
        _dump(rows, output)
        return
    if not rows:
        where = "any namespace you may list" if all_namespaces else f"namespace {chosen}"
        which = " ".join(x for x in (f"of project {project}" if project else "",
                                     f"at stream {stream}" if stream else "") if x)
        _note(f"no Versions {which + ' ' if which else ''}in {where}")
        return
    _print_wide(list_table(rows, all_namespaces))


@versions.command("show", epilog="\b\nExamples:\n"
                                 "  argo-delivery versions show core-team-0123456789abcdef\n"
                                 "  argo-delivery versions show core-team-0123456789abcdef -o yaml\n\n"
                                 + _VERSIONS_EXIT)
@click.argument("name")
@_OUTPUT_OPTION
@_versions_options
def versions_show(name: str, output: str, kubeconfig: str | None, context: str | None,
                  namespace: str | None, project: str | None) -> None:
    """Show Version NAME: components, hash, trigger, each stream's run and suites, approval,
    release, conditions."""
    from argo_delivery.versions import check_project, detail, now, show_renderables

    client, chosen = _versions_client(kubeconfig, context, namespace, project)
    with _versions_errors():
        version = client.get(name, chosen)
        check_project(version, project)
    document = detail(version, now())
    if output != "table":
        _dump(document, output)
        return
    _print_wide(*show_renderables(document))


@versions.command("approve", epilog="\b\nExamples:\n"
                                    "  argo-delivery versions approve core-team-0123456789abcdef\n"
                                    "  argo-delivery versions approve core-team-0123456789abcdef "
                                    "--comment 'release 4.2'\n\n"
                                    "Needs the Role argo-delivery-product-owner in the project's "
                                    "namespace; the API server approves only a candidate.\n"
                                    + _VERSIONS_EXIT)
@click.argument("name")
@click.option("--comment", metavar="TEXT", help="Why (kept in spec.approval.comment).")
@_versions_options
def versions_approve(name: str, comment: str | None, kubeconfig: str | None, context: str | None,
                     namespace: str | None, project: str | None) -> None:
    """Sign Version NAME off as yourself (the API server says who you are): sets
    spec.approval = {approvedBy, approvedAt, comment}, once."""
    from argo_delivery.versions import approval_text, approve

    client, chosen = _versions_client(kubeconfig, context, namespace, project)
    with _versions_errors():
        version, _user = approve(client, name, chosen, comment, project=project)
    _stdout.print(f"Version {chosen}/{name} {approval_text(version['spec'].get('approval'))}")


@versions.command("rerun", epilog="\b\nExamples:\n"
                                  "  argo-delivery versions rerun core-team-0123456789abcdef "
                                  "--stream alpha\n"
                                  "  argo-delivery versions rerun core-team-0123456789abcdef "
                                  "--stream nightly -n core-team\n\n" + _VERSIONS_EXIT)
@click.argument("name")
@click.option("--stream", required=True, type=click.Choice(["alpha", "nightly"]),
              help="The stream to run again.")
@_versions_options
def versions_rerun(name: str, stream: str, kubeconfig: str | None, context: str | None,
                   namespace: str | None, project: str | None) -> None:
    """Run STREAM of Version NAME again: sets the annotation argo-delivery.io/rerun-STREAM to a
    fresh timestamp, which the project's Sensor reacts to. A released Version is refused."""
    from argo_delivery.versions import rerun

    client, chosen = _versions_client(kubeconfig, context, namespace, project)
    with _versions_errors():
        _version, value = rerun(client, name, chosen, stream, project=project)
    _stdout.print(f"asked for the {stream} stream of Version {chosen}/{name} to run again "
                  f"(argo-delivery.io/rerun-{stream}={value})")


@versions.command("wait", epilog="\b\nExamples:\n"
                                 "  argo-delivery versions wait core-team-0123456789abcdef "
                                 "--for stream=candidate --timeout 12h\n"
                                 "  argo-delivery versions wait core-team-0123456789abcdef "
                                 "--for condition=AlphaPassed\n"
                                 "  argo-delivery versions wait core-team-0123456789abcdef "
                                 "--for condition=Approved=True\n\n"
                                 "Exit codes: 0 the condition holds, 1 timed out (the last state is "
                                 "shown) or the Version failed\n(its failing suites are shown), 2 "
                                 "usage or kubeconfig error.")
@click.argument("name")
@click.option("--for", "for_", required=True, metavar="stream=S|condition=TYPE[=STATUS]",
              help="stream=S holds once the Version is at S or past it (alpha, nightly, candidate, "
                   "released; or failed); condition=TYPE[=True|False|Unknown] when status.conditions "
                   "says so (AlphaPassed, NightlyPassed, Approved, Released).")
@click.option("--timeout", default="10m", show_default=True, metavar="DURATION",
              help="Give up after this long (30s, 10m, 2h).")
@_versions_options
def versions_wait(name: str, for_: str, timeout: str, kubeconfig: str | None, context: str | None,
                  namespace: str | None, project: str | None) -> None:
    """Wait until Version NAME reaches a stream or a condition (a watch, resumed when it ends).

    A Version that fails while you wait for anything else ends the wait at once, with its
    failing suites, unless a rerun of its failed stream is pending.
    """
    from argo_delivery.durations import parse_duration
    from argo_delivery.versions import check_project, parse_wait_for, wait

    with _versions_errors():
        want = parse_wait_for(for_)
    try:
        seconds = parse_duration(timeout).total_seconds()
    except ValueError as exc:
        _fail(f"--timeout: {exc}", EXIT_USAGE)
    client, chosen = _versions_client(kubeconfig, context, namespace, project)
    with _versions_errors():
        if project:
            check_project(client.get(name, chosen), project)
        outcome = wait(client, name, chosen, want, seconds,
                       progress=lambda state: _note(f"{name}: {state}"))
    if not outcome.ok:
        _fail(outcome.message, EXIT_FINDINGS)
    _stdout.print(outcome.message)



# --- envs: Environments from the command line (argo_delivery/environments_cli.py) -------------

def _envs_options(command):
    """--kubeconfig, --context, -n/--namespace and --project, on every `envs` command."""
    for option in reversed([
        *_KUBE_OPTIONS,
        click.option("-n", "--namespace", metavar="NS",
                     help="Namespace of the Environments. Default: the one labelled "
                          "argo-delivery.io/project=PROJECT (with --project, when you may list "
                          "namespaces), else the kubeconfig context's namespace."),
        click.option("--project", metavar="P",
                     help="The project (spec.project): finds its namespace; other commands than "
                          "create refuse an Environment of another project."),
    ]):
        command = option(command)
    return command


def _envs_client(kubeconfig: str | None, context: str | None, namespace: str | None,
                 project: str | None, all_namespaces: bool = False):
    """(client, namespace) as `_versions_client`, for Environments."""
    from argo_delivery.environments_cli import EnvironmentsClient

    with _versions_errors():
        client = EnvironmentsClient.connect(kubeconfig, context)
        if all_namespaces:
            return client, None
        chosen, why = client.namespace_for(namespace, project)
    if why != "-n":
        _note(f"namespace: {chosen} ({why})")
    return client, chosen


def _seconds(timeout: str) -> float:
    from argo_delivery.durations import parse_duration

    try:
        return parse_duration(timeout).total_seconds()
    except ValueError as exc:
        _fail(f"--timeout: {exc}", EXIT_USAGE)


_ENVS_EXIT = ("Exit codes: 0 done, 1 refused or failed (by the API server, or locally with the "
              "reason; a wait that saw a failure or timed out), 2 usage or kubeconfig error.")
_TIMEOUT_OPTION = click.option("--timeout", default="30m", show_default=True, metavar="DURATION",
                               help="With --wait: give up after this long (30s, 10m, 2h).")


@main.group(epilog="\b\nExamples:\n"
                   "  argo-delivery envs create --project core-team --version "
                   "core-team-0123456789abcdef --ttl 8h --wait\n"
                   "  argo-delivery envs list --project core-team\n"
                   "  argo-delivery envs show core-team-x7k2p\n"
                   "  argo-delivery envs kubeconfig core-team-x7k2p\n"
                   "  argo-delivery envs extend core-team-x7k2p --ttl 4h\n"
                   "  argo-delivery envs delete core-team-x7k2p --wait\n\n" + _ENVS_EXIT)
def envs() -> None:
    """Environments on the cluster, with your kubeconfig: create, list, show, kubeconfig,
    extend, delete.

    The API server decides who may do what (RBAC and the bundle's admission policies
    argo-delivery-environment-requests and argo-delivery-environment-lifecycle); a refusal is
    explained in one sentence.
    """


@envs.command("create", epilog="\b\nExamples:\n"
                               "  argo-delivery envs create --project core-team --version "
                               "core-team-0123456789abcdef\n"
                               "  argo-delivery envs create --project core-team --version "
                               "core-team-0123456789abcdef --name bob-demo --ttl 8h \\\n"
                               "      --var size=small --var region=eu-west-1 --wait --timeout 45m\n\n"
                               "Exit codes: 0 created (with --wait: Ready), 1 refused, the "
                               "Environment failed or the wait timed out, 2 usage or kubeconfig "
                               "error.")
@click.option("--version", "version_name", required=True, metavar="V",
              help="The Version to deploy (spec.version).")
@click.option("--name", metavar="NAME", help="Its name. Default: <project>-<random suffix>.")
@click.option("--ttl", metavar="DURATION",
              help="How long it lives from its creation (annotation argo-delivery.io/ttl, a Go "
                   "duration: 8h, 90m); at most the project's maxTTL. Default: the project's "
                   "defaultTTL.")
@click.option("--var", "variables", multiple=True, metavar="NAME=VALUE",
              help="A Terraform variable (spec.infrastructure.variables), repeatable.")
@click.option("--wait", "wait_", is_flag=True, help="Wait until it is Ready or Failed.")
@_TIMEOUT_OPTION
@_envs_options
def envs_create(version_name: str, name: str | None, ttl: str | None, variables: tuple[str, ...],
                wait_: bool, timeout: str, kubeconfig: str | None, context: str | None,
                namespace: str | None, project: str | None) -> None:
    """Ask for an Environment of project P at Version V, owned by you (the API server says who
    you are). Prints its name on stdout."""
    from argo_delivery.environments_cli import create, parse_ttl, parse_variables, wait

    if not project:
        _fail("--project is required: the project the Environment is for (spec.project)",
              EXIT_USAGE)
    with _versions_errors():
        if ttl:
            parse_ttl(ttl)
        values = parse_variables(variables)
    seconds = _seconds(timeout)
    client, chosen = _envs_client(kubeconfig, context, namespace, project)
    with _versions_errors():
        created = create(client, namespace=chosen, project=project, version=version_name,
                         name=name, ttl=ttl, variables=values)
    meta = created["metadata"]
    click.echo(meta["name"])
    _note(f"created Environment {chosen}/{meta['name']} for {created['spec']['owner']}"
          + (f", ttl {ttl}" if ttl else ""))
    if not wait_:
        return
    with _versions_errors():
        outcome = wait(client, meta["name"], chosen, "ready", seconds,
                       progress=lambda state: _note(f"{meta['name']}: {state}"))
    if not outcome.ok:
        _fail(outcome.message, EXIT_FINDINGS)
    _note(outcome.message)


@envs.command("list", epilog="\b\nExamples:\n"
                             "  argo-delivery envs list\n"
                             "  argo-delivery envs list --project core-team -o json\n"
                             "  argo-delivery envs list -A\n\n" + _ENVS_EXIT)
@click.option("-A", "--all-namespaces", is_flag=True,
              help="Environments of every namespace you may list.")
@_OUTPUT_OPTION
@_envs_options
def envs_list(all_namespaces: bool, output: str, kubeconfig: str | None, context: str | None,
              namespace: str | None, project: str | None) -> None:
    """List Environments, newest first: name, project, version, owner, phase, when it expires,
    age."""
    from argo_delivery.environments_cli import expiry_of, list_table, now, select, summary

    if all_namespaces and namespace:
        _fail("--all-namespaces and --namespace exclude each other", EXIT_USAGE)
    client, chosen = _envs_client(kubeconfig, context, namespace, project, all_namespaces)
    with _versions_errors():
        found = select(client.list(chosen), project)
        ttls = client.default_ttls(e for e in found if expiry_of(e)[0] is None
                                   and expiry_of(e)[1] == "unknown")
    at = now()
    rows = [summary(e, at, ttls.get((e["metadata"].get("namespace"),
                                     (e.get("spec") or {}).get("project")))) for e in found]
    if output != "table":
        _dump(rows, output)
        return
    if not rows:
        where = "any namespace you may list" if all_namespaces else f"namespace {chosen}"
        _note(f"no Environments {f'of project {project} ' if project else ''}in {where}")
        return
    _print_wide(list_table(rows, all_namespaces))


def _default_ttl(client: Any, environment: dict[str, Any]):
    from argo_delivery.environments_cli import default_ttl_of, expiry_of

    if expiry_of(environment)[1] != "unknown":
        return None
    return default_ttl_of(client.project(environment["metadata"]["namespace"],
                                         (environment.get("spec") or {}).get("project", "")))


@envs.command("show", epilog="\b\nExamples:\n"
                             "  argo-delivery envs show core-team-x7k2p\n"
                             "  argo-delivery envs show core-team-x7k2p -o yaml\n\n" + _ENVS_EXIT)
@click.argument("name")
@_OUTPUT_OPTION
@_envs_options
def envs_show(name: str, output: str, kubeconfig: str | None, context: str | None,
              namespace: str | None, project: str | None) -> None:
    """Show Environment NAME: phase, version (and the one deployed), owner, expiry, the
    non-sensitive outputs, the outputs Secret, conditions, the last error, the workflow."""
    from argo_delivery.environments_cli import check_project, detail, now, show_renderables

    client, chosen = _envs_client(kubeconfig, context, namespace, project)
    with _versions_errors():
        environment = client.get(name, chosen)
        check_project(environment, project)
        default_ttl = _default_ttl(client, environment)
    document = detail(environment, now(), default_ttl)
    if output != "table":
        _dump(document, output)
        return
    _print_wide(*show_renderables(document))


@envs.command("kubeconfig", epilog="\b\nExamples:\n"
                                   "  argo-delivery envs kubeconfig core-team-x7k2p\n"
                                   "  argo-delivery envs kubeconfig core-team-x7k2p -f ~/.kube/x7k2p"
                                   " && export KUBECONFIG=~/.kube/x7k2p\n\n"
                                   "Only the Environment's owner may read its outputs Secret "
                                   "(the Role <name>-outputs-reader its vend makes).\n"
                                   + _ENVS_EXIT)
@click.argument("name")
@click.option("-f", "--file", "file_", metavar="FILE", type=click.Path(dir_okay=False),
              help="Where to write it. Default: ./NAME.kubeconfig.")
@_envs_options
def envs_kubeconfig(name: str, file_: str | None, kubeconfig: str | None, context: str | None,
                    namespace: str | None, project: str | None) -> None:
    """Write the kubeconfig of Environment NAME (key `kubeconfig` of its outputs Secret) to
    FILE, readable by you only (mode 0600). It is never printed."""
    from argo_delivery.environments_cli import check_project, kubeconfig_bytes, write_private

    client, chosen = _envs_client(kubeconfig, context, namespace, project)
    path = Path(file_ or f"{name}.kubeconfig")
    with _versions_errors():
        environment = client.get(name, chosen)
        check_project(environment, project)
        content = kubeconfig_bytes(client.outputs_secret(environment), environment)
        replaced = write_private(path, content)
    _stdout.print(f"wrote the kubeconfig of Environment {chosen}/{name} to {path} (mode 0600"
                  + (", replacing the file there)" if replaced else ")"))


@envs.command("extend", epilog="\b\nExamples:\n"
                               "  argo-delivery envs extend core-team-x7k2p --ttl 4h\n\n"
                               "Needs: your own Environment, or the custom verb manage (product "
                               "owners). At most the project's maxTTL from its creation.\n"
                               + _ENVS_EXIT)
@click.argument("name")
@click.option("--ttl", required=True, metavar="DURATION",
              help="It then expires this long from now (a Go duration: 4h, 90m).")
@_envs_options
def envs_extend(name: str, ttl: str, kubeconfig: str | None, context: str | None,
                namespace: str | None, project: str | None) -> None:
    """Make Environment NAME expire TTL from now: sets the annotation argo-delivery.io/ttl to
    the time from its creation to then (whole minutes, rounded up) and removes
    argo-delivery.io/expires. Refused beyond the project's maxTTL (the latest possible expiry
    is named) and for demo Environments (they never expire)."""
    from argo_delivery.environments_cli import extend, now, parse_ttl, rfc3339, until

    with _versions_errors():
        wanted = parse_ttl(ttl)
    client, chosen = _envs_client(kubeconfig, context, namespace, project)
    with _versions_errors():
        _environment, expires, text = extend(client, name, chosen, wanted, project=project)
    _stdout.print(f"Environment {chosen}/{name} now expires at {rfc3339(expires)} "
                  f"({until(expires, now())}): argo-delivery.io/ttl={text} from its creation")


@envs.command("delete", epilog="\b\nExamples:\n"
                               "  argo-delivery envs delete core-team-x7k2p\n"
                               "  argo-delivery envs delete core-team-x7k2p --wait --timeout 1h\n"
                               "  argo-delivery envs delete core-team-x7k2p --force   "
                               "# product owners: a destroy that cannot finish\n\n"
                               "Exit codes: 0 deleted (with --wait: gone), 1 refused, the destroy "
                               "failed, the wait timed out or --force was not confirmed, 2 usage "
                               "or kubeconfig error.")
@click.argument("name")
@click.option("--wait", "wait_", is_flag=True,
              help="Wait until it is gone (its destroy ran), or its destroy failed.")
@click.option("--force", is_flag=True,
              help="For one already being deleted whose destroy failed or is stuck: list what may "
                   "be left behind, then remove only the finalizer argo-delivery.io/environment "
                   "(the custom verb finalize: product owners).")
@click.option("-y", "--yes", is_flag=True, help="With --force: do not ask for confirmation.")
@_TIMEOUT_OPTION
@_envs_options
def envs_delete(name: str, wait_: bool, force: bool, yes: bool, timeout: str,
                kubeconfig: str | None, context: str | None, namespace: str | None,
                project: str | None) -> None:
    """Delete Environment NAME: its destroy runs (the finalizer argo-delivery.io/environment
    holds it until then). Yours, or anyone's with the custom verb manage (product owners)."""
    from argo_delivery import envmodel
    from argo_delivery.environments_cli import check_project, force_facts, refuse_force, wait
    from argo_delivery.environments_cli import force as drop_finalizer

    seconds = _seconds(timeout)
    client, chosen = _envs_client(kubeconfig, context, namespace, project)
    target = f"Environment {chosen}/{name}"
    with _versions_errors():
        environment = client.get(name, chosen)
        check_project(environment, project)
        if force:
            refuse_force(environment)
            facts = force_facts(client, environment)
    if force:
        _stdout.print(f"Removing the finalizer {envmodel.FINALIZER} gives up the destroy of "
                      f"{target}. What may be left behind:")
        for line in facts:
            _stdout.print(f"  - {line}")
        if not yes:
            try:
                confirmed = click.confirm(f"Remove the finalizer {envmodel.FINALIZER} of {target}?",
                                          default=False, err=True)
            except click.Abort:
                confirmed = False
            if not confirmed:
                _fail("nothing was changed (not confirmed; --yes confirms without asking)",
                      EXIT_FINDINGS)
        with _versions_errors():
            drop_finalizer(client, environment)
        _stdout.print(f"removed the finalizer {envmodel.FINALIZER} of {target}; its destroy is "
                      "given up")
    else:
        with _versions_errors():
            client.delete(name, chosen)
        _stdout.print(f"deleting {target}" + (
            f": its destroy runs first (finalizer {envmodel.FINALIZER})"
            if envmodel.has_finalizer(environment) else ""))
    if not wait_:
        return
    with _versions_errors():
        outcome = wait(client, name, chosen, "gone", seconds,
                       progress=lambda state: _note(f"{name}: {state}"))
    if not outcome.ok:
        _fail(outcome.message, EXIT_FINDINGS)
    _stdout.print(outcome.message)


# --- images: what the manifests run (argo_delivery/imagefinder.py) -----------------------------

_IMAGES_EXIT = ("Exit codes: 0 every manifest scanned, 1 problems (a bad manifest, an unscannable "
                "field, a chart helm cannot render), 2 usage error (no such path, a bad --paths "
                "file, --values/--set without a chart, kustomize or helm not built).")


@main.group(epilog="\b\nExamples:\n"
                   "  argo-delivery images find deploy/\n"
                   "  argo-delivery images find dist/0.1.0 -o json\n\n" + _IMAGES_EXIT)
def images() -> None:
    """Container images in Kubernetes manifests: find."""


@images.command("find", epilog="\b\nExamples:\n"
                               "  argo-delivery images find deploy/ manifests/job.yaml\n"
                               "  argo-delivery images find overlays/prod -o json\n"
                               "  argo-delivery images find deploy/ --paths image-paths.yaml\n"
                               "  argo-delivery images find charts/web --values prod.yaml "
                               "--set image.tag=1.28\n\n"
                               "\b\nA --paths file names the image fields of other kinds:\n"
                               "  example.com/Runner: [spec.runner.image, spec.workers[*].image]\n"
                               "  (GROUP/Kind, or Kind for the core group; `[*]` every list item,\n"
                               "  `[N]` one, `*` every value of a map)\n\n" + _IMAGES_EXIT)
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="Output format.")
@click.option("--paths", "paths_file", metavar="FILE", type=click.Path(dir_okay=False),
              help="Image field paths of other custom resources (YAML or JSON).")
@click.option("--values", "-f", "helm_values", metavar="FILE", multiple=True,
              type=click.Path(dir_okay=False),
              help="A values file for the Helm charts (as `helm template -f`); repeatable.")
@click.option("--set", "helm_set", metavar="KEY=VALUE", multiple=True,
              help="A value for the Helm charts (as `helm template --set`); repeatable, "
                   "applied after the --values files.")
def images_find(paths: tuple[str, ...], output: str, paths_file: str | None,
                helm_values: tuple[str, ...], helm_set: tuple[str, ...]) -> None:
    """Every image the manifests at PATH... run, with where each was found (file, kind/name,
    field). PATH is a file or a folder of YAML/JSON (recursively, multi-document); a folder
    holding a kustomization is built with kustomize, its `images:` applied; a folder holding a
    Chart.yaml is rendered with `helm template` (offline; --values and --set apply to every
    chart), each object located at its template. kustomize and helm: `make tools`. Problems
    and kinds not scanned go to stderr."""
    from argo_delivery.imagefinder import FinderError, find_images, images_table, load_paths_file

    _set_json(output == "json")
    try:
        custom = load_paths_file(paths_file) if paths_file else {}
        result = find_images(paths, custom, helm_values=helm_values, helm_set=helm_set)
    except FinderError as exc:
        _fail(str(exc), EXIT_USAGE)
    if output == "json":
        _emit_json(result.to_dict())
    else:
        if result.images:
            _print_wide(images_table(result))
        for note in result.notes:
            _note(f"note: {note}")
        for problem in result.problems:
            _error(str(problem))
        places = sum(len(found.locations) for found in result.images)
        def count(n: int, word: str) -> str:
            return f"{n} {word}{'' if n == 1 else 's'}"

        _note(f"{count(len(result.images), 'image')} in {count(places, 'place')}; "
              f"{count(len(result.problems), 'problem')}; {len(result.notes)} not scanned")
    if result.problems:
        sys.exit(EXIT_FINDINGS)


_REGISTRY_OPTIONS = [
    click.option("--insecure-registry", "insecure", multiple=True, metavar="HOST[:PORT]",
                 help="A registry reached over plain HTTP or without verifying its certificate "
                      "(repeatable)."),
    click.option("--authfile", metavar="FILE", type=click.Path(dir_okay=False),
                 help="Registry credentials. Default: skopeo's ($REGISTRY_AUTH_FILE, "
                      "containers' auth.json, then ~/.docker/config.json)."),
]


def _registry_options(command):
    for option in reversed(_REGISTRY_OPTIONS):
        command = option(command)
    return command


def _skopeo(insecure: tuple[str, ...], authfile: str | None):
    from argo_delivery.skopeo import RegistryError, Skopeo

    try:
        return Skopeo(insecure, authfile)
    except RegistryError as exc:
        _fail(str(exc), EXIT_USAGE)


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@images.command("lock", epilog="\b\nExamples:\n"
                               "  argo-delivery images lock deploy/ -o images.lock.yaml\n"
                               "  argo-delivery images lock dist/0.1.0 --insecure-registry "
                               "localhost:5000\n\n"
                               "Exit codes: 0 written, 1 a registry refused or the manifests have "
                               "problems, 2 usage error.")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--out", "out_file", default="images.lock.yaml", show_default=True,
              type=click.Path(dir_okay=False, allow_dash=True), help="The lock file (`-`: stdout).")
@click.option("--paths", "paths_file", metavar="FILE", type=click.Path(dir_okay=False),
              help="Image field paths of other custom resources (as for `images find`).")
@click.option("--update", is_flag=True,
              help="Resolve every tag again, even those OUT already locks (default: keep them).")
@_registry_options
def images_lock(paths: tuple[str, ...], out_file: str, paths_file: str | None, update: bool,
                insecure: tuple[str, ...], authfile: str | None) -> None:
    """Resolve every image the manifests at PATH... run to the digest its registry serves, and
    write the lock. Images OUT already locks keep their digest unless --update; an image
    written with a digest keeps it (it must exist)."""
    from argo_delivery.imagefinder import FinderError, find_images, load_paths_file
    from argo_delivery.imagelock import ImagesLock, LockError, resolve_lock
    from argo_delivery.skopeo import RegistryError

    try:
        result = find_images(paths, load_paths_file(paths_file) if paths_file else {})
    except FinderError as exc:
        _fail(str(exc), EXIT_USAGE)
    if result.problems:
        _fail("the manifests have problems; nothing was locked", EXIT_FINDINGS,
              [_problem(str(p), p.file) for p in result.problems])
    previous = None
    if out_file != "-" and Path(out_file).is_file() and not update:
        try:
            previous = ImagesLock.read(out_file)
        except LockError as exc:
            _fail(f"{exc} (delete it or pass --update)", EXIT_USAGE)
    skopeo = _skopeo(insecure, authfile)

    def resolve(ref: Any, shown: str) -> tuple[str, str]:
        digest, media_type, _ = skopeo.digest(str(ref), ref.registry)
        _note(f"{shown}: {digest}")
        return digest, media_type

    try:
        with skopeo:
            lock = resolve_lock([found.image for found in result.images], resolve, previous)
    except (RegistryError, LockError) as exc:
        _fail(f"{exc}; the lock was not written", EXIT_FINDINGS)
    if out_file == "-":
        click.echo(lock.dumps(), nl=False)
    else:
        lock.write(out_file)
        kept = sum(1 for image in lock.images if previous and image in previous.images)
        _note(f"{_count(len(lock.images), 'image')} locked in {out_file}"
              + (f" ({kept} kept from it)" if kept else ""))


# --- airgap: carry a Version or a bundle into a site with no route out (argo_delivery/airgap.py)

_AIRGAP_EXIT = ("Exit codes: 0 done, 1 a check failed (checksum, signature, registry), 2 usage "
                "error.")


@main.group(epilog="\b\nExamples:\n"
                   "  argo-delivery airgap pack --version core-team-3f2a9c -n core-team\n"
                   "  argo-delivery airgap pack --bundle dist/0.1.0 --sign-key ~/.ssh/id_ed25519\n"
                   "  argo-delivery airgap unpack core-team-3f2a9c.airgap.tar --registry "
                   "registry.site:5000/platform\n\n" + _AIRGAP_EXIT)
def airgap() -> None:
    """Pack a released Version or an orchestrator bundle with every image it runs into one
    archive; verify and unpack it on a site with no internet."""


class _Progress:
    """rich progress on stderr for pack and unpack: images and bytes."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=_stderr, transient=False)
        self.bytes = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                              console=_stderr, transient=False)
        self.tasks: dict[str, Any] = {}

    def __call__(self, event: str, facts: dict[str, Any]) -> None:
        if event == "clone":
            _note(f"component {facts['component']}: {facts['commit']}")
        elif event == "found":
            _note(f"{_count(facts['images'], 'image')} in the manifests")
        elif event == "copy-start":
            self.bar.start()
            self.tasks["copy"] = self.bar.add_task("packing images", total=facts["images"])
        elif event == "copied":
            self.bar.advance(self.tasks["copy"])
            _note(f"packed {facts['image']} ({facts['bytes']} bytes)")
        elif event == "archive-file":
            if "archive" not in self.tasks:
                self.bar.stop()
                self.bytes.start()
                self.tasks["archive"] = self.bytes.add_task("writing the archive", total=None)
            self.bytes.advance(self.tasks["archive"], facts["bytes"])
        elif event == "verified":
            signed = "signature checked, " if facts.get("signed") else ""
            _note(f"{signed}checksums verified; {_count(facts['images'], 'image')}")
        elif event == "push-start":
            self.bytes.start()
            self.tasks["push"] = self.bytes.add_task(f"pushing {_count(facts['images'], 'image')}",
                                                     total=facts["bytes"])
        elif event == "pushed":
            self.bytes.advance(self.tasks["push"], facts["bytes"])
            _note(f"pushed {facts['site']}")
        elif event == "fetch-start":
            self.bytes.start()
            self.tasks["fetch"] = self.bytes.add_task("fetching", total=facts["bytes"])
        elif event == "fetched":
            self.bytes.advance(self.tasks["fetch"], facts["bytes"])

    def stop(self) -> None:
        self.bar.stop()
        self.bytes.stop()


@airgap.command("pack", epilog="\b\nExamples:\n"
                               "  argo-delivery airgap pack --version core-team-3f2a9c "
                               "-n core-team\n"
                               "  argo-delivery airgap pack --bundle dist/0.1.0 -o "
                               "orchestrator.airgap.tar\n\n" + _AIRGAP_EXIT)
@_config_options("Deploy paths from")
@click.option("--version", "version_name", metavar="NAME",
              help="A released Version: its components' deploy manifests at its exact commits.")
@click.option("--version-file", metavar="FILE", type=click.Path(dir_okay=False, allow_dash=True),
              help="The same, from a Version object in a file (YAML or JSON, `kubectl get "
                   "version NAME -o yaml`; `-` reads stdin): no cluster access.")
@click.option("--bundle", "bundle_dir", metavar="DIR", type=click.Path(file_okay=False),
              help="An orchestrator bundle folder (`argo-delivery render`).")
@click.option("--deploy-path", "deploy_path_items", multiple=True, metavar="COMPONENT=PATH",
              help="A component's deploy path, over the config's (repeatable). With one for "
                   "every component, no config is needed. Default: the config's, else deploy.")
@click.option("--summary", "summary_file", metavar="FILE", type=click.Path(dir_okay=False),
              help="Also write a JSON summary (archive, sha256, size, images, bytes) to FILE.")
@click.option("-o", "--out", "out_file", metavar="FILE", type=click.Path(dir_okay=False),
              help="The archive. Default: <version>.airgap.tar or <bundle>-<version>.airgap.tar.")
@click.option("--lock", "lock_file", metavar="FILE", type=click.Path(dir_okay=False),
              help="Use this image lock's digests (a tag moved since changes nothing); images "
                   "it lacks are resolved now.")
@click.option("--sign-key", metavar="FILE", type=click.Path(dir_okay=False),
              help="Sign SHA256SUMS with this SSH private key (`ssh-keygen -Y sign`).")
@click.option("--allow-unreleased", is_flag=True, help="Pack a Version that is not released.")
@click.option("--paths", "paths_file", metavar="FILE", type=click.Path(dir_okay=False),
              help="Image field paths of other custom resources (as for `images find`).")
@_kube_options
@click.option("-n", "--namespace", metavar="NS", help="The Version's namespace.")
@click.option("--project", metavar="P", help="The Version's project (finds its namespace).")
@_registry_options
def airgap_pack(config_path: str | None, example: bool, images_lock: str | None,
                version_name: str | None,
                version_file: str | None, bundle_dir: str | None,
                deploy_path_items: tuple[str, ...], summary_file: str | None,
                out_file: str | None, lock_file: str | None,
                sign_key: str | None, allow_unreleased: bool, paths_file: str | None,
                kubeconfig: str | None, context: str | None, namespace: str | None,
                project: str | None, insecure: tuple[str, ...], authfile: str | None) -> None:
    """Pack a released Version (--version) or a bundle (--bundle) and every image it runs into
    one deterministic archive: manifests, an OCI image layout, the image lock, an index,
    SHA256SUMS and, with --sign-key, a signature."""
    from argo_delivery import airgap as ag
    from argo_delivery.imagefinder import FinderError, load_paths_file
    from argo_delivery.imagelock import ImagesLock, LockError

    if sum(map(bool, (version_name, version_file, bundle_dir))) != 1:
        _fail("give exactly one of --version NAME, --version-file FILE and --bundle DIR",
              EXIT_USAGE)
    try:
        custom = load_paths_file(paths_file) if paths_file else {}
        lock = ImagesLock.read(lock_file) if lock_file else None
    except (FinderError, LockError) as exc:
        _fail(str(exc), EXIT_USAGE)
    if bundle_dir:
        stage = ag.stage_bundle(Path(bundle_dir))
        try:
            meta = json.loads((Path(bundle_dir) / "bundle.json").read_text())
        except (OSError, ValueError) as exc:
            _fail(f"{bundle_dir}: not a bundle folder (bundle.json: {exc})", EXIT_USAGE)
        default_out = f"{meta.get('name')}-{meta.get('version')}.airgap.tar"
    else:
        overrides = _deploy_paths(deploy_path_items)
        if version_file:
            version = _version_from_file(version_file)
        else:
            client, chosen = _versions_client(kubeconfig, context, namespace, project)
            with _versions_errors():
                version = client.get(version_name, chosen)
        meta = version["metadata"]
        shown = f"{meta.get('namespace', '')}/{meta['name']}".lstrip("/")
        stream = (version.get("status") or {}).get("stream")
        if stream != "released" and not allow_unreleased:
            _fail(f"Version {shown} is {stream or 'new'}, not released: only a released Version "
                  "is carried to a site (--allow-unreleased packs it anyway)", EXIT_FINDINGS)
        names = {c["name"] for c in version["spec"]["components"]}
        deploy_paths: dict[str, str] = {}
        if config_path or example or not names <= set(overrides):
            config = _load(config_path, example, images_lock_path=images_lock)
            deploy_paths = {c.name: c.deploy_path for c in config.components}
        deploy_paths.update(overrides)
        stage = ag.stage_version(version, deploy_paths, _Progress())
        default_out = f"{meta['name']}.airgap.tar"
    out = Path(out_file or default_out)
    progress = _Progress()
    skopeo = _skopeo(insecure, authfile)
    try:
        with skopeo:
            result = ag.pack(stage, out, skopeo=skopeo, lock=lock, custom_paths=custom,
                             sign_key=Path(sign_key) if sign_key else None, progress=progress)
    except ag.AirgapError as exc:
        progress.stop()
        _fail(str(exc), EXIT_FINDINGS)
    progress.stop()
    totals = result.index["totals"]
    sha256 = ag.sha256_file(out)
    _stdout.print(f"{out}: {_count(totals['images'], 'image')} "
                  f"({totals['imageBytes']} bytes as images, {totals['blobBytes']} bytes stored: "
                  f"{_count(totals['blobs'], 'blob')}), {out.stat().st_size} bytes, "
                  f"sha256:{sha256}")
    if summary_file:
        Path(summary_file).write_text(json.dumps({
            "archive": str(out), "sha256": sha256, "size": out.stat().st_size,
            "images": totals["images"], "imageBytes": totals["imageBytes"],
            "blobBytes": totals["blobBytes"], "kind": result.index["kind"]}, sort_keys=True))


def _deploy_paths(items: tuple[str, ...]) -> dict[str, str]:
    paths = {}
    for item in items:
        component, sep, path = item.partition("=")
        if not sep or not component or not path:
            _fail(f"--deploy-path {item!r}: expected COMPONENT=PATH", EXIT_USAGE)
        paths[component] = path
    return paths


def _version_from_file(path: str) -> dict[str, Any]:
    import yaml

    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
        version = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as exc:
        _fail(f"--version-file {path}: cannot read: {exc}", EXIT_USAGE)
    if not isinstance(version, dict) or version.get("kind") != "Version" or \
            not isinstance((version.get("spec") or {}).get("components"), list) or \
            not (version.get("metadata") or {}).get("name"):
        _fail(f"--version-file {path}: not a Version (kind Version with metadata.name and "
              "spec.components)", EXIT_USAGE)
    return version


@airgap.command("unpack", epilog="\b\nExamples:\n"
                                 "  argo-delivery airgap unpack v.airgap.tar --registry "
                                 "registry.site:5000/platform --key release.pub\n"
                                 "  argo-delivery airgap unpack v.airgap.tar --registry "
                                 "localhost:5000 --insecure-registry localhost:5000 --apply\n\n"
                                 + _AIRGAP_EXIT)
@click.argument("archive", type=click.Path(dir_okay=False))
@click.option("--registry", required=True, metavar="HOST[:PORT][/PATH]",
              help="The site registry every image is pushed to.")
@click.option("--key", metavar="FILE", type=click.Path(dir_okay=False),
              help="SSH public key the archive must be signed with.")
@click.option("--out", "out_dir", metavar="DIR", type=click.Path(file_okay=False),
              help="The ready-to-apply folder. Default: the archive's name without .airgap.tar.")
@click.option("--apply", "apply_", is_flag=True,
              help="Apply the folder afterwards (a bundle as `argo-delivery apply` does).")
@click.option("-n", "--namespace", metavar="NS",
              help="With --apply: namespace of namespaced objects that name none. Default: the "
                   "kubeconfig context's.")
@click.option("--paths", "paths_file", metavar="FILE", type=click.Path(dir_okay=False),
              help="Image field paths of other custom resources (as for `images find`).")
@_kube_options
@_registry_options
def airgap_unpack(archive: str, registry: str, key: str | None, out_dir: str | None,
                  apply_: bool, namespace: str | None, paths_file: str | None,
                  kubeconfig: str | None, context: str | None, insecure: tuple[str, ...],
                  authfile: str | None) -> None:
    """Verify ARCHIVE (the signature with --key, then every checksum and blob) before anything
    else; push every image to --registry keeping its digest; write the manifests rewritten to
    the site registry by digest into --out (and apply them with --apply)."""
    from argo_delivery import airgap as ag
    from argo_delivery.imagefinder import FinderError, load_paths_file

    try:
        custom = load_paths_file(paths_file) if paths_file else {}
    except FinderError as exc:
        _fail(str(exc), EXIT_USAGE)
    path = Path(archive)
    if not path.is_file():
        _fail(f"{archive}: no such file", EXIT_USAGE)
    out = Path(out_dir or path.name.removesuffix(".tar").removesuffix(".airgap"))
    progress = _Progress()
    skopeo = _skopeo(insecure, authfile)
    try:
        with skopeo:
            result = ag.unpack(path, registry, out, skopeo=skopeo,
                               key=Path(key) if key else None, progress=progress,
                               custom_paths=custom)
    except ag.AirgapError as exc:
        progress.stop()
        _fail(f"{archive}: {exc}", EXIT_FINDINGS)
    progress.stop()
    _stdout.print(f"{out}: {_count(len(result.pushed), 'image')} pushed to {registry}, "
                  f"{_count(result.rewritten, 'reference')} rewritten")
    # images no manifest field names (argoexec, Argo Events, JetStream): the controllers
    # choose them, so their settings must point at the site registry
    sites = {p["image"]: p["site"] for p in result.pushed}
    for image in result.index["images"]:
        if not any(not loc.get("via") for loc in image["locations"]):
            _note(f"set in the controllers' config: {image['image']} -> {sites[image['image']]}")
    if apply_:
        from argo_delivery.apply import ApplyError, Cluster, context_namespace

        try:
            cluster = Cluster.from_kubeconfig(kubeconfig, context)
            chosen = namespace or context_namespace(kubeconfig, context)
            count = ag.apply_unpacked(out, cluster, chosen, progress=_note)
        except (ag.AirgapError, ApplyError) as exc:
            _fail(str(exc), EXIT_FINDINGS)
        _stdout.print(f"applied {_count(count, 'object')}")


@airgap.command("fetch", epilog="\b\nExamples:\n"
                                "  argo-delivery airgap fetch core-team-3f2a9c41d07e5b18 -n core-team\n"
                                "  argo-delivery airgap fetch V -n core-team -o /media/usb/V.airgap.tar\n\n"
                                + _AIRGAP_EXIT)
@click.argument("version_name", metavar="VERSION")
@click.option("-o", "--out", "out_file", metavar="FILE", type=click.Path(dir_okay=False),
              help="Where to write it. Default: VERSION.airgap.tar.")
@click.option("--workflows-namespace", default="argo", show_default=True, metavar="NS",
              help="The workflow controller's namespace (its default artifact repository).")
@click.option("--s3-endpoint", metavar="HOST[:PORT]",
              help="Reach the repository here instead of at its configured endpoint (e.g. from "
                   "outside the cluster).")
@_versions_options
def airgap_fetch(version_name: str, out_file: str | None, workflows_namespace: str,
                 s3_endpoint: str | None, kubeconfig: str | None, context: str | None,
                 namespace: str | None, project: str | None) -> None:
    """Download the air-gap archive the export made of a released Version (status.export) from
    the artifact repository: its sha256 and size are checked against the Version's status
    before it is kept. The "USB stick" step: carry the file, then `airgap unpack` it."""
    from argo_delivery import airgap as ag

    client, chosen = _versions_client(kubeconfig, context, namespace, project)
    with _versions_errors():
        version = client.get(version_name, chosen)
    out = Path(out_file or f"{version_name}.airgap.tar")
    progress = _Progress()
    try:
        export = ag.fetch(version, out, client.cluster.api_client,
                          controller_namespace=workflows_namespace, endpoint=s3_endpoint,
                          progress=progress)
    except ag.AirgapError as exc:
        progress.stop()
        _fail(str(exc), EXIT_FINDINGS)
    progress.stop()
    _stdout.print(f"{out}: {export['size']} bytes, sha256:{export['sha256']}, "
                  f"{_count(export.get('images', 0), 'image')} (exported by {export.get('workflow')})")


@airgap.command("verify", epilog="\b\nExamples:\n"
                                 "  argo-delivery airgap verify v.airgap.tar --key release.pub\n\n"
                                 + _AIRGAP_EXIT)
@click.argument("archive", type=click.Path(dir_okay=False))
@click.option("--key", metavar="FILE", type=click.Path(dir_okay=False),
              help="SSH public key the archive must be signed with.")
def airgap_verify(archive: str, key: str | None) -> None:
    """Check ARCHIVE as unpack does (signature, checksums, blobs), push nothing, and list what
    it holds."""
    import tempfile

    from argo_delivery import airgap as ag

    with tempfile.TemporaryDirectory(prefix="argo-delivery-verify-") as tmp:
        try:
            ag._extract(Path(archive), Path(tmp))
            index = ag.verify_archive(Path(tmp), Path(key) if key else None)
        except ag.AirgapError as exc:
            _fail(f"{archive}: {exc}", EXIT_FINDINGS)
    for image in index["images"]:
        _stdout.print(f"{image['image']}  {image['digest']}  {image['size']}")
    signed = " signature checked," if key else ""
    _stdout.print(f"{archive}: {index['kind']} {index['source'].get('version')},{signed} "
                  f"{_count(len(index['images']), 'image')}, every checksum matches")


# --- state: backup and restore of the data store (argo_delivery/state.py) ------------------

_STATE_EXIT = ("Exit codes: 0 done, 1 refused (an object differs, the API server said no) or "
               "failed, 2 usage (a bad file or flag) or kubeconfig error.")


@contextlib.contextmanager
def _state_errors():
    from argo_delivery.state import StateError

    try:
        yield
    except StateError as exc:
        _fail(str(exc), EXIT_USAGE if exc.usage else EXIT_FINDINGS)


def _state_progress(description: str, total: int | None):
    """A rich progress bar on stderr (a terminal only: a pipe gets the summary line)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=_stderr, transient=True,
                   disable=not _stderr.is_terminal)
    task = bar.add_task(description, total=total)
    return bar, task


@main.group(epilog="\b\nExamples:\n"
                   "  argo-delivery state export backup.json\n"
                   "  argo-delivery state export backup.json --include-terraform-state\n"
                   "  argo-delivery state import backup.json --dry-run\n"
                   "  argo-delivery state import backup.json\n\n" + _STATE_EXIT)
def state() -> None:
    """Backup and restore: every Project, Version and Environment, with its status, in one file.

    Import restores onto a cluster with the bundle applied, without running flows again (no
    alpha run, no vend): see "Backup and restore" in the README.
    """


@state.command("export", epilog="\b\nExamples:\n"
                                "  argo-delivery state export backup.json\n"
                                "  argo-delivery state export backup.json --include-terraform-state\n\n"
                                + _STATE_EXIT)
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--include-terraform-state", is_flag=True,
              help="Also each Environment's Terraform state and outputs Secrets (and its reader "
                   "Role): the file is then sensitive, written with mode 0600.")
@_kube_options
def state_export(file: str, include_terraform_state: bool, kubeconfig: str | None,
                 context: str | None) -> None:
    """Write every Project, Version and Environment of the cluster, with its status, to FILE."""
    from argo_delivery.state import StateClient, export_state, write_state_file

    with _state_errors():
        client = StateClient.connect(kubeconfig, context)
        bar, task = _state_progress("export", None)
        with bar:
            document = export_state(client, include_terraform_state=include_terraform_state,
                                    progress=lambda kind, n: bar.advance(task, n))
        try:
            write_state_file(file, document)
        except OSError as exc:
            _fail(f"cannot write {file}: {exc.strerror}", EXIT_USAGE)
    counts = ", ".join(f"{n} {kind}" for kind, n in document["metadata"]["counts"].items())
    if include_terraform_state:
        _stderr.print(Text.assemble(("warning:", "bold yellow"), f" {file} holds Terraform state "
                                    "and outputs (cloud credentials, kubeconfigs): it is written "
                                    "with mode 0600; keep it as you keep those secrets"))
    _stdout.print(f"exported {counts or 'nothing'} to {file}")


@state.command("import", epilog="\b\nExamples:\n"
                                "  argo-delivery state import backup.json --dry-run\n"
                                "  argo-delivery state import backup.json\n"
                                "  argo-delivery state import backup.json --overwrite\n\n"
                                + _STATE_EXIT)
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--overwrite", is_flag=True,
              help="Replace objects that exist and differ from the file (else: refused, by name).")
@click.option("--dry-run", is_flag=True,
              help="Compare, and let the API server check every write (dryRun=All); store nothing.")
@_kube_options
def state_import(file: str, overwrite: bool, dry_run: bool, kubeconfig: str | None,
                 context: str | None) -> None:
    """Restore FILE (from `state export`): create what is missing, then its status.

    Versions and Environments are created with the annotation argo-delivery.io/restored, which
    the Sensors skip: nothing runs again. Needs the custom verb `restore` (cluster admins).
    """
    from argo_delivery.state import (
        StateClient,
        import_state,
        in_flight,
        plan_import,
        read_state_file,
    )

    with _state_errors():
        document = read_state_file(file)
        if document["metadata"].get("sensitive"):
            _note(f"{file} holds Terraform state (sensitive)")
        client = StateClient.connect(kubeconfig, context)
        plan = plan_import(client, document, overwrite=overwrite)
        bar, task = _state_progress("import" + (" (dry run)" if dry_run else ""), plan.writes)
        with bar:
            counts = import_state(client, document, plan, dry_run=dry_run,
                                  progress=lambda n: bar.advance(task, n))
    running = in_flight({"items": plan.create + [o for o, _ in plan.overwrite]})
    if running:
        _note(f"{len(running)} object(s) were in flight at export and are restored as they were "
              f"(nothing runs them on: `versions rerun`, or delete and ask again): "
              + ", ".join(running[:10]) + (" ..." if len(running) > 10 else ""))
    verb = "would create" if dry_run else "created"
    _stdout.print(f"{verb} {counts['created']}, completed {counts['completed']}, overwritten "
                  f"{counts['overwritten']}, unchanged {counts['unchanged']}"
                  + (f"; {counts['namespaces']} namespace(s) created" if counts["namespaces"]
                     else ""))


if __name__ == "__main__":
    main()
