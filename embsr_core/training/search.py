"""Grid search: every combination is one run in the store, all sharing a ``search_group``.

Trials are compared on validation at each trial's own best epoch (test is never looked at), in the
trials' selection mode (``train_target_op``). For the ``authors`` criterion the trials are ranked
by H@20 / max H@20 + M@20 / max M@20 over the trials (the relative-gain rule made into a total
order); for a single metric, by that metric. The winner gets ``is_best_trial``.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from embsr_core.data.prepared import PreparedDataset
from embsr_core.models.registry import get_spec, resolve_config
from embsr_core.store import runs_repo
from embsr_core.store.engine import Store
from embsr_core.training.config import TrainConfig
from embsr_core.training.events import Callback, ControlToken
from embsr_core.training.trainer import Trainer

# The paper's grid (§V-A-4).
PAPER_GRID: dict[str, list[Any]] = {
    "lr": [0.001, 0.003, 0.005, 0.008, 0.01],
    "dropout": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5],
}


@dataclass
class Trial:
    run_id: int
    params: dict[str, Any]
    status: str
    valid_metrics: dict[str, float] | None  # at the trial's best epoch, selection mode


@dataclass
class SearchResult:
    search_group: str
    trials: list[Trial]
    best_run_id: int | None  # None when no trial finished


def default_grid(model_name: str) -> dict[str, list[Any]]:
    """The paper's grid restricted to what the model has: a fitted model (S-POP, SKNN) has no learning
    rate, and some models have no dropout. A model with nothing to tune gets a single trial."""
    spec = get_spec(model_name)
    model_keys = {p.name for p in spec.params}
    grid = {k: v for k, v in PAPER_GRID.items() if k in model_keys or (k == "lr" and _is_trainable(model_name))}
    return grid or {"seed": [TrainConfig().seed]}


def _is_trainable(model_name: str) -> bool:
    model = get_spec(model_name).builder(2, 2, get_spec(model_name).defaults())
    return bool(getattr(model, "trainable", True))


def expand_grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """All combinations, the first key varying slowest."""
    for key, values in grid.items():
        if isinstance(values, str | bytes) or len(values) == 0:
            raise ValueError(f"grid: {key} needs a non-empty list of values")
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))]


def split_params(model_name: str, params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(model overrides, training changes)``: a key is a training setting or one of the model's params."""
    spec = get_spec(model_name)
    train_keys = {f.name for f in fields(TrainConfig)}
    model_keys = {p.name for p in spec.params}
    model: dict[str, Any] = {}
    train: dict[str, Any] = {}
    for key, value in params.items():
        if key in train_keys:
            train[key] = value
        elif key in model_keys:
            model[key] = value
        else:
            raise ValueError(
                f"grid: {key!r} is neither a training setting nor a hyperparameter of {model_name} "
                f"(model: {sorted(model_keys)}; training: {sorted(train_keys)})"
            )
    return model, train


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

    A cancel on ``control`` stops the running trial (status stopped) and skips the rest.
    ``on_trial(trial, index, total)`` is called after each trial.
    """
    grid = default_grid(model_name) if grid is None else grid
    base = train_config or TrainConfig()
    control = control or ControlToken()
    combos = expand_grid(grid)
    for combo in combos:  # validate everything before the first run starts
        model_part, train_part = split_params(model_name, combo)
        base.with_(**train_part)
        resolve_config(model_name, {**dict(model_overrides or {}), **model_part})
    group = search_group or f"search-{uuid.uuid4().hex[:12]}"
    trials: list[Trial] = []
    select_mode = "oracle"
    for i, combo in enumerate(combos):
        if control.cancelled:
            break
        model_part, train_part = split_params(model_name, combo)
        label = " ".join(f"{k}={v}" for k, v in combo.items())
        trainer = Trainer(
            store,
            prepared,
            model_name,
            {**dict(model_overrides or {}), **model_part},
            base.with_(**train_part),
            callback,
            control,
            run_name=f"{group} {label}",
            search_group=group,
            checkpoint_root=checkpoint_root,
            dataset_id=dataset_id,
        )
        outcome = trainer.run()
        select_mode = getattr(trainer, "select_mode", select_mode)
        valid = None
        if outcome.status == "finished":
            valid = runs_repo.final_metrics(store, outcome.run_id, split="valid").get(select_mode)
        trial = Trial(outcome.run_id, combo, outcome.status, valid)
        trials.append(trial)
        if on_trial is not None:
            on_trial(trial, i, len(combos))
    best = choose_best(trials, base.criterion)
    if best is not None:
        runs_repo.mark_best_trial(store, group, best)
    return SearchResult(group, trials, best)


def choose_best(trials: Sequence[Trial], criterion: str) -> int | None:
    """Run id of the best finished trial under ``criterion`` (ties: the earlier trial)."""
    done = [t for t in trials if t.valid_metrics]
    if not done:
        return None
    if criterion == "authors":
        max_hit = max(t.valid_metrics["hit@20"] for t in done) or 1.0  # type: ignore[index]
        max_mrr = max(t.valid_metrics["mrr@20"] for t in done) or 1.0  # type: ignore[index]

        def score(t: Trial) -> float:
            m = t.valid_metrics or {}
            return m["hit@20"] / max_hit + m["mrr@20"] / max_mrr

    else:

        def score(t: Trial) -> float:
            return (t.valid_metrics or {})[criterion]

    best = max(done, key=lambda t: (score(t), -trials.index(t)))
    return best.run_id
