"""Frozen entry point: the same ``main()`` as ``python -m app``.

A separate script (not ``app/__main__.py``) so PyInstaller does not put ``app/`` itself on the
module search path, and so ``freeze_support`` runs first: a spawned worker process of a frozen app
re-executes this binary and must not open a second window.
"""

import multiprocessing
import sys

from app.__main__ import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
