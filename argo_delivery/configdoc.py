"""The README's config reference, generated from the shipped JSON Schema.

`python -m argo_delivery.configdoc README.md` rewrites the part of the README between the
markers; a test fails when the README and the schema disagree.
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path
from typing import Any

from referencing import Registry
from referencing.jsonschema import DRAFT202012

from argo_delivery.config import platform_schema

__all__ = ["BEGIN", "END", "reference_markdown", "update_readme"]

BEGIN = "<!-- config-reference:begin (generated from the schema; do not edit) -->"
END = "<!-- config-reference:end -->"


@cache
def _shape(ref: str) -> dict[str, Any]:
    """What a `$ref` of the platform schema names."""
    schema = platform_schema()
    registry = Registry().with_resource(schema["$id"], DRAFT202012.create_resource(schema))
    return registry.resolver(schema["$id"]).lookup(ref).contents


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with its `$ref` replaced by the shape it names (its own keys win)."""
    if "$ref" not in schema:
        return schema
    siblings = {key: value for key, value in schema.items() if key != "$ref"}
    return {**_resolve(_shape(schema["$ref"])), **siblings}


def _type(schema: dict[str, Any]) -> str:
    schema = _resolve(schema)
    if "title" in schema:
        return schema["title"]
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    kind = schema.get("type", "")
    if isinstance(kind, list):
        kind = " or ".join(kind)
    if kind == "array":
        return f"list of {_type(schema.get('items', {}))}"
    if kind == "object" and "properties" not in schema:
        return f"map of {_type(schema.get('additionalProperties', {}))}"
    return kind or "any"


def _rows(schema: dict[str, Any], path: str) -> list[tuple[str, str, bool, str]]:
    rows = []
    required = set(schema.get("required", []))
    for key, child in schema.get("properties", {}).items():
        child = _resolve(child)
        child_path = f"{path}.{key}" if path else key
        rows.append((child_path, _type(child), key in required, child.get("description", "")))
        target = _resolve(child.get("items", {})) if child.get("type") == "array" else child
        suffix = "[]" if child.get("type") == "array" else ""
        if "properties" in target:
            rows += _rows(target, child_path + suffix)
    return rows


def reference_markdown() -> str:
    lines = ["| key | type | required | description |", "|---|---|---|---|"]
    for path, kind, required, description in _rows(platform_schema(), ""):
        lines.append(f"| `{path}` | {kind} | {'yes' if required else ''} | {description} |")
    lines += ["", "Named types (the schema's `$defs`):", "",
              "| type | what it is |", "|---|---|"]
    for shape in platform_schema()["$defs"].values():
        if "title" in shape:
            lines.append(f"| {shape['title']} | {shape['description']} |")
    return "\n".join(lines) + "\n"


def update_readme(readme: Path) -> bool:
    """Rewrite the generated section; True when the file changed."""
    text = readme.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    updated = text[:start] + "\n" + reference_markdown() + text[end:]
    if updated != text:
        readme.write_text(updated)
    return updated != text


if __name__ == "__main__":
    update_readme(Path(sys.argv[1] if len(sys.argv) > 1 else "README.md"))
