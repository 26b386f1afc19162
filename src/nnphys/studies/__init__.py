"""Registry of studies.

Every module in this package whose name does not start with ``_`` and that defines
``STUDY`` (a :class:`~nnphys.studies.base.Study`) is registered under ``STUDY.name``;
modules are discovered, so adding a study touches no shared file. Tests may add a study of
their own with :func:`register` (it is not shipped).
"""

from __future__ import annotations

import importlib
import pkgutil

from nnphys.errors import UnknownStudyError
from nnphys.studies.base import Study

_extra: dict[str, Study] = {}
_found: dict[str, Study] | None = None


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


def registry() -> dict[str, Study]:
    """All studies, shipped ones first, in name order within each group."""
    shipped = dict(sorted(_discover().items()))
    return {**shipped, **_extra}


def get_study(name: str) -> Study:
    """The study called ``name``; :class:`UnknownStudyError` (exit 2 in the CLI) otherwise."""
    reg = registry()
    if name not in reg:
        raise UnknownStudyError(name, list(reg))
    return reg[name]


def register(study: Study) -> Study:
    """Add a study at run time (tests and user plug-ins)."""
    _extra[study.name] = study
    return study


def unregister(name: str) -> None:
    _extra.pop(name, None)
