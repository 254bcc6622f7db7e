"""Grid search = the tuner with Optuna's GridSampler: every combination is one run, all sharing a
``search_group`` (the study name); no pruning, no defaults trial, the grid exhausted ends it.

Trials are compared on validation at each trial's own best epoch in the selection mode (see
:mod:`embsr_core.training.tuning` for the objective); test is never looked at. The winner gets
``is_best_trial``.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embsr_core.data.prepared import PreparedDataset
from embsr_core.models.registry import get_spec
from embsr_core.store import runs_repo
from embsr_core.store.engine import Store
from embsr_core.training.config import TrainConfig
from embsr_core.training.events import Callback, ControlToken
from embsr_core.training.tuning import TuneProgress, coerce_space, is_trainable, split_params, tune

__all__ = ["PAPER_GRID", "SearchResult", "Trial", "default_grid", "expand_grid", "grid_search", "split_params"]

# The paper's grid (§V-A-4).
PAPER_GRID: dict[str, list[Any]] = {
    "lr": [0.001, 0.003, 0.005, 0.008, 0.01],
    "dropout": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5],
}


@dataclass
class Trial:
    run_id: int
    params: dict[str, Any]
    status: str  # the run's status: finished / stopped / failed
    valid_metrics: dict[str, float] | None  # at the trial's best epoch, selection mode


@dataclass
class SearchResult:
    search_group: str
    trials: list[Trial]
    best_run_id: int | None  # None when no trial finished


def default_grid(model_name: str) -> dict[str, list[Any]]:
    """The paper's grid restricted to what the model has: a fitted model (S-POP, SKNN) has no learning
    rate, and some models have no dropout. A model with nothing to tune gets a single trial."""
    model_keys = {p.name for p in get_spec(model_name).params}
    grid = {k: v for k, v in PAPER_GRID.items() if k in model_keys or (k == "lr" and is_trainable(model_name))}
    return grid or {"seed": [TrainConfig().seed]}


def expand_grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """All combinations, the first key varying slowest."""
    for key, values in grid.items():
        if isinstance(values, str | bytes) or len(values) == 0:
            raise ValueError(f"grid: {key} needs a non-empty list of values")
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))]


def grid_search(
    store: Store,
    prepared: PreparedDataset,
    model_name: str,
    grid: Mapping[str, Sequence[Any]] | None = None,
    *,
    model_overrides: Mapping[str, Any] | None = None,
    train_config: TrainConfig | None = None,
    callback: Callback | None = None,
    control: ControlToken | None = None,
    search_group: str | None = None,
    checkpoint_root: Path | None = None,
    dataset_id: int | None = None,
    on_trial: Callable[[Trial, int, int], None] | None = None,
) -> SearchResult:
    """Train every combination of ``grid`` (default: :func:`default_grid`), mark and return the best.

    A cancel on ``control`` stops the running trial (its run: stopped) and skips the rest.
    ``on_trial(trial, index, total)`` is called after each trial.
    """
    grid = default_grid(model_name) if grid is None else grid
    expand_grid(grid)
    space = coerce_space(model_name, grid)
    total = len(expand_grid(space))
    group = search_group or f"search-{uuid.uuid4().hex[:12]}"

    def trial_of(progress: TuneProgress) -> Trial | None:
        info = progress.trial
        if info.state == "running" or info.run_id is None:
            return None
        status = runs_repo.get_run(store, info.run_id).status
        return Trial(info.run_id, dict(info.params), status, info.valid if status == "finished" else None)

    def forward(progress: TuneProgress) -> None:
        trial = trial_of(progress)
        if trial is not None and on_trial is not None:
            on_trial(trial, progress.trial.number, total)

    result = tune(
        store, prepared, model_name, space=space, sampler="grid", pruner="none", include_defaults=False,
        model_overrides=model_overrides, train_config=train_config, study_name=group, dataset_id=dataset_id,
        checkpoint_root=checkpoint_root, callback=callback, on_progress=forward, control=control,
    )
    trials = []
    for info in result.trials:
        if info.run_id is not None:
            status = runs_repo.get_run(store, info.run_id).status
            trials.append(Trial(info.run_id, dict(info.params), status, info.valid if status == "finished" else None))
    return SearchResult(group, trials, result.best_run_id)
