"""Compatibility alias: the flat module ``nnphys.escape_landscapes`` moved to :mod:`nnphys.escape.landscapes`
(issue 13 layout). ``import nnphys.escape_landscapes`` gives that very module object; new code imports
``nnphys.escape.landscapes``."""

import sys

from nnphys.escape import landscapes as _module

sys.modules[__name__] = _module
