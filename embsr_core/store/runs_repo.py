"""Repository functions for training runs: runs, per-epoch metrics, loss series, per-session ranks.

Every write about runs goes through here (the trainer, the search, the GUI and the CLI call these),
so there is one place that knows the tables. Portable SQL only (SQLite and PostgreSQL).
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update

from embsr_core.store.engine import Store
from embsr_core.store.errors import StoreError
from embsr_core.store.models import EpochMetric, LossPoint, Run, RunRanks
from embsr_core.store.run_details import delete_run_details

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

RUN_STATUSES = ("queued", "running", "finished", "stopped", "failed", "interrupted")
LIVE_STATUSES = ("queued", "running")


def _now() -> datetime:
    return datetime.now()


def split_metric_name(name: str) -> tuple[str, int]:
    """``"hit@20"`` → ``("hit", 20)``; ``"loss"`` → ``("loss", 0)``."""
    if "@" in name:
        metric, k = name.split("@", 1)
        return metric, int(k)
    return name, 0


def join_metric_name(metric: str, k: int) -> str:
    return f"{metric}@{k}" if k else metric


# --- runs -------------------------------------------------------------------------------------------


def create_run(
    store: Store,
    *,
    dataset_id: int,
    model_name: str,
    config: Mapping[str, Any],
    name: str | None = None,
    search_group: str | None = None,
    prep_hash: str | None = None,
) -> int:
    """A new run in status ``queued``, owned by this process; returns its id."""
    with store.session() as session, session.begin():
        run = Run(
            name=name,
            dataset_id=dataset_id,
            model_name=model_name,
            config=dict(config),
            status="queued",
            created_at=_now(),
            epochs_done=0,
            search_group=search_group,
            is_best_trial=False,
            prep_hash=prep_hash,
            pid=os.getpid(),
            host=socket.gethostname(),
            owner_start=process_start_ticks(os.getpid()),
        )
        session.add(run)
        session.flush()
        return int(run.id)


def get_run(store: Store, run_id: int) -> Run:
    with store.session() as session:
        run = session.get(Run, int(run_id))
        if run is None:
            raise KeyError(f"no run with id {run_id} in the store")
        return run


def run_checkpoint(store: Store, run_id: int, which: str = "best") -> tuple[Run, str | None, str | None]:
    """Run ``run_id`` with the path and SHA-256 of its best (or last) checkpoint (None while it has none)."""
    if which not in ("best", "last"):
        raise ValueError(f"which: expected best or last, got {which!r}")
    run = get_run(store, run_id)
    if which == "best":
        return run, run.best_checkpoint_path, run.best_checkpoint_sha256
    return run, run.checkpoint_path, run.checkpoint_sha256


def list_runs(
    store: Store,
    *,
    dataset_id: int | None = None,
    status: str | Sequence[str] | None = None,
    model_name: str | None = None,
    search_group: str | None = None,
) -> list[Run]:
    """Runs, newest first, optionally filtered."""
    query = select(Run)
    if dataset_id is not None:
        query = query.where(Run.dataset_id == dataset_id)
    if status is not None:
        statuses = [status] if isinstance(status, str) else list(status)
        query = query.where(Run.status.in_(statuses))
    if model_name is not None:
        query = query.where(Run.model_name == model_name)
    if search_group is not None:
        query = query.where(Run.search_group == search_group)
    with store.session() as session:
        return list(session.scalars(query.order_by(Run.id.desc())))


def update_run(store: Store, run_id: int, **values: Any) -> None:
    """Set columns of one run (e.g. ``epochs_done=3, best_epoch=2``)."""
    if "status" in values and values["status"] not in RUN_STATUSES:
        raise ValueError(f"status: expected one of {RUN_STATUSES}, got {values['status']!r}")
    with store.session() as session, session.begin():
        session.execute(update(Run).where(Run.id == run_id).values(**values))


def mark_started(store: Store, run_id: int, device: str) -> None:
    """Status ``running``, owned by this process (pid, host and start let a later start-up spot a dead owner)."""
    update_run(
        store,
        run_id,
        status="running",
        device=device,
        started_at=_now(),
        finished_at=None,
        error_text=None,
        pid=os.getpid(),
        host=socket.gethostname(),
        owner_start=process_start_ticks(os.getpid()),
    )


def mark_ended(store: Store, run_id: int, status: str, error_text: str | None = None) -> None:
    update_run(store, run_id, status=status, finished_at=_now(), error_text=error_text)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return _linux_proc_state(pid) != "Z"  # a killed child nobody reaped yet is gone too


def _linux_proc_stat(pid: int) -> list[str] | None:
    """Fields 3… of ``/proc/<pid>/stat`` (state first), or None off Linux / when the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[-1].split()


def _linux_proc_state(pid: int) -> str | None:
    fields = _linux_proc_stat(pid)
    return fields[0] if fields else None


def process_start_ticks(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (Linux), or None where that is unknown.

    Stored with the pid and host of a run's owner, it tells a live owner from an unrelated process
    that got the same pid after the owner died; ticks since boot do not move with the wall clock.
    """
    fields = _linux_proc_stat(pid)
    try:
        return int(fields[19]) if fields else None
    except (IndexError, ValueError):
        return None


def owner_alive(run: Run) -> bool | None:
    """Whether the process that owns a queued/running run still runs; None when it cannot be told
    from here (another host, no pid recorded)."""
    if run.pid is None or run.host != socket.gethostname():
        return None
    if run.pid == os.getpid():
        return True
    if not _pid_alive(run.pid):
        return False
    if run.owner_start is None:  # recorded before the token existed (or not on Linux): the pid decides
        return True
    started = process_start_ticks(run.pid)
    return started is None or started == run.owner_start  # another start: the pid was reused


INTERRUPTED_TEXT = "the process running it ended unexpectedly (killed or crashed); resume it to continue"


def mark_interrupted_runs(store: Store) -> list[int]:
    """Mark ``running``/``queued`` runs of this host whose process is gone as ``interrupted``.

    Runs owned by another host are left alone (their process cannot be checked from here). Returns
    the ids marked. :func:`embsr_core.store.open_store` calls it, so every CLI command and the app do.
    """
    marked = [run.id for run in list_runs(store, status=LIVE_STATUSES) if owner_alive(run) is False]
    if marked:
        with store.session() as session, session.begin():
            session.execute(
                update(Run)
                .where(Run.id.in_(marked), Run.status.in_(LIVE_STATUSES))
                .values(status="interrupted", error_text=INTERRUPTED_TEXT, finished_at=_now())
            )
    return marked


def mark_best_trial(store: Store, search_group: str, run_id: int) -> None:
    """Exactly one run of a search group is marked best."""
    with store.session() as session, session.begin():
        session.execute(update(Run).where(Run.search_group == search_group).values(is_best_trial=False))
        session.execute(update(Run).where(Run.id == run_id).values(is_best_trial=True))


def delete_run(store: Store, run_id: int, *, delete_files: bool = True) -> None:
    """Delete a run, its metrics, loss series, ranks and (by default) its checkpoint folder.

    Refused while the run is queued or running in a live process.
    """
    run = get_run(store, run_id)
    if run.status in LIVE_STATUSES and owner_alive(run):
        raise StoreError(f"run {run_id} is {run.status}; stop it before deleting it")
    with store.session() as session, session.begin():
        session.execute(delete(EpochMetric).where(EpochMetric.run_id == run_id))
        session.execute(delete(LossPoint).where(LossPoint.run_id == run_id))
        session.execute(delete(RunRanks).where(RunRanks.run_id == run_id))
        delete_run_details(session, [run_id])
        session.execute(delete(Run).where(Run.id == run_id))
    if delete_files:
        remove_checkpoint_files(run)


def remove_checkpoint_files(run: Run) -> None:
    """Remove a (deleted) run's checkpoints: its own ``run_<id>`` folder, or just the files."""
    for path in {run.checkpoint_path, run.best_checkpoint_path} - {None}:
        folder = Path(path).parent  # type: ignore[arg-type]
        if folder.name == f"run_{run.id}" and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
        else:
            Path(path).unlink(missing_ok=True)  # type: ignore[arg-type]


# --- metrics and loss -------------------------------------------------------------------------------


def add_epoch_metrics(
    store: Store,
    run_id: int,
    epoch: int,
    split: str,
    target_op: str,
    metrics: Mapping[str, float],
    wall_time: float | None = None,
) -> None:
    """Record (or replace) one evaluation's metrics, keyed by ``"hit@20"``-style names."""
    keys = [split_metric_name(name) for name in metrics]
    with store.session() as session, session.begin():
        session.execute(
            delete(EpochMetric).where(
                EpochMetric.run_id == run_id,
                EpochMetric.epoch == epoch,
                EpochMetric.split == split,
                EpochMetric.target_op == target_op,
                EpochMetric.metric.in_({m for m, _ in keys}),
            )
        )
        session.add_all(
            EpochMetric(
                run_id=run_id,
                epoch=epoch,
                split=split,
                target_op=target_op,
                metric=metric,
                k=k,
                value=float(value),
                wall_time=wall_time,
            )
            for (metric, k), value in zip(keys, metrics.values(), strict=True)
        )


def add_loss_points(store: Store, run_id: int, points: Iterable[tuple[int, int, float, float]]) -> None:
    """Append ``(step, epoch, loss, wall_time)`` points of the downsampled loss series."""
    rows = [LossPoint(run_id=run_id, step=s, epoch=e, loss=float(v), wall_time=w) for s, e, v, w in points]
    if rows:
        with store.session() as session, session.begin():
            session.add_all(rows)


def truncate_after(store: Store, run_id: int, epoch: int, step: int) -> None:
    """Forget what a killed process recorded after its last checkpoint (epoch ``epoch``, step ``step``)."""
    with store.session() as session, session.begin():
        session.execute(
            delete(EpochMetric).where(EpochMetric.run_id == run_id, EpochMetric.epoch > epoch)
        )
        session.execute(delete(EpochMetric).where(EpochMetric.run_id == run_id, EpochMetric.split == "test"))
        session.execute(delete(LossPoint).where(LossPoint.run_id == run_id, LossPoint.step > step))


MetricTuple = tuple[int, int, str, str, str, int, float, float | None]
METRIC_COLUMNS = ["run_id", "epoch", "split", "target_op", "metric", "k", "value", "wall_time"]


def metric_rows(store: Store, run_ids: Sequence[int]) -> list[MetricTuple]:
    """:data:`METRIC_COLUMNS` rows, ordered by run, epoch, split, target_op, metric, k.

    Plain tuples: `embsr runs list` reads them without pandas; :func:`metrics_frame` makes a frame of them.
    """
    with store.session() as session:
        rows = session.execute(
            select(
                EpochMetric.run_id,
                EpochMetric.epoch,
                EpochMetric.split,
                EpochMetric.target_op,
                EpochMetric.metric,
                EpochMetric.k,
                EpochMetric.value,
                EpochMetric.wall_time,
            )
            .where(EpochMetric.run_id.in_(list(run_ids)))
            .order_by(EpochMetric.run_id, EpochMetric.epoch, EpochMetric.split, EpochMetric.target_op,
                      EpochMetric.metric, EpochMetric.k)
        ).all()
    return [tuple(row) for row in rows]


def metrics_frame(store: Store, run_ids: Sequence[int]) -> pd.DataFrame:
    """Long format: run_id, epoch, split, target_op, metric, k, name ("hit@20"), value, wall_time."""
    import pandas as pd  # (here: opening a store, e.g. for `embsr datasets list`, needs no pandas)

    frame = pd.DataFrame(metric_rows(store, run_ids), columns=METRIC_COLUMNS)
    frame.insert(6, "name", [join_metric_name(m, k) for m, k in zip(frame["metric"], frame["k"], strict=True)])
    return frame


def loss_frame(store: Store, run_ids: Sequence[int]) -> pd.DataFrame:
    """run_id, step, epoch, loss, wall_time (the downsampled training-loss series)."""
    import pandas as pd

    with store.session() as session:
        rows = session.execute(
            select(LossPoint.run_id, LossPoint.step, LossPoint.epoch, LossPoint.loss, LossPoint.wall_time)
            .where(LossPoint.run_id.in_(list(run_ids)))
            .order_by(LossPoint.run_id, LossPoint.step)
        ).all()
    return pd.DataFrame(rows, columns=["run_id", "step", "epoch", "loss", "wall_time"])


def final_metrics(store: Store, run_id: int, split: str = "test") -> dict[str, dict[str, float]]:
    """``target_op → {"hit@20": …}`` of ``split`` at the run's best epoch (test is only stored there)."""
    run = get_run(store, run_id)
    frame = metrics_frame(store, [run_id])
    frame = frame[frame["split"] == split]
    if split != "test" and run.best_epoch is not None:
        frame = frame[frame["epoch"] == run.best_epoch]
    out: dict[str, dict[str, float]] = {}
    for row in frame.itertuples(index=False):
        out.setdefault(row.target_op, {})[row.name] = float(row.value)
    return out


# --- per-session ranks ------------------------------------------------------------------------------


def save_ranks(
    store: Store, run_id: int, split: str, target_op: str, ranks: np.ndarray, prep_hash: str | None
) -> None:
    """Store (replace) the per-session target ranks of one evaluation, as little-endian int32."""
    import numpy as np  # (here: opening a store needs no numpy)

    data = np.asarray(ranks, dtype="<i4").tobytes()
    with store.session() as session, session.begin():
        session.execute(
            delete(RunRanks).where(
                RunRanks.run_id == run_id, RunRanks.split == split, RunRanks.target_op == target_op
            )
        )
        session.add(
            RunRanks(run_id=run_id, split=split, target_op=target_op, prep_hash=prep_hash, n=len(ranks), ranks=data)
        )


def load_ranks(store: Store, run_id: int, split: str, target_op: str) -> tuple[np.ndarray, str | None]:
    """``(ranks int32 N, prep_hash)``; ``KeyError`` naming what is missing."""
    import numpy as np

    with store.session() as session:
        row = session.get(RunRanks, (run_id, split, target_op))
        if row is None:
            raise KeyError(f"run {run_id} has no stored ranks for split {split!r}, target op {target_op!r}")
        ranks = np.frombuffer(row.ranks, dtype="<i4").astype(np.int32)
        if ranks.shape[0] != row.n:
            raise StoreError(f"run {run_id}: stored ranks hold {ranks.shape[0]} values, expected {row.n}")
        return ranks, row.prep_hash
