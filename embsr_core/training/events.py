"""What the trainer tells its recorders (plain dataclass events) and how the caller steers it (a token).

The trainer knows nothing of Qt, terminals or the store: it emits events to a list of recorders
(:class:`Recorder`, or any plain callable taking an event). The store recorder keeps runs, metrics,
ranks and checkpoints' records; a GUI bridge turns events into signals, the CLI into a progress bar.
Control goes the other way through :class:`ControlToken`, checked between batches.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np  # (annotations only: the CLI imports these events without numpy)


@dataclass(frozen=True)
class RunStarted:
    run_id: int
    model_name: str
    device: str
    n_train: int
    n_valid: int
    n_test: int
    max_epochs: int
    start_epoch: int  # 1 for a fresh run; later when resumed
    resumed: bool
    world_size: int = 1
    start_step: int = 0  # optimiser steps already done (a resumed run's records after it are stale)
    work_before_s: float = 0.0  # training seconds spent by earlier processes on this run (resume)
    threads: int = 0  # CPU threads PyTorch uses in this process (0 = not told)
    precision: str = "fp32"  # the matrix products' arithmetic: fp32, bf16 or fp16 (training/precision.py)
    precision_note: str = ""  # why mixed precision was asked for but is off here


@dataclass(frozen=True)
class EpochStarted:
    run_id: int
    epoch: int  # 1-based
    max_epochs: int
    n_batches: int


@dataclass(frozen=True)
class BatchEnd:
    run_id: int
    epoch: int
    batch: int  # 1-based within the epoch
    n_batches: int
    step: int  # global optimiser step, 1-based
    loss: float  # this batch's loss (mean over ranks when distributed)
    samples_per_s: float  # training throughput of the current epoch so far
    epoch_eta_s: float  # seconds left in this epoch
    run_eta_s: float  # seconds left if the run goes to max_epochs (an upper bound: early stopping may end it sooner)
    wall_time: float = 0.0  # training seconds since the run first started (earlier processes included)


@dataclass(frozen=True)
class EvaluationEnd:
    run_id: int
    epoch: int
    split: str  # valid / test
    target_op: str  # oracle / unknown
    metrics: dict[str, float]  # "hit@20" → value, ...
    is_best: bool | None = None  # for the validation split in the selection mode: a new best epoch?
    train_loss: float | None = None  # mean training loss of the epoch
    wall_time: float | None = None  # training seconds since the run first started
    # per-session ranks (int32, N) worth keeping: always for test, for valid only at a new best epoch
    ranks: np.ndarray | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class CheckpointSaved:
    run_id: int
    epoch: int
    kind: str  # best / last
    path: str
    sha256: str
    best_epoch: int | None = None  # the run's best epoch so far


@dataclass(frozen=True)
class Finished:
    run_id: int
    best_epoch: int
    epochs_done: int
    stopped_early: bool
    test_metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # target_op → metrics


@dataclass(frozen=True)
class Cancelled:
    run_id: int
    epoch: int
    checkpoint_path: str | None
    note: str | None = None  # e.g. a Ctrl-C inside a batch: the checkpoint may not resume exactly


@dataclass(frozen=True)
class Failed:
    run_id: int
    reason: str
    traceback: str = ""


TrainEvent = RunStarted | EpochStarted | BatchEnd | EvaluationEnd | CheckpointSaved | Finished | Cancelled | Failed
Callback = Callable[[TrainEvent], None]


@dataclass(frozen=True)
class ResumePoint:
    """Where a run stands, as a recorder kept it: its last checkpoint (and best one) with their SHA-256."""

    checkpoint_path: str
    checkpoint_sha256: str | None
    best_path: str | None = None
    best_sha256: str | None = None


class Recorder:
    """Something that keeps or shows what the trainer reports (the store, the console, the GUI).

    The trainer calls every recorder with every event, in the order given (the store recorder first,
    so a consumer that reads the store on an event finds it written). A plain callable taking an event
    is a recorder too; subclass this one to also answer :meth:`resume_point`.
    """

    def __call__(self, event: TrainEvent) -> None:
        """Receive one event (the default ignores it)."""

    def resume_point(self, run_id: int) -> ResumePoint | None:
        """The checkpoint run ``run_id`` resumes from, or None (a fresh start)."""
        return None


class ControlToken:
    """Cancel and pause requests from another thread; the trainer polls it between batches.

    Pausing blocks the training thread on an Event (no busy wait); cancelling also wakes a paused
    trainer, which then stops cleanly.
    """

    def __init__(self) -> None:
        self._cancel = threading.Event()
        self._finish = threading.Event()
        self._running = threading.Event()  # set = not paused
        self._running.set()

    def cancel(self) -> None:
        self._cancel.set()
        self._running.set()  # wake a paused trainer so it can see the cancel

    def finish_early(self) -> None:
        """End training at the next check as early stopping would: the best epoch so far is kept and
        the test split scored (a tuning trial cut by its time budget). A run that has not validated
        an epoch yet has nothing to keep: it stops as on a cancel."""
        self._finish.set()
        self._running.set()

    def pause(self) -> None:
        if not self._cancel.is_set():
            self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def finish_requested(self) -> bool:
        return self._finish.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_if_paused(self, timeout: float | None = None) -> bool:
        """Block while paused; return True when the caller should go on (False: cancelled)."""
        self._running.wait(timeout)
        return not self._cancel.is_set()


@contextlib.contextmanager
def cancel_on_sigint(control: ControlToken) -> Iterator[None]:
    """First Ctrl-C asks for a clean cancel (between batches, checkpoint saved); a second one raises.

    Only has an effect in the main thread (where Python delivers signals).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: object) -> None:
        if control.cancelled:
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        control.cancel()

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
