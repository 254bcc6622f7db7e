"""Run notes, tags and the stored training log: migration 0002 on an existing store, round trips,
deletion with the run or its dataset, and the log a real training run leaves behind."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import torch
from _store_helpers import open_test_store, unique_name
from alembic import command
from sqlalchemy import func, inspect, select, text

from embsr_core.store import Store, open_store
from embsr_core.store import run_details as rd
from embsr_core.store.engine import make_engine
from embsr_core.store.migrate import alembic_config, current_revision, head_revision
from embsr_core.store.models import Dataset, Run, RunLogLine, RunTag
from embsr_core.store.repository import delete_dataset
from embsr_core.store.runs_repo import create_run, delete_run, update_run


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    s = open_test_store(request.param, tmp_path)
    yield s
    s.dispose()


def _dataset(store: Store) -> int:
    with store.session() as session, session.begin():
        dataset = Dataset(name=unique_name("details"), source_format="csv", imported_at=datetime.now(),
                          n_sessions=0, n_items=0, n_operations=0, n_events=0)
        session.add(dataset)
        session.flush()
        return int(dataset.id)


def _count(store: Store, model: type, run_id: int) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(model.run_id == run_id)) or 0)


def test_migration_0002_upgrades_an_existing_0001_store_and_keeps_its_runs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    command.upgrade(alembic_config(engine), "0001")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO datasets (id, name, source_format, imported_at, n_sessions, n_items, "
                          "n_operations, n_events) VALUES (1, 'old', 'csv', '2026-11-30 10:00:00', 0, 0, 0, 0)"))
        conn.execute(text("INSERT INTO runs (id, dataset_id, model_name, config, status, created_at, epochs_done, "
                          "is_best_trial) VALUES (7, 1, 'embsr', '{}', 'finished', '2026-11-30 10:00:00', 3, 0)"))
    assert current_revision(engine) == "0001"
    engine.dispose()

    store = open_store(url)
    assert current_revision(store.engine) == head_revision()  # 0002 and any later one
    tables = set(inspect(store.engine).get_table_names())
    assert {"run_tags", "run_logs"} <= tables
    assert "notes" in {c["name"] for c in inspect(store.engine).get_columns("runs")}
    assert rd.get_notes(store, 7) == "" and rd.get_tags(store, 7) == [] and rd.run_log(store, 7) == []
    rd.set_notes(store, 7, "kept from before the upgrade")
    assert rd.get_notes(store, 7) == "kept from before the upgrade"
    store.dispose()


def test_notes_tags_and_log_round_trip(store: Store) -> None:
    run_id = create_run(store, dataset_id=_dataset(store), model_name="embsr", config={})
    rd.set_notes(store, run_id, "  lr 0.001 looked unstable  \n")
    assert rd.get_notes(store, run_id) == "lr 0.001 looked unstable"
    assert rd.set_tags(store, run_id, rd.parse_tags("baseline,  jd sample , baseline,")) == ["baseline", "jd sample"]
    assert rd.get_tags(store, run_id) == ["baseline", "jd sample"]
    assert rd.tags_by_run(store, [run_id]) == {run_id: ["baseline", "jd sample"]}
    assert {"baseline", "jd sample"} <= set(rd.all_tags(store))
    rd.set_tags(store, run_id, ["final"])
    assert rd.get_tags(store, run_id) == ["final"]

    assert rd.append_run_log(store, run_id, ["run started", ("warning", "loss is NaN")]) == 2
    assert rd.append_run_log(store, run_id, [("error", "failed")]) == 1
    lines = rd.run_log(store, run_id)
    assert [(x.seq, x.level, x.message) for x in lines] == [
        (1, "info", "run started"), (2, "warning", "loss is NaN"), (3, "error", "failed")]
    assert [x.seq for x in rd.run_log(store, run_id, after_seq=2)] == [3]
    text_log = rd.run_log_text(store, run_id)
    assert "run started" in text_log and "WARNING: loss is NaN" in text_log


def test_append_joins_the_callers_transaction(store: Store) -> None:
    run_id = create_run(store, dataset_id=_dataset(store), model_name="embsr", config={})
    with store.session() as session, session.begin():
        rd.append_run_log(session, run_id, ["one", "two"])
        assert [x.message for x in rd.run_log(session, run_id)] == ["one", "two"]
    assert len(rd.run_log(store, run_id)) == 2


def test_bad_input_is_refused_with_what_was_expected(store: Store) -> None:
    run_id = create_run(store, dataset_id=_dataset(store), model_name="embsr", config={})
    with pytest.raises(ValueError, match="log level"):
        rd.append_run_log(store, run_id, [("loud", "x")])
    with pytest.raises(ValueError, match="at most 80"):
        rd.set_tags(store, run_id, ["x" * 81])
    with pytest.raises(KeyError, match="no run with id"):
        rd.set_notes(store, 987654, "x")
    assert rd.run_log(store, run_id) == [] and rd.get_tags(store, run_id) == []


def test_deleting_a_run_or_its_dataset_removes_its_logs_and_tags(store: Store) -> None:
    dataset_id = _dataset(store)
    first = create_run(store, dataset_id=dataset_id, model_name="embsr", config={})
    second = create_run(store, dataset_id=dataset_id, model_name="embsr", config={})
    for run_id in (first, second):
        rd.append_run_log(store, run_id, ["line"])
        rd.set_tags(store, run_id, ["t"])
        update_run(store, run_id, status="finished")
    delete_run(store, first, delete_files=False)
    assert _count(store, RunLogLine, first) == 0 and _count(store, RunTag, first) == 0
    assert _count(store, RunLogLine, second) == 1
    with store.session() as session:
        name = session.get(Dataset, dataset_id).name
    delete_dataset(store, name)
    assert _count(store, RunLogLine, second) == 0 and _count(store, RunTag, second) == 0
    with store.session() as session:
        assert session.get(Run, second) is None


def test_a_trained_run_leaves_its_log_in_the_store_and_a_reopened_store_reads_it(tmp_path: Path) -> None:
    from _training_helpers import ensure_tiny_model, tiny_prepared, tiny_store

    from embsr_core.training import TrainConfig, make_trainer

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        store = tiny_store(tmp_path)
        config = TrainConfig.from_dict({"batch_size": 32, "max_epochs": 2, "seed": 1, "device": "cpu"})
        trainer = make_trainer(store, tiny_prepared(), ensure_tiny_model(), {"dim": 8}, config,
                               checkpoint_root=tmp_path / "ckpt")
        assert trainer.run().status == "finished"
    finally:
        torch.set_num_threads(threads)
    url = store.url
    store.dispose()
    reopened = open_store(url)
    lines = rd.run_log(reopened, trainer.run_id)
    messages = [x.message for x in lines]
    assert messages[0].startswith(f"run {trainer.run_id} started at epoch 1")
    assert any(m.startswith("epoch 2, validation (oracle operation)") and "H@20" in m and "%" in m for m in messages)
    assert any(m.startswith("best epoch") and "test" in m for m in messages)
    assert messages[-1].startswith("finished after 2 epochs")
    assert [x.seq for x in lines] == list(range(1, len(lines) + 1))

    # the CLI prints the same log, the notes and the tags
    from click.testing import CliRunner

    from embsr_core.cli import main

    rd.set_notes(reopened, trainer.run_id, "first try")
    rd.set_tags(reopened, trainer.run_id, ["tiny", "smoke"])
    out = CliRunner().invoke(main, ["--db", url, "runs", "show", str(trainer.run_id), "--log"])
    assert out.exit_code == 0, out.output
    assert "tags:        smoke, tiny" in out.output and "notes:       first try" in out.output
    assert rd.run_log_text(reopened, trainer.run_id) in out.output
    reopened.dispose()
