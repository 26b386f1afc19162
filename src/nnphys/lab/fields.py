"""Every field of a study's Spec as data: type, bounds, tag, default and preset values
(for ``nnphys fields STUDY``)."""

from __future__ import annotations

import re
import types
import typing
from typing import Any

from pydantic.fields import FieldInfo

from nnphys.studies.base import Study

_BOUND = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<", "min_length": "len >=", "max_length": "len <="}


def _bounds(metadata: list[Any]) -> list[str]:
    out = []
    for m in metadata:
        for attr, sym in _BOUND.items():
            v = getattr(m, attr, None)
            if v is not None:
                out.append(f"{sym} {v:g}" if isinstance(v, float) else f"{sym} {v}")
    return out


def _type(annotation: Any) -> tuple[str, list[str]]:
    """``(type name, element bounds)``: ``list[int]`` with the bounds of its items."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        name, inner = _type(args[0])
        meta = []
        for a in args[1:]:
            meta.extend(a.metadata if isinstance(a, FieldInfo) else [a])
        return name, inner + _bounds(meta)
    if origin is typing.Literal:
        return "one of " + "|".join(str(a) for a in args), []
    if origin in (typing.Union, types.UnionType):
        parts = [_type(a) for a in args]
        return " or ".join("none" if a is type(None) else p[0] for a, p in zip(args, parts)), \
            [b for _, bs in parts for b in bs]
    if origin in (list, tuple, set, frozenset):
        inner = [_type(a) for a in args if a is not Ellipsis]
        name = f"{origin.__name__}[{', '.join(n for n, _ in inner)}]"
        return name, [f"items {b}" for _, bs in inner for b in bs]
    return getattr(annotation, "__name__", str(annotation)), []


def _tag(description: str | None) -> str:
    m = re.match(r"\s*\[(paper|derived|default)\]", description or "")
    return m.group(1) if m else "-"


def describe_fields(study: Study) -> list[dict[str, Any]]:
    """One dict per Spec field: ``name, type, bounds, tag, default, presets ({scale: value, only
    where the preset sets it}), description``."""
    rows = []
    for name, fld in study.spec.model_fields.items():
        tname, inner = _type(fld.annotation)
        default = fld.get_default(call_default_factory=True)
        rows.append({
            "name": name, "type": tname, "bounds": ", ".join(_bounds(fld.metadata) + inner) or "-",
            "tag": _tag(fld.description), "default": default,
            "presets": {scale: p[name] for scale, p in study.presets.items() if name in p},
            "description": fld.description or "",
        })
    return rows


def field_lines(study: Study) -> list[str]:
    """``nnphys fields STUDY`` as text: a heading, then per field one line of type, bounds, tag,
    default and presets, and its description (without the tag) indented below it."""
    out = [f"{study.name}: spec fields (schema v{study.schema_version}); set with --set key=value or --config"]
    for r in describe_fields(study):
        presets = ", ".join(f"{s}={r['presets'][s]!r}" if s in r["presets"] else f"{s}=default" for s in study.presets)
        out.append(f"  {r['name']}: {r['type']}; bounds {r['bounds']}; [{r['tag']}]; default {r['default']!r}; "
                   f"{presets}")
        desc = r["description"].removeprefix(f"[{r['tag']}]").strip()
        if desc:
            out.append(f"      {desc}")
    return out
