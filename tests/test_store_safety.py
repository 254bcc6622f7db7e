"""The store's guard rails (issue 13): URLs that would lose data, unwritable places, locks held by
others, ids never taken for names, dead owners of running runs; and no import cycle in the store."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import grimp
import numpy as np
import pandas as pd
import pytest
from _store_helpers import PG_ENV, pg_unavailable_reason, unique_name
from click.testing import CliRunner
from sqlalchemy import text

from embsr_core.cli import main
from embsr_core.data import store_io
from embsr_core.data.errors import DataFormatError
from embsr_core.data.importers import ColumnMapping
from embsr_core.data.importers.base import Chunk
from embsr_core.store import Store, StoreError, engine, open_store, runs_repo
from embsr_core.store.models import Dataset, Run
from embsr_core.store.repository import delete_dataset, get_dataset, list_datasets, store_info


def test_engine_and_migrate_do_not_import_each_other() -> None:
    graph = grimp.build_graph("embsr_core")
    assert graph.find_shortest_chain("embsr_core.store.migrate", "embsr_core.store.engine") is None
    assert graph.find_shortest_chain("embsr_core.store.errors", "embsr_core.store.engine") is None


# --- defect 1: a dataset named "1" is never taken for id 1 ------------------------------------------


def _cli(db: str, *args: str):
    return CliRunner().invoke(main, ["--db", db, *args], catch_exceptions=False)


def _names(db: str) -> list[str]:
    store = open_store(db)
    try:
        return sorted(d.name for d in list_datasets(store))
    finally:
        store.dispose()


def test_a_digit_name_is_a_name_and_ids_are_written_with_a_hash(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ids.db'}"
    for name in ("keep", "other", "1"):  # ids 1, 2, 3
        result = _cli(db, "generate", "--name", name, "--sessions", "30", "--items", "20", "--categories", "4")
        assert result.exit_code == 0, result.output
    shown = _cli(db, "datasets", "show", "1")
    assert shown.exit_code == 0 and "Dataset '1' (id #3)" in shown.output
    assert "Dataset 'other' (id #2)" in _cli(db, "datasets", "show", "#2").output

    deleted = _cli(db, "datasets", "delete", "1", "--yes")
    assert deleted.exit_code == 0 and "Deleted '1'" in deleted.output
    assert _names(db) == ["keep", "other"]  # before the fix: 'keep' (id 1) was deleted

    missing = _cli(db, "datasets", "delete", "2", "--yes")
    assert missing.exit_code == 1 and "no dataset named '2'" in missing.output and "write #2" in missing.output
    assert _names(db) == ["keep", "other"]
    assert _cli(db, "datasets", "delete", "#2", "--yes").exit_code == 0
    assert _names(db) == ["keep"]


def test_get_dataset_takes_ints_and_hash_ids_as_ids_and_strings_as_names(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'ref.db'}")
    try:
        first = _add_dataset(store, "first")
        _add_dataset(store, str(first))  # a dataset *named* like the first one's id
        assert get_dataset(store, first).name == "first"
        assert get_dataset(store, f"#{first}").name == "first"
        assert get_dataset(store, str(first)).name == str(first)
        with pytest.raises(KeyError, match="not a dataset id"):
            get_dataset(store, "#x")
    finally:
        store.dispose()


@pytest.mark.parametrize(("name", "expected"), [
    ("", "empty"), ("   ", "empty"), ("a\nb", "control characters"), ("\x1b[31mred\x1b[0m", "control characters"),
    ("#5", "starts with '#'"), ("x" * 201, "at most 200"),
])
def test_import_refuses_names_that_cannot_be_shown_or_looked_up(tmp_path: Path, name: str, expected: str) -> None:
    db = f"sqlite:///{tmp_path / 'names.db'}"
    csv = tmp_path / "events.csv"
    csv.write_text("session,item,operation,timestamp\ns1,i1,view,1\ns1,i2,view,2\n")
    result = _cli(db, "import", str(csv), "--format", "generic", "--session-col", "session", "--item-col", "item",
                  "--operation-col", "operation", "--timestamp-col", "timestamp", "--name", name)
    assert result.exit_code == 1, result.output
    assert expected in result.output and "\x1b" not in result.output
    assert _names(db) == []


def test_a_stored_name_with_escape_codes_is_listed_escaped(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'esc.db'}"
    store = open_store(db)
    _add_dataset(store, "evil\x1b[2J\nname")  # written by an older version that did not refuse it
    store.dispose()
    listing = _cli(db, "datasets", "list")
    assert listing.exit_code == 0 and "\x1b" not in listing.output and "evil\\x1b[2J\\nname" in listing.output


def _add_dataset(store: Store, name: str) -> int:
    with store.session() as session, session.begin():
        ds = Dataset(name=name, source_format="generic", imported_at=datetime(2024, 1, 1), n_sessions=0, n_items=0,
                     n_operations=0, n_events=0)
        session.add(ds)
        session.flush()
        return ds.id


# --- defect 9 and issue 14 item 17: URLs that lose data, folders, read-only places, absolute paths -----


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite:///:memory:"])
def test_in_memory_urls_are_refused(url: str) -> None:
    with pytest.raises(StoreError, match="in-memory SQLite database.*lost when the program exits"):
        open_store(url)
    result = CliRunner().invoke(main, ["--db", url, "db", "info"])
    assert result.exit_code == 1 and "in-memory" in result.output and "Traceback" not in result.output


def test_only_the_files_own_folder_is_created(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"the folder .*nowhere.* does not exist"):
        open_store(f"sqlite:///{tmp_path / 'nowhere' / 'a' / 'b.db'}")
    assert not (tmp_path / "nowhere").exists()
    store = open_store(f"sqlite:///{tmp_path / 'new' / 'b.db'}")
    store.dispose()
    assert (tmp_path / "new" / "b.db").is_file()


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """chmod a-w; as root (who ignores modes) the immutable attribute instead, or skip saying why."""
    mode = path.stat().st_mode
    path.chmod(mode & ~0o222)
    immutable = False
    if os.access(path, os.W_OK):  # root
        immutable = subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0
        if not immutable:
            path.chmod(mode)
            pytest.skip("running as root where neither file modes nor chattr +i make a path read-only")
    try:
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        path.chmod(mode)


def test_a_read_only_folder_is_a_clear_message(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    with read_only(folder):
        with pytest.raises(StoreError, match=r"read-only folder .*ro"):
            open_store(f"sqlite:///{folder / 'x.db'}")
        result = CliRunner().invoke(main, ["--db", f"sqlite:///{folder / 'x.db'}", "datasets", "list"])
        assert result.exit_code == 1 and "read-only folder" in result.output


def test_no_folder_is_created_under_a_read_only_parent(tmp_path: Path) -> None:
    parent = tmp_path / "locked"
    parent.mkdir()
    expected = r"cannot create the folder .*new.*locked is read-only"
    with read_only(parent), pytest.raises(StoreError, match=expected):
        open_store(f"sqlite:///{parent / 'new' / 'x.db'}")
    assert not (parent / "new").exists()


def test_a_read_only_store_file_is_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    open_store(f"sqlite:///{path}").dispose()
    with read_only(path):
        result = CliRunner().invoke(main, ["--db", f"sqlite:///{path}", "generate", "--sessions", "30"])
        assert result.exit_code == 1 and f"the store file {path} is read-only" in result.output
        assert "Traceback" not in result.output


def test_files_beside_a_store_are_keyed_by_its_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Checkpoint folders, tuning journals and prepared caches all name a store by one identity: the
    absolute file, so one file opened from two folders is one store and two files are two."""
    from embsr_core.data.from_store import dataset_fingerprint
    from embsr_core.training.recorders import store_checkpoint_base

    (tmp_path / "a").mkdir()
    monkeypatch.chdir(tmp_path)
    first = open_store("sqlite:///a/x.db")
    monkeypatch.chdir(tmp_path / "a")
    same = open_store("sqlite:///x.db")
    other = open_store(f"sqlite:///{tmp_path / 'y.db'}")
    try:
        assert first.identity == same.identity == str(tmp_path / "a" / "x.db") != other.identity
        assert first.identity_digest() == same.identity_digest() != other.identity_digest()
        assert len(first.identity_digest(10)) == 10 and first.identity_digest().startswith(first.identity_digest(10))
        assert store_checkpoint_base(first) == store_checkpoint_base(same) != store_checkpoint_base(other)
        assert store_checkpoint_base(first).name == f"x-{first.identity_digest(10)}"
        CliRunner().invoke(main, ["--db", f"sqlite:///{tmp_path / 'a' / 'x.db'}", "generate", "--sessions", "30",
                                  "--name", "s"])
        CliRunner().invoke(main, ["--db", f"sqlite:///{tmp_path / 'y.db'}", "generate", "--sessions", "30",
                                  "--name", "s"])
        a, b = get_dataset(first, "s"), get_dataset(other, "s")
        assert dataset_fingerprint(first, a) == dataset_fingerprint(same, a) != dataset_fingerprint(other, b)
    finally:
        for st in (first, same, other):
            st.dispose()
    pg = Store.__new__(Store)
    pg.url, pg.location = "postgresql+psycopg://me:secret@db.example/embsr", ""
    assert "secret" not in pg.identity and pg.identity.startswith("postgresql+psycopg://me:")


def test_a_relative_sqlite_url_is_shown_as_its_absolute_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///tmp/x.db")  # three slashes: relative to the current folder
    try:
        monkeypatch.chdir("/")
        assert store.location == store_info(store).location == str(tmp_path / "tmp" / "x.db")
    finally:
        store.dispose()
    assert (tmp_path / "tmp" / "x.db").is_file()
    monkeypatch.chdir(tmp_path)
    info = CliRunner().invoke(main, ["--db", "sqlite:///tmp/x.db", "db", "info"])
    assert info.exit_code == 0 and f"File:           {tmp_path / 'tmp' / 'x.db'}" in info.output


# --- defect 6: a write lock held by someone else ends in a message naming the holder ---------------


def test_a_write_lock_held_too_long_names_who_holds_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "locked.db"
    open_store(f"sqlite:///{path}").dispose()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
         "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); time.sleep(60)", str(path)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        monkeypatch.setattr(engine, "LOCK_WAIT_MS", 300)  # the real wait is 30 s
        started = time.monotonic()
        result = CliRunner().invoke(main, ["--db", f"sqlite:///{path}", "generate", "--sessions", "30",
                                           "--items", "20", "--categories", "4"])
        assert time.monotonic() - started >= 0.3
        assert result.exit_code == 1, result.output
        assert "stayed locked for writing for 0.3 s (retried with backoff)" in result.output
        assert f"process {holder.pid} (python" in result.output
        assert "Traceback" not in result.output
    finally:
        holder.kill()
        holder.wait()
    assert _names(f"sqlite:///{path}") == []  # nothing was half-written


# --- defect 3: a run whose process is gone becomes `interrupted` when anything opens the store --------


def test_runs_whose_owner_is_gone_are_marked_interrupted_on_open(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    store = open_store(db)
    ds_id = _add_dataset(store, "d")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        hour_ago = datetime.now() - timedelta(hours=1)
        here = socket.gethostname()
        alive_start = runs_repo.process_start_ticks(alive.pid)
        if alive_start is None:
            pytest.skip("a process's start token is read from /proc (Linux only); elsewhere the pid decides")
        owners = {  # name: (pid, host, owner's start token)
            "dead": (gone.pid, here, 1),
            "reused pid": (alive.pid, here, alive_start - 1),  # alive is not the process that started it
            "live": (alive.pid, here, alive_start),
            "legacy live": (alive.pid, here, None),  # recorded before the token: the pid decides
            "other host": (gone.pid, "some-other-host", 1),
        }
        with store.session() as session, session.begin():
            for name, (pid, host, token) in owners.items():
                session.add(Run(name=name, dataset_id=ds_id, model_name="EMBSR", config={}, status="running",
                                created_at=hour_ago, started_at=hour_ago, epochs_done=0, pid=pid, host=host,
                                owner_start=token))
        store.dispose()
        opened = CliRunner().invoke(main, ["--db", db, "db", "info"])  # any command opens the store
        assert opened.exit_code == 0, opened.output
        store = open_store(db)
        status = {r.name: r.status for r in runs_repo.list_runs(store)}
        assert status == {"dead": "interrupted", "reused pid": "interrupted", "live": "running",
                          "legacy live": "running", "other host": "running"}
        dead = next(r for r in runs_repo.list_runs(store) if r.name == "dead")
        assert "ended unexpectedly" in dead.error_text
    finally:
        alive.kill()
        alive.wait()
        store.dispose()


# --- defects 6 and 11: bad settings refused at the flag, an untrainable dataset is a message ---------


@pytest.mark.parametrize(("args", "expected"), [
    (["--max-len", "0"], "Invalid value for '--max-len'"),
    (["--min-support", "-1"], "Invalid value for '--min-support'"),
    (["--lr", "nan"], "lr: expected a finite number, got nan"),
    (["-p", "dropout=nan"], "dropout: expected a finite number, got nan"),
    (["-p", "dropout=inf"], "dropout: expected a finite number, got inf"),
])
def test_bad_training_flags_are_refused_before_anything_runs(tmp_path: Path, args: list[str], expected: str) -> None:
    db = f"sqlite:///{tmp_path / 'flags.db'}"
    assert _cli(db, "generate", "--name", "g", "--sessions", "30", "--items", "20", "--categories", "4").exit_code == 0
    result = CliRunner().invoke(main, ["--db", db, "train", "g", *args])
    assert result.exit_code == 2, result.output
    assert expected in result.output and "Traceback" not in result.output
    store = open_store(db)
    try:
        assert runs_repo.list_runs(store) == []
    finally:
        store.dispose()


def test_training_a_one_event_dataset_is_a_message(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'one.db'}"
    csv = tmp_path / "one.csv"
    csv.write_text("session,item,operation,timestamp\ns1,i1,view,1\n")
    imported = _cli(db, "import", str(csv), "--format", "generic", "--session-col", "session", "--item-col", "item",
                    "--operation-col", "operation", "--timestamp-col", "timestamp", "--name", "one")
    assert imported.exit_code == 0, imported.output
    result = CliRunner().invoke(main, ["--db", db, "train", "one", "--max-epochs", "1"])
    assert result.exit_code == 1, result.output
    assert "dataset 'one' cannot be prepared for training" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


# --- PostgreSQL: COPY import, NUL bytes, no orphans -------------------------------------------------


@pytest.fixture
def pg_store() -> Iterator[Store]:
    reason = pg_unavailable_reason()
    if reason:
        pytest.skip(reason)
    store = open_store(os.environ[PG_ENV])
    yield store
    store.dispose()


def _events_frame(sessions: list[str], items: list[str], start: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({"session": sessions, "item": items, "operation": ["view"] * len(items),
                         "timestamp": start + np.arange(len(items), dtype=np.float64)})


def test_a_nul_byte_that_reaches_postgresql_is_a_message(pg_store: Store, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The importers refuse NUL bytes first; should one reach the store, PostgreSQL's DataError is a message."""
    frame = _events_frame(["s1", "s1", "s2", "s2"], ["i1", "bad\x00id", "i2", "i3"])
    monkeypatch.setattr(store_io, "iter_source_chunks",
                        lambda *a, **k: ("generic", iter([(0, Chunk(frame, rows_read=4, bytes_read=10))])))
    csv = tmp_path / "x.csv"
    csv.write_text("stand-in\n")
    before = store_info(pg_store).counts
    name = unique_name("nul")
    with pytest.raises(DataFormatError, match=r"NUL character .*PostgreSQL cannot store"):
        store_io.import_into_store(pg_store, csv, "generic", name)
    assert store_info(pg_store).counts == before
    assert name not in {d.name for d in list_datasets(pg_store)}


def test_postgresql_import_by_copy_leaves_no_orphans_and_fails_atomically(
        pg_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frames = [_events_frame(["a"] * 3 + ["b"] * 2, ["x", "y", "x", "z", "y"]),
              _events_frame(["b", "c", "c"], ["x", "q", "r"], start=10.0)]
    for frame, dwell in zip(frames, ([1.5, np.nan, 3.0, np.nan, 5.0], [6.0, np.nan, 8.0]), strict=True):
        frame["dwell"] = dwell  # NULL and non-NULL rows in one binary COPY
    chunks = [(0, Chunk(f, rows_read=len(f), bytes_read=10)) for f in frames]
    csv = tmp_path / "x.csv"
    csv.write_text("stand-in\n")
    monkeypatch.setattr(store_io, "iter_source_chunks", lambda *a, **k: ("generic", iter(chunks)))
    name = unique_name("copy")
    report = store_io.import_into_store(pg_store, csv, "generic", name)
    assert (report.rows_kept, report.n_sessions, report.n_items) == (8, 3, 5)
    events = store_io.load_events(pg_store, name, categorical=False)
    assert events["session"].tolist() == ["a"] * 3 + ["b"] * 3 + ["c"] * 2  # b's late row merged in order
    assert events["item"].tolist() == ["x", "y", "x", "z", "y", "x", "q", "r"]
    np.testing.assert_array_equal(events["dwell"], [1.5, np.nan, 3.0, np.nan, 5.0, 6.0, np.nan, 8.0])

    def failing() -> Iterator[tuple[int, Chunk]]:
        yield chunks[0]
        raise DataFormatError("broken on purpose", line=7)

    before = store_info(pg_store).counts
    monkeypatch.setattr(store_io, "iter_source_chunks", lambda *a, **k: ("generic", failing()))
    with pytest.raises(DataFormatError, match="broken on purpose"):
        store_io.import_into_store(pg_store, csv, "generic", unique_name("copy-fail"))
    assert store_info(pg_store).counts == before
    delete_dataset(pg_store, name)
    with pg_store.engine.connect() as conn:
        orphans = conn.execute(text("SELECT COUNT(*) FROM events e LEFT JOIN datasets d ON d.id = e.dataset_id "
                                    "WHERE d.id IS NULL")).scalar()
    assert orphans == 0


def test_a_postgresql_import_waiting_on_a_lock_names_who_holds_it(pg_store: Store, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg

    monkeypatch.setattr(engine, "LOCK_WAIT_MS", 300)  # the real wait is 30 s
    csv = tmp_path / "events.csv"
    csv.write_text("session,item,operation,timestamp\ns1,i1,view,1\ns1,i2,view,2\n")
    url = os.environ[PG_ENV].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, application_name="lock-holder-test") as holder:
        holder.execute("LOCK TABLE sessions IN EXCLUSIVE MODE")  # e.g. another import in progress
        before = store_info(pg_store).counts
        with pytest.raises(StoreError, match=rf"stayed locked for writing for 0.3 s \(waited\) by "
                                             rf"(one of )?server process {holder.info.backend_pid} \(lock-holder-test"):
            store_io.import_into_store(pg_store, csv, "generic", unique_name("locked"), ColumnMapping(
                "session", "item", "operation", "timestamp"))
        holder.rollback()
    assert store_info(pg_store).counts == before
