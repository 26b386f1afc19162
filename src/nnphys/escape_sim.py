"""Compatibility alias: the flat module ``nnphys.escape_sim`` moved to :mod:`nnphys.escape.simulate`
(issue 13 layout). ``import nnphys.escape_sim`` gives that very module object; new code imports
``nnphys.escape.simulate``."""

import sys

from nnphys.escape import simulate as _module

sys.modules[__name__] = _module
