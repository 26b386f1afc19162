"""Compatibility alias: the flat module ``nnphys.escape_kernels`` moved to :mod:`nnphys.escape.kernels`
(issue 13 layout). ``import nnphys.escape_kernels`` gives that very module object; new code imports
``nnphys.escape.kernels``."""

import sys

from nnphys.escape import kernels as _module

sys.modules[__name__] = _module
