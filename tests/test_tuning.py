"""Tuning on validation: trials are runs, the defaults are trial 0, pruning, cancel, resume after a crash."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch
from _training_helpers import ensure_tiny_model, tiny_prepared, tiny_store

from embsr_core.store import run_details, runs_repo
from embsr_core.training import BatchEnd, ControlToken, EvaluationEnd, TrainConfig, tuning
from embsr_core.training.tuning import (
    TuneProgress,
    load_study_state,
    parse_duration,
    search_space,
    study_log_path,
    study_storage,
    tune,
)

torch.set_num_threads(1)
FAST = TrainConfig(batch_size=32, max_epochs=2, patience=2, device="cpu", lr=0.05, criterion="mrr@20")


def test_tune_records_trials_as_runs_and_the_best_is_at_least_the_defaults(tmp_path: Path) -> None:
    model, store, data = ensure_tiny_model(), tiny_store(tmp_path), tiny_prepared()
    seen: list[TuneProgress] = []
    result = tune(store, data, model, n_trials=3, space={"lr": [0.05, 0.01, 0.2], "dropout": [0.0, 0.2, 0.5]},
                  pruner="none", train_config=FAST, checkpoint_root=tmp_path, on_progress=seen.append)
    assert result.stop_reason == "trials" and len(result.trials) == 3
    default = result.trials[0]
    assert default.note == "defaults" and default.params == {"lr": 0.05, "dropout": 0.2}  # the model's defaults
    assert result.default == default and result.best is not None
    assert result.best.value is not None and default.value is not None and result.best.value >= default.value
    runs = runs_repo.list_runs(store, search_group=result.study_name)
    assert len(runs) == len({t.run_id for t in result.trials})
    best_run = runs_repo.get_run(store, result.best_run_id)  # type: ignore[arg-type]
    assert best_run.is_best_trial and best_run.status == "finished" and sum(r.is_best_trial for r in runs) == 1
    assert runs_repo.final_metrics(store, best_run.id, "test")["oracle"]  # an ordinary run: test metrics stored
    assert runs_repo.load_ranks(store, best_run.id, "test", "oracle")[0].shape == (40,)
    assert best_run.config["train"]["lr"] == result.best.params["lr"]
    # progress: a "running" and an ended message per trial, the best so far carried along
    assert [p.trial.state for p in seen].count("running") == 3 and seen[-1].best == result.best
    # the study lives in a journal beside the store file, not in the store's own database
    assert study_log_path(store) == tmp_path / "store.db.tuning.log" and study_log_path(store).exists()  # type: ignore[union-attr]


def test_a_bad_trial_is_pruned_and_its_run_says_why(tmp_path: Path) -> None:
    model, store, data = ensure_tiny_model(), tiny_store(tmp_path), tiny_prepared()
    pruner = optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=1)
    result = tune(store, data, model, space={"lr": [0.05, 1e-7]}, sampler="grid", pruner=pruner,
                  train_config=FAST.with_(max_epochs=3, patience=3), checkpoint_root=tmp_path)
    assert result.stop_reason == "exhausted"
    states = {t.params["lr"]: t for t in result.trials}
    assert states[0.05].state == "complete" and states[1e-7].state == "pruned"
    pruned = runs_repo.get_run(store, states[1e-7].run_id)  # type: ignore[arg-type]
    assert pruned.status == "stopped" and "pruned at epoch" in (pruned.error_text or "")
    assert pruned.epochs_done < 3


class _Clock:
    """The tuner's clock, moved past the budget on demand (the trainer keeps the real one)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset


@pytest.mark.parametrize("cut_at", ["validated", "first batch"])
def test_a_trial_cut_by_the_budget_competes_at_its_best_epoch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              cut_at: str) -> None:
    """The clock runs out inside trial 1 (the defaults trial is never cut). After a validated epoch the
    trial is complete with that epoch's score and test, and competes for best; before one it has no score."""
    model, store, data = ensure_tiny_model(), tiny_store(tmp_path), tiny_prepared()
    clock = _Clock()
    monkeypatch.setattr(tuning, "time", clock)
    runs: list[int] = []

    def run_out_in_trial_1(event: object) -> None:
        run_id = getattr(event, "run_id", None)
        if run_id is not None and run_id not in runs:
            runs.append(run_id)
        if len(runs) < 2 or clock.offset:
            return
        if (cut_at == "first batch" and isinstance(event, BatchEnd)) or (
                cut_at == "validated" and isinstance(event, EvaluationEnd) and event.split == "valid"):
            clock.offset = 10_000.0

    result = tune(store, data, model, budget_s=3600, space={"lr": [1e-7, 0.05]}, sampler="grid", pruner="none",
                  train_config=FAST.with_(lr=1e-7, max_epochs=4, patience=4), checkpoint_root=tmp_path,
                  callback=run_out_in_trial_1)
    trained = [t for t in result.trials if not t.duplicate]  # the grid may re-propose the defaults: no run
    assert result.stop_reason == "budget" and len(trained) == 2
    default, cut = trained
    assert default.note == "defaults" and default.state == "complete" and cut.params == {"lr": 0.05}
    run = runs_repo.get_run(store, cut.run_id)  # type: ignore[arg-type]
    if cut_at == "first batch":
        assert cut.state == "pruned" and "before its first validation" in cut.note
        assert run.status == "stopped" and result.best == default
        return
    assert cut.state == "complete" and cut.cut and not default.cut and cut.epochs == 1
    assert "cut by the time budget after 1 epoch;" in cut.note
    assert run.status == "finished" and run.epochs_done == 1 and run.best_epoch == 1
    assert "cut by the time budget" in run_details.get_notes(store, run.id)
    assert runs_repo.final_metrics(store, run.id, "test")["oracle"]  # tested like any finished run
    frame = runs_repo.metrics_frame(store, [run.id])
    epoch1 = frame[(frame.split == "valid") & (frame.target_op == "oracle") & (frame.name == "mrr@20")]
    assert cut.value == pytest.approx(float(epoch1.value.iloc[0]))  # its score: the validated epoch's
    best = max((default, cut), key=lambda t: (t.value, -t.number))  # it competes like any complete trial
    assert result.best == best and runs_repo.get_run(store, best.run_id).is_best_trial  # type: ignore[arg-type]


def test_after_the_budget_asks_a_trial_to_finish_only_the_users_cancel_still_cancels() -> None:
    user = ControlToken()
    token = tuning._TrialControl(user)
    token.finish("budget")
    token.stop("pruned")  # a pruning verdict that comes late
    assert token.finish_requested and not token.cancelled and token.reason == "budget"
    user.cancel()
    assert token.cancelled and token.reason == "cancelled"


def test_cancel_stops_the_running_trial_and_resume_continues_the_study(tmp_path: Path) -> None:
    model, store, data = ensure_tiny_model(), tiny_store(tmp_path), tiny_prepared()
    control = ControlToken()
    space = {"lr": [0.05, 0.01, 0.02], "dropout": [0.2, 0.0]}

    def cancel_in_trial_1(p: TuneProgress) -> None:
        if p.trial.number == 1 and p.trial.state == "running":
            control.cancel()

    first = tune(store, data, model, n_trials=4, space=space, pruner="none", train_config=FAST,
                 checkpoint_root=tmp_path, on_progress=cancel_in_trial_1, control=control, study_name="s1")
    assert first.cancelled and [t.state for t in first.trials] == ["complete", "failed"]
    stopped = runs_repo.get_run(store, first.trials[1].run_id)  # type: ignore[arg-type]
    assert stopped.status == "stopped"
    assert first.best_run_id == first.trials[0].run_id  # the defaults are the best so far

    with pytest.raises(ValueError, match="already exists"):
        tune(store, data, model, n_trials=1, space=space, train_config=FAST, study_name="s1")
    again = tune(store, data, model, n_trials=4, space=space, pruner="none", train_config=FAST,
                 checkpoint_root=tmp_path, study_name="s1", resume=True)
    assert again.stop_reason in ("trials", "exhausted") and not again.cancelled
    assert sum(t.note == "defaults" for t in again.trials) == 1  # trial 0 is not trained again
    assert len([t for t in again.trials if t.state in ("complete", "pruned")]) >= 3
    with pytest.raises(ValueError, match="another space"):
        tune(store, data, model, n_trials=1, space={"lr": [0.05]}, train_config=FAST, study_name="s1", resume=True)


def test_a_trial_left_running_by_a_dead_process_is_retried(tmp_path: Path) -> None:
    model, store, data = ensure_tiny_model(), tiny_store(tmp_path), tiny_prepared()
    space = {"lr": [0.05, 0.01]}
    tune(store, data, model, n_trials=1, space=space, train_config=FAST, checkpoint_root=tmp_path, study_name="c")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    study = optuna.load_study(study_name="c", storage=study_storage(store))
    crashed = study.ask({"lr": optuna.distributions.CategoricalDistribution([0.05, 0.01])})
    crashed.set_user_attr("pid", dead.pid)
    assert load_study_state(store, "c").trials[-1].state == "running"  # type: ignore[union-attr]

    result = tune(store, data, model, n_trials=3, space=space, pruner="none", train_config=FAST,
                  checkpoint_root=tmp_path, study_name="c", resume=True)
    by_number = {t.number: t for t in result.trials}
    assert by_number[1].state == "failed" and "interrupted" in by_number[1].note
    retried = [t for t in result.trials if t.number > 1 and t.params == by_number[1].params]
    assert retried and retried[0].state == "complete"


def test_budget_and_search_space_come_from_the_schemas() -> None:
    assert parse_duration("15m") == 900 and parse_duration("1h30m") == 5400 and parse_duration("90s") == 90
    assert parse_duration("600") == 600
    for bad in ("", "5x", "0m", "m"):
        with pytest.raises(ValueError, match="budget"):
            parse_duration(bad)
    embsr = search_space("EMBSR")
    assert embsr["lr"] == (0.001, 0.003, 0.005, 0.008, 0.01) and embsr["dropout"] == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
    assert "w_k" in embsr and embsr["attn_layers"] == (1, 2) and "mask_prob" in search_space("BERT4Rec")
    assert embsr["recent"] == ("micro", "run", "gated")
    assert embsr["repeat"] == ("off", "pointer") and search_space("SGNN-Self")["repeat"] == ("off", "pointer")
    assert search_space("SGNN-Self")["recent"] == ("micro", "gated")  # 'run' reads the op-GRU, which it lacks
    # the propagation steps: EMBSR's family and the graph baselines get the same knob
    assert embsr["gnn_layers"] == (1, 2) and search_space("SGNN-Self")["gnn_layers"] == (1, 2)
    assert all(search_space(m)["gnn_steps"] == (1, 2) for m in ("SR-GNN", "GC-SAN", "SGNN-HN", "MKM-SR"))
    assert search_space("S-POP") == {} and set(search_space("SKNN")) == {"k"}  # fitted: no learning rate


def test_bad_space_is_refused_before_any_run(tmp_path: Path) -> None:
    model, store, data = ensure_tiny_model(), tiny_store(tmp_path), tiny_prepared()
    with pytest.raises(ValueError, match="neither a training setting"):
        tune(store, data, model, n_trials=1, space={"learning_rate": [0.1]}, train_config=FAST)
    with pytest.raises(ValueError, match="dropout"):
        tune(store, data, model, n_trials=1, space={"dropout": [2.0]}, train_config=FAST)
    assert runs_repo.list_runs(store) == []
