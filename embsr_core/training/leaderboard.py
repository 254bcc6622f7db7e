"""Compare all models on one dataset: each is tuned with the same budget and seed, the best run of
each fills one row of the paper's Table III, with Wilcoxon p-values against the strongest row.

Every cell is a stored run (the best trial of that model's study), so the Runs page, CSV export and
the Playground work on it. Resumable: each model's study is named from the board's settings, so a
rerun with the same settings skips the models marked done and continues the one that was running
(:func:`~embsr_core.training.tuning.tune` with ``resume``; its budget counts the time already spent).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embsr_core.data.prepared import PreparedDataset
from embsr_core.models.registry import get_spec, list_specs
from embsr_core.reports import ComparisonTable, comparison_table, export_comparison_csv, export_frame_csv
from embsr_core.store.engine import Store
from embsr_core.training.board_eta import BoardEta, ModelWork
from embsr_core.training.board_seeds import (
    SEED_RUNS_ATTR,
    SeedTable,
    board_seeds,
    seed_runs,
    seed_table,
    training_seconds,
)
from embsr_core.training.checkpoints import prepared_hash
from embsr_core.training.config import EXECUTION_SETTINGS, TrainConfig
from embsr_core.training.events import Callback, ControlToken
from embsr_core.training.tuning import (
    MAX_NAME,
    TuneProgress,
    TuneResult,
    is_trainable,
    list_studies,
    load_study_state,
    mark_study,
    tune,
)

TABLE3_FAMILIES = ("baseline-macro", "baseline-micro", "embsr")  # the paper's Table III: baselines, then EMBSR


def table3_models() -> list[str]:
    """The models of the paper's Table III (baselines, then EMBSR), in registry order within each group."""
    specs = list_specs()
    return [s.name for family in TABLE3_FAMILIES for s in specs if s.family == family and not s.name.startswith("_")]


@dataclass(frozen=True)
class BoardProgress:
    """One update of the board: a model starts, a trial of it ends, or the model is done."""

    board: str
    model_name: str
    index: int  # 0-based position of the model
    n_models: int
    status: str  # running / done / skipped (done in an earlier session) / failed / cancelled
    tune: TuneProgress | None
    best_run_id: int | None
    eta_s: float | None  # seconds left for the whole board (an upper bound with a time budget and one seed)
    seed: int | None = None  # the seed being trained when the tuned configuration is repeated (``seeds`` > 1)
    eta_is_bound: bool = True  # False when repeated seeds make ``eta_s`` an estimate


@dataclass
class BoardResult:
    name: str
    models: list[str]
    cells: dict[str, int | None]  # model → its best run (None: no trial finished)
    statuses: dict[str, str]
    table: ComparisonTable | None  # None when fewer than one model has a run
    cancelled: bool
    tune_results: dict[str, TuneResult] = field(default_factory=dict)  # the models tuned in this session
    seed_cells: dict[str, list[int]] = field(default_factory=dict)  # seeds > 1: each model's run per seed
    seed_table: SeedTable | None = None  # seeds > 1: mean ± sd over them

    @property
    def run_ids(self) -> list[int]:
        return [r for r in self.cells.values() if r is not None]

    @property
    def all_run_ids(self) -> list[int]:
        """Every run behind the table: each model's best, then its repeated seeds."""
        seen = dict.fromkeys(self.run_ids)
        for runs in self.seed_cells.values():
            seen.update(dict.fromkeys(runs))
        return list(seen)


def export_board_csv(store: Store, result: BoardResult, path: str | Path) -> Path:
    """The board's table as a CSV file: mean and sd over seeds when it has them, else Table III over its
    best runs on the test split (both with the Wilcoxon p-value against the strongest model)."""
    if result.seed_table is not None:
        return export_frame_csv(result.seed_table.frame(), path)
    if not result.run_ids:
        raise ValueError("the board has no finished model to export yet")
    return export_comparison_csv(store, result.run_ids, path, split="test")


BoardCallback = Callable[[BoardProgress], None]


def board_name(prepared: PreparedDataset, per_model_s: float | None, n_trials: int | None,
               train_config: TrainConfig) -> str:
    """A name fixed by what makes two boards comparable: same data, budget and training settings."""
    train = {k: v for k, v in train_config.to_dict().items() if k not in EXECUTION_SETTINGS}
    return _name_of({"prep": prepared_hash(prepared), "budget": per_model_s, "trials": n_trials, "train": train})


def _legacy_board_name(prepared: PreparedDataset, per_model_s: float | None, n_trials: int | None,
                       train_config: TrainConfig) -> str:
    """The name boards got before the execution settings were left out of it (they continue under it)."""
    return _name_of({"prep": prepared_hash(prepared), "budget": per_model_s, "trials": n_trials,
                     "train": train_config.to_dict()})


def _name_of(key: dict[str, Any]) -> str:
    text = json.dumps(key, sort_keys=True, default=str)
    return f"board {hashlib.sha256(text.encode()).hexdigest()[:10]}"


def _board_to_continue(store: Store, current: str, former: str) -> str:
    """The name these settings continue under: ``former`` (the name before the execution settings were
    left out of it) wherever a board was begun under it — also when this call adds models that board
    did not have yet, which would otherwise start a second board beside it — else ``current``."""
    studies = {s.study_name for s in list_studies(store)}
    return former if any(name.startswith(f"{former} ") for name in studies) else current


def _board_work(store: Store, board: str, models: Sequence[str], base: TrainConfig,
                seeds: int) -> dict[str, ModelWork]:
    """What each model of ``board`` still has to do, read from its study (for the ETA)."""
    repeats = [str(s) for s in board_seeds(base, seeds)[1:]]
    work: dict[str, ModelWork] = {}
    for model in models:
        state = load_study_state(store, study_name_for(board, model))
        attrs = state.user_attrs if state is not None else {}
        best = attrs.get("best_run_id") if attrs.get("done") else None
        done_seeds = attrs.get(SEED_RUNS_ATTR) or {}
        left = sum(s not in done_seeds for s in repeats) if is_trainable(model) else 0
        work[model] = ModelWork(tuning=best is None, seeds_left=left,
                                seed_s=None if best is None else training_seconds(store, best))
    return work


def study_name_for(board: str, model_name: str) -> str:
    return f"{board} {model_name}"[:MAX_NAME]


def leaderboard(
    store: Store,
    prepared: PreparedDataset,
    models: Sequence[str] | None = None,
    *,
    budget_s: float | None = None,
    n_trials: int | None = None,
    train_config: TrainConfig | None = None,
    name: str | None = None,
    pruner: str = "median",
    dataset_id: int | None = None,
    checkpoint_root: Path | None = None,
    callback: Callback | None = None,
    on_progress: BoardCallback | None = None,
    control: ControlToken | None = None,
    significance_metric: tuple[str, int] = ("mrr", 20),
    seeds: int = 1,
) -> BoardResult:
    """Tune every model in ``models`` (default: :func:`table3_models`) with ``budget_s / len(models)``
    seconds and/or ``n_trials`` trials each, then build Table III over the models' best runs.

    With ``seeds`` > 1 each trained model's best configuration is trained again with the next seeds
    (tuning stays on the first) and :attr:`BoardResult.seed_table` gives mean ± sd over them; the
    board's name does not depend on it, so a finished board gains seeds without being tuned again.
    A cancel on ``control`` stops the running trial and the board; a rerun continues it.
    """
    models = list(models) if models else table3_models()
    if not models:
        raise ValueError("no models to compare")
    for model in models:
        get_spec(model)
    if len(set(models)) != len(models):
        raise ValueError("each model may appear once on a board")
    if budget_s is None and n_trials is None:
        raise ValueError("give a time budget or a number of trials per model")
    base = train_config or TrainConfig()
    board_seeds(base, seeds)  # refuses fewer than one
    control = control or ControlToken()
    per_model = None if budget_s is None else budget_s / len(models)
    board = name or _board_to_continue(store, board_name(prepared, per_model, n_trials, base),
                                       _legacy_board_name(prepared, per_model, n_trials, base))
    cells: dict[str, int | None] = {}
    statuses: dict[str, str] = {}
    results: dict[str, TuneResult] = {}
    seed_cells: dict[str, list[int]] = {}
    eta = BoardEta(models, _board_work(store, board, models, base, seeds), per_model)
    seeds_trained: list[str] = []  # a model's name for every repeated seed started in this session
    cancelled = False

    def emit(model: str, index: int, status: str, tune_progress: TuneProgress | None, elapsed: float,
             seed: int | None = None) -> None:
        if tune_progress is not None and tune_progress.trial.duplicate:
            return  # a re-proposed known configuration trained nothing
        if on_progress is not None:
            on_progress(BoardProgress(board, model, index, len(models), status, tune_progress, cells.get(model),
                                      eta.left_s(index, elapsed), seed, seeds == 1))

    def repeat_seeds(model: str, index: int, study: str) -> bool:
        """The model's cell over every seed (False: cancelled)."""
        best = cells.get(model)
        if seeds == 1 or best is None:
            return True
        if not is_trainable(model):  # fitted models (S-POP, SKNN) give the same result for every seed
            seed_cells[model] = [best]
            return True
        started: list[float] = []

        def on_seed(seed: int) -> None:
            if started:  # the seed before this one has ended
                eta.seed_done(model, time.monotonic() - started[-1])
            started.append(time.monotonic())
            seeds_trained.append(model)
            emit(model, index, "running", None, per_model or 0.0, seed)

        runs = seed_runs(store, prepared, model, study, best, base, seeds, dataset_id=dataset_id,
                         checkpoint_root=checkpoint_root, callback=callback, control=control, on_seed=on_seed)
        if runs is None:
            return False
        eta.seeds_over(model)
        seed_cells[model] = runs
        return True

    for index, model in enumerate(models):
        study = study_name_for(board, model)
        state = load_study_state(store, study)
        # a model whose every trial failed (a full disk, a clash of files) is tried again, not kept as a hole
        if state is not None and state.user_attrs.get("done") and state.user_attrs.get("best_run_id") is not None:
            cells[model] = state.user_attrs.get("best_run_id")
            statuses[model] = "skipped"
            eta.kept(model, training_seconds(store, cells[model]))  # (tuned by another process meanwhile)
            emit(model, index, "skipped", None, per_model or 0.0)
            before = len(seeds_trained)
            if not repeat_seeds(model, index, study):
                statuses[model] = "cancelled"
                emit(model, index, "cancelled", None, per_model or 0.0)
                cancelled = True
                break
            if len(seeds_trained) > before:  # seeds were trained after the kept tuning: its row ends again
                emit(model, index, "skipped", None, per_model or 0.0)
            continue
        if control.cancelled:
            cancelled = True
            break
        started = time.monotonic()
        emit(model, index, "running", None, state.elapsed_s if state else 0.0)

        def forward(progress: TuneProgress, model: str = model, index: int = index) -> None:
            emit(model, index, "running", progress, progress.elapsed_s)

        result = tune(
            store, prepared, model, budget_s=per_model, n_trials=n_trials, pruner=pruner, train_config=base,
            study_name=study, resume=state is not None, dataset_id=dataset_id, checkpoint_root=checkpoint_root,
            callback=callback, on_progress=forward, control=control,
        )
        results[model] = result
        cells[model] = result.best_run_id
        if result.cancelled:
            statuses[model] = "cancelled"
            emit(model, index, "cancelled", None, result.elapsed_s)
            cancelled = True
            break
        statuses[model] = "done" if result.best_run_id is not None else "failed"
        mark_study(store, study, done=True, best_run_id=result.best_run_id)
        eta.tuned(model, time.monotonic() - started,
                  None if result.best_run_id is None else training_seconds(store, result.best_run_id))
        if not repeat_seeds(model, index, study):
            statuses[model] = "cancelled"
            emit(model, index, "cancelled", None, result.elapsed_s)
            cancelled = True
            break
        emit(model, index, statuses[model], None, result.elapsed_s)

    run_ids = [r for r in cells.values() if r is not None]
    table = None
    if run_ids:
        table = comparison_table(store, run_ids, split="test", significance=len(run_ids) > 1,
                                 significance_metric=significance_metric)
    over_seeds = seed_table(store, seed_cells, significance_metric=significance_metric) if seed_cells else None
    return BoardResult(board, models, cells, statuses, table, cancelled, results, seed_cells, over_seeds)


def board_progress_line(p: BoardProgress) -> str:
    """One human line for a terminal or a log view."""
    head = f"[{p.index + 1}/{p.n_models}] {p.model_name}"
    eta = "" if p.eta_s is None else f"  board ETA {'≤' if p.eta_is_bound else '≈'} {p.eta_s / 60:.1f} min"
    if p.seed is not None:
        return f"{head} the best configuration again with seed {p.seed}: training{eta}"
    if p.tune is None:
        what = {"running": "started", "skipped": "already done (kept)", "done": "done", "failed": "no trial finished",
                "cancelled": "cancelled"}[p.status]
        run = f" → run {p.best_run_id}" if p.best_run_id is not None and p.status != "running" else ""
        return f"{head} {what}{run}{eta}"
    return f"{head} {trial_line(p.tune)}{eta}"


def trial_line(p: TuneProgress) -> str:
    """``trial 3 lr=0.005 dropout=0.3: H@20 41.20 M@20 15.30 (best: trial 1, 0.5650)``."""
    t = p.trial
    if t.state == "running":
        return f"trial {t.number} {t.label}: training" + (" (the defaults)" if t.note == "defaults" else "")
    scores = ""
    if t.valid:
        scores = f" H@20 {100 * t.valid.get('hit@20', 0):.2f} M@20 {100 * t.valid.get('mrr@20', 0):.2f}"
    note = f" ({t.note})" if t.note and t.note != "defaults" else ""
    best = f"  best so far: trial {p.best.number} ({p.best.label})" if p.best else ""
    return f"trial {t.number} {t.label}: {t.state}{scores}{note}{best}"


