"""The `embsr` command line. Each topic lives in its own module and registers on :data:`main`."""

from embsr_core.cli import (
    data_cmds,  # noqa: F401  (registers `embsr import` and `embsr datasets ...`)
    db_cmds,  # noqa: F401  (registers `embsr db ...`)
    runs_cmds,  # noqa: F401  (registers `embsr runs ...` and `embsr export`)
    share_cmds,  # noqa: F401  (registers model, score, report, runs export/import)
    train_cmds,  # noqa: F401  (registers generate, models, train, resume, evaluate, search, demo)
    tune_cmds,  # noqa: F401  (registers tune, leaderboard)
)
from embsr_core.cli.root import main

__all__ = ["main"]
