"""Turning user input (scale, a TOML file, ``--set key=value`` pairs, ``--sweep``) into validated
Specs and planned jobs: :func:`prepare` for one study, :func:`split_for_studies` and
:func:`select_studies` for ``reproduce``.

Precedence, lowest first: the preset at the chosen scale, the TOML file (flat keys, then the
study's ``[study]`` table), ``--set`` pairs, then flags such as ``--device``. Every failure is a :class:`~nnphys.errors.ConfigError` whose message is one line naming the
field and what is allowed; nothing here touches the store.
"""

from __future__ import annotations

import collections.abc
import itertools
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import ValidationError

from nnphys.errors import ConfigError, UnknownStudyError, one_line
from nnphys.studies.base import Study, StudySpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


MAX_CONFIG_BYTES = 1 << 20


def parse_value(text: str) -> Any:
    """A ``--set`` value: a TOML value if it parses as one (``64``, ``1e-3``, ``true``,
    ``[1, 2]``, ``"x"``, ``{2 = [1000]}``), else JSON for a dict or list (``{"2": [1000]}``), a
    list for comma-separated items (``1,2,4,8``), else the raw string."""
    text = text.strip()
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        pass
    if text[:1] in "{[" and text[-1:] in "}]":
        try:
            return json.loads(text)
        except ValueError:
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
            raise ConfigError("--set", f"expected key=value with a field name as key (got {one_line(item)!r})")
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
        raise ConfigError("--config", f"{str(p)!r} is not valid TOML: {one_line(e)}") from None


def _validator_error(first: dict, spec_cls: type[StudySpec]) -> ConfigError | None:
    """A cross-field ``model_validator`` error (empty ``loc``): keep the field the validator named,
    either as a raised ConfigError or as a ``"field: ..."`` / ``"field must ..."`` message."""
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, ConfigError):
        return ConfigError(cause.field, one_line(cause.message))
    msg = one_line(first.get("msg", ""))
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
        return ConfigError("spec", one_line(err))
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
        msg = one_line(first.get("msg", "invalid value"))
        for prefix in ("Value error, ", "Assertion failed, "):
            msg = msg.removeprefix(prefix)
        if "input" in first and first["type"] != "missing":
            shown = one_line(repr(first["input"]))
            msg += f" (got {shown[:80]})"
        fld = spec_cls.model_fields.get(str(loc[0]))
        if fld is not None and fld.description:
            msg += f"; {one_line(fld.description)}"
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


def _arms(annotation: Any) -> list[Any]:
    """The alternatives of a field type (through Annotated and Optional)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _arms(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [x for a in typing.get_args(annotation) if a is not type(None) for x in _arms(a)]
    return [annotation]


def _is_bool_field(annotation: Any) -> bool:
    arms = _arms(annotation)
    return bool(arms) and all(a is bool for a in arms)


def _takes_many(annotation: Any) -> bool:
    """Whether some alternative of the field type is a list, tuple, set or dict (or untyped)."""
    for a in _arms(annotation):
        origin = typing.get_origin(a) or a
        if a is Any or origin in (list, tuple, set, frozenset, dict, collections.abc.Sequence,
                                  collections.abc.Mapping):
            return True
    return False


def check_kinds(spec_cls: type[StudySpec], values: dict[str, Any]) -> None:
    """What pydantic's lax mode would let through but a user did not mean: a boolean field takes
    ``true`` or ``false`` only (not ``yes``, ``1``, ``"on"``), and a one-value field refuses a list
    (``--set seed=0,1,2``: a sweep is ``--sweep seed=0,1,2``)."""
    for k, v in values.items():
        fld = spec_cls.model_fields.get(k)
        if fld is None:
            continue
        if _is_bool_field(fld.annotation) and not isinstance(v, bool):
            raise ConfigError(k, f"must be true or false (got {one_line(repr(v))[:80]})")
        if isinstance(v, (list, tuple)) and not _takes_many(fld.annotation):
            items = ",".join(str(x) for x in v)
            raise ConfigError(k, f"takes one value (got {one_line(repr(list(v)))[:80]}); to run one sweep per "
                                 f"value use --sweep {k}={items}"[:300])


def listify(spec_cls: type[StudySpec], values: dict[str, Any]) -> dict[str, Any]:
    """A scalar given for a list field becomes a one-item list (``--set ks=13`` -> ``[13]``)."""
    out = dict(values)
    for k, v in values.items():
        fld = spec_cls.model_fields.get(k)
        if fld is not None and not isinstance(v, (list, tuple)) and _is_sequence_field(fld.annotation):
            out[k] = [v]
    return out


def study_tables(raw: dict[str, Any], names: list[str] | tuple[str, ...]) -> tuple[dict[str, dict], dict[str, Any]]:
    """Split a TOML file into ``[study]`` tables (keys that name a registered study, whose value is
    a table) and flat keys. A file may hold several studies' tables; a command uses those of the
    studies it runs and ignores the others."""
    tables = {k: v for k, v in raw.items() if k in names and isinstance(v, dict)}
    return tables, {k: v for k, v in raw.items() if k not in tables}


def _file_values(study: Study, config: str | Path) -> dict[str, Any]:
    """The TOML file's values for ``study``: its flat keys, then its ``[study]`` table on top. In a
    file with ``[study]`` tables, flat keys that are not fields of ``study`` but of another
    registered study are that study's and ignored here."""
    from nnphys.studies import registry

    reg = registry()
    tables, flat = study_tables(load_toml(config), list(reg))
    if tables:
        flat = {k: v for k, v in flat.items()
                if k == "scale" or k in study.spec.model_fields
                or not any(k in s.spec.model_fields for n, s in reg.items() if n != study.name)}
    mine = tables.get(study.name, {})
    return {**flat, **mine}


def collect_overrides(
    study: Study,
    scale: str = "quick",
    config: str | Path | None = None,
    sets: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """``(scale, overrides)``: the TOML file, then ``--set`` pairs, then ``extra`` (CLI flags such
    as ``--device``), as the values a user gave for the preset at ``scale``."""
    overrides: dict[str, Any] = {}
    if config is not None:
        file_values = _file_values(study, config)
        scale = file_values.pop("scale", scale)
        overrides.update(file_values)
    overrides.update(parse_sets(sets))
    overrides.update(extra or {})
    if not isinstance(scale, str) or scale not in study.presets:
        raise ConfigError("scale", f"must be one of {', '.join(sorted(study.presets))} (got {scale!r})")
    return scale, overrides


def build_spec(
    study: Study,
    scale: str = "quick",
    config: str | Path | None = None,
    sets: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> StudySpec:
    """Preset at ``scale``, then the TOML file, then ``--set`` pairs, then ``extra`` (CLI flags
    such as ``--device``), validated by the study's Spec."""
    scale, overrides = collect_overrides(study, scale, config, sets, extra)
    return spec_from(study, scale, overrides)


def spec_from(study: Study, scale: str, overrides: dict[str, Any]) -> StudySpec:
    """The Spec of the preset at ``scale`` with ``overrides`` (user values) on top, validated."""
    check_kinds(study.spec, overrides)
    overrides = listify(study.spec, overrides)
    try:
        return study.make_spec(scale, overrides)
    except ValidationError as e:
        raise format_validation_error(e, study.spec) from None
    except (TypeError, ValueError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError("spec", one_line(e)) from None


def plan_jobs(study: Study, spec: StudySpec) -> list[Any]:
    """``study.jobs(spec)``, each typed job put on the spec's device (the one place a job's
    device is set), with user-caused failures turned into a ConfigError."""
    from nnphys.studies.job import Job

    try:
        return [j.on(spec.device) if isinstance(j, Job) else j for j in study.jobs(spec)]
    except ConfigError:
        raise
    except ValidationError as e:
        raise format_validation_error(e, study.spec) from None
    except ValueError as e:
        # jobs(spec) rejected a combination its Spec let through: still the user's input
        # (TypeError, KeyError, ... stay bugs and keep their traceback)
        raise ConfigError("spec", f"cannot plan the jobs of {study.name}: {one_line(e)}") from None


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


def check_inputs(study: Study, spec: StudySpec, jobs: list[Any]) -> None:
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
            raise ConfigError("spec", f"{study.name}: {one_line(e)}") from None
    from nnphys.studies.job import params_of

    seen: set[str] = set()
    for job in jobs:
        for desc in _task_descriptions(params_of(job)):
            blob = repr(sorted(desc.items()))
            if blob not in seen:
                seen.add(blob)
                check_task(desc)


# -- shadowed fields -------------------------------------------------------------------------

def shadows(spec_cls: type[StudySpec]) -> dict[str, list[str]]:
    """``{field: [fields that take precedence over it]}``. Declared on a field with
    ``json_schema_extra={"shadowed_by": "other"}`` (a name or a list of names), or by the naming
    rule: a dict field ``<name>_by_<axis>`` (``n_train_by_k``) overrides the field ``<name>``
    (``n_train``) for the keys it holds."""
    fields = spec_cls.model_fields
    out: dict[str, list[str]] = {}
    for name, fld in fields.items():
        extra = fld.json_schema_extra if isinstance(fld.json_schema_extra, dict) else {}
        declared = extra.get("shadowed_by") or []
        for other in [declared] if isinstance(declared, str) else list(declared):
            if other in fields:
                out.setdefault(name, []).append(other)
        base, sep, _ = name.partition("_by_")
        if sep and base in fields and any(typing.get_origin(a) in (dict, collections.abc.Mapping) or a is dict
                                          for a in _arms(fld.annotation)):
            out.setdefault(base, []).append(name)
    return out


def shadow_warnings(study: Study, scale: str, spec: StudySpec, overrides: dict[str, Any]) -> list[str]:
    """One line per field the user set that another field, set by the preset (or by default) and
    not by the user, overrides in part or in full."""
    lines = []
    for name, others in shadows(study.spec).items():
        if name not in overrides:
            continue
        for other in others:
            value = getattr(spec, other, None)
            if other in overrides or not value:
                continue
            source = f"the {scale} preset" if other in study.presets.get(scale, {}) else "its default"
            where = f" for keys {', '.join(map(str, value))}" if isinstance(value, dict) else ""
            shown = one_line(json.dumps(value, default=str) if isinstance(value, dict) else repr(value))
            lines.append(f"{name}: set, but {other} = {shown[:120]} (from {source}) overrides it{where}; "
                         f"set {other} as well (e.g. --set '{other}={{}}') for {name} to apply there")
    return lines


# -- sweeps ----------------------------------------------------------------------------------

def parse_sweep_values(key: str, text: str) -> list[Any]:
    """``0,1,2`` -> ``[0, 1, 2]``; ``[1,2],[1,4]`` -> ``[[1, 2], [1, 4]]``; ``a,b`` -> ``["a", "b"]``."""
    text = text.strip()
    if not text:
        raise ConfigError(key, f"--sweep {key}= has no values")
    try:
        values = tomllib.loads(f"v = [{text}]")["v"]
    except tomllib.TOMLDecodeError:
        try:
            values = json.loads(f"[{text}]")
        except ValueError:
            values = [parse_value(part) for part in text.split(",") if part.strip() != ""]
    if not values:
        raise ConfigError(key, f"--sweep {key}= has no values")
    blobs = [json.dumps(v, sort_keys=True, default=str) for v in values]
    if len(set(blobs)) != len(blobs):
        raise ConfigError(key, f"--sweep gives a value twice ({one_line(text)[:80]})")
    return values


def parse_sweeps(items: list[str] | None, sets: list[str] | None = None) -> list[dict[str, Any]]:
    """``--sweep key=v1,v2`` (repeatable) as the list of override dicts of the cartesian product of
    the values, in order (``[{}]`` without a sweep). A key given twice, or with both ``--set``
    and ``--sweep``, is refused."""
    set_keys = {item.partition("=")[0].strip().replace("-", "_") for item in sets or []}
    axes: list[tuple[str, list[Any]]] = []
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key or not key.replace("_", "a").isalnum():
            raise ConfigError("--sweep", f"expected key=v1,v2,... with a field name as key (got {one_line(item)!r})")
        if key in set_keys:
            raise ConfigError(key, "given with both --set and --sweep; give it once")
        if key in dict(axes):
            raise ConfigError(key, f"given twice with --sweep; list every value once: --sweep {key}=1,2,3")
        axes.append((key, parse_sweep_values(key, value)))
    return [dict(zip([k for k, _ in axes], combo)) for combo in itertools.product(*[v for _, v in axes])]


# -- prepared sweeps ---------------------------------------------------------------------------

SCALES = ("quick", "medium", "paper")


class Prepared(NamedTuple):
    """One point of a sweep, checked and ready to run: ``info`` holds the ``scale``, the user's
    ``overrides`` of its preset (as the Spec took them, JSON values) and the ``warnings`` to show."""

    study: Study
    spec: StudySpec
    jobs: list[Any]
    info: dict[str, Any]


def prepare(name: str, scale: str, config: str | Path | None, sets: list[str] | None, device: str | None,
            values: dict[str, Any] | None = None, sweeps: list[str] | None = None) -> list[Prepared]:
    """One :class:`Prepared` per point of the ``--sweep`` product (one without a sweep), each fully
    validated: the Spec, ``jobs(spec)``, the study's ``check`` and the data files the jobs read.
    ``values``: field values on top of ``--set`` (``reproduce``'s share of its options). Writes
    nothing."""
    from nnphys.studies import get_study

    study = get_study(name)
    refuse_repeats(sets)
    points = parse_sweeps(sweeps, sets)
    extra = dict(values or {})
    if device is not None:
        extra["device"] = device
    scale, base = collect_overrides(study, scale, config, sets, extra)
    out = []
    for point in points:
        overrides = {**base, **point}
        spec = spec_from(study, scale, overrides)
        jobs = plan_jobs(study, spec)
        check_inputs(study, spec, jobs)
        dumped = spec.model_dump(mode="json")
        out.append(Prepared(study, spec, jobs, {"scale": scale, "overrides": {k: dumped.get(k) for k in overrides},
                                                "warnings": shadow_warnings(study, scale, spec, overrides)}))
    return out


def warnings_of(prepared: list[Prepared]) -> list[str]:
    """The warnings of prepared sweeps, each once, in order."""
    return list(dict.fromkeys(w for p in prepared for w in p.info["warnings"]))


# -- reproduce: several studies from one set of options --------------------------------------

def select_studies(studies: str | None) -> list[str]:
    """The studies ``reproduce --studies a,b`` names (every registered one for None), each once,
    in the order given; an unknown or empty list is refused."""
    from nnphys.studies import registry

    known = list(registry())
    if studies is None:
        return known
    names = [s.strip() for s in studies.split(",") if s.strip()]
    if not names:
        raise ConfigError("--studies", f"names no study; choose from {', '.join(known)}")
    for n in names:
        if n not in known:
            raise UnknownStudyError(n, known)
    return list(dict.fromkeys(names))


def reproduce_inputs(studies: str | None, scale: str, sets: list[str] | None, config: str | Path | None
                     ) -> tuple[str, dict[str, dict[str, Any]], list[str]]:
    """What ``reproduce`` runs: ``(scale, {study: its field values}, skipped studies)``. The scale
    is the TOML file's ``scale`` when it has one. Without ``--studies``, the studies lacking a
    preset at that scale are skipped (``medium`` exists where a study's verdicts need it); an
    explicit ``--studies`` list keeps the one-line error of the missing preset instead. The caller
    says which were skipped, and refuses an empty selection."""
    from nnphys.studies import registry

    names = select_studies(studies)
    toml_scale, per = split_for_studies(names, sets, config)
    if toml_scale is not None:
        if toml_scale not in SCALES:
            raise ConfigError("scale", f"must be one of {', '.join(SCALES)} (got {toml_scale!r})")
        scale = toml_scale
    skipped = [] if studies is not None else [n for n in names if scale not in registry()[n].presets]
    return scale, {n: v for n, v in per.items() if n not in skipped}, skipped


def split_for_studies(names: list[str], sets: list[str] | None,
                      config: str | Path | None) -> tuple[str | None, dict[str, dict[str, Any]]]:
    """``--set``/``--config`` of ``reproduce`` shared out among the studies: ``key=v`` goes to
    every study whose Spec has ``key``, ``study.key=v`` (or a ``[study]`` TOML table) to that one.
    A TOML file may hold the tables of more studies than are selected, and flat keys of those
    studies only: both are ignored (one file serves every subset). A ``--set`` key that no
    selected study has is refused. ``--set`` beats the file; within each, ``study.key`` beats
    ``key`` whatever their order. Returns ``(scale from the TOML or None, {study: {field: value}})``."""
    from nnphys.studies import get_study, registry

    specs = {n: get_study(n).spec for n in names}
    per: dict[str, dict[str, Any]] = {n: {} for n in names}
    scale = None
    pairs: list[tuple[str, Any]] = []
    if config is not None:
        reg = registry()
        tables, flat = study_tables(load_toml(config), list(reg))
        scale = flat.pop("scale", None)
        for k, v in tables.items():
            if k in per:
                pairs += [(f"{k}.{kk}", vv) for kk, vv in v.items()]
        for k, v in flat.items():
            unselected_only = (not any(k in specs[n].model_fields for n in names)
                               and any(k in s.spec.model_fields for s in reg.values()))
            if not unselected_only:
                pairs.append((k, v))
    refuse_repeats(sets)
    set_pairs: list[tuple[str, Any]] = []
    for item in sets or []:
        study, dot, rest = item.partition(".")
        if dot and study in per and "=" in rest:
            ((k, v),) = parse_sets([rest]).items()
            set_pairs.append((f"{study}.{k}", v))
        else:
            set_pairs += list(parse_sets([item]).items())
    pairs = sorted(pairs, key=lambda kv: "." in kv[0]) + sorted(set_pairs, key=lambda kv: "." in kv[0])
    for k, v in pairs:
        study, dot, fld = k.partition(".")
        if dot and study in per:
            per[study][fld] = v  # the study's Spec reports an unknown field
            continue
        owners = [n for n in names if k in specs[n].model_fields]
        if not owners:
            raise ConfigError(k, f"not a field of any selected study ({', '.join(names)}); "
                                 "see nnphys fields STUDY")
        for n in owners:
            per[n][k] = v
    return scale, per
