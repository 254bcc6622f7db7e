"""`embsr tune` and `embsr leaderboard` as a user types them: help, refusals, a tiny real run."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from embsr_core.cli import main
from embsr_core.store import open_store, runs_repo

torch.set_num_threads(1)
FAST = ["--batch-size", "64", "--eval-batch-size", "256", "--device", "cpu", "--max-epochs", "1"]


def invoke(args: list[str], code: int = 0) -> str:
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture()
def dataset() -> str:
    invoke(["generate", "--name", "T", "--sessions", "200", "--items", "60", "--categories", "4"])
    return "T"


def test_help_names_budget_trials_and_resume() -> None:
    tune_help = invoke(["tune", "--help"])
    for text in ("--budget", "--trials", "--space", "--pruner", "--resume", "Trial 0 is always the default"):
        assert text in tune_help
    board_help = invoke(["leaderboard", "--help"])
    assert "--budget" in board_help and "--models" in board_help and "continues where it stopped" in board_help


def test_bad_input_is_refused_with_a_clear_message(dataset: str) -> None:
    assert "expected a duration such as 90s, 15m" in invoke(["tune", dataset, "--budget", "5x"], code=2)
    assert "unknown model 'Nope'" in invoke(["tune", dataset, "-m", "Nope"], code=2)
    assert "--resume needs --study" in invoke(["tune", dataset, "--resume"], code=2)
    assert "expected NAME=V1,V2" in invoke(["tune", dataset, "--space", "lr"], code=2)
    assert "no dataset" in invoke(["tune", "no-such-data", "--trials", "1"], code=1).lower()
    out = invoke(["tune", dataset, "-m", "SKNN", "--space", "alpha=1,2", "--trials", "1"], code=1)
    assert "neither a training setting" in out
    assert "unknown model 'Nope'" in invoke(["leaderboard", dataset, "--models", "S-POP,Nope"], code=2)


def test_tune_and_leaderboard_record_runs(dataset: str, tmp_path) -> None:
    out = invoke(["tune", dataset, "-m", "SKNN", "--trials", "2", *FAST])
    assert "trial 0 k=100: complete" in out and "best configuration: run" in out and "defaults trial 0" in out
    store = open_store()
    best = [r for r in runs_repo.list_runs(store) if r.is_best_trial]
    assert len(best) == 1 and best[0].model_name == "SKNN" and best[0].status == "finished"

    csv_file = tmp_path / "board.csv"
    board = invoke(["leaderboard", dataset, "--models", "S-POP,SKNN", "--trials", "1", "--csv", str(csv_file), *FAST])
    rows = csv_file.read_text(encoding="utf-8").splitlines()
    assert rows[0].startswith("run_id,") and "wilcoxon_p_vs_chosen" in rows[0] and len(rows) == 4  # 2 runs + Imp.
    assert "[1/2] S-POP" in board and "[2/2] SKNN" in board and "Wilcoxon p" in board and "(chosen)" in board
    again = invoke(["leaderboard", dataset, "--models", "S-POP,SKNN", "--trials", "1", *FAST])
    assert "already done (kept)" in again


def test_leaderboard_over_seeds_prints_mean_and_sd_and_writes_them(dataset: str, tmp_path) -> None:
    args = ["leaderboard", dataset, "--models", "S-POP,NARM", "--trials", "1", *FAST]
    invoke(args)  # one seed first: the board is tuned once
    csv_file = tmp_path / "seeds.csv"
    out = invoke([*args, "--seeds", "2", "--csv", str(csv_file)])
    assert "already done (kept)" in out and "the best configuration again with seed 43: training" in out
    assert "over seeds" in out and " ± " in out and "(best)" in out
    header, *rows = csv_file.read_text(encoding="utf-8").splitlines()
    assert header.startswith("model,n_seeds,run_ids,H@1 mean,H@1 sd") and "wilcoxon_p_vs_best" in header
    assert sorted(r.split(",")[:2] for r in rows) == [["NARM", "2"], ["S-POP", "1"]]
    assert "--seeds" in invoke(["leaderboard", "--help"])


def test_tune_prints_the_train_command_of_its_best_settings_and_that_command_trains_them(dataset: str) -> None:
    import shlex

    from embsr_core.training.config import EXECUTION_SETTINGS

    out = invoke(["tune", dataset, "-m", "SKNN", "--space", "k=5,500", "--trials", "3", "--preset", "sample",
                  "--no-augment", *FAST])
    line = next(x for x in out.splitlines() if x.startswith("train with these settings: "))
    command = shlex.split(line.removeprefix("train with these settings: "))
    assert command[:5] == ["embsr", "train", dataset, "-m", "SKNN"] and "--device" not in command
    assert command[5:8] == ["--preset", "sample", "--no-augment"]  # the same data preparation
    store = open_store()
    trained = len(runs_repo.list_runs(store, model_name="SKNN"))
    assert f": {trained} trials (" in out  # the count is of trained trials (re-proposed known settings are not)
    best = next(r for r in runs_repo.list_runs(store) if r.is_best_trial)
    if best.config["model"]["k"] != 100:  # a tuned k is carried; the default one needs no flag
        assert f"k={best.config['model']['k']}" in command
    invoke(command[1:] + ["--device", "cpu", "--name", "again"])
    again = next(r for r in runs_repo.list_runs(store) if r.name == "again")
    assert again.config["model"] == best.config["model"] and again.config["prep"] == best.config["prep"]
    how = set(EXECUTION_SETTINGS)
    assert {k: v for k, v in again.config["train"].items() if k not in how} == {
        k: v for k, v in best.config["train"].items() if k not in how}


def test_the_summary_says_which_trials_the_clock_cut(capsys: pytest.CaptureFixture[str]) -> None:
    from embsr_core.cli.tune_cmds import _summary
    from embsr_core.training.tuning import TrialInfo, TuneResult

    valid = {"hit@20": 0.5, "mrr@20": 0.2}
    default = TrialInfo(0, {"lr": 0.001}, "complete", 1, 0.2, valid, 20, note="defaults")
    cut = TrialInfo(1, {"lr": 0.008}, "complete", 2, 0.3, {"hit@20": 0.76, "mrr@20": 0.3}, 15, cut=True,
                    note="cut by the time budget after 15 epochs; scored and tested at its best epoch 14")
    pruned = TrialInfo(2, {"lr": 0.01}, "pruned", 3, None, valid, 2, note="pruned at epoch 2")
    _summary(TuneResult("s", "EMBSR", [default, cut, pruned], cut, default, "budget", 900.0, "mrr@20"))
    out = capsys.readouterr().out
    assert "3 trials (2 complete (1 of them cut by the time budget, scored at their best epoch), 1 pruned" in out
    best = next(line for line in out.splitlines() if line.lstrip().startswith("best "))
    assert "lr=0.008" in best and "(cut by the time budget after 15 epochs)" in best
