"""Training and evaluation engine (never imports Qt): trainer, metrics, checkpoints, search, DDP.

Entry points: :func:`run_training`, :func:`resume_run`, :func:`evaluate_checkpoint`,
:func:`grid_search`, :func:`mark_interrupted_runs`; :func:`make_trainer` for callers that want the
run id before training starts. The :class:`Trainer` itself knows no store: it reports to recorders
(:class:`Recorder`; :class:`~embsr_core.training.recorders.StoreRecorder` keeps the run).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Loaded on first use (PEP 562), so `from embsr_core.training.config import …` or `import
# embsr_core.training.threads` does not pull in PyTorch: the command line starts in a fraction of a second.
_HOME = {
    "mark_interrupted_runs": "embsr_core.store.runs_repo",
    **dict.fromkeys(("TRAIN_PARAMS", "TrainConfig", "resolve_device"), "embsr_core.training.config"),
    **dict.fromkeys(
        ("BatchEnd", "Callback", "Cancelled", "CheckpointSaved", "ControlToken", "EpochStarted", "EvaluationEnd",
         "Failed", "Finished", "Recorder", "ResumePoint", "RunStarted", "TrainEvent", "cancel_on_sigint"),
        "embsr_core.training.events",
    ),
    "StoreRecorder": "embsr_core.training.recorders",
    **dict.fromkeys(
        ("evaluate_checkpoint", "make_trainer", "resume_run", "run_training"), "embsr_core.training.runner"
    ),
    **dict.fromkeys(("RunOutcome", "Trainer"), "embsr_core.training.trainer"),
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # the next access is a plain lookup
    return value


if TYPE_CHECKING:  # for type checkers and editors: the names as if imported here
    from embsr_core.store.runs_repo import mark_interrupted_runs
    from embsr_core.training.config import TRAIN_PARAMS, TrainConfig, resolve_device
    from embsr_core.training.events import (
        BatchEnd,
        Callback,
        Cancelled,
        CheckpointSaved,
        ControlToken,
        EpochStarted,
        EvaluationEnd,
        Failed,
        Finished,
        Recorder,
        ResumePoint,
        RunStarted,
        TrainEvent,
        cancel_on_sigint,
    )
    from embsr_core.training.recorders import StoreRecorder
    from embsr_core.training.runner import evaluate_checkpoint, make_trainer, resume_run, run_training
    from embsr_core.training.trainer import RunOutcome, Trainer

__all__ = [
    "TRAIN_PARAMS",
    "BatchEnd",
    "Callback",
    "Cancelled",
    "CheckpointSaved",
    "ControlToken",
    "EpochStarted",
    "EvaluationEnd",
    "Failed",
    "Finished",
    "Recorder",
    "ResumePoint",
    "RunOutcome",
    "RunStarted",
    "StoreRecorder",
    "TrainConfig",
    "TrainEvent",
    "Trainer",
    "cancel_on_sigint",
    "evaluate_checkpoint",
    "make_trainer",
    "mark_interrupted_runs",
    "resolve_device",
    "resume_run",
    "run_training",
]
