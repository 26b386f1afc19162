"""Registry of studies.

Every module or package in this package whose name does not start with ``_`` and that defines
``STUDY`` (a :class:`~nnphys.studies.base.Study`) is registered under ``STUDY.name``: a study is
a package ``studies/<name>/`` whose ``__init__`` defines ``STUDY`` (docs/architecture.md, "How to
add a study"), and it is discovered, so adding a study touches no shared file. Tests may add a study of
their own with :func:`register` (it is not shipped).

Plug-ins: an installed distribution registers studies through the ``nnphys.studies`` entry-point
group, each entry naming a :class:`~nnphys.studies.base.Study` (``mystudy = mypkg.study:STUDY``)
or a module that defines ``STUDY``. The CLI's ``list``, ``run``, ``report`` and ``export`` treat them
as built-ins. A plug-in that fails to import is not fatal to the others: asking for it by name
raises :class:`~nnphys.errors.ConfigError` with the import error in one line.
"""

from __future__ import annotations

import importlib
import pkgutil

from nnphys.errors import ConfigError, UnknownStudyError, one_line
from nnphys.studies.base import Study

ENTRY_POINT_GROUP = "nnphys.studies"

_extra: dict[str, Study] = {}
_found: dict[str, Study] | None = None
_plugins: dict[str, Study] | None = None
_broken: dict[str, str] = {}


def _discover() -> dict[str, Study]:
    global _found
    if _found is None:
        found: dict[str, Study] = {}
        for info in pkgutil.iter_modules(__path__):
            if info.name.startswith("_") or info.name == "base":
                continue
            mod = importlib.import_module(f"{__name__}.{info.name}")
            study = getattr(mod, "STUDY", None)
            if isinstance(study, Study):
                found[study.name] = study
        _found = found
    return _found


def _discover_plugins() -> dict[str, Study]:
    """Studies of installed distributions (entry-point group ``nnphys.studies``), loaded once."""
    global _plugins
    if _plugins is None:
        from importlib.metadata import entry_points

        found: dict[str, Study] = {}
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                obj = ep.load()
                study = getattr(obj, "STUDY", obj)
                if not isinstance(study, Study):
                    raise TypeError(f"{ep.value} is a {type(study).__name__}, not an nnphys Study")
            except Exception as e:  # a user's package: its error is reported when it is asked for
                _broken[ep.name] = (f"plug-in study {ep.name!r} ({ep.value}) failed to load: "
                                   f"{one_line(f'{type(e).__name__}: {e}')}")
                continue
            found[study.name] = study
        _plugins = found
    return _plugins


def registry() -> dict[str, Study]:
    """All studies: shipped ones first (name order), then plug-ins, then ones added at run time."""
    shipped = dict(sorted(_discover().items()))
    plugins = {k: v for k, v in sorted(_discover_plugins().items()) if k not in shipped}
    return {**shipped, **plugins, **_extra}


def get_study(name: str) -> Study:
    """The study called ``name``; :class:`UnknownStudyError` (exit 2 in the CLI) otherwise, or a
    :class:`ConfigError` naming the import error of a plug-in that failed to load."""
    reg = registry()
    if name not in reg:
        if name in _broken:
            raise ConfigError("study", _broken[name])
        raise UnknownStudyError(name, list(reg))
    return reg[name]


def register(study: Study) -> Study:
    """Add a study at run time (tests and user plug-ins)."""
    _extra[study.name] = study
    return study


def unregister(name: str) -> None:
    _extra.pop(name, None)
