"""Run reports: the paper's Table-III-style comparison, significance between runs, CSV exports.

Shared by the CLI (`embsr runs compare`, `embsr export`) and the GUI's Runs page, so both show the
same numbers. Pure pandas/numpy over the store; never imports Qt.

Conventions
- Metrics in the store are ``hit`` / ``mrr`` / ``ndcg`` at K; their labels are ``H@K`` / ``M@K`` /
  ``N@K`` as in the paper. Higher is better for all three.
- Aggregation of a metric over a run's epochs: ``best`` (the value at the run's best validation
  epoch, which is how the paper reports), ``last``, ``max`` or ``min``.
- CSV files are UTF-8 (no BOM), comma-separated, one header row, no index column; floats are
  written with Python's shortest round-trip repr, so reading a file back gives every value exactly.
- Units: metric values are fractions in [0, 1] in the store and in both CSV files (0.4123 means
  41.23 %); the GUI shows them in percent, labelled "%". The ``Imp. %`` row is in percent, wall
  times are seconds since the run started, p-values are probabilities.
- Runs of different datasets or splits are never compared head to head (no best / second-best
  marks, no Imp., no Wilcoxon); the table carries the reason in ``mismatch`` and the comparison
  CSV in its ``comparison_note`` column.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from embsr_core.store import Store, runs_repo
from embsr_core.store.models import Run
from embsr_core.store.repository import list_datasets

METRICS: tuple[str, ...] = ("hit", "mrr", "ndcg")
KS: tuple[int, ...] = (1, 3, 5, 10, 20)
AGGREGATIONS: tuple[str, ...] = ("best", "last", "max", "min")
METRIC_LABELS = {"hit": "H", "mrr": "M", "ndcg": "N"}
Aggregation = Literal["best", "last", "max", "min"]

LONG_COLUMNS: tuple[str, ...] = (
    "run_id", "run_name", "model", "dataset", "epoch", "split", "target_op", "metric", "k", "value", "wall_time",
)
COMPARISON_ID_COLUMNS: tuple[str, ...] = (
    "run_id", "run_name", "model", "dataset", "status", "aggregation", "split", "target_op",
)
IMPROVEMENT_ROW = "Imp. %"


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


# --------------------------------------------------------------------------------------------------
# Store access (through the runs repository; the dataset names come from the dataset repository)
# --------------------------------------------------------------------------------------------------


def metrics_by_run(store: Store, run_ids: Sequence[int]) -> dict[int, pd.DataFrame]:
    """Each run's per-epoch metrics (columns epoch, split, target_op, metric, k, value, wall_time)."""
    frame = runs_repo.metrics_frame(store, list(run_ids)).drop(columns="name")
    groups = {int(rid): g.drop(columns="run_id").reset_index(drop=True) for rid, g in frame.groupby("run_id")}
    empty = frame.iloc[0:0].drop(columns="run_id")
    return {int(rid): groups.get(int(rid), empty) for rid in run_ids}


def losses_by_run(store: Store, run_ids: Sequence[int]) -> dict[int, pd.DataFrame]:
    """Each run's downsampled training-loss series (columns step, epoch, loss, wall_time)."""
    frame = runs_repo.loss_frame(store, list(run_ids))
    groups = {int(rid): g.drop(columns="run_id").reset_index(drop=True) for rid, g in frame.groupby("run_id")}
    empty = frame.iloc[0:0].drop(columns="run_id")
    return {int(rid): groups.get(int(rid), empty) for rid in run_ids}


def loss_curve(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fractional epoch, wall time, loss) of one run's loss series; epoch e's last point sits at x = e,
    where that epoch's validation metrics are drawn."""
    if frame.empty:
        empty = np.zeros(0)
        return empty, empty, empty
    f = frame.sort_values("step")
    epoch = f["epoch"].to_numpy(dtype=np.float64)
    within = f.groupby("epoch").cumcount().to_numpy(dtype=np.float64) + 1.0
    count = f.groupby("epoch")["step"].transform("size").to_numpy(dtype=np.float64)
    x = epoch - 1.0 + within / count
    wall = f["wall_time"].to_numpy(dtype=np.float64, na_value=np.nan)
    return x, wall, f["loss"].to_numpy(dtype=np.float64)


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
# Per-epoch metrics
# --------------------------------------------------------------------------------------------------


def metrics_long(store: Store, run_ids: Sequence[int]) -> pd.DataFrame:
    """Per-epoch metrics of ``run_ids`` in the long CSV layout (:data:`LONG_COLUMNS`), sorted."""
    infos = run_infos(store, run_ids)
    by_run = metrics_by_run(store, run_ids)
    frames = []
    for info in infos:
        frame = by_run[info.id]
        if frame.empty:
            continue
        frame = frame.copy()
        frame["run_id"] = info.id
        frame["run_name"] = info.display_name
        frame["model"] = info.model
        frame["dataset"] = info.dataset
        frames.append(frame)
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in LONG_COLUMNS})
    out = pd.concat(frames, ignore_index=True)[list(LONG_COLUMNS)]
    out["run_id"] = out["run_id"].astype("int64")
    out["epoch"] = out["epoch"].astype("int64")
    out["k"] = out["k"].astype("int64")
    out["value"] = out["value"].astype("float64")
    out["wall_time"] = out["wall_time"].astype("float64")
    order = {rid: i for i, rid in enumerate(run_ids)}
    out["_order"] = out["run_id"].map(order)
    out = out.sort_values(["_order", "split", "target_op", "metric", "k", "epoch"], kind="stable")
    return out.drop(columns="_order").reset_index(drop=True)


def curve(
    frame: pd.DataFrame, metric: str, k: int, split: str = "valid", target_op: str = "oracle"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(epochs, wall_times, values) of one metric of one run's metrics frame, by epoch (float64)."""
    sel = frame[
        (frame["metric"] == metric) & (frame["k"] == k) & (frame["split"] == split) & (frame["target_op"] == target_op)
    ].sort_values("epoch")
    wall = sel["wall_time"].to_numpy(dtype=np.float64, na_value=np.nan)
    return sel["epoch"].to_numpy(dtype=np.float64), wall, sel["value"].to_numpy(dtype=np.float64)


def aggregate(
    frame: pd.DataFrame,
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
    if frame.empty:
        return math.nan
    sel = frame[
        (frame["metric"] == metric) & (frame["k"] == k) & (frame["split"] == split) & (frame["target_op"] == target_op)
    ]
    if sel.empty:
        return math.nan
    if agg == "max":
        return float(sel["value"].max())
    if agg == "min":
        return float(sel["value"].min())
    if agg == "last":
        return float(sel.loc[sel["epoch"].idxmax(), "value"])
    if agg == "best":
        if best_epoch is not None:
            at = sel[sel["epoch"] == best_epoch]
            if not at.empty:
                return float(at["value"].iloc[-1])
        if len(sel) == 1:
            return float(sel["value"].iloc[0])
        return math.nan
    raise ValueError(f"unknown aggregation {agg!r}; expected one of {', '.join(AGGREGATIONS)}")


def default_split(frame: pd.DataFrame) -> str:
    """``test`` when the run was evaluated on it, else ``valid``."""
    if not frame.empty and (frame["split"] == "test").any():
        return "test"
    return "valid"


# --------------------------------------------------------------------------------------------------
# Comparison table (Table III)
# --------------------------------------------------------------------------------------------------


@dataclass
class ComparisonTable:
    """Rows = runs, columns = metric@K; flags for best / second best per column; Imp. of one run."""

    runs: list[RunInfo]
    columns: list[tuple[str, int]]
    values: np.ndarray  # R×C float64, NaN where a run has no value
    best: np.ndarray  # R×C bool: the column's best value (ties all flagged)
    second: np.ndarray  # R×C bool: the column's second best distinct value
    aggregation: str
    split: str
    target_op: str
    chosen_run_id: int | None = None
    improvement: np.ndarray | None = None  # C float64: % gain of the chosen run over the best other
    p_values: dict[int, float | None] = field(default_factory=dict)  # run id → Wilcoxon p vs chosen
    significance_metric: tuple[str, int] | None = None
    mismatch: str | None = None  # why the runs are not comparable (then no Imp. and no p-values)

    @property
    def comparable(self) -> bool:
        return self.mismatch is None

    @property
    def labels(self) -> list[str]:
        return [metric_label(m, k) for m, k in self.columns]

    def to_frame(self) -> pd.DataFrame:
        """The wide table: identifying columns, one column per metric@K, p-values, and an Imp. row."""
        rows = []
        for i, info in enumerate(self.runs):
            row: dict[str, Any] = {
                "run_id": info.id,
                "run_name": info.display_name,
                "model": info.model,
                "dataset": info.dataset,
                "status": info.status,
                "aggregation": self.aggregation,
                "split": self.split,
                "target_op": self.target_op,
            }
            row.update({label: float(self.values[i, j]) for j, label in enumerate(self.labels)})
            if self.p_values:
                row["wilcoxon_p_vs_chosen"] = self.p_values.get(info.id)
            if self.mismatch:
                row["comparison_note"] = self.mismatch
            rows.append(row)
        if self.improvement is not None and self.chosen_run_id is not None:
            imp: dict[str, Any] = {c: None for c in COMPARISON_ID_COLUMNS}
            imp["run_name"] = f"{IMPROVEMENT_ROW} (run {self.chosen_run_id} over the best other run)"
            imp["aggregation"] = self.aggregation
            imp["split"] = self.split
            imp["target_op"] = self.target_op
            imp.update({label: float(self.improvement[j]) for j, label in enumerate(self.labels)})
            rows.append(imp)
        columns = (list(COMPARISON_ID_COLUMNS) + self.labels + (["wilcoxon_p_vs_chosen"] if self.p_values else [])
                   + (["comparison_note"] if self.mismatch else []))
        frame = pd.DataFrame(rows, columns=columns)
        frame["run_id"] = frame["run_id"].astype("Int64")
        return frame


def rank_flags(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column of an R×C array: (is best, is second-best distinct value); NaN is never flagged."""
    values = np.asarray(values, dtype=np.float64)
    best = np.zeros(values.shape, dtype=bool)
    second = np.zeros(values.shape, dtype=bool)
    for j in range(values.shape[1] if values.ndim == 2 else 0):
        col = values[:, j]
        distinct = np.unique(col[np.isfinite(col)])[::-1]  # descending
        if distinct.size >= 1:
            best[:, j] = col == distinct[0]
        if distinct.size >= 2:
            second[:, j] = col == distinct[1]
    return best, second


def relative_improvement(values: np.ndarray, chosen_row: int) -> np.ndarray:
    """Per column: 100 × (chosen − best other) / best other; NaN when undefined."""
    values = np.asarray(values, dtype=np.float64)
    out = np.full(values.shape[1], np.nan)
    others = np.delete(values, chosen_row, axis=0)
    if others.shape[0] == 0:
        return out
    with np.errstate(all="ignore"):
        masked = np.where(np.isfinite(others), others, -np.inf)
        best_other = np.where(np.isfinite(others).any(axis=0), masked.max(axis=0), np.nan)
        mine = values[chosen_row]
        ok = np.isfinite(best_other) & np.isfinite(mine) & (best_other != 0)
        out[ok] = 100.0 * (mine[ok] - best_other[ok]) / best_other[ok]
    return out


def summary_values(
    store: Store,
    infos: Sequence[RunInfo],
    columns: Sequence[tuple[str, int]],
    aggregation: Aggregation,
    *,
    split: str | None = None,
    target_op: str = "oracle",
) -> tuple[np.ndarray, str]:
    """R×C ``aggregation`` values of ``columns`` (metric, K) for ``infos``, and the split used.

    ``split=None`` picks ``test`` when every run has test metrics, else ``valid``.
    """
    frames = metrics_by_run(store, [info.id for info in infos])
    if split is None:
        split = "test" if frames and all(default_split(f) == "test" for f in frames.values()) else "valid"
    values = np.full((len(infos), len(columns)), np.nan)
    for i, info in enumerate(infos):
        for j, (m, k) in enumerate(columns):
            values[i, j] = aggregate(
                frames[info.id], m, k, aggregation, split=split, target_op=target_op, best_epoch=info.best_epoch
            )
    return values, split


def comparison_mismatch(infos: Sequence[RunInfo]) -> str | None:
    """Why ``infos`` cannot be compared head to head, or None when they can.

    Runs trained on different datasets, or on different preprocessing of one dataset (another
    split, filter or session length: a different prepared-data fingerprint), were scored on
    different test sessions: their numbers sit side by side, but a relative improvement or a paired
    test between them would be meaningless, so the comparison refuses both and says why.
    """
    if len(infos) < 2:
        return None
    by_dataset: dict[str, list[int]] = {}
    for info in infos:
        by_dataset.setdefault(info.dataset, []).append(info.id)
    if len({info.dataset_id for info in infos}) > 1:
        names = "; ".join(f"{name!r}: {_runs_text(ids)}" for name, ids in by_dataset.items())
        return (f"these runs were trained on different datasets ({names}); their scores come from different "
                "test sessions, so no best value, improvement or significance is marked")
    by_prep: dict[str, list[int]] = {}
    for info in infos:
        if info.prep_hash:
            by_prep.setdefault(info.prep_hash, []).append(info.id)
    if len(by_prep) > 1:
        parts = " vs ".join(_runs_text(ids) for ids in by_prep.values())
        return (f"these runs used different preprocessing or splits of {infos[0].dataset!r} ({parts}); their "
                "scores come from different test sessions, so no best value, improvement or significance is marked")
    return None


def _runs_text(ids: Sequence[int]) -> str:
    return ("run " if len(ids) == 1 else "runs ") + ", ".join(map(str, ids))


def _strongest(run_ids: Sequence[int], best: np.ndarray) -> int:
    wins = best.sum(axis=1)
    return int(run_ids[int(np.argmax(wins))]) if wins.size else int(run_ids[0])


def comparison_table(
    store: Store,
    run_ids: Sequence[int],
    *,
    metrics: Iterable[str] = ("hit", "mrr"),
    ks: Iterable[int] = KS,
    aggregation: Aggregation = "best",
    split: str | None = None,
    target_op: str = "oracle",
    chosen_run_id: int | None = None,
    significance: bool = False,
    significance_metric: tuple[str, int] = ("mrr", 20),
) -> ComparisonTable:
    """The paper's Table III for ``run_ids``.

    ``split`` defaults to ``test`` when every run has test metrics, else ``valid``. ``chosen_run_id``
    (default: the run best in most columns, first on ties: the paper shows its proposed model's gain)
    gets the Imp. row; with ``significance`` each other run gets the
    Wilcoxon signed-rank p-value of its per-session ranks against the chosen run's. Runs of different
    datasets or splits get neither: ``mismatch`` says why (see :func:`comparison_mismatch`).
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation!r}; expected one of {', '.join(AGGREGATIONS)}")
    run_ids = [int(r) for r in run_ids]
    if not run_ids:
        raise ValueError("no runs to compare")
    infos = run_infos(store, run_ids)
    columns = [(m, int(k)) for m in metrics for k in ks]
    values, split = summary_values(store, infos, columns, aggregation, split=split, target_op=target_op)
    best, second = rank_flags(values)
    chosen = chosen_run_id if chosen_run_id is not None else _strongest(run_ids, best)
    if chosen not in run_ids:
        raise ValueError(f"the chosen run {chosen} is not among the compared runs")
    mismatch = comparison_mismatch(infos)
    if mismatch is not None:  # a "best" across different test sessions would mislead like Imp. would
        best, second = np.zeros_like(best), np.zeros_like(second)
    improvement = (
        relative_improvement(values, run_ids.index(chosen)) if len(run_ids) > 1 and mismatch is None else None
    )
    table = ComparisonTable(
        runs=infos,
        columns=columns,
        values=values,
        best=best,
        second=second,
        aggregation=aggregation,
        split=split,
        target_op=target_op,
        chosen_run_id=chosen,
        improvement=improvement,
        mismatch=mismatch,
    )
    if significance and len(run_ids) > 1 and mismatch is None:
        table.significance_metric = significance_metric
        for info in infos:
            if info.id == chosen:
                continue
            try:
                table.p_values[info.id] = wilcoxon_p_value(
                    store, chosen, info.id, split=split, target_op=target_op, metric=significance_metric
                )
            except ValueError:
                table.p_values[info.id] = None
    return table


# --------------------------------------------------------------------------------------------------
# Significance
# --------------------------------------------------------------------------------------------------


def wilcoxon_p_value(
    store: Store,
    run_a: int,
    run_b: int,
    *,
    split: str = "test",
    target_op: str = "oracle",
    metric: tuple[str, int] = ("mrr", 20),
) -> float:
    """Two-sided Wilcoxon signed-rank p-value between two runs' per-session ``metric`` on one split.

    Both runs must have stored per-session target ranks for the same prepared split (same prep
    hash and session count); otherwise ValueError says what is missing.
    """
    from embsr_core.training import significance  # imports torch: only when a test is asked for

    try:
        result = significance.compare_runs(
            store, run_a, run_b, split=split, target_op=target_op, measure=metric[0], k=metric[1]
        )
    except KeyError as exc:
        raise ValueError(f"{exc.args[0]}; evaluate it on that split first") from None
    return float(result.p_value)


# --------------------------------------------------------------------------------------------------
# CSV exports
# --------------------------------------------------------------------------------------------------


def _write_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise FileNotFoundError(f"cannot write {path}: folder {path.parent} does not exist")
    tmp = path.with_name(path.name + ".tmp")
    # float_format=None → repr → shortest string that round-trips; no index column.
    frame.to_csv(tmp, index=False, encoding="utf-8", lineterminator="\n")
    tmp.replace(path)
    return path


def export_metrics_csv(store: Store, run_ids: Sequence[int], path: str | Path) -> Path:
    """Per-epoch metrics of ``run_ids`` in long format (:data:`LONG_COLUMNS`) to ``path``."""
    return _write_csv(metrics_long(store, run_ids), path)


def export_comparison_csv(
    store: Store,
    run_ids: Sequence[int],
    path: str | Path,
    *,
    aggregation: Aggregation = "best",
    split: str | None = None,
    target_op: str = "oracle",
    metrics: Iterable[str] = METRICS,
    chosen_run_id: int | None = None,
    significance: bool = True,
) -> Path:
    """The comparison table of ``run_ids`` in wide format (rows = runs, columns = metric@K)."""
    table = comparison_table(
        store,
        run_ids,
        metrics=metrics,
        aggregation=aggregation,
        split=split,
        target_op=target_op,
        chosen_run_id=chosen_run_id,
        significance=significance,
    )
    return _write_csv(table.to_frame(), path)


def read_metrics_csv(path: str | Path) -> pd.DataFrame:
    """Read back a file written by :func:`export_metrics_csv` with the same dtypes."""
    return pd.read_csv(
        path,
        encoding="utf-8",
        dtype={"run_name": str, "model": str, "dataset": str, "split": str, "target_op": str, "metric": str},
        keep_default_na=False,
        na_values={"wall_time": [""], "value": [""]},
    )
