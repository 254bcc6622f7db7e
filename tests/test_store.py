"""The store itself: open / migrate, newer-schema refusal, a round trip of every table, WAL readers.

Round trips run on SQLite and, when EMBSR_TEST_PG_URL is reachable, on PostgreSQL too.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from _store_helpers import open_test_store, unique_name
from sqlalchemy import func, inspect, select, text

from embsr_core.store import Store, StoreError, open_store
from embsr_core.store.migrate import current_revision, head_revision
from embsr_core.store.models import (
    Dataset,
    EpochMetric,
    Event,
    Item,
    LossPoint,
    Operation,
    Run,
    RunRanks,
    SessionRow,
)
from embsr_core.store.repository import delete_dataset, get_dataset, list_datasets, store_info

TABLES = {"datasets", "operations", "items", "sessions", "events", "runs", "epoch_metrics", "loss_series",
          "run_ranks"}


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    s = open_test_store(request.param, tmp_path)
    yield s
    s.dispose()


def test_open_creates_and_migrates_an_empty_database(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "new.db"
    store = open_store(f"sqlite:///{path}")
    assert path.exists()
    assert current_revision(store.engine) == head_revision()
    assert set(inspect(store.engine).get_table_names()) >= TABLES
    info = store_info(store)
    assert info.dialect == "sqlite" and info.schema_revision == head_revision()
    assert set(info.counts.values()) == {0}
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    store.dispose()


def test_default_url_uses_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("EMBSR_DB_URL", url)
    store = open_store()
    assert store.url == url and store.is_sqlite
    store.dispose()


def test_reopen_is_idempotent_and_keeps_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'again.db'}"
    first = open_store(url)
    _add_dataset(first, "kept")
    first.dispose()
    for _ in range(2):
        again = open_store(url)
        assert current_revision(again.engine) == head_revision()
        assert [d.name for d in list_datasets(again)] == ["kept"]
        again.dispose()


def test_newer_schema_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'newer.db'}"
    open_store(url).dispose()
    store = open_store(url, migrate=False)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    store.dispose()
    with pytest.raises(StoreError) as info:
        open_store(url)
    message = str(info.value)
    assert "newer version" in message and "9999_future" in message and head_revision() in message


def test_bad_url_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="not a database URL"):
        open_store("definitely not a url")
    with pytest.raises(StoreError, match="cannot use the database URL 'nosuchdialect://host/db'"):
        open_store("nosuchdialect://host/db")


def _add_dataset(store: Store, name: str) -> int:
    with store.session() as session, session.begin():
        ds = Dataset(name=name, source_format="jd", source_path="/x/y.txt", imported_at=datetime(2024, 1, 2, 3, 4, 5),
                     n_sessions=2, n_items=2, n_operations=2, n_events=3, import_report={"rows_read": 3, "a": [1, 2]})
        session.add(ds)
        session.flush()
        return ds.id


def test_round_trip_of_every_table(store: Store, tmp_path: Path) -> None:
    name = unique_name("rt")
    ranks = np.array([1, 5, 20, 3], dtype="<i4")
    ds_id = _add_dataset(store, name)
    with store.session() as session, session.begin():
        session.add_all([Operation(dataset_id=ds_id, code=1, name="view"),
                         Operation(dataset_id=ds_id, code=2, name="cart")])
        items = [Item(dataset_id=ds_id, external_id="i1", category="c"), Item(dataset_id=ds_id, external_id="i2")]
        sessions = [SessionRow(dataset_id=ds_id, external_id="s1"), SessionRow(dataset_id=ds_id, external_id="s2")]
        session.add_all(items + sessions)
        session.flush()
        session.add_all([
            Event(dataset_id=ds_id, session_id=sessions[0].id, position=0, item_id=items[0].id, operation_code=1,
                  timestamp=0.0, dwell=4.5),
            Event(dataset_id=ds_id, session_id=sessions[0].id, position=1, item_id=items[1].id, operation_code=2,
                  timestamp=12.25, dwell=None),
            Event(dataset_id=ds_id, session_id=sessions[1].id, position=0, item_id=items[1].id, operation_code=1,
                  timestamp=3.0, dwell=1.0),
        ])
        run = Run(name="r", dataset_id=ds_id, model_name="embsr", config={"lr": 0.001, "layers": [1, 2]},
                  status="finished", device="cpu", created_at=datetime(2024, 1, 2), epochs_done=3, best_epoch=2,
                  search_group="g1", is_best_trial=True, pid=123, host="h")
        session.add(run)
        session.flush()
        run_id = run.id
        session.add_all([
            EpochMetric(run_id=run_id, epoch=1, split="valid", target_op="oracle", metric="hit", k=10, value=0.25,
                        wall_time=1.5),
            LossPoint(run_id=run_id, step=7, epoch=1, loss=2.5, wall_time=0.5),
            RunRanks(run_id=run_id, split="test", target_op="oracle", prep_hash="abc", n=4, ranks=ranks.tobytes()),
        ])

    reopened = open_store(store.url)  # a fresh engine: nothing comes from an identity map
    try:
        with reopened.session() as session:
            ds = session.get(Dataset, ds_id)
            assert (ds.name, ds.source_format, ds.n_events, ds.imported_at) == (name, "jd", 3,
                                                                                 datetime(2024, 1, 2, 3, 4, 5))
            assert ds.import_report == {"rows_read": 3, "a": [1, 2]}
            assert [(o.code, o.name) for o in ds.operations] == [(1, "view"), (2, "cart")]
            got_items = session.execute(select(Item.external_id, Item.category).where(Item.dataset_id == ds_id)
                                        .order_by(Item.id)).all()
            assert [tuple(r) for r in got_items] == [("i1", "c"), ("i2", None)]
            got_sessions = session.scalars(select(SessionRow.external_id).where(SessionRow.dataset_id == ds_id)
                                           .order_by(SessionRow.id)).all()
            assert got_sessions == ["s1", "s2"]
            events = session.execute(
                select(Event.position, Event.operation_code, Event.timestamp, Event.dwell)
                .where(Event.dataset_id == ds_id).order_by(Event.session_id, Event.position)
            ).all()
            assert [tuple(e) for e in events] == [(0, 1, 0.0, 4.5), (1, 2, 12.25, None), (0, 1, 3.0, 1.0)]
            run = session.get(Run, run_id)
            assert (run.config, run.status, run.is_best_trial, run.best_epoch) == (
                {"lr": 0.001, "layers": [1, 2]}, "finished", True, 2)
            metric = session.scalars(select(EpochMetric).where(EpochMetric.run_id == run_id)).one()
            assert (metric.metric, metric.k, metric.value, metric.split) == ("hit", 10, 0.25, "valid")
            loss = session.scalars(select(LossPoint).where(LossPoint.run_id == run_id)).one()
            assert (loss.step, loss.loss) == (7, 2.5)
            rr = session.get(RunRanks, (run_id, "test", "oracle"))
            np.testing.assert_array_equal(np.frombuffer(rr.ranks, dtype="<i4"), ranks)
    finally:
        reopened.dispose()

    deleted = delete_dataset(store, name)
    assert deleted == {"dataset": name, "events": 3, "runs": 1}
    with store.session() as session:
        for model, col in ((Event, Event.dataset_id), (Item, Item.dataset_id), (SessionRow, SessionRow.dataset_id),
                           (Operation, Operation.dataset_id), (Run, Run.dataset_id)):
            assert session.scalar(select(func.count()).select_from(model).where(col == ds_id)) == 0
        for model in (EpochMetric, LossPoint, RunRanks):
            assert session.scalar(select(func.count()).select_from(model).where(model.run_id == run_id)) == 0
    with pytest.raises(KeyError):
        get_dataset(store, name)


def test_a_reader_sees_committed_data_while_a_writer_holds_a_transaction(store: Store) -> None:
    committed = unique_name("committed")
    pending = unique_name("pending")
    _add_dataset(store, committed)
    reader = open_store(store.url)  # a second engine on the same database (file)
    try:
        with store.engine.connect() as writer:
            tx = writer.begin()
            writer.execute(Dataset.__table__.insert().values(
                name=pending, source_format="jd", imported_at=datetime(2024, 1, 1), n_sessions=0, n_items=0,
                n_operations=0, n_events=0))
            # the writer holds its write lock / open transaction; the reader neither blocks nor sees it
            names = {d.name for d in list_datasets(reader)}
            assert committed in names and pending not in names
            tx.commit()
        assert pending in {d.name for d in list_datasets(reader)}
    finally:
        reader.dispose()
    delete_dataset(store, committed)
    delete_dataset(store, pending)
