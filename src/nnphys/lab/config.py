"""Turning user input (scale, a TOML file, ``--set key=value`` pairs) into a validated Spec.

Every failure is a :class:`~nnphys.errors.ConfigError` whose message is one line naming the
field and what is allowed; nothing here touches the store.
"""

from __future__ import annotations

import collections.abc
import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from nnphys.errors import ConfigError
from nnphys.studies.base import Study, StudySpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


MAX_CONFIG_BYTES = 1 << 20


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def parse_value(text: str) -> Any:
    """A ``--set`` value: a TOML value if it parses as one (``64``, ``1e-3``, ``true``,
    ``[1, 2]``, ``"x"``), a list for comma-separated items (``1,2,4,8``), else the raw string."""
    text = text.strip()
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        pass
    if "," in text:
        return [parse_value(part) for part in text.split(",") if part.strip() != ""]
    return text


def refuse_repeats(items: list[str] | None) -> None:
    """A key given twice with ``--set`` is refused, not resolved by order: ``--set n=0 --set n=4``
    is almost always a slip (a pasted command, an edited shell history), and "last wins" would run
    the sweep with a value the user may not have meant. ``study.key`` and ``key`` are different
    keys (the first targets one study of ``reproduce``, the second every study with the field)."""
    seen: set[str] = set()
    for item in items or []:
        key = item.partition("=")[0].strip().replace("-", "_")
        if key in seen:
            raise _repeated(key)
        seen.add(key)


def _repeated(key: str) -> ConfigError:
    return ConfigError(key, f"given twice with --set; give each field once (a list is one value: --set {key}=1,2,4)")


def parse_sets(items: list[str] | None) -> dict[str, Any]:
    """``["d=64", "depths=1,2,4"]`` -> ``{"d": 64, "depths": [1, 2, 4]}``. A repeated key is an
    error (:func:`refuse_repeats`)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or not key.replace("_", "a").replace("-", "a").isalnum():
            raise ConfigError("--set", f"expected key=value with a field name as key (got {_one_line(item)!r})")
        if value.strip() == "":
            raise ConfigError(key, f"--set {key}= has no value")
        if key.replace("-", "_") in out:
            raise _repeated(key.replace("-", "_"))
        out[key.replace("-", "_")] = parse_value(value)
    return out


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a flat TOML config (keys = Spec fields; an optional ``scale`` key)."""
    p = Path(path)
    # a FIFO or a device (/dev/stdin, /dev/zero) would block or never end: regular files only
    if p.exists() and not p.is_file():
        raise ConfigError("--config", f"{str(p)!r} is not a regular file (a TOML file of spec fields)")
    if p.is_file() and p.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError("--config", f"{str(p)!r} is larger than {MAX_CONFIG_BYTES} bytes; a config holds spec fields")
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ConfigError("--config", f"cannot read {str(p)!r}: {e.strerror or e}") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError("--config", f"{str(p)!r} is not valid TOML: {_one_line(e)}") from None


def _validator_error(first: dict, spec_cls: type[StudySpec]) -> ConfigError | None:
    """A cross-field ``model_validator`` error (empty ``loc``): keep the field the validator named,
    either as a raised ConfigError or as a ``"field: ..."`` / ``"field must ..."`` message."""
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, ConfigError):
        return ConfigError(cause.field, _one_line(cause.message))
    msg = _one_line(first.get("msg", ""))
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    head = msg.split(" ", 1)[0].rstrip(":,")
    if head in spec_cls.model_fields:
        rest = msg[len(head):].lstrip(":, ") if msg[len(head):].startswith(":") else msg
        return ConfigError(head, rest or msg)
    return ConfigError("spec", msg or "invalid combination of fields")


def format_validation_error(err: ValidationError, spec_cls: type[StudySpec]) -> ConfigError:
    """The first pydantic error as a one-line ConfigError naming the field (for a cross-field
    validator, the field its message names, else ``spec``)."""
    errors = err.errors()
    if not errors:
        return ConfigError("spec", _one_line(err))
    first = errors[0]
    loc = tuple(first.get("loc") or ())
    more = f" [and {len(errors) - 1} more error(s)]" if len(errors) > 1 else ""
    if not loc:
        e = _validator_error(first, spec_cls)
        return ConfigError(e.field, e.message + more)
    field = ".".join(str(x) for x in loc)
    if first["type"] == "extra_forbidden":
        allowed = ", ".join(sorted(spec_cls.model_fields))
        msg = f"unknown field; allowed fields: {allowed}"
    else:
        msg = _one_line(first.get("msg", "invalid value"))
        for prefix in ("Value error, ", "Assertion failed, "):
            msg = msg.removeprefix(prefix)
        if "input" in first and first["type"] != "missing":
            shown = _one_line(repr(first["input"]))
            msg += f" (got {shown[:80]})"
        fld = spec_cls.model_fields.get(str(loc[0]))
        if fld is not None and fld.description:
            msg += f"; {_one_line(fld.description)}"
    return ConfigError(field, msg + more)


def _is_sequence_field(annotation: Any) -> bool:
    """Whether a spec field takes a list/tuple (looking through Optional and Annotated)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _is_sequence_field(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return bool(args) and all(_is_sequence_field(a) for a in args)
    return origin in (list, tuple, set, frozenset, collections.abc.Sequence) or annotation in (list, tuple)


def listify(spec_cls: type[StudySpec], values: dict[str, Any]) -> dict[str, Any]:
    """A scalar given for a list field becomes a one-item list (``--set ks=13`` -> ``[13]``)."""
    out = dict(values)
    for k, v in values.items():
        fld = spec_cls.model_fields.get(k)
        if fld is not None and not isinstance(v, (list, tuple)) and _is_sequence_field(fld.annotation):
            out[k] = [v]
    return out


def build_spec(
    study: Study,
    scale: str = "quick",
    config: str | Path | None = None,
    sets: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> StudySpec:
    """Preset at ``scale``, then the TOML file, then ``--set`` pairs, then ``extra`` (CLI flags
    such as ``--device``), validated by the study's Spec."""
    overrides: dict[str, Any] = {}
    if config is not None:
        file_values = load_toml(config)
        scale = file_values.pop("scale", scale)
        overrides.update(file_values)
    overrides.update(parse_sets(sets))
    overrides.update(extra or {})
    if not isinstance(scale, str) or scale not in study.presets:
        raise ConfigError("scale", f"must be one of {', '.join(sorted(study.presets))} (got {scale!r})")
    overrides = listify(study.spec, overrides)
    try:
        return study.make_spec(scale, overrides)
    except ValidationError as e:
        raise format_validation_error(e, study.spec) from None
    except (TypeError, ValueError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError("spec", _one_line(e)) from None


def plan_jobs(study: Study, spec: StudySpec) -> list[dict[str, Any]]:
    """``study.jobs(spec)``, with user-caused failures turned into a ConfigError."""
    try:
        return list(study.jobs(spec))
    except ConfigError:
        raise
    except ValidationError as e:
        raise format_validation_error(e, study.spec) from None
    except ValueError as e:
        # jobs(spec) rejected a combination its Spec let through: still the user's input
        # (TypeError, KeyError, ... stay bugs and keep their traceback)
        raise ConfigError("spec", f"cannot plan the jobs of {study.name}: {_one_line(e)}") from None


def _task_descriptions(obj: Any) -> list[dict[str, Any]]:
    """Every :func:`nnphys.data.load_task` description inside a job's parameters: a dict with a
    ``root`` whose ``task`` names a file-backed task (:data:`nnphys.data.FILE_TASKS`), at any depth."""
    from nnphys.data import FILE_TASKS

    out: list[dict[str, Any]] = []
    if isinstance(obj, dict):
        if obj.get("task") in FILE_TASKS and "root" in obj:
            out.append(obj)
        for v in obj.values():
            out += _task_descriptions(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            out += _task_descriptions(v)
    return out


def check_inputs(study: Study, spec: StudySpec, jobs: list[dict[str, Any]]) -> None:
    """Everything about a planned sweep that needs no job to run: the study's own ``check(spec)``
    hook, then that the local data files every job reads exist (any load_task description in a
    job's parameters, checked once per distinct description). A ConfigError naming the field
    otherwise; writes nothing."""
    from nnphys.data import check_task

    if study.check is not None:
        try:
            study.check(spec)
        except ConfigError:
            raise
        except ValueError as e:
            raise ConfigError("spec", f"{study.name}: {_one_line(e)}") from None
    seen: set[str] = set()
    for job in jobs:
        for desc in _task_descriptions(job):
            blob = repr(sorted(desc.items()))
            if blob not in seen:
                seen.add(blob)
                check_task(desc)
