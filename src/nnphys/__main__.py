"""``python -m nnphys`` is the ``nnphys`` command."""

from nnphys.cli import main

main()
