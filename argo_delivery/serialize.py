"""Deterministic YAML for manifests: plain dicts in, the same bytes out, every time.

Keys are ordered `apiVersion`, `kind`, `metadata` first and alphabetically after that (at
every level), so the output does not depend on how a dict was built. libyaml's C emitter
is used when PyYAML has it; the pure-Python emitter gives the same bytes (a test pins it).
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["dump_yaml", "dump_yaml_all", "order_keys"]

_FIRST_KEYS = ("apiVersion", "kind", "metadata")
# YAML 1.1 readers (go-yaml v2, used by kubectl) take these for booleans when unquoted.
_YAML11_BOOLS = frozenset({"y", "Y", "n", "N", "yes", "Yes", "YES", "no", "No", "NO", "on", "On",
                           "ON", "off", "Off", "OFF", "true", "True", "TRUE", "false", "False",
                           "FALSE"})
_WIDTH = 1 << 30


def _dumper_class(use_c: bool) -> type:
    base = getattr(yaml, "CSafeDumper", None) if use_c else None
    base = base or yaml.SafeDumper

    class ManifestDumper(base):  # type: ignore[misc, valid-type]
        """A SafeDumper with its own representers, untouched by other libraries' global ones."""

    def represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
        if "\n" in data:
            return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
        if data in _YAML11_BOOLS:
            return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="'")
        return dumper.represent_scalar("tag:yaml.org,2002:str", data)

    def represent_dict(dumper: yaml.SafeDumper, data: dict[str, Any]) -> yaml.MappingNode:
        return dumper.represent_mapping("tag:yaml.org,2002:map", list(data.items()))

    ManifestDumper.add_representer(str, represent_str)
    ManifestDumper.add_representer(dict, represent_dict)
    ManifestDumper.add_representer(tuple, yaml.SafeDumper.represent_list)
    return ManifestDumper


_DUMPERS = {True: _dumper_class(True), False: _dumper_class(False)}


def order_keys(value: Any, top: bool = True) -> Any:
    """A copy with every mapping's keys in manifest order (see module docstring)."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (_FIRST_KEYS.index(k) if top and k in _FIRST_KEYS
                                            else len(_FIRST_KEYS), str(k)))
        return {k: order_keys(value[k], top=False) for k in keys}
    if isinstance(value, (list, tuple)):
        return [order_keys(item, top=False) for item in value]
    return value


def dump_yaml(document: Any, use_c: bool = True) -> str:
    """One YAML document, keys ordered, block style, no line folding."""
    return yaml.dump(order_keys(document), Dumper=_DUMPERS[use_c], default_flow_style=False,
                     allow_unicode=True, width=_WIDTH, sort_keys=False, explicit_start=False)


def dump_yaml_all(documents: list[Any], use_c: bool = True) -> str:
    """Several documents separated by `---`."""
    return "---\n".join(dump_yaml(doc, use_c) for doc in documents)
