"""The training side of the CLI, driven as a user would, on a small generated dataset."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner

from embsr_core.cli import main
from embsr_core.data.from_store import default_preset, prepare_dataset
from embsr_core.store import open_store, runs_repo
from embsr_core.store.repository import get_dataset

FAST = ["--batch-size", "64", "--eval-batch-size", "256", "--device", "cpu"]
TINY_MODEL = ["-p", "embedding_dim=16"]


def invoke(args: list[str], ok: bool = True) -> str:
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture()
def small_dataset() -> str:
    out = invoke(["generate", "--name", "Tiny", "--sessions", "400", "--items", "120", "--categories", "6"])
    assert "dataset 'Tiny': 400 sessions" in out
    return "Tiny"


def test_generate_records_a_synthetic_dataset_with_its_preset(small_dataset: str) -> None:
    store = open_store()
    ds = get_dataset(store, small_dataset)
    assert ds.source_format == "synthetic" and ds.n_sessions == 400 and ds.n_operations == 10
    assert default_preset(ds) == "synthetic"
    first = prepare_dataset(store, ds)
    again = prepare_dataset(store, ds)  # from the cache: identical arrays
    assert (first.train.items == again.train.items).all() and first.n_items == again.n_items
    # a second dataset with the same name gets a free one instead of failing
    again_out = invoke(["generate", "--name", "Tiny", "--sessions", "50", "--items", "40", "--categories", "4"])
    assert "Tiny (2)" in again_out


def test_models_list_and_show() -> None:
    listing = invoke(["models", "list"])
    for name in ("EMBSR", "EMBSR-NS", "EMBSR-NG", "EMBSR-NF", "SGNN-Self"):
        assert name in listing
    shown = invoke(["models", "show", "EMBSR"])
    assert "embedding_dim" in shown and "default 100" in shown
    result = CliRunner().invoke(main, ["models", "show", "NoSuchModel"])
    assert result.exit_code != 0 and "unknown model" in result.output


def test_train_evaluate_and_refuse_bad_input(small_dataset: str) -> None:
    out = invoke(["train", small_dataset, "-m", "EMBSR", *TINY_MODEL, "--max-epochs", "1", "--name", "cli-run", *FAST])
    assert "finished: best epoch 1 of 1" in out and "test/oracle" in out and "test/unknown" in out
    store = open_store()
    (run,) = [r for r in runs_repo.list_runs(store) if r.name == "cli-run"]
    assert run.status == "finished" and run.config["model"]["embedding_dim"] == 16
    assert run.config["train"]["batch_size"] == 64
    evaluated = invoke(["evaluate", str(run.id), "--target-op", "oracle", "--record-ranks"])
    assert "test/oracle" in evaluated and "hit@20" in evaluated
    _, prep_hash = runs_repo.load_ranks(store, run.id, "test", "oracle")
    assert prep_hash == run.prep_hash

    bad_param = CliRunner().invoke(main, ["train", small_dataset, "-p", "embedding_dim=abc", *FAST])
    assert bad_param.exit_code == 2 and "embedding_dim" in bad_param.output
    unknown = CliRunner().invoke(main, ["train", "Nope", *FAST])
    assert unknown.exit_code == 1 and "no dataset named 'Nope'" in unknown.output
    finished = CliRunner().invoke(main, ["resume", str(run.id)])
    assert finished.exit_code == 1 and "finished" in finished.output

    # predict: a session from the catalogue, in the CLI's ITEM:OPERATION form, equals the Predictor
    from embsr_core.inference import Predictor

    predictor = Predictor.from_run(store, run.id)
    item_ids = predictor.vocab.item_ids
    session = [(item_ids[1], "Home2Product"), (item_ids[2], "Cart")]
    expected = predictor.predict(session, 5, "Order")
    printed = invoke(["predict", str(run.id), *(f"{i}:{o}" for i, o in session), "-k", "5", "--target-op", "Order"])
    lines = [line.split() for line in printed.splitlines()[1:]]
    assert [line[1] for line in lines] == [r.item_id for r in expected]
    bad = CliRunner().invoke(main, ["predict", str(run.id), "no-such-item:Cart"])
    assert bad.exit_code == 1 and "no-such-item" in bad.output


def test_search_marks_best_trial(small_dataset: str) -> None:
    out = invoke(["search", small_dataset, "-m", "SGNN-Self", *TINY_MODEL, "--grid", "lr=0.001,0.01",
                  "--max-epochs", "1", *FAST])
    assert out.count("trial ") >= 2 and "best trial: run" in out
    store = open_store()
    trials = [r for r in runs_repo.list_runs(store) if r.search_group]
    assert len(trials) == 2 and sum(r.is_best_trial for r in trials) == 1


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    out = invoke(["demo", "--epochs", "1", "--sessions", "300", "--out", str(tmp_path), "--device", "cpu"])
    assert "4/4 exported" in out
    with open(tmp_path / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and {"metric", "k", "value"} <= set(rows[0])


def test_deleting_a_dataset_removes_its_runs_and_checkpoints(small_dataset: str) -> None:
    invoke(["train", small_dataset, "-m", "SGNN-Self", *TINY_MODEL, "--max-epochs", "1", "--name", "doomed", *FAST])
    store = open_store()
    (run,) = [r for r in runs_repo.list_runs(store) if r.name == "doomed"]
    folder = Path(run.checkpoint_path).parent
    assert folder.is_dir()
    out = invoke(["datasets", "delete", small_dataset, "--yes"])
    assert small_dataset in out
    assert not folder.exists()
    assert not [r for r in runs_repo.list_runs(store) if r.name == "doomed"]
