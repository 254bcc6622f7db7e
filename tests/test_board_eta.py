"""The leaderboard's ETA counts what each model still has to do, not a full share for every model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _training_helpers import ensure_tiny_model, tiny_prepared, tiny_store

from embsr_core.training import TrainConfig
from embsr_core.training.board_eta import BoardEta, ModelWork
from embsr_core.training.board_seeds import training_seconds
from embsr_core.training.leaderboard import BoardProgress, leaderboard

torch.set_num_threads(1)
FAST = TrainConfig(batch_size=32, max_epochs=2, patience=2, device="cpu", lr=0.05)


def test_a_continued_board_counts_only_the_seeds_still_to_train() -> None:
    work = {"A": ModelWork(tuning=False, seeds_left=2, seed_s=600.0),  # slow, tuned earlier
            "B": ModelWork(tuning=False, seeds_left=2, seed_s=30.0),
            "C": ModelWork(tuning=False, seeds_left=0, seed_s=10.0)}  # its seeds are stored already
    eta = BoardEta(["A", "B", "C"], work, per_model_s=150.0)
    assert eta.left_s(0, 150.0) == pytest.approx(2 * 600 + 2 * 30)  # no tuning share for tuned models
    eta.seed_done("A", 500.0)  # one of A's seeds ended: the other is timed by it
    assert eta.left_s(0, 150.0) == pytest.approx(500 + 2 * 30)
    eta.seeds_over("A")
    assert eta.left_s(1, 150.0) == pytest.approx(2 * 30)


def test_tuning_shares_and_unknown_seed_times() -> None:
    work = {"A": ModelWork(tuning=True, seeds_left=0), "B": ModelWork(tuning=True, seeds_left=0)}
    eta = BoardEta(["A", "B"], work, per_model_s=100.0)
    assert eta.left_s(0, 40.0) == pytest.approx(60 + 100)  # the running share less its elapsed time
    seeds = {"A": ModelWork(tuning=False, seeds_left=1, seed_s=20.0), "B": ModelWork(tuning=True, seeds_left=2)}
    eta = BoardEta(["A", "B"], seeds, per_model_s=100.0)
    assert eta.left_s(0, 100.0) == pytest.approx(20 + 100 + 2 * 20)  # B's seeds: at the known mean
    eta.tuned("B", 90.0, seed_s=50.0)
    assert eta.left_s(1, 0.0) == pytest.approx(2 * 50)  # B's own tuned run times its seeds


def test_a_board_by_trials_has_no_eta_until_a_model_was_tuned_here() -> None:
    eta = BoardEta(["A", "B"], {"A": ModelWork(True, 0), "B": ModelWork(True, 0)}, per_model_s=None)
    assert eta.left_s(0, 0.0) is None
    eta.tuned("A", 80.0, seed_s=None)
    assert eta.left_s(1, 30.0) == pytest.approx(50.0)
    done = BoardEta(["A"], {"A": ModelWork(False, 2, 5.0)}, per_model_s=None)
    assert done.left_s(0, 0.0) == pytest.approx(10.0)  # nothing to tune: known even by trials


def test_adding_seeds_to_a_finished_board_estimates_from_its_tuned_runs(tmp_path: Path) -> None:
    tiny, store, data = ensure_tiny_model(), tiny_store(tmp_path), tiny_prepared()
    first = leaderboard(store, data, ["S-POP", tiny], budget_s=3600, train_config=FAST, checkpoint_root=tmp_path)
    seen: list[BoardProgress] = []
    leaderboard(store, data, ["S-POP", tiny], budget_s=3600, train_config=FAST, checkpoint_root=tmp_path,
                seeds=3, on_progress=seen.append)
    one_seed = training_seconds(store, first.cells[tiny])  # type: ignore[arg-type]
    assert one_seed is not None
    # both models are tuned: the ETA is the tiny model's two seeds, not two 30-minute tuning shares
    assert seen[0].eta_s == pytest.approx(2 * one_seed)
    assert seen[-1].eta_s is not None and seen[-1].eta_s < 60
