"""Run reports: the paper's Table-III-style comparison, significance between runs, CSV exports.

Shared by the CLI (`embsr runs compare`, `embsr export`) and the GUI's Runs page, so both show the
same numbers. Pure pandas/numpy over the store; never imports Qt. Run descriptions and the
one-number-per-run aggregation live in :mod:`embsr_core.run_summary` (no pandas: `embsr runs list`
starts fast) and are re-exported here.

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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from embsr_core.run_summary import (  # noqa: F401  (the pandas-free part, re-exported: reports.run_infos etc.)
    AGGREGATIONS,
    KEY_HYPERPARAMETERS,
    KS,
    METRIC_LABELS,
    METRICS,
    Aggregation,
    RunInfo,
    flatten_config,
    format_duration,
    format_hyperparameters,
    key_hyperparameters,
    metric_label,
    parse_metric_label,
    run_infos,
    runs_signature,
    summary_rows,
)
from embsr_core.store import Store, runs_repo

LONG_COLUMNS: tuple[str, ...] = (
    "run_id", "run_name", "model", "dataset", "epoch", "split", "target_op", "metric", "k", "value", "wall_time",
)
COMPARISON_ID_COLUMNS: tuple[str, ...] = (
    "run_id", "run_name", "model", "dataset", "status", "aggregation", "split", "target_op",
)
IMPROVEMENT_ROW = "Imp. %"


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
    rows, split = summary_rows(store, infos, columns, aggregation, split=split, target_op=target_op)
    values = np.array(rows, dtype=np.float64).reshape(len(infos), len(columns))
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


def export_frame_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """Any table as the project's CSV files are written (UTF-8, header row, full precision, atomic)."""
    return _write_csv(frame, path)


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
