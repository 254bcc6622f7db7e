"""Run descriptions and one-number-per-run metrics, in plain Python over the store.

The part of the run reports that `embsr runs list` needs, kept free of pandas and numpy so that the
command starts in well under a second (pandas alone takes a third of one to import).
:mod:`embsr_core.reports` builds the comparison table, curves and CSV files on top of it and
re-exports everything here, so callers keep using ``reports.run_infos`` etc.

Aggregation of a metric over a run's epochs: ``best`` (the value at the run's best validation epoch,
which is how the paper reports), ``last``, ``max`` or ``min``; NaN when the run has no such value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from embsr_core.store import Store, runs_repo
from embsr_core.store.models import Run
from embsr_core.store.repository import list_datasets

METRICS: tuple[str, ...] = ("hit", "mrr", "ndcg")
KS: tuple[int, ...] = (1, 3, 5, 10, 20)
AGGREGATIONS: tuple[str, ...] = ("best", "last", "max", "min")
METRIC_LABELS = {"hit": "H", "mrr": "M", "ndcg": "N"}
Aggregation = Literal["best", "last", "max", "min"]


def metric_label(metric: str, k: int) -> str:
    """``("hit", 20)`` → ``"H@20"``; metrics without K (loss) keep their name."""
    if metric in METRIC_LABELS and k:
        return f"{METRIC_LABELS[metric]}@{k}"
    return metric if not k else f"{metric}@{k}"


def parse_metric_label(label: str) -> tuple[str, int]:
    """``"H@20"`` / ``"hit@20"`` / ``"M@5"`` / ``"ndcg@10"`` → ``(metric, k)``; ValueError otherwise."""
    text = label.strip()
    name, _, k_text = text.partition("@")
    by_label = {v.lower(): m for m, v in METRIC_LABELS.items()}
    metric = by_label.get(name.lower(), name.lower())
    if metric not in METRICS or not k_text.isdigit():
        raise ValueError(
            f"not a metric: {label!r}; expected e.g. H@20, M@10, N@5 (or hit@20, mrr@10, ndcg@5)"
        )
    return metric, int(k_text)


def runs_signature(store: Store) -> tuple[tuple[int, str, int], ...]:
    """A cheap fingerprint of the runs table (id, status, epochs done): poll it to know when to reload."""
    from sqlalchemy import select

    with store.session() as session:
        rows = session.execute(select(Run.id, Run.status, Run.epochs_done).order_by(Run.id)).all()
    return tuple((int(i), str(s), int(e or 0)) for i, s, e in rows)


# --------------------------------------------------------------------------------------------------
# Run descriptions
# --------------------------------------------------------------------------------------------------

# Hyperparameters worth a column in a run table, in display order, with short labels.
KEY_HYPERPARAMETERS: tuple[tuple[str, str], ...] = (
    ("lr", "lr"),
    ("dim", "d"),
    ("hidden_size", "d"),
    ("embedding_dim", "d"),
    ("dropout", "drop"),
    ("batch_size", "bs"),
    ("max_epochs", "ep"),
    ("seed", "seed"),
    ("target_op", "op"),
)


def flatten_config(config: Any, prefix: str = "") -> dict[str, Any]:
    """Nested settings as ``{"model.dim": 64, ...}`` (for display and key lookup)."""
    out: dict[str, Any] = {}
    if isinstance(config, dict):
        for key, value in config.items():
            if isinstance(value, dict):
                out.update(flatten_config(value, f"{prefix}{key}."))
            else:
                out[f"{prefix}{key}"] = value
    return out


def key_hyperparameters(config: dict[str, Any] | None) -> dict[str, Any]:
    """The few settings a run table shows (lr, dimension, dropout, ...), found anywhere in ``config``."""
    flat = flatten_config(config or {})
    found: dict[str, Any] = {}
    for key, label in KEY_HYPERPARAMETERS:
        if label in found:
            continue
        for name, value in flat.items():
            if name.rsplit(".", 1)[-1] == key and value is not None:
                found[label] = value
                break
    return found


def format_hyperparameters(config: dict[str, Any] | None) -> str:
    return " ".join(f"{k}={_short(v)}" for k, v in key_hyperparameters(config).items())


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass(frozen=True)
class RunInfo:
    """What a run table shows about one run (plain values, safe to use after the session closed)."""

    id: int
    name: str
    model: str
    dataset: str
    dataset_id: int
    status: str
    device: str
    config: dict[str, Any]
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    epochs_done: int
    best_epoch: int | None
    prep_hash: str | None
    error_text: str | None = None

    @property
    def display_name(self) -> str:
        return self.name or f"{self.model} #{self.id}"

    def duration_s(self, now: datetime | None = None) -> float | None:
        """Seconds from start to finish (or to ``now`` while it is running)."""
        if self.started_at is None:
            return None
        end = self.finished_at
        if end is None:
            if self.status not in ("running", "queued"):
                return None
            end = now or datetime.now(self.started_at.tzinfo)
        return max(0.0, (end - self.started_at).total_seconds())


def run_infos(store: Store, run_ids: Sequence[int] | None = None) -> list[RunInfo]:
    """Runs (all, or ``run_ids`` in that order) as :class:`RunInfo`; KeyError names a missing id."""
    names = {d.id: d.name for d in list_datasets(store)}
    infos = {run.id: _info(run, names.get(run.dataset_id)) for run in runs_repo.list_runs(store)}
    if run_ids is None:
        return list(infos.values())
    missing = [rid for rid in run_ids if rid not in infos]
    if missing:
        raise KeyError(f"no run with id {', '.join(map(str, missing))} in the store")
    return [infos[int(rid)] for rid in run_ids]


def _info(run: Any, dataset_name: str | None) -> RunInfo:
    return RunInfo(
        id=int(run.id),
        name=run.name or "",
        model=run.model_name,
        dataset=dataset_name or f"dataset {run.dataset_id}",
        dataset_id=int(run.dataset_id),
        status=run.status,
        device=run.device or "",
        config=dict(run.config or {}),
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        epochs_done=int(run.epochs_done or 0),
        best_epoch=run.best_epoch,
        prep_hash=run.prep_hash,
        error_text=run.error_text,
    )


def format_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return ""
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


# --------------------------------------------------------------------------------------------------
# One number per run and metric
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricRow:
    """One stored per-epoch metric value of a run."""

    epoch: int
    split: str
    target_op: str
    metric: str
    k: int
    value: float


def metric_rows_by_run(store: Store, run_ids: Sequence[int]) -> dict[int, list[MetricRow]]:
    """Each run's per-epoch metrics, ordered by epoch (every id in ``run_ids`` gets a list)."""
    out: dict[int, list[MetricRow]] = {int(rid): [] for rid in run_ids}
    for run_id, epoch, split, target_op, metric, k, value, _wall in runs_repo.metric_rows(store, list(run_ids)):
        out[int(run_id)].append(MetricRow(int(epoch), split, target_op, metric, int(k), float(value)))
    return out


def aggregate(
    rows: Sequence[MetricRow],
    metric: str,
    k: int,
    agg: Aggregation,
    *,
    split: str,
    target_op: str = "oracle",
    best_epoch: int | None = None,
) -> float:
    """One number per run: ``agg`` of ``metric@k`` on ``split``; NaN when the run has none.

    ``best`` takes the value at ``best_epoch`` (the early-stopping epoch chosen on validation); when
    the split was evaluated only once (a final test evaluation), that single value is the best one.
    """
    if agg not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {agg!r}; expected one of {', '.join(AGGREGATIONS)}")
    sel = [r for r in rows if r.metric == metric and r.k == k and r.split == split and r.target_op == target_op]
    if not sel:
        return math.nan
    if agg in ("max", "min"):
        finite = [r.value for r in sel if not math.isnan(r.value)]
        return (max if agg == "max" else min)(finite) if finite else math.nan
    if agg == "last":
        last_epoch = max(r.epoch for r in sel)
        return next(r.value for r in sel if r.epoch == last_epoch)
    if best_epoch is not None:
        at = [r.value for r in sel if r.epoch == best_epoch]
        if at:
            return at[-1]
    return sel[0].value if len(sel) == 1 else math.nan


def default_split(rows: Sequence[MetricRow]) -> str:
    """``test`` when the run was evaluated on it, else ``valid``."""
    return "test" if any(r.split == "test" for r in rows) else "valid"


def summary_rows(
    store: Store,
    infos: Sequence[RunInfo],
    columns: Sequence[tuple[str, int]],
    aggregation: Aggregation,
    *,
    split: str | None = None,
    target_op: str = "oracle",
) -> tuple[list[list[float]], str]:
    """R lists of C ``aggregation`` values of ``columns`` (metric, K) for ``infos``, and the split used.

    ``split=None`` picks ``test`` when every run has test metrics, else ``valid``.
    """
    by_run = metric_rows_by_run(store, [info.id for info in infos])
    if split is None:
        split = "test" if by_run and all(default_split(rows) == "test" for rows in by_run.values()) else "valid"
    values = [
        [aggregate(by_run[info.id], m, k, aggregation, split=split, target_op=target_op, best_epoch=info.best_epoch)
         for m, k in columns]
        for info in infos
    ]
    return values, split
