"""The `embsr` command line. Each topic lives in its own module and registers on :data:`main`."""

from embsr_core.cli import (
    db_cmds,  # noqa: F401  (registers `embsr db ...`)
    runs_cmds,  # noqa: F401  (registers `embsr runs ...` and `embsr export`)
)
from embsr_core.cli.root import main

__all__ = ["main"]
