"""What the Datasets and Train pages hand to a ``TaskRunner``: thin adapters over core calls.

Each job runs in a worker thread, calls the same ``embsr_core`` functions the CLI calls, and adapts
their progress callbacks and cancel tokens to the worker convention (``progress(event)``,
``cancel`` = :class:`app.workers.CancelToken`). Errors a user can act on (a bad file, a taken name, a
dataset still in use) come back as a :class:`Problem` *result*, so the page gets file, line and
column as fields instead of parsing a traceback; anything else fails the task with its traceback.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from app.workers import CancelToken, TrainingBridge
from embsr_core.data.demo import free_name, import_synthetic
from embsr_core.data.errors import CutLastLineError, DataFormatError, ImportCancelled
from embsr_core.data.from_store import default_preset, prepare_dataset
from embsr_core.data.importers import ColumnMapping, Source
from embsr_core.data.preprocess import dataset_stats
from embsr_core.data.preview import session_preview
from embsr_core.data.store_io import ImportReport, import_into_store
from embsr_core.store import Store, StoreError
from embsr_core.store.repository import delete_dataset, get_dataset

if TYPE_CHECKING:  # the trainer imports PyTorch: loaded by train_job, not by the Datasets page at start-up
    from embsr_core.training import RunOutcome, TrainConfig

Progress = Callable[[object], None]
PREVIEW_SESSIONS = 5  # sessions drawn as timelines on the Datasets page


@dataclass(frozen=True)
class Problem:
    """An error the user can act on; ``path``/``line``/``column`` are set for bad input files."""

    message: str
    path: str | None = None
    line: int | None = None
    column: str | None = None
    detail: str = ""
    cut_last_line: bool = False  # the file ends inside its last line: importing without it is offered

    @classmethod
    def of(cls, exc: Exception) -> Problem:
        if isinstance(exc, DataFormatError):
            return cls(str(exc), exc.path, exc.line, exc.column, exc.detail, isinstance(exc, CutLastLineError))
        return cls(str(exc).strip("'\""), detail=str(exc).strip("'\""))


# -- datasets --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImportProgress:
    """One import progress report; ``done``/``total`` are bytes (``progress_fraction`` reads them)."""

    rows: int
    done: int
    total: int


def _import_progress(progress: Progress) -> Callable[[int, int, int], None]:
    def report(rows: int, done: int, total: int) -> None:
        progress(ImportProgress(rows, done, total))

    return report


def import_job(
    store: Store,
    paths: Sequence[str | Path],
    fmt: str,
    name: str,
    mapping: ColumnMapping | None,
    fixed_operation: str | None = None,
    *,
    progress: Progress,
    cancel: CancelToken,
) -> ImportReport | Problem | None:
    """``import_into_store`` (one transaction: on any error or cancel the store is unchanged)."""
    sources = [Source(Path(p), fixed_operation or None) for p in paths]
    try:
        return import_into_store(
            store, sources, fmt, name, mapping, progress=_import_progress(progress), cancel=cancel
        )
    except ImportCancelled:
        return None  # the token is set: the worker reports "cancelled"
    except DataFormatError as exc:
        return Problem.of(exc)


def synthetic_job(store: Store, name: str, *, progress: Progress, cancel: CancelToken,
                  **generator: Any) -> ImportReport | Problem | None:
    """``import_synthetic`` under a free name; generator parameters as ``embsr generate`` takes them."""
    try:
        return import_synthetic(
            store, free_name(store, name), progress=_import_progress(progress), cancel=cancel, **generator
        )
    except ImportCancelled:
        return None
    except (DataFormatError, ValueError) as exc:
        return Problem.of(exc)


def delete_job(store: Store, dataset_id: int, *, progress: Progress, cancel: CancelToken) -> dict[str, Any] | Problem:
    """``delete_dataset``; refused (a Problem) while a queued or running run uses the dataset."""
    del progress, cancel  # one short transaction
    try:
        return delete_dataset(store, dataset_id)
    except (StoreError, KeyError) as exc:
        return Problem.of(exc)


@dataclass
class DatasetOverview:
    """Everything the Datasets page shows about one dataset."""

    dataset_id: int
    name: str
    preset: str
    stats: dict[str, Any] = field(default_factory=dict)  # dataset_stats(): table2, operations, histogram...
    preview: pd.DataFrame = field(default_factory=pd.DataFrame)  # session_preview()
    note: str = ""  # why the stats are of the raw events (the preset left nothing)


def overview_job(store: Store, dataset_id: int, *, progress: Progress, cancel: CancelToken) -> DatasetOverview:
    """Table II and distributions of the dataset as the default preset prepares it (cached on disk)."""
    del cancel
    ds = get_dataset(store, dataset_id)
    overview = DatasetOverview(ds.id, ds.name, default_preset(ds))
    overview.preview = session_preview(store, ds.id, PREVIEW_SESSIONS)
    progress(0.3)
    try:
        overview.stats = dataset_stats(prepare_dataset(store, ds, overview.preset))
    except ValueError as exc:  # e.g. nothing survives the support filter: show the raw events instead
        from embsr_core.data.store_io import load_events

        overview.stats = dataset_stats(load_events(store, ds))
        overview.note = f"Preset {overview.preset!r} leaves no session ({exc}); statistics of the raw events."
    progress(1.0)
    return overview


# -- training --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainRequest:
    """One run as the Train page describes it (what ``embsr train`` takes as arguments and flags)."""

    dataset_id: int
    dataset_name: str
    preset: str
    prep_overrides: dict[str, Any]
    model_name: str
    model_overrides: dict[str, Any]
    train_config: TrainConfig
    run_name: str | None = None

    def label(self) -> str:
        return f"{self.model_name} on {self.dataset_name}"


@dataclass(frozen=True)
class Preparing:
    """Progress event sent before the trainer starts: the split is being prepared (or read from cache)."""

    dataset_name: str
    preset: str


def train_job(store: Store, request: TrainRequest, *, progress: Progress, cancel: CancelToken) -> RunOutcome | None:
    """``prepare_dataset`` then ``run_training``: exactly what ``embsr train`` does; events go to ``progress``."""
    from embsr_core.training import run_training

    control = cancel  # the worker's CancelToken is a ControlToken: pause/stop reach the trainer
    progress(Preparing(request.dataset_name, request.preset))
    prepared = prepare_dataset(store, request.dataset_id, request.preset, overrides=request.prep_overrides)
    if control.cancelled:
        return None
    # A full (generation-2) garbage collection triggered in this thread holds the GIL while it scans every
    # tracked object (torch, pandas, Qt wrappers, the prepared data…): 400-450 ms GUI stalls measured.
    # What is alive now lives as long as the run; frozen, it is no longer scanned (pauses ~50-120 ms).
    gc.freeze()
    return run_training(
        store,
        prepared,
        request.model_name,
        request.model_overrides,
        request.train_config,
        control=control,
        recorders=[TrainingBridge(progress)],  # after the store's recorder
        run_name=request.run_name,
        dataset_id=request.dataset_id,
    )
