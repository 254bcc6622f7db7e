"""Recorders that keep what the trainer reports: the store recorder writes a run's records.

The trainer (:mod:`embsr_core.training.trainer`) knows no store; it emits events. The
:class:`StoreRecorder` turns them into the run's rows through :mod:`embsr_core.store.runs_repo`
(status, loss points, epoch metrics, per-session ranks, checkpoint paths and hashes) and its stored
log (:func:`embsr_core.store.run_details.append_run_log`), and tells a resume where the run stands.
To change what is stored about a run, change this file, not the training loop.
"""

from __future__ import annotations

import contextlib
import re
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from embsr_core.data.prepared import PreparedDataset
from embsr_core.store import run_details, runs_repo
from embsr_core.store.engine import Store, data_dir
from embsr_core.training.config import TrainConfig
from embsr_core.training.events import (
    BatchEnd,
    Cancelled,
    CheckpointSaved,
    EpochStarted,
    EvaluationEnd,
    Failed,
    Finished,
    Recorder,
    ResumePoint,
    RunStarted,
    TrainEvent,
)
from embsr_core.training.run_log import event_log_lines

LOSS_FLUSH_S = 5.0  # write buffered loss points to the store at least this often


def store_checkpoint_base(store: Store) -> Path:
    """``data_dir()/checkpoints/<store>/``: one folder per store. Run ids are per store, so two stores
    (two SQLite files, or SQLite and PostgreSQL) both have a run 1, and with one shared folder their
    checkpoints overwrote each other (a leaderboard on each failed to load its own)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(store.identity.rstrip("/")).stem or "store")[:40]
    return data_dir() / "checkpoints" / f"{name}-{store.identity_digest(10)}"


def run_checkpoint_dir(run_id: int, root: Path | None = None, store: Store | None = None) -> Path:
    """``<root>/run_<id>/`` (created); without ``root``, under the store's folder of ``data_dir()``."""
    if root is not None:
        base = Path(root)
    elif store is not None:
        base = store_checkpoint_base(store)
    else:
        raise ValueError("run_checkpoint_dir: give the checkpoint root or the store the run belongs to")
    path = base / f"run_{run_id}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def dataset_id_for(store: Store, prepared: PreparedDataset, dataset_id: int | None) -> int:
    """The store's id of the dataset ``prepared`` came from (by name unless given)."""
    if dataset_id is not None:
        return int(dataset_id)
    from embsr_core.store.repository import get_dataset

    try:
        return int(get_dataset(store, prepared.dataset_name).id)
    except KeyError:
        raise ValueError(
            f"the prepared dataset is named {prepared.dataset_name!r}, which is not a dataset in the store; "
            "pass dataset_id= explicitly"
        ) from None


class StoreRecorder(Recorder):
    """Keeps one run in the store from the trainer's events.

    Build it with :meth:`new_run` (creates the run, status ``queued``) or :meth:`existing_run`
    (a resume). ``settings_on_start`` (a resume's changed settings, e.g. a larger max_epochs) is
    written only once the run really starts, and a run that fails before it starts (a corrupted
    checkpoint, other data) is left exactly as it was.
    """

    def __init__(
        self,
        store: Store,
        run_id: int,
        train_config: TrainConfig,
        prep_hash: str | None,
        *,
        existing: bool = False,
        settings_on_start: dict[str, Any] | None = None,
    ):
        self.store = store
        self.run_id = int(run_id)
        self.train_config = train_config
        self.prep_hash = prep_hash
        self.existing = existing
        self.settings_on_start = settings_on_start
        self.started = False
        self._loss_buffer: list[tuple[int, int, float, float]] = []
        self._last_flush = time.monotonic()
        self._window, self._win_sum, self._win_n = 1, 0.0, 0

    # --- construction ------------------------------------------------------------------------------

    @classmethod
    def new_run(
        cls,
        store: Store,
        prepared: PreparedDataset,
        model_name: str,
        settings: dict[str, Any],
        train_config: TrainConfig,
        prep_hash: str,
        *,
        run_name: str | None = None,
        search_group: str | None = None,
        dataset_id: int | None = None,
    ) -> StoreRecorder:
        """Create the run (status ``queued``) right away, so its id is known before training."""
        run_id = runs_repo.create_run(
            store,
            dataset_id=dataset_id_for(store, prepared, dataset_id),
            model_name=model_name,
            config=settings,
            name=run_name,
            search_group=search_group,
            prep_hash=prep_hash,
        )
        return cls(store, run_id, train_config, prep_hash)

    @classmethod
    def existing_run(
        cls,
        store: Store,
        run_id: int,
        train_config: TrainConfig,
        *,
        settings_on_start: dict[str, Any] | None = None,
    ) -> StoreRecorder:
        run = runs_repo.get_run(store, run_id)
        return cls(store, run_id, train_config, run.prep_hash, existing=True, settings_on_start=settings_on_start)

    def checkpoint_dir(self, root: Path | None = None) -> Path:
        """Where the run's checkpoints live: beside its last one, else ``run_<id>`` under ``root``."""
        run = runs_repo.get_run(self.store, self.run_id)
        if run.checkpoint_path:
            return Path(run.checkpoint_path).parent
        return run_checkpoint_dir(self.run_id, root, self.store)

    # --- the recorder interface --------------------------------------------------------------------

    def resume_point(self, run_id: int) -> ResumePoint | None:
        run = runs_repo.get_run(self.store, run_id)
        if not run.checkpoint_path:
            return None
        return ResumePoint(
            run.checkpoint_path, run.checkpoint_sha256, run.best_checkpoint_path, run.best_checkpoint_sha256
        )

    def __call__(self, event: TrainEvent) -> None:
        if isinstance(event, Failed | Cancelled) and self.existing and not self.started:
            return  # the resume never started: leave the run (status, settings, records, log) as it was
        self._write(event)
        run_details.append_run_log(self.store, self.run_id, event_log_lines(event))

    # --- one writer per event ----------------------------------------------------------------------

    def _write(self, event: TrainEvent) -> None:
        store, run_id = self.store, self.run_id
        if isinstance(event, RunStarted):
            self._started(event)
        elif isinstance(event, EpochStarted):
            self._window = max(1, event.n_batches // self.train_config.loss_points_per_epoch)
            self._win_sum, self._win_n = 0.0, 0
        elif isinstance(event, BatchEnd):
            self._loss(event)
        elif isinstance(event, EvaluationEnd):
            self._flush_loss(force=True)
            if event.train_loss is not None and event.is_best is not None:  # once per epoch: the selection mode's event
                runs_repo.add_epoch_metrics(
                    store, run_id, event.epoch, "train", self.train_config.train_target_op,
                    {"loss": event.train_loss}, event.wall_time,
                )
            runs_repo.add_epoch_metrics(
                store, run_id, event.epoch, event.split, event.target_op, event.metrics, event.wall_time
            )
            if event.ranks is not None:
                runs_repo.save_ranks(store, run_id, event.split, event.target_op, event.ranks, self.prep_hash)
        elif isinstance(event, CheckpointSaved):
            prefix = "best_" if event.kind == "best" else ""
            values: dict[str, Any] = {
                f"{prefix}checkpoint_path": event.path,
                f"{prefix}checkpoint_sha256": event.sha256,
            }
            if event.kind == "last":
                values.update(epochs_done=event.epoch, best_epoch=event.best_epoch)
            runs_repo.update_run(store, run_id, **values)
        elif isinstance(event, Finished):
            runs_repo.update_run(store, run_id, best_epoch=event.best_epoch, epochs_done=event.epochs_done)
            runs_repo.mark_ended(store, run_id, "finished")
        elif isinstance(event, Cancelled):
            try:
                self._flush_loss(force=True)
            finally:
                runs_repo.mark_ended(store, run_id, "stopped", event.note)
        elif isinstance(event, Failed):
            with contextlib.suppress(Exception):  # the failure may be the store itself
                self._flush_loss(force=True)
            runs_repo.mark_ended(store, run_id, "failed", event.reason)

    def _started(self, event: RunStarted) -> None:
        """Running now: a resume forgets what came after its checkpoint and takes its new settings.

        ``started_at`` is set back by the work done before a resume, so finished − started is the
        run's whole training time, not only the part since the resume (the gap in between is not work).
        """
        self.started = True
        if event.resumed:
            runs_repo.truncate_after(self.store, self.run_id, event.start_epoch - 1, event.start_step)
        if self.settings_on_start is not None:
            runs_repo.update_run(self.store, self.run_id, config=self.settings_on_start)
        runs_repo.mark_started(self.store, self.run_id, event.device)
        if event.work_before_s > 0:
            started = datetime.now() - timedelta(seconds=event.work_before_s)
            runs_repo.update_run(self.store, self.run_id, started_at=started)

    def _loss(self, event: BatchEnd) -> None:
        """The downsampled loss series: the mean of every ``n_batches // loss_points_per_epoch`` batches."""
        self._win_sum, self._win_n = self._win_sum + event.loss, self._win_n + 1
        if self._win_n == self._window or event.batch == event.n_batches:
            self._loss_buffer.append((event.step, event.epoch, self._win_sum / self._win_n, event.wall_time))
            self._win_sum, self._win_n = 0.0, 0
            self._flush_loss()

    def _flush_loss(self, force: bool = False) -> None:
        if not self._loss_buffer:
            return
        if force or time.monotonic() - self._last_flush >= LOSS_FLUSH_S:
            runs_repo.add_loss_points(self.store, self.run_id, self._loss_buffer)
            self._loss_buffer = []
            self._last_flush = time.monotonic()
