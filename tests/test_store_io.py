"""Import into the store and read back: exact counts, round trip, one transaction, cancel, bad input.

Every test runs on files the tests generate in each native format (any clone); the real samples under
../shared/data add a second layer with their exact counts and skip, each with its reason, when absent.
Every test runs on SQLite and, when EMBSR_TEST_PG_URL is reachable, on PostgreSQL too.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _store_helpers import open_test_store, real_sample, unique_name
from native_fixtures import Written, write_diginetica, write_jd, write_trivago_csv, write_trivago_parquet
from sqlalchemy import func, select

from embsr_core.data.errors import DataFormatError, DatasetExistsError, ImportCancelled
from embsr_core.data.importers import ColumnMapping, Source, read_events
from embsr_core.data.store_io import import_into_store, load_events
from embsr_core.store import Store
from embsr_core.store.models import Dataset, Event, Item, Operation, SessionRow
from embsr_core.store.repository import delete_dataset, get_dataset

JD = "jd/JD_Appliances_sample.txt"
HUP = "jd/HUP_Appliances_sample.txt"
TRIVAGO_CSV = "trivago/train_small.csv"
TRIVAGO_PARQUET = "trivago/trivago_val_100k.parquet"
VIEWS = "diginetica/sample_train-item-views.csv"
PURCHASES = "diginetica/train-purchases.csv"
DIGI_MAPPING = ColumnMapping(session="session_id", item="item_id", timestamp="timeframe")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    s = open_test_store(request.param, tmp_path)
    yield s
    s.dispose()


@dataclass(frozen=True)
class Expected:
    """A file to import and what an exact import of it gives (None: not asserted)."""

    source: Path
    fmt: str
    rows_read: int
    kept: int
    sessions: int
    items: int | None
    ops: int | None
    chunk_rows: int  # small enough that the file spans several chunks


def _generated(written: Written, fmt: str) -> Expected:
    ops = len(written.extra["operation_counts"])
    return Expected(written.path, fmt, written.rows, written.kept, written.sessions, written.items, ops,
                    chunk_rows=max(1, written.rows // 5))


GENERATED: dict[str, Callable[[Path], Expected]] = {
    "jd": lambda d: _generated(write_jd(d / "jd.txt", n_sessions=300), "jd"),
    "hup": lambda d: _generated(write_jd(d / "HUP_like.txt", n_sessions=150, seed=3), "auto"),
    "trivago-csv": lambda d: _generated(write_trivago_csv(d / "train.csv"), "trivago"),
    "trivago-parquet": lambda d: _generated(write_trivago_parquet(d / "val.parquet", n_sessions=200), "auto"),
}
REAL: dict[str, Callable[[], Expected]] = {
    "jd": lambda: Expected(real_sample(JD), "jd", 57_332, 57_332, 1_000, 9_134, 10, 20_000),
    "hup": lambda: Expected(real_sample(HUP), "auto", 28_108, 28_108, 1_000, None, 10, 20_000),
    "trivago-csv": lambda: Expected(real_sample(TRIVAGO_CSV), "trivago", 1_010, 997, 7, 48, None, 20_000),
    "trivago-parquet": lambda: Expected(real_sample(TRIVAGO_PARQUET), "auto", 100_003, 87_608, 7_513, 13_949, 6,
                                        20_000),
}


@dataclass(frozen=True)
class JdFile:
    path: Path
    rows: int
    chunk_rows: int  # gives more than three chunks


@pytest.fixture(params=["generated", "real-sample"])
def jd_file(request: pytest.FixtureRequest, tmp_path: Path) -> JdFile:
    """A JD file of 1,000 lines: generated (any clone), or the real sample (skips when absent)."""
    if request.param == "real-sample":
        return JdFile(real_sample(JD), 57_332, 10_000)
    written = write_jd(tmp_path / "jd.txt", n_sessions=1_000, seed=5)
    return JdFile(written.path, written.rows, written.rows // 6)


def _table_counts(store: Store) -> dict[str, int]:
    with store.session() as session:
        return {m.__tablename__: int(session.scalar(select(func.count()).select_from(m)))
                for m in (Dataset, Operation, Item, SessionRow, Event)}


def _same_as_importer(store: Store, name: str, sources, fmt: str, mapping=None) -> None:
    loaded = load_events(store, name, categorical=False)
    expected = read_events(sources, fmt, mapping).drop(columns=["step"], errors="ignore")
    pd.testing.assert_frame_equal(loaded, expected, check_dtype=False)
    as_categories = load_events(store, name)  # the default: categoricals with the same values
    for col in ("session", "item", "operation"):
        assert isinstance(as_categories[col].dtype, pd.CategoricalDtype)
        assert as_categories[col].astype(str).tolist() == expected[col].tolist()


def _exact_counts_and_round_trip(store: Store, e: Expected) -> None:
    name = unique_name(e.source.stem)
    report = import_into_store(store, e.source, e.fmt, name, chunk_rows=e.chunk_rows)
    assert (report.rows_read, report.rows_kept, report.n_sessions) == (e.rows_read, e.kept, e.sessions)
    if e.items is not None:
        assert report.n_items == e.items
    if e.ops is not None:
        assert report.n_operations == e.ops
    assert report.rows_read == report.rows_kept + report.rows_skipped
    ds = get_dataset(store, name)
    assert (ds.n_events, ds.n_sessions, ds.n_items) == (e.kept, e.sessions, report.n_items)
    assert ds.import_report["rows_kept"] == e.kept
    _same_as_importer(store, name, e.source, e.fmt)
    delete_dataset(store, name)


@pytest.mark.parametrize("kind", list(GENERATED))
def test_generated_files_exact_counts_and_round_trip(store: Store, tmp_path: Path, kind: str) -> None:
    _exact_counts_and_round_trip(store, GENERATED[kind](tmp_path))


@pytest.mark.parametrize("kind", list(REAL))
def test_real_samples_exact_counts_and_round_trip(store: Store, kind: str) -> None:
    _exact_counts_and_round_trip(store, REAL[kind]())


def test_trivago_skip_reasons_are_reported(store: Store, tmp_path: Path) -> None:
    written = write_trivago_parquet(tmp_path / "val.parquet", n_sessions=200)
    assert set(written.skipped) == {"action type without an item", "reference is not an item id"}
    report = import_into_store(store, written.path, "trivago", unique_name("tv"))
    assert report.skipped == written.skipped
    assert sum(report.operation_counts.values()) == written.kept
    assert report.operation_counts == written.extra["operation_counts"]
    delete_dataset(store, report.dataset_name)


def test_real_trivago_skip_reasons_are_reported(store: Store) -> None:
    report = import_into_store(store, real_sample(TRIVAGO_PARQUET), "trivago", unique_name("tv"))
    assert report.skipped == {"action type without an item": 12_391, "reference is not an item id": 4}
    assert sum(report.operation_counts.values()) == 87_608
    delete_dataset(store, report.dataset_name)


def _views_and_purchases(store: Store, views: Path, purchases: Path, chunk_rows: int):
    sources = [Source(views, "view"), Source(purchases, "purchase")]
    name = unique_name("digi")
    report = import_into_store(store, sources, "generic", name, DIGI_MAPPING, chunk_rows=chunk_rows)
    assert report.late_rows > 0  # purchases of sessions already written from the views file
    _same_as_importer(store, name, sources, "generic", DIGI_MAPPING)
    delete_dataset(store, name)
    return report


def test_diginetica_views_and_purchases(store: Store, tmp_path: Path) -> None:
    views, purchases = write_diginetica(tmp_path / "digi", n_sessions=60)
    report = _views_and_purchases(store, views.path, purchases.path, chunk_rows=50)
    assert report.rows_kept == views.rows + purchases.rows
    assert report.operation_counts == {"view": views.rows, "purchase": purchases.rows}
    assert report.n_sessions == purchases.extra["sessions_both"]


def test_real_diginetica_views_and_purchases(store: Store) -> None:
    report = _views_and_purchases(store, real_sample(VIEWS), real_sample(PURCHASES), chunk_rows=4_000)
    assert report.rows_kept == 30_416
    assert report.operation_counts == {"view": 12_391, "purchase": 18_025}
    assert report.n_sessions == 15_478


def test_sessions_split_across_chunks_and_shuffled_rows(store: Store, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 1_200
    frame = pd.DataFrame({
        "session": np.repeat(np.arange(120), 10),
        "item": rng.integers(0, 50, n),
        "operation": rng.choice(["a", "b", "c"], n),
        "timestamp": np.tile(np.arange(10.0), 120),
    })
    contiguous = tmp_path / "contiguous.csv"
    frame.to_csv(contiguous, index=False)
    shuffled = tmp_path / "shuffled.csv"
    frame.sample(frac=1.0, random_state=1).to_csv(shuffled, index=False)
    for path, chunk_rows in ((contiguous, 23), (shuffled, 256)):
        name = unique_name(path.stem)
        report = import_into_store(store, path, "generic", name, chunk_rows=chunk_rows)
        assert report.n_sessions == 120 and report.rows_kept == n
        _same_as_importer(store, name, path, "generic")
        with store.session() as session:
            ids = sorted(session.scalars(select(SessionRow.id).where(SessionRow.dataset_id == report.dataset_id)))
            positions = session.execute(
                select(Event.session_id, func.min(Event.position), func.max(Event.position), func.count())
                .where(Event.dataset_id == report.dataset_id).group_by(Event.session_id)
            ).all()
        assert ids == list(range(ids[0], ids[0] + 120))  # contiguous ids per dataset
        assert all((lo, hi, cnt) == (0, 9, 10) for _, lo, hi, cnt in positions)
        delete_dataset(store, name)


def test_progress_reports_rows_and_bytes(store: Store, jd_file: JdFile) -> None:
    calls: list[tuple[int, int, int]] = []
    name = unique_name("jd")
    import_into_store(store, jd_file.path, "jd", name, progress=lambda r, b, t: calls.append((r, b, t)),
                      chunk_rows=jd_file.chunk_rows)
    assert len(calls) > 3
    rows = [c[0] for c in calls]
    assert rows == sorted(rows) and rows[-1] == jd_file.rows
    assert calls[-1][1] == calls[-1][2] == jd_file.path.stat().st_size
    delete_dataset(store, name)


def test_cancel_leaves_no_trace(store: Store, jd_file: JdFile) -> None:
    before = _table_counts(store)
    token = threading.Event()
    calls = []

    def progress(rows: int, _b: int, _t: int) -> None:
        calls.append(rows)
        if len(calls) == 2:
            token.set()

    name = unique_name("cancel")
    with pytest.raises(ImportCancelled, match="nothing was stored"):
        import_into_store(store, jd_file.path, "jd", name, progress=progress, cancel=token,
                          chunk_rows=jd_file.chunk_rows // 2)
    assert len(calls) == 2  # it stopped at the next chunk
    assert _table_counts(store) == before
    # the name is free again and a later import works
    report = import_into_store(store, jd_file.path, "jd", name)
    assert report.rows_kept == jd_file.rows
    delete_dataset(store, name)


def test_failure_midway_leaves_no_trace(store: Store, tmp_path: Path, jd_file: JdFile) -> None:
    bad = tmp_path / "bad-jd.txt"
    lines = jd_file.path.read_text().splitlines()
    bad.write_text("\n".join(lines[:900] + ["1+2+3"] + lines[900:]) + "\n")
    before = _table_counts(store)
    with pytest.raises(DataFormatError, match="line 901"):
        import_into_store(store, bad, "jd", unique_name("bad"), chunk_rows=jd_file.chunk_rows // 2)
    assert _table_counts(store) == before


def test_duplicate_dataset_name_refused_up_front(store: Store, tmp_path: Path) -> None:
    source = write_trivago_csv(tmp_path / "train.csv").path
    name = unique_name("dup")
    import_into_store(store, source, "trivago", name)
    before = _table_counts(store)
    with pytest.raises(DatasetExistsError, match=f"a dataset named '{name}' already exists"):
        import_into_store(store, source, "trivago", name)
    assert _table_counts(store) == before
    delete_dataset(store, name)


@pytest.mark.parametrize(
    ("content", "fmt", "expected"),
    [
        (b"", "auto", "empty"),
        (bytes(range(256)) * 16, "generic", "binary"),
        (b"879089+5+753+180+180 x+5+753+1+1\n", "jd", "line 1"),
        (b"a;b;c\n1;2;3\n", "trivago", "missing column(s)"),
    ],
    ids=["empty", "binary", "non-numeric-jd", "other-format"],
)
def test_bad_input_stores_nothing(store: Store, tmp_path: Path, content: bytes, fmt: str, expected: str) -> None:
    path = tmp_path / "input.txt"
    path.write_bytes(content)
    before = _table_counts(store)
    with pytest.raises(DataFormatError, match=re.escape(expected)) as info:
        import_into_store(store, path, fmt, unique_name("bad"))
    assert str(path) in str(info.value)
    assert _table_counts(store) == before


def test_two_datasets_have_disjoint_id_ranges(store: Store, tmp_path: Path) -> None:
    source = write_trivago_csv(tmp_path / "train.csv").path
    a = import_into_store(store, source, "trivago", unique_name("a"))
    b = import_into_store(store, source, "trivago", unique_name("b"))
    with store.session() as session:
        def span(model, ds):
            return session.execute(select(func.min(model.id), func.max(model.id))
                                   .where(model.dataset_id == ds)).one()
        for model in (SessionRow, Item):
            lo_a, hi_a = span(model, a.dataset_id)
            lo_b, hi_b = span(model, b.dataset_id)
            assert hi_a < lo_b
    pd.testing.assert_frame_equal(load_events(store, b.dataset_name), load_events(store, a.dataset_name))
    for r in (a, b):
        delete_dataset(store, r.dataset_name)


def test_load_events_of_a_dataset_written_without_the_importer(store: Store) -> None:
    """Ids that are not contiguous (interleaved with another dataset) still map back correctly."""
    from datetime import datetime

    names = [unique_name("x"), unique_name("y")]
    with store.session() as session, session.begin():
        a, b = (Dataset(name=n, source_format="generic", imported_at=datetime(2024, 1, 1), n_sessions=1,
                        n_items=2, n_operations=1, n_events=2) for n in names)
        session.add_all([a, b])
        session.flush()
        for ds in (a, b):
            session.add(Operation(dataset_id=ds.id, code=1, name="view"))
        rows = []
        for ext in ("i1", "i2"):  # a1 b1 a2 b2: each dataset's item ids have gaps
            for ds in (a, b):
                rows.append(Item(dataset_id=ds.id, external_id=f"{ext}-{ds.name[:1]}", category=None))
        sessions = [SessionRow(dataset_id=ds.id, external_id=f"s-{ds.name[:1]}") for ds in (a, b, a)]
        sessions[2].external_id = "s2-x"
        session.add_all(rows + sessions)
        session.flush()
        session.add_all([
            Event(dataset_id=a.id, session_id=sessions[0].id, position=0, item_id=rows[2].id, operation_code=1,
                  timestamp=1.0, dwell=None),
            Event(dataset_id=a.id, session_id=sessions[2].id, position=0, item_id=rows[0].id, operation_code=1,
                  timestamp=2.0, dwell=3.0),
        ])
    df = load_events(store, names[0], categorical=False)
    assert df["session"].tolist() == ["s-x", "s2-x"]
    assert df["item"].tolist() == ["i2-x", "i1-x"]
    assert df["operation"].tolist() == ["view", "view"]
    assert np.isnan(df["dwell"].iloc[0]) and df["dwell"].iloc[1] == 3.0
    for n in names:
        delete_dataset(store, n)
