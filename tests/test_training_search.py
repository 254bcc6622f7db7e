"""Grid search marks the best trial; Wilcoxon between two runs' stored ranks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _training_helpers import ensure_tiny_model, tiny_prepared, tiny_store
from scipy.stats import wilcoxon

from embsr_core.store import runs_repo
from embsr_core.training import TrainConfig
from embsr_core.training.search import PAPER_GRID, expand_grid, grid_search, split_params
from embsr_core.training.significance import compare_runs, per_session, wilcoxon_ranks


def test_grid_search_marks_best_and_wilcoxon_compares_trials(tmp_path: Path) -> None:
    model = ensure_tiny_model()
    store = tiny_store(tmp_path)
    data = tiny_prepared()
    cfg = TrainConfig(batch_size=32, max_epochs=2, device="cpu", criterion="mrr@20")
    seen: list[int] = []
    result = grid_search(store, data, model, {"lr": [0.0001, 0.05], "dropout": [0.0]}, train_config=cfg,
                         checkpoint_root=tmp_path, on_trial=lambda t, i, n: seen.append(i))
    assert seen == [0, 1] and [t.status for t in result.trials] == ["finished", "finished"]
    runs = runs_repo.list_runs(store, search_group=result.search_group)
    assert len(runs) == 2 and sum(r.is_best_trial for r in runs) == 1
    best = max(result.trials, key=lambda t: t.valid_metrics["mrr@20"])  # type: ignore[index]
    assert result.best_run_id == best.run_id
    assert next(r for r in runs if r.is_best_trial).id == best.run_id
    assert {r.config["train"]["lr"] for r in runs} == {0.0001, 0.05}

    a, b = (t.run_id for t in result.trials)
    res = compare_runs(store, a, b, split="test", target_op="oracle", measure="rr")
    ra, _ = runs_repo.load_ranks(store, a, "test", "oracle")
    rb, _ = runs_repo.load_ranks(store, b, "test", "oracle")
    assert res.n == 40 and res.mean_a == pytest.approx(float(np.mean(1.0 / ra)))
    if not np.array_equal(ra, rb):
        assert res.p_value == pytest.approx(wilcoxon(1.0 / ra, 1.0 / rb).pvalue)
    assert compare_runs(store, a, a).p_value == 1.0

    # other prepared data → a clear refusal
    other = tiny_prepared(seed=1)
    runs_repo.save_ranks(store, b, "valid", "oracle", np.ones(40, np.int32), "f" * 64)
    with pytest.raises(ValueError, match="different prepared data"):
        compare_runs(store, a, b, split="valid")
    runs_repo.save_ranks(store, b, "valid", "oracle", np.ones(7, np.int32), runs_repo.get_run(store, a).prep_hash)
    with pytest.raises(ValueError, match="same sessions"):
        compare_runs(store, a, b, split="valid")
    assert other.n_items == data.n_items


def test_wilcoxon_on_hand_made_ranks() -> None:
    a = np.array([1, 2, 3, 4, 5, 6, 7, 8, 30, 1], np.int32)
    b = np.array([2, 4, 6, 8, 10, 12, 14, 16, 40, 1], np.int32)
    stat, p = wilcoxon_ranks(a, b, "rr")
    assert p == pytest.approx(wilcoxon(1.0 / a, 1.0 / b).pvalue) and p < 0.05
    assert per_session(a, "hit", 5).tolist() == [1, 1, 1, 1, 1, 0, 0, 0, 0, 1]
    with pytest.raises(ValueError, match="same sessions"):
        wilcoxon_ranks(a, b[:5])


def test_grid_helpers() -> None:
    combos = expand_grid(PAPER_GRID)
    assert len(combos) == 30 and combos[0] == {"lr": 0.001, "dropout": 0.0}
    assert split_params("EMBSR", {"lr": 0.01, "dropout": 0.2}) == ({"dropout": 0.2}, {"lr": 0.01})
    with pytest.raises(ValueError, match="neither a training setting"):
        split_params("EMBSR", {"learning_rate": 0.01})


def test_default_grid_fits_the_model() -> None:
    from embsr_core.training.search import PAPER_GRID, default_grid

    assert default_grid("EMBSR") == PAPER_GRID
    # fitted models have neither a learning rate nor dropout: one trial, no error
    assert default_grid("S-POP") == {"seed": [42]}
    assert set(default_grid("SKNN")) == {"seed"}
