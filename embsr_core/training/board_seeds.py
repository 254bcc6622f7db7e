"""A leaderboard over several seeds: each model's tuned configuration trained again with more seeds,
and Table III as mean ± sd over them, with Wilcoxon p-values on per-session scores averaged over the
seeds.

Why: with one seed a board's order between two close models can be the luck of one initialisation
(on 200 test sessions one session is half a point of H@20). Tuning stays on the board's first seed;
only the chosen configuration is repeated, so ``seeds = 3`` costs two more trainings per model, and a
board run with one seed is extended later without tuning again (its name does not change).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from embsr_core.data.prepared import PreparedDataset
from embsr_core.models.registry import stored_config
from embsr_core.reports import KS, metric_label, rank_flags, run_infos, summary_values
from embsr_core.store import runs_repo
from embsr_core.store.engine import Store
from embsr_core.training.config import EXECUTION_SETTINGS, TrainConfig
from embsr_core.training.events import Callback, ControlToken
from embsr_core.training.runner import run_training
from embsr_core.training.significance import per_session, wilcoxon_values
from embsr_core.training.tuning import MAX_NAME, load_study_state, mark_study

SEED_RUNS_ATTR = "seed_runs"  # study attribute: {"<seed>": run id} of the repeated configuration


def training_seconds(store: Store, run_id: int) -> float | None:
    """How long a finished run trained (wall clock), the estimate of one more seed of it."""
    run = runs_repo.get_run(store, run_id)
    if run is None or run.started_at is None or run.finished_at is None:
        return None
    return max(0.0, (run.finished_at - run.started_at).total_seconds())


def board_seeds(base: TrainConfig, seeds: int) -> list[int]:
    """The seeds of a board: the one it was tuned with, then the next ``seeds - 1`` integers."""
    if seeds < 1:
        raise ValueError("seeds: at least 1")
    return [base.seed + k for k in range(seeds)]


def seed_runs(
    store: Store,
    prepared: PreparedDataset,
    model_name: str,
    study: str,
    best_run_id: int,
    base: TrainConfig,
    seeds: int,
    *,
    dataset_id: int | None = None,
    checkpoint_root: Path | None = None,
    callback: Callback | None = None,
    control: ControlToken | None = None,
    on_seed: Callable[[int], None] | None = None,
) -> list[int] | None:
    """The runs of ``model_name``'s cell, one per seed: the tuned best run, then the same configuration
    trained with each further seed (trained now where the study does not hold one yet). ``None`` when
    cancelled; a seed whose training failed is left out (the cell then has fewer runs, and says so)."""
    control = control or ControlToken()
    state = load_study_state(store, study)
    done = {int(k): int(v) for k, v in ((state.user_attrs.get(SEED_RUNS_ATTR) if state else None) or {}).items()}
    best = runs_repo.get_run(store, best_run_id)
    if best is None:
        raise ValueError(f"run {best_run_id}, {model_name}'s best on this board, is no longer in the store; "
                         "name a new board (--name) to tune it again")
    here = base.to_dict()
    train = {**best.config["train"], **{k: here[k] for k in EXECUTION_SETTINGS}}  # how to run: this session's
    out = [best_run_id]
    for seed in board_seeds(base, seeds)[1:]:
        if seed not in done:
            if control.cancelled:
                return None
            if on_seed is not None:
                on_seed(seed)
            outcome = run_training(
                store, prepared, model_name, stored_config(model_name, best.config["model"]),
                TrainConfig.from_dict({**train, "seed": seed}),
                callback=callback, control=control, run_name=f"{study} seed {seed}"[:200],
                search_group=f"{study[: MAX_NAME - 6]} seeds", checkpoint_root=checkpoint_root, dataset_id=dataset_id,
            )
            if outcome.status != "finished":
                if control.cancelled:
                    return None
                continue
            done[seed] = outcome.run_id
            mark_study(store, study, **{SEED_RUNS_ATTR: {str(k): v for k, v in sorted(done.items())}})
        out.append(done[seed])
    return out


@dataclass
class SeedTable:
    """Table III over seeds: per model the mean and sd (over its runs) of every metric on the test split."""

    models: list[str]
    runs: dict[str, list[int]]
    columns: list[tuple[str, int]]
    mean: np.ndarray  # models × columns, fractions
    sd: np.ndarray  # sample sd (ddof 1); NaN with one run
    best: np.ndarray
    second: np.ndarray
    chosen: str  # the strongest model (best in most columns)
    p_values: dict[str, float | None]  # Wilcoxon of per-session mean M@20 (over seeds) against ``chosen``
    significance_metric: tuple[str, int] = ("mrr", 20)

    @property
    def labels(self) -> list[str]:
        return [metric_label(m, k) for m, k in self.columns]

    def value(self, model: str, column: tuple[str, int]) -> tuple[float, float]:
        i, j = self.models.index(model), self.columns.index(column)
        return float(self.mean[i, j]), float(self.sd[i, j])

    def frame(self) -> pd.DataFrame:
        """One row per model: the runs, their number, ``<metric> mean`` / ``<metric> sd`` and the p-value."""
        rows: list[dict[str, Any]] = []
        for i, model in enumerate(self.models):
            row: dict[str, Any] = {"model": model, "n_seeds": len(self.runs[model]),
                                   "run_ids": " ".join(str(r) for r in self.runs[model])}
            for j, label in enumerate(self.labels):
                row[f"{label} mean"] = float(self.mean[i, j])
                row[f"{label} sd"] = float(self.sd[i, j])
            row["wilcoxon_p_vs_best"] = None if model == self.chosen else self.p_values.get(model)
            rows.append(row)
        return pd.DataFrame(rows)


def seed_table(store: Store, cells: dict[str, list[int]], *, metrics: Sequence[str] = ("hit", "mrr"),
               ks: Sequence[int] = KS, significance_metric: tuple[str, int] = ("mrr", 20)) -> SeedTable:
    """Mean ± sd over each model's runs (test split, best epoch, target operation given), the strongest
    model, and each other model's Wilcoxon p-value on the per-session metric averaged over its seeds."""
    models = [m for m, runs in cells.items() if runs]
    if not models:
        raise ValueError("no model has a run")
    columns = [(m, int(k)) for m in metrics for k in ks]
    mean = np.full((len(models), len(columns)), np.nan)
    sd = np.full_like(mean, np.nan)
    per_model_sessions: dict[str, np.ndarray | None] = {}
    for i, model in enumerate(models):
        values, _ = summary_values(store, run_infos(store, cells[model]), columns, "best", split="test",
                                   target_op="oracle")
        mean[i] = np.nanmean(values, axis=0)
        if len(cells[model]) > 1:
            sd[i] = np.nanstd(values, axis=0, ddof=1)
        per_model_sessions[model] = _session_mean(store, cells[model], significance_metric)
    best, second = rank_flags(mean)
    wins = best.sum(axis=1)
    chosen = models[int(np.argmax(wins))]
    p_values: dict[str, float | None] = {}
    ref = per_model_sessions[chosen]
    for model in models:
        if model == chosen:
            continue
        other = per_model_sessions[model]
        if ref is None or other is None or ref.shape != other.shape:
            p_values[model] = None
        else:
            p_values[model] = wilcoxon_values(ref, other)[1]
    return SeedTable(models, {m: list(cells[m]) for m in models}, columns, mean, sd, best, second, chosen, p_values,
                     significance_metric)


def _session_mean(store: Store, run_ids: Sequence[int], metric: tuple[str, int]) -> np.ndarray | None:
    """Per test session, ``metric`` averaged over the runs (None when a run has no stored ranks, or the
    runs were scored on different sessions)."""
    vectors, hashes = [], set()
    for run_id in run_ids:
        try:
            ranks, prep = runs_repo.load_ranks(store, run_id, "test", "oracle")
        except KeyError:
            return None
        vectors.append(per_session(ranks, metric[0], metric[1]))
        hashes.add(prep)
    if len(hashes) > 1 or len({v.shape for v in vectors}) > 1:
        return None
    return np.mean(vectors, axis=0)
