"""Hyperparameter tuning on the validation split with Optuna; every trial is an ordinary stored run.

What is searched comes from the schemas: each :class:`~embsr_core.models.registry.Param` with a
``search`` tuple (the paper's lr and dropout grids, w_k, BERT4Rec's mask probability, ...) is one
categorical axis. Trial 0 is always the default configuration (``enqueue_trial``), so the best trial
is at least as good as the defaults on validation by construction. Trials are compared on the
validation split at each trial's own best epoch, in the selection mode (``train_target_op``); test
is recorded for every finished trial but never looked at when choosing.

Objective (higher is better): the criterion's metric, or H@20 + M@20 for the ``authors`` criterion
(a per-trial number is needed; the authors' relative-gain rule compares two epochs, not one).

Pruning: the best validation objective so far is reported after every epoch; a median (default)
or successive-halving pruner stops a trial that falls behind (its run ends ``stopped`` with a note,
the trial is PRUNED). The default trial is never pruned nor cut by the time budget.

The time budget: a trial still training when it runs out ends as early stopping would (its best
validated epoch is kept and tested, the trial is COMPLETE and competes with that score, a lower
bound of what more epochs would give); one cut before its first validation has no score (PRUNED).

Study storage: Optuna's journal file beside the store (``<store file>.tuning.log`` for SQLite, a file
in the user data folder for a server URL). Optuna's RDB storage cannot share the store's database:
both keep their schema revision in a table named ``alembic_version``. The journal is append-only
with an fsync per write, so a crash loses at most the trial that was running: on the next start
that trial is marked failed and its parameters are queued again (``resume``).
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import re
import socket
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, InMemoryStorage, JournalStorage
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import make_url

from embsr_core.data.prepared import PreparedDataset
from embsr_core.models.registry import get_spec, resolve_config
from embsr_core.store import run_details, runs_repo
from embsr_core.store.engine import Store, data_dir
from embsr_core.training.checkpoints import prepared_hash
from embsr_core.training.config import AUTHORS_CRITERION, TRAIN_PARAMS, TrainConfig
from embsr_core.training.events import BatchEnd, Callback, ControlToken, EvaluationEnd, TrainEvent
from embsr_core.training.runner import run_training

SAMPLERS = ("tpe", "grid", "random")
PRUNERS = ("median", "halving", "none")
MAX_NAME = 80  # runs.search_group is String(80)
DUPLICATE_LIMIT = 25  # consecutive re-proposals of known configurations: the search has converged

# --------------------------------------------------------------------------------------------------
# Budget and search space
# --------------------------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*(?:(\d+(?:\.\d+)?)\s*m(?:in)?)?\s*(?:(\d+(?:\.\d+)?)\s*s)?\s*$")


def parse_duration(text: str) -> float:
    """``"15m"`` → 900.0; also ``"90s"``, ``"1h30m"``, ``"2h"``, or plain seconds ``"600"``."""
    value = str(text).strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        seconds = float(value)
    else:
        match = _DURATION.match(value)
        if not value or match is None or not any(match.groups()):
            raise ValueError(f"budget: expected a duration such as 90s, 15m, 1h30m, got {text!r}")
        h, m, s = (float(g) if g else 0.0 for g in match.groups())
        seconds = 3600 * h + 60 * m + s
    if seconds <= 0:
        raise ValueError(f"budget: must be more than 0 seconds, got {text!r}")
    return seconds


def is_trainable(model_name: str) -> bool:
    """Fitted models (S-POP, SKNN) have no optimiser, hence no learning rate to tune."""
    spec = get_spec(model_name)
    return bool(getattr(spec.builder(2, 2, spec.defaults()), "trainable", True))


def search_space(model_name: str) -> dict[str, tuple[Any, ...]]:
    """``name → values`` from the ``search`` tuples of the training schema and the model's schema."""
    space: dict[str, tuple[Any, ...]] = {}
    if is_trainable(model_name):
        space.update({p.name: tuple(p.search) for p in TRAIN_PARAMS if p.search})
    space.update({p.name: tuple(p.search) for p in get_spec(model_name).params if p.search})
    return space


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
                f"search space: {key!r} is neither a training setting nor a hyperparameter of {model_name} "
                f"(model: {sorted(model_keys)}; training: {sorted(train_keys)})"
            )
    return model, train


def coerce_space(model_name: str, space: Mapping[str, Sequence[Any]]) -> dict[str, tuple[Any, ...]]:
    """Each value validated and converted by its schema (so ``"0.001"`` from a command line is 0.001)."""
    spec = get_spec(model_name)
    train_params = {p.name: p for p in TRAIN_PARAMS}
    out: dict[str, tuple[Any, ...]] = {}
    for key, values in space.items():
        if isinstance(values, str | bytes) or len(values) == 0:
            raise ValueError(f"search space: {key} needs a non-empty list of values")
        split_params(model_name, {key: None})  # names the key when it is unknown
        param = train_params.get(key) or spec.param(key)
        out[key] = tuple(dict.fromkeys(param.validate(v) for v in values))
    return out


def space_size(space: Mapping[str, Sequence[Any]]) -> int:
    return math.prod(len(v) for v in space.values())


def objective_value(metrics: Mapping[str, float], criterion: str) -> float:
    """The number a trial is ranked by (higher is better)."""
    if criterion == AUTHORS_CRITERION:
        return float(metrics["hit@20"]) + float(metrics["mrr@20"])
    return float(metrics[criterion])


# --------------------------------------------------------------------------------------------------
# Study storage
# --------------------------------------------------------------------------------------------------

_MEMORY_STORAGES: dict[str, InMemoryStorage] = {}


def study_log_path(store: Store) -> Path | None:
    """Where the journal of ``store``'s studies lives (None: an in-memory store keeps them in memory)."""
    url = make_url(store.url)
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            return None
        db = Path(url.database).expanduser()
        return db.with_name(db.name + ".tuning.log")
    return data_dir() / "tuning" / f"{store.identity_digest(16)}.log"


def study_storage(store: Store) -> BaseStorage:
    path = study_log_path(store)
    if path is None:
        return _MEMORY_STORAGES.setdefault(store.url, InMemoryStorage())
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))


def list_studies(store: Store) -> list[optuna.study.StudySummary]:
    return optuna.get_all_study_summaries(study_storage(store), include_best_trial=False)


# --------------------------------------------------------------------------------------------------
# Progress and results
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrialInfo:
    number: int
    params: dict[str, Any]
    state: str  # running / complete / pruned / failed
    run_id: int | None = None
    value: float | None = None  # objective at the trial's best epoch (complete trials)
    valid: dict[str, float] | None = None  # validation metrics at the best epoch, selection mode
    epochs: int = 0
    seconds: float = 0.0
    note: str = ""  # why it was pruned / failed; "defaults" for trial 0
    duplicate: bool = False  # the sampler proposed a configuration already tried: nothing was trained
    cut: bool = False  # complete, but ended by the time budget: scored at its best epoch so far

    @property
    def label(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.params.items()) or "defaults"


@dataclass(frozen=True)
class TuneProgress:
    """Sent when a trial starts (``trial.state == "running"``) and when it ends."""

    study_name: str
    model_name: str
    trial: TrialInfo
    best: TrialInfo | None
    n_finished: int  # complete + pruned + failed trials of the study so far
    elapsed_s: float  # search time of the study, earlier sessions included
    budget_s: float | None
    max_trials: int | None

    @property
    def eta_s(self) -> float | None:
        """Seconds left: the rest of the time budget, or the mean trial time × trials left."""
        if self.budget_s is not None:
            return max(0.0, self.budget_s - self.elapsed_s)
        if self.max_trials is not None and self.n_finished:
            return self.elapsed_s / self.n_finished * max(0, self.max_trials - self.n_finished)
        return None


@dataclass
class TuneResult:
    study_name: str
    model_name: str
    trials: list[TrialInfo]
    best: TrialInfo | None  # None when no trial finished
    default: TrialInfo | None  # trial 0 when the defaults were included
    stop_reason: str  # budget / trials / exhausted / converged / cancelled
    elapsed_s: float
    criterion: str

    @property
    def best_run_id(self) -> int | None:
        return self.best.run_id if self.best else None

    @property
    def cancelled(self) -> bool:
        return self.stop_reason == "cancelled"


ProgressCallback = Callable[[TuneProgress], None]


class TuneCancelled(Exception):
    """Internal: the user cancelled; the running trial is recorded as failed (its run as stopped)."""


# --------------------------------------------------------------------------------------------------
# One trial: a run whose events feed the pruner
# --------------------------------------------------------------------------------------------------


class _TrialControl(ControlToken):
    """The trainer's token for one trial: cancelled by the pruner, the budget, or the user's token."""

    def __init__(self, parent: ControlToken):
        super().__init__()
        self.parent = parent
        self.reason: str | None = None

    def stop(self, reason: str) -> None:
        """Cancel the trial's run. Once the budget asked it to finish, only the user's cancel still
        cancels (a late pruning verdict must not turn a scored trial into a pruned one)."""
        if self.reason is None or (reason == "cancelled" and self.finish_requested):
            self.reason = reason
        if reason == "cancelled" or not self.finish_requested:
            self.cancel()

    def finish(self, reason: str) -> None:
        """End the trial at its best epoch so far (its run finishes and is tested), not as pruned."""
        if self.reason is None:
            self.reason = reason
            self.finish_early()

    def wait_if_paused(self, timeout: float | None = None) -> bool:
        if not self.parent.wait_if_paused(timeout):  # the user's pause blocks here, their cancel ends it
            self.stop("cancelled")
        return super().wait_if_paused(timeout)

    @property
    def cancelled(self) -> bool:
        if self.parent.cancelled:
            self.stop("cancelled")
        return super().cancelled


class _TrialWatcher:
    """Trainer callback: tracks the best validation epoch, reports it to the pruner, enforces the deadline."""

    def __init__(self, trial: optuna.Trial, token: _TrialControl, criterion: str, protected: bool,
                 deadline: float | None, forward: Callback | None):
        self.trial, self.token, self.criterion = trial, token, criterion
        self.protected, self.deadline, self.forward = protected, deadline, forward
        self.best_metrics: dict[str, float] | None = None
        self.epochs = 0

    def __call__(self, event: TrainEvent) -> None:
        if self.forward is not None:
            self.forward(event)
        if isinstance(event, EvaluationEnd) and event.split == "valid" and event.is_best is not None:
            self.epochs = event.epoch
            if event.is_best or self.best_metrics is None:
                self.best_metrics = dict(event.metrics)
            self.trial.report(objective_value(self.best_metrics, self.criterion), event.epoch)
            if not self.protected and self.trial.should_prune():
                self.token.stop("pruned")
        late = self.deadline is not None and time.monotonic() > self.deadline
        if isinstance(event, BatchEnd | EvaluationEnd) and not self.protected and late:
            # with a validated epoch the trial ends there and competes (a lower bound of what more
            # epochs would give); before its first validation there is nothing to score
            if self.best_metrics is not None:
                self.token.finish("budget")
            else:
                self.token.stop("budget")


# --------------------------------------------------------------------------------------------------
# The tuner
# --------------------------------------------------------------------------------------------------


def epochs_text(n: int) -> str:
    """"1 epoch", "5 epochs": for the trial notes and the CLI's summary."""
    return f"{n} epoch" + "s" * (n != 1)


def default_study_name(model_name: str) -> str:
    return f"tune {model_name} {uuid.uuid4().hex[:8]}"[:MAX_NAME]


def _make_sampler(kind: str, space: Mapping[str, Sequence[Any]], seed: int) -> optuna.samplers.BaseSampler:
    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=4)
    if kind == "grid":
        return optuna.samplers.GridSampler({k: list(v) for k, v in space.items()}, seed=seed)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"sampler: expected one of {', '.join(SAMPLERS)}, got {kind!r}")


def make_pruner(kind: str | optuna.pruners.BasePruner, warmup_epochs: int = 2) -> optuna.pruners.BasePruner:
    """``median``: stop a trial whose best-so-far is below the median of earlier trials at the same
    epoch (from epoch ``warmup_epochs`` on; the defaults alone are enough to compare with);
    ``halving``: asynchronous successive halving; ``none``."""
    if isinstance(kind, optuna.pruners.BasePruner):
        return kind
    if kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=warmup_epochs)
    if kind == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, warmup_epochs))
    if kind == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"pruner: expected one of {', '.join(PRUNERS)}, got {kind!r}")


def _info(t: FrozenTrial) -> TrialInfo:
    state = {
        TrialState.COMPLETE: "complete",
        TrialState.PRUNED: "pruned",
        TrialState.FAIL: "failed",
        TrialState.RUNNING: "running",
        TrialState.WAITING: "waiting",
    }[t.state]
    start, end = t.datetime_start, t.datetime_complete
    seconds = (end - start).total_seconds() if start and end else 0.0
    return TrialInfo(
        number=t.number,
        params=dict(t.params),
        state=state,
        run_id=t.user_attrs.get("run_id"),
        value=t.value if t.state == TrialState.COMPLETE else None,
        valid=t.user_attrs.get("valid"),
        epochs=int(t.user_attrs.get("epochs", 0)),
        seconds=float(seconds),
        note=str(t.user_attrs.get("note", "")),
        duplicate=bool(t.user_attrs.get("duplicate", False)),
        cut=bool(t.user_attrs.get("cut", False)),
    )


def _best(study: optuna.Study) -> FrozenTrial | None:
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if not done:
        return None
    return max(done, key=lambda t: (t.value, -t.number))  # ties: the earlier trial (the defaults first)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _recover(study: optuna.Study) -> int:
    """Trials left RUNNING by a process that is gone: mark them failed, queue their parameters again."""
    recovered = 0
    host = socket.gethostname()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid, owner = t.user_attrs.get("pid"), t.user_attrs.get("host")
        if owner not in (None, host) or (pid is not None and pid != os.getpid() and _pid_alive(int(pid))):
            continue  # a live process elsewhere may still be running it
        study._storage.set_trial_user_attr(t._trial_id, "note", "interrupted (the process ended); retried")
        study._storage.set_trial_user_attr(t._trial_id, "interrupted", True)
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        if t.params or t.user_attrs.get("defaults"):
            study.enqueue_trial(dict(t.params), user_attrs={k: v for k, v in t.user_attrs.items() if k == "defaults"},
                                skip_if_exists=False)
        recovered += 1
    return recovered


def _open_study(store: Store, name: str, *, model_name: str, prep: str, space: Mapping[str, Sequence[Any]],
                sampler: optuna.samplers.BaseSampler, pruner: optuna.pruners.BasePruner,
                settings: Mapping[str, Any], resume: bool) -> tuple[optuna.Study, bool]:
    storage = study_storage(store)
    exists = name in {s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    if exists and not resume:
        raise ValueError(f"a tuning study named {name!r} already exists; choose another name or resume it")
    study = optuna.create_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner,
                                direction="maximize", load_if_exists=True)
    if not exists:
        study.set_user_attr("model_name", model_name)
        study.set_user_attr("prep_hash", prep)
        study.set_user_attr("space", {k: list(v) for k, v in space.items()})
        study.set_user_attr("settings", dict(settings))
        study.set_user_attr("elapsed_s", 0.0)
        return study, False
    attrs = study.user_attrs
    if attrs.get("model_name") != model_name:
        raise ValueError(f"study {name!r} tunes {attrs.get('model_name')}, not {model_name}")
    if attrs.get("prep_hash") != prep:
        raise ValueError(f"study {name!r} was run on other prepared data; resume it with the same dataset "
                         "and preprocessing settings")
    if attrs.get("space") != {k: list(v) for k, v in space.items()}:
        raise ValueError(f"study {name!r} searched another space ({attrs.get('space')}); resume it with the same one")
    return study, True


def tune(
    store: Store,
    prepared: PreparedDataset,
    model_name: str,
    *,
    budget_s: float | None = None,
    n_trials: int | None = None,
    space: Mapping[str, Sequence[Any]] | None = None,
    sampler: str = "tpe",
    pruner: str | optuna.pruners.BasePruner = "median",
    include_defaults: bool = True,
    model_overrides: Mapping[str, Any] | None = None,
    train_config: TrainConfig | None = None,
    study_name: str | None = None,
    resume: bool = False,
    dataset_id: int | None = None,
    checkpoint_root: Path | None = None,
    callback: Callback | None = None,
    on_progress: ProgressCallback | None = None,
    control: ControlToken | None = None,
) -> TuneResult:
    """Search ``space`` (default: :func:`search_space`) on validation; return and mark the best trial's run.

    Stops at the first of: ``budget_s`` seconds of search (earlier sessions of a resumed study
    included), ``n_trials`` trials, the space exhausted, a cancel on ``control``. The defaults trial
    always finishes (never cut, never pruned) so there is a reference even with a tiny budget.
    ``resume=True`` continues the study ``study_name`` (same model, data and space).
    """
    base = train_config or TrainConfig()
    control = control or ControlToken()
    space = coerce_space(model_name, search_space(model_name) if space is None else space)
    defaults = {**resolve_config(model_name, model_overrides), **base.to_dict()}
    if include_defaults:  # the defaults trial must lie inside the space
        space = {k: v if defaults[k] in v else (defaults[k], *v) for k, v in space.items()}
    for combo in itertools.islice(itertools.product(*space.values()), 64):  # fail before the first run
        model_part, train_part = split_params(model_name, dict(zip(space, combo, strict=True)))
        base.with_(**train_part)
        resolve_config(model_name, {**dict(model_overrides or {}), **model_part})
    if n_trials is not None and n_trials < 1:
        raise ValueError("trials: must be at least 1")
    name = (study_name or default_study_name(model_name))[:MAX_NAME]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna").setLevel(logging.WARNING)
    study, resumed = _open_study(
        store, name, model_name=model_name, prep=prepared_hash(prepared), space=space,
        sampler=_make_sampler(sampler, space, base.seed), pruner=make_pruner(pruner),
        settings={"criterion": base.criterion, "sampler": sampler}, resume=resume,
    )
    if resumed:
        _recover(study)
    default_params = {k: defaults[k] for k in space}
    if include_defaults and not any(t.params == default_params or t.user_attrs.get("defaults")
                                    for t in study.get_trials(deepcopy=False)
                                    if t.state in (TrialState.COMPLETE, TrialState.WAITING)):
        study.enqueue_trial(default_params, user_attrs={"defaults": True}, skip_if_exists=False)

    elapsed0 = float(study.user_attrs.get("elapsed_s", 0.0))
    t_start = time.monotonic()

    def elapsed() -> float:
        return elapsed0 + time.monotonic() - t_start

    def finished_count() -> int:
        """Trials that ended here (a re-proposed known configuration costs nothing, a trial a crash
        interrupted is queued again: neither is counted)."""
        ended = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL))
        return sum(not (t.user_attrs.get("duplicate") or t.user_attrs.get("interrupted")) for t in ended)

    def progress(trial_info: TrialInfo) -> None:
        if on_progress is not None:
            best = _best(study)
            on_progress(TuneProgress(name, model_name, trial_info, _info(best) if best else None, finished_count(),
                                     elapsed(), budget_s, n_trials))

    def objective(trial: optuna.Trial) -> float:
        params = {k: trial.suggest_categorical(k, list(v)) for k, v in space.items()}
        is_default = bool(trial.user_attrs.get("defaults"))
        trial.set_user_attr("pid", os.getpid())
        trial.set_user_attr("host", socket.gethostname())
        known = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
                 if t.params == params and t.number != trial.number]
        if known:  # the sampler proposed a configuration already tried: reuse its outcome
            twin = known[0]
            for key in ("run_id", "valid", "epochs", "cut"):
                if key in twin.user_attrs:
                    trial.set_user_attr(key, twin.user_attrs[key])
            trial.set_user_attr("note", f"same as trial {twin.number}")
            trial.set_user_attr("duplicate", True)
            if twin.state == TrialState.PRUNED:
                raise optuna.TrialPruned
            assert twin.value is not None
            return twin.value
        if is_default:
            trial.set_user_attr("note", "defaults")
        progress(TrialInfo(trial.number, params, "running", note="defaults" if is_default else ""))
        model_part, train_part = split_params(model_name, params)
        token = _TrialControl(control)
        deadline = None if budget_s is None else t_start + (budget_s - elapsed0)
        watcher = _TrialWatcher(trial, token, base.criterion, is_default, deadline, callback)
        label = " ".join(f"{k}={v}" for k, v in params.items()) or "defaults"
        outcome = run_training(
            store, prepared, model_name, {**dict(model_overrides or {}), **model_part}, base.with_(**train_part),
            callback=watcher, control=token, run_name=f"{name} #{trial.number} {label}"[:200],
            search_group=name, checkpoint_root=checkpoint_root, dataset_id=dataset_id,
        )
        trial.set_user_attr("run_id", outcome.run_id)
        trial.set_user_attr("epochs", watcher.epochs)
        if watcher.best_metrics is not None:
            trial.set_user_attr("valid", watcher.best_metrics)
        if outcome.status == "finished" and watcher.best_metrics is not None:
            if token.reason == "budget":
                note = (f"cut by the time budget after {epochs_text(watcher.epochs)}; "
                        f"scored and tested at its best epoch {outcome.best_epoch}")
                trial.set_user_attr("note", note)
                trial.set_user_attr("cut", True)
                run_details.set_notes(store, outcome.run_id, f"Tuning trial {note}.")
            return objective_value(watcher.best_metrics, base.criterion)
        if token.reason == "cancelled" or (outcome.status == "stopped" and token.reason is None):
            trial.set_user_attr("note", "cancelled")
            raise TuneCancelled
        if token.reason in ("pruned", "budget"):
            note = (f"pruned at epoch {watcher.epochs}: validation behind earlier trials"
                    if token.reason == "pruned" else "cut by the time budget before its first validation")
            trial.set_user_attr("note", note)
            runs_repo.update_run(store, outcome.run_id, error_text=note)
            raise optuna.TrialPruned
        trial.set_user_attr("note", f"failed: {outcome.error}")
        raise RuntimeError(outcome.error or "the run failed")

    stop_reason = "trials"
    duplicates = 0
    try:
        while True:
            if control.cancelled:
                stop_reason = "cancelled"
                break
            waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
            # the defaults trial always runs, also when a resumed study queued it again after it failed
            if n_trials is not None and finished_count() >= n_trials and not any(
                    t.user_attrs.get("defaults") for t in waiting):
                stop_reason = "trials"
                break
            if budget_s is not None and elapsed() >= budget_s and not waiting:
                stop_reason = "budget"
                break
            tried = {tuple(sorted(t.params.items())) for t in study.get_trials(deepcopy=False)
                     if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
            if len(tried) >= space_size(space) and not waiting:
                stop_reason = "exhausted"
                break
            if duplicates >= DUPLICATE_LIMIT:
                stop_reason = "converged"
                break
            study.optimize(objective, n_trials=1, catch=(RuntimeError,))
            last = study.trials[-1]
            duplicates = duplicates + 1 if last.user_attrs.get("duplicate") else 0
            study.set_user_attr("elapsed_s", elapsed())
            progress(_info(last))
            if last.state == TrialState.FAIL and last.user_attrs.get("defaults"):
                break  # the defaults cannot be trained: the search would only repeat the error
    except TuneCancelled:
        stop_reason = "cancelled"
        study.set_user_attr("elapsed_s", elapsed())
        progress(_info(study.trials[-1]))
    trials = [_info(t) for t in study.get_trials(deepcopy=False) if t.state != TrialState.WAITING]
    best = _best(study)
    if best is not None:
        runs_repo.mark_best_trial(store, name, int(best.user_attrs["run_id"]))
        study.set_user_attr("best_run_id", int(best.user_attrs["run_id"]))
    default = next((t for t in trials if t.note == "defaults" and t.state == "complete"), None)
    return TuneResult(name, model_name, trials, _info(best) if best else None, default, stop_reason, elapsed(),
                      base.criterion)


@dataclass
class StudyState:
    """A stored study as read back (for the leaderboard's resume and the GUI)."""

    name: str
    model_name: str | None
    trials: list[TrialInfo] = field(default_factory=list)
    best: TrialInfo | None = None
    elapsed_s: float = 0.0
    user_attrs: dict[str, Any] = field(default_factory=dict)


def load_study_state(store: Store, name: str) -> StudyState | None:
    """The study ``name`` of ``store``, or None when there is none."""
    storage = study_storage(store)
    if name not in {s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}:
        return None
    study = optuna.load_study(study_name=name, storage=storage)
    best = _best(study)
    return StudyState(
        name,
        study.user_attrs.get("model_name"),
        [_info(t) for t in study.get_trials(deepcopy=False) if t.state != TrialState.WAITING],
        _info(best) if best else None,
        float(study.user_attrs.get("elapsed_s", 0.0)),
        dict(study.user_attrs),
    )


def mark_study(store: Store, name: str, **attrs: Any) -> None:
    """Set user attributes of a stored study (the leaderboard marks a model's study done)."""
    study = optuna.load_study(study_name=name, storage=study_storage(store))
    for key, value in attrs.items():
        study.set_user_attr(key, value)
