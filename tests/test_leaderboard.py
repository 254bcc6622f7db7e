"""Leaderboard: same budget per model, Table III over stored runs, and a rerun after a crash continues."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _training_helpers import ensure_tiny_model, tiny_prepared, tiny_store

from embsr_core.store import runs_repo
from embsr_core.training import ControlToken, RunStarted, TrainConfig
from embsr_core.training.leaderboard import BoardProgress, board_progress_line, leaderboard, table3_models
from embsr_core.training.tuning import load_study_state

torch.set_num_threads(1)
FAST = TrainConfig(batch_size=32, max_epochs=2, patience=2, device="cpu", lr=0.05)


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing on the way catches it."""


def test_table3_models_are_the_baselines_then_embsr() -> None:
    models = table3_models()
    assert models[-1] == "EMBSR" and "S-POP" in models and "BERT4Rec" in models
    assert "EMBSR-NS" not in models and not any(m.startswith("_") for m in models)


def test_leaderboard_resumes_after_a_crash_without_redoing_finished_models(tmp_path: Path) -> None:
    tiny, store, data = ensure_tiny_model(), tiny_store(tmp_path), tiny_prepared()
    models = ["S-POP", tiny]
    lines: list[str] = []

    def crash_in_second_model(p: BoardProgress) -> None:
        lines.append(board_progress_line(p))
        if p.model_name == tiny and p.tune is not None and p.tune.trial.number == 1 and p.tune.trial.state == "running":
            raise Crash

    with pytest.raises(Crash):
        leaderboard(store, data, models, n_trials=2, train_config=FAST, name="b", checkpoint_root=tmp_path,
                    on_progress=crash_in_second_model)
    spop_runs = runs_repo.list_runs(store, model_name="S-POP")
    assert len(spop_runs) == 1 and load_study_state(store, "b S-POP").user_attrs["done"]  # type: ignore[union-attr]
    assert load_study_state(store, f"b {tiny}").trials[-1].state == "running"  # type: ignore[union-attr]

    seen: list[BoardProgress] = []
    result = leaderboard(store, data, models, n_trials=2, train_config=FAST, name="b", checkpoint_root=tmp_path,
                         on_progress=seen.append)
    assert result.statuses == {"S-POP": "skipped", tiny: "done"} and not result.cancelled
    assert len(runs_repo.list_runs(store, model_name="S-POP")) == 1  # not trained again
    tiny_runs = runs_repo.list_runs(store, model_name=tiny)
    assert len(tiny_runs) == 2  # the defaults from before the crash + the retried trial 1
    assert result.cells["S-POP"] == spop_runs[0].id and result.cells[tiny] in {r.id for r in tiny_runs}
    # Table III over the two best runs, on test, with a Wilcoxon p-value against the strongest one
    table = result.table
    assert table is not None and table.split == "test" and {i.id for i in table.runs} == set(result.run_ids)
    other = next(r for r in result.run_ids if r != table.chosen_run_id)
    assert table.p_values[other] is not None and 0.0 <= table.p_values[other] <= 1.0  # type: ignore[operator]
    assert any(p.eta_s is not None for p in seen) and "[1/2] S-POP already done" in board_progress_line(seen[0])

    # a third run finds everything done: nothing is trained
    before = len(runs_repo.list_runs(store))
    leaderboard(store, data, models, n_trials=2, train_config=FAST, name="b")
    assert len(runs_repo.list_runs(store)) == before


def test_leaderboard_refuses_bad_requests(tmp_path: Path) -> None:
    store, data = tiny_store(tmp_path), tiny_prepared()
    with pytest.raises(ValueError, match="budget"):
        leaderboard(store, data, ["S-POP"], train_config=FAST)
    with pytest.raises(KeyError, match="unknown model"):
        leaderboard(store, data, ["S-POP", "Nope"], n_trials=1, train_config=FAST)
    with pytest.raises(ValueError, match="once"):
        leaderboard(store, data, ["S-POP", "S-POP"], n_trials=1, train_config=FAST)


def test_cancel_stops_the_board_and_a_rerun_finishes_it(tmp_path: Path) -> None:
    tiny, store, data = ensure_tiny_model(), tiny_store(tmp_path), tiny_prepared()
    control = ControlToken()

    def cancel_in_tiny(p: BoardProgress) -> None:
        if p.model_name == tiny and p.tune is not None and p.tune.trial.state == "running":
            control.cancel()

    first = leaderboard(store, data, ["S-POP", tiny], n_trials=2, train_config=FAST, name="c",
                        checkpoint_root=tmp_path, on_progress=cancel_in_tiny, control=control)
    assert first.cancelled and first.statuses == {"S-POP": "done", tiny: "cancelled"}
    assert first.table is not None and [i.model for i in first.table.runs] == ["S-POP"]  # what is done so far
    again = leaderboard(store, data, ["S-POP", tiny], n_trials=2, train_config=FAST, name="c",
                        checkpoint_root=tmp_path)
    assert again.statuses == {"S-POP": "skipped", tiny: "done"} and len(again.run_ids) == 2


def test_a_model_whose_only_trial_failed_is_trained_again_on_a_rerun(tmp_path: Path) -> None:
    """A board once kept a model whose every trial failed as done (a hole in Table III on every rerun)."""
    tiny, store, data = ensure_tiny_model(), tiny_store(tmp_path), tiny_prepared()
    failures = [RuntimeError("disk full")]

    def fail_once(event: object) -> None:
        if isinstance(event, RunStarted) and event.model_name == tiny and failures:
            raise failures.pop()

    first = leaderboard(store, data, ["S-POP", tiny], n_trials=1, train_config=FAST, name="f",
                        checkpoint_root=tmp_path, callback=fail_once)
    assert first.statuses == {"S-POP": "done", tiny: "failed"} and first.cells[tiny] is None
    again = leaderboard(store, data, ["S-POP", tiny], n_trials=1, train_config=FAST, name="f",
                        checkpoint_root=tmp_path)
    assert again.statuses == {"S-POP": "skipped", tiny: "done"} and again.cells[tiny] is not None
    assert runs_repo.get_run(store, again.cells[tiny]).status == "finished"
    assert again.table is not None and {i.model for i in again.table.runs} == {"S-POP", tiny}


def test_a_board_continues_across_execution_settings_and_under_its_former_name(tmp_path: Path) -> None:
    """Threads, device and evaluation sizes do not define a board: a board started with one thread (as
    on the command line) is continued with automatic threads (as in the window), not started again;
    a board named the former way (every setting in its name) is continued under that name."""
    store, data = tiny_store(tmp_path), tiny_prepared()
    one = leaderboard(store, data, ["S-POP"], n_trials=1, train_config=FAST.with_(threads=1),
                      checkpoint_root=tmp_path)
    again = leaderboard(store, data, ["S-POP"], n_trials=1, train_config=FAST.with_(threads=0, eval_batch_size=64),
                        checkpoint_root=tmp_path)
    assert again.name == one.name and again.statuses == {"S-POP": "skipped"}
    assert len(runs_repo.list_runs(store, model_name="S-POP")) == 1
    other = leaderboard(store, data, ["S-POP"], n_trials=1, train_config=FAST.with_(lr=0.01), checkpoint_root=tmp_path)
    assert other.name != one.name and other.statuses == {"S-POP": "done"}  # a training setting: another board

    from embsr_core.training.leaderboard import _legacy_board_name

    legacy_store = tiny_store(tmp_path / "legacy")
    former = _legacy_board_name(data, None, 1, FAST)
    leaderboard(legacy_store, data, ["S-POP"], n_trials=1, train_config=FAST, name=former, checkpoint_root=tmp_path)
    continued = leaderboard(legacy_store, data, ["S-POP"], n_trials=1, train_config=FAST, checkpoint_root=tmp_path)
    assert continued.name == former and continued.statuses == {"S-POP": "skipped"}
    # a model added to that board later (alone, then with the others) joins it instead of starting another
    added = leaderboard(legacy_store, data, ["SKNN"], n_trials=1, train_config=FAST, checkpoint_root=tmp_path)
    assert added.name == former and added.statuses == {"SKNN": "done"}
    both = leaderboard(legacy_store, data, ["S-POP", "SKNN"], n_trials=1, train_config=FAST, checkpoint_root=tmp_path)
    assert both.name == former and both.statuses == {"S-POP": "skipped", "SKNN": "skipped"}


def test_seeds_repeat_each_tuned_configuration_and_average_over_them(tmp_path: Path) -> None:
    """seeds = 3: each trained model's best configuration again with seeds +1 and +2 (fitted S-POP once),
    mean ± sd over the runs, Wilcoxon on per-session scores averaged over seeds; a one-seed board is
    extended later without tuning again, and a rerun trains nothing."""
    import numpy as np

    from embsr_core.reports import run_infos, summary_values

    tiny, store, data = ensure_tiny_model(), tiny_store(tmp_path), tiny_prepared()
    models = ["S-POP", tiny]
    first = leaderboard(store, data, models, n_trials=1, train_config=FAST, checkpoint_root=tmp_path)
    assert first.seed_table is None and first.seed_cells == {}
    tuned = len(runs_repo.list_runs(store, model_name=tiny))
    seen: list[BoardProgress] = []
    three = leaderboard(store, data, models, n_trials=1, train_config=FAST, checkpoint_root=tmp_path, seeds=3,
                        on_progress=seen.append)
    lines = [board_progress_line(p) for p in seen]
    assert three.name == first.name and three.statuses == {"S-POP": "skipped", tiny: "skipped"}
    assert len(runs_repo.list_runs(store, model_name=tiny)) == tuned + 2  # two more seeds, no new tuning
    runs = three.seed_cells[tiny]
    assert runs[0] == first.cells[tiny] and len(runs) == 3 and three.seed_cells["S-POP"] == [first.cells["S-POP"]]
    seeds = [runs_repo.get_run(store, r).config["train"]["seed"] for r in runs]
    assert seeds == [FAST.seed, FAST.seed + 1, FAST.seed + 2]
    best_config = runs_repo.get_run(store, runs[0]).config["model"]
    assert all(runs_repo.get_run(store, r).config["model"] == best_config for r in runs)
    assert any(f"again with seed {FAST.seed + 1}: training" in line for line in lines)
    assert [p.seed for p in seen if p.seed is not None] == [FAST.seed + 1, FAST.seed + 2]
    assert not any(p.eta_is_bound for p in seen)  # repeated seeds: the ETA is an estimate, said with ≈

    table = three.seed_table
    assert table is not None and set(table.models) == set(models)
    values, _ = summary_values(store, run_infos(store, runs), [("hit", 20)], "best", split="test")
    mean, sd = table.value(tiny, ("hit", 20))
    assert mean == float(np.mean(values)) and sd == float(np.std(values, ddof=1))
    assert np.isnan(table.value("S-POP", ("hit", 20))[1])  # one run: no sd
    other = next(m for m in models if m != table.chosen)
    assert table.p_values[other] is None or 0.0 <= table.p_values[other] <= 1.0  # type: ignore[operator]
    frame = table.frame()
    assert list(frame["n_seeds"]) == [len(table.runs[m]) for m in table.models] and "H@20 sd" in frame.columns

    again = leaderboard(store, data, models, n_trials=1, train_config=FAST, checkpoint_root=tmp_path, seeds=3)
    assert again.seed_cells == three.seed_cells
    assert len(runs_repo.list_runs(store, model_name=tiny)) == tuned + 2  # nothing trained again
    with pytest.raises(ValueError, match="seeds"):
        leaderboard(store, data, models, n_trials=1, train_config=FAST, seeds=0)


def test_a_cancel_while_repeating_seeds_stops_the_board_and_a_rerun_adds_only_what_is_missing(tmp_path: Path) -> None:
    tiny, store, data = ensure_tiny_model(), tiny_store(tmp_path), tiny_prepared()
    control = ControlToken()

    def cancel_at_the_second_repeat(p: BoardProgress) -> None:
        if p.seed == FAST.seed + 2:
            control.cancel()  # before that seed's training starts

    first = leaderboard(store, data, [tiny], n_trials=1, train_config=FAST, name="s", checkpoint_root=tmp_path,
                        seeds=3, on_progress=cancel_at_the_second_repeat, control=control)
    assert first.cancelled and first.statuses == {tiny: "cancelled"} and first.seed_table is None
    trained = len(runs_repo.list_runs(store, model_name=tiny))
    again = leaderboard(store, data, [tiny], n_trials=1, train_config=FAST, name="s", checkpoint_root=tmp_path,
                        seeds=3)
    assert not again.cancelled and again.statuses == {tiny: "skipped"} and len(again.seed_cells[tiny]) == 3
    finished = [r for r in runs_repo.list_runs(store, model_name=tiny) if r.status == "finished"]
    assert len(finished) >= 3 and len(runs_repo.list_runs(store, model_name=tiny)) <= trained + 1
