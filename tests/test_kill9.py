"""kill -9 of an import and of a training run, at random moments, in a real subprocess (issue 13).

After every kill: SQLite's integrity_check and foreign_key_check pass, the dataset is either absent or
whole (never partial), and a killed training run is marked interrupted the next time the store opens
and resumes to exactly the weights and metrics of an uninterrupted run (one thread).

``EMBSR_KILL9_ROUNDS`` (default 3) sets how many imports are killed (and a third as many training
runs); ``benchmarks/kill9_soak.py`` runs them with many more.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from _store_helpers import PG_ENV, pg_unavailable_reason, unique_name
from click.testing import CliRunner
from sqlalchemy import text

from embsr_core.cli import main
from embsr_core.data.demo import import_synthetic
from embsr_core.store import Store, open_store, runs_repo
from embsr_core.store.models import Run
from embsr_core.store.repository import list_datasets, store_info
from embsr_core.training.checkpoints import load_checkpoint

ROUNDS = int(os.environ.get("EMBSR_KILL9_ROUNDS", "3"))
ROWS, CHUNK = 60_000, 5_000
SEED = int(os.environ.get("EMBSR_KILL9_SEED", "13"))
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}

IMPORT_CHILD = """
import sys
from embsr_core.data.importers import ColumnMapping
from embsr_core.data.store_io import import_into_store
from embsr_core.store import open_store

store = open_store(sys.argv[1])
print("open", flush=True)
def progress(rows, done, total):
    print("chunk", rows, flush=True)
import_into_store(store, sys.argv[2], "generic", sys.argv[3], ColumnMapping("session", "item", "operation", "time"),
                  progress=progress, chunk_rows=int(sys.argv[4]))
print("done", flush=True)
"""


def _events_csv(path: Path, rows: int) -> Path:
    rng = np.random.default_rng(0)
    sessions = np.sort(rng.integers(0, rows // 8, size=rows))
    frame = pd.DataFrame({"session": sessions, "item": rng.integers(0, 3000, size=rows),
                          "operation": rng.choice(["view", "cart", "buy"], size=rows),
                          "time": np.arange(rows, dtype=np.float64)})
    frame.to_csv(path, index=False)
    return path


def _env() -> dict[str, str]:
    return {**os.environ, **ONE_THREAD}


def _kill_after(proc: subprocess.Popen[str], marker: str, skip: int, delay: float) -> bool:
    """SIGKILL ``proc`` ``delay`` s after the ``skip``-th output line containing ``marker``; False if it ended first."""
    assert proc.stdout is not None
    seen = 0
    for line in proc.stdout:
        if marker in line:
            seen += 1
            if seen > skip:
                time.sleep(delay)
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return proc.returncode == -signal.SIGKILL
    proc.wait()
    return False


def _sqlite_is_sound(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


def _nothing_partial(store: Store, prefix: str = "") -> None:
    """Every imported dataset (named ``prefix…``) is whole: its counts match its rows; no row belongs to no dataset."""
    with store.engine.connect() as conn:
        for ds in list_datasets(store):
            if not ds.name.startswith(prefix):
                continue
            got = [conn.execute(text(f"SELECT COUNT(*) FROM {t} WHERE dataset_id = :d"), {"d": ds.id}).scalar()
                   for t in ("events", "sessions", "items")]
            assert got == [ds.n_events, ds.n_sessions, ds.n_items], ds.name
            assert ds.n_events > 0
        for table in ("events", "sessions", "items", "operations"):
            orphans = conn.execute(text(f"SELECT COUNT(*) FROM {table} t LEFT JOIN datasets d "
                                        "ON d.id = t.dataset_id WHERE d.id IS NULL")).scalar()
            assert orphans == 0, table


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _events_csv(tmp_path_factory.mktemp("kill9") / "events.csv", ROWS)


def _import_and_kill(url: str, csv: Path, name: str, rng: random.Random) -> bool:
    proc = subprocess.Popen([sys.executable, "-c", IMPORT_CHILD, url, str(csv), name, str(CHUNK)],
                            stdout=subprocess.PIPE, text=True, env=_env())
    return _kill_after(proc, "chunk", rng.randrange(ROWS // CHUNK - 1), rng.uniform(0.0, 0.05))


def test_kill9_during_sqlite_import_leaves_nothing_or_everything(tmp_path: Path, csv_file: Path) -> None:
    path = tmp_path / "import.db"
    url = f"sqlite:///{path}"
    rng = random.Random(SEED)
    killed = 0
    for round_ in range(ROUNDS):
        killed += _import_and_kill(url, csv_file, f"import-{round_}", rng)
        _sqlite_is_sound(path)
        store = open_store(url)
        try:
            _nothing_partial(store)
        finally:
            store.dispose()
    assert killed >= 1  # at least one kill landed inside an import
    done = subprocess.run([sys.executable, "-c", IMPORT_CHILD, url, str(csv_file), "whole", str(CHUNK)],
                          capture_output=True, text=True, env=_env())
    assert done.returncode == 0, done.stderr  # the store is usable after the kills
    store = open_store(url)
    try:
        assert {d.name: d.n_events for d in list_datasets(store)}["whole"] == ROWS
        _nothing_partial(store)
    finally:
        store.dispose()
    _sqlite_is_sound(path)


def test_kill9_during_postgresql_copy_leaves_nothing(csv_file: Path) -> None:
    reason = pg_unavailable_reason()
    if reason:
        pytest.skip(reason)
    url = os.environ[PG_ENV]
    store = open_store(url)
    try:
        before = store_info(store).counts
        name = unique_name("kill9")
        assert _import_and_kill(url, csv_file, name, random.Random(SEED))
        deadline = time.monotonic() + 10  # the server notices the dead client and rolls back
        while store_info(store).counts != before and time.monotonic() < deadline:
            time.sleep(0.2)
        assert store_info(store).counts == before
        assert name not in {d.name for d in list_datasets(store)}
        _nothing_partial(store, prefix="kill9-")  # a shared server also holds other tests' datasets
    finally:
        store.dispose()


# --- training ------------------------------------------------------------------------------------

# Long enough that a kill at most 0.3 s after the second validation lands inside training on a fast
# machine too (with 4 epochs a quiet machine could finish the run, store it and be killed on exit).
TRAIN = ["-m", "STAMP", "-p", "embedding_dim=8", "--max-epochs", "12", "--patience", "12", "--batch-size", "64",
         "--seed", "7"]


def _cli(url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "embsr_core.cli", "--db", url, *args]


@pytest.fixture
def train_store(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    path = tmp_path / "train.db"
    store = open_store(f"sqlite:///{path}")
    import_synthetic(store, "k9", n_sessions=160, n_items=60, n_categories=5, seed=1)
    store.dispose()
    yield f"sqlite:///{path}", path


def _run_by_name(url: str, name: str) -> tuple[Run, dict[str, dict[str, float]]]:
    """The run and its test metrics; opening the store marks a run whose process is gone as interrupted."""
    store = open_store(url)
    try:
        run = next(r for r in runs_repo.list_runs(store) if r.name == name)
        return run, runs_repo.final_metrics(store, run.id)
    finally:
        store.dispose()


def test_kill9_during_training_then_resume_equals_the_uninterrupted_run(train_store: tuple[str, Path]) -> None:
    url, path = train_store
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the subprocesses (OMP_NUM_THREADS=1): same kernels, same bits
    try:
        full = CliRunner().invoke(main, ["--db", url, "train", "k9", *TRAIN, "--name", "full"])
    finally:
        torch.set_num_threads(threads)
    assert full.exit_code == 0, full.output[-2000:]
    full_run, full_metrics = _run_by_name(url, "full")

    rng = random.Random(SEED)
    for round_ in range(max(1, ROUNDS // 3)):
        name = f"killed-{round_}"
        proc = subprocess.Popen(_cli(url, "train", "k9", *TRAIN, "--name", name), stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, env=_env())
        assert _kill_after(proc, "valid/oracle", rng.randrange(2), rng.uniform(0.0, 0.3)), "the run ended first"
        _sqlite_is_sound(path)
        killed, _ = _run_by_name(url, name)
        assert killed.status == "interrupted", killed.status  # not `running` forever
        resumed = subprocess.run(_cli(url, "resume", str(killed.id)), capture_output=True, text=True, env=_env())
        assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
        run, metrics = _run_by_name(url, name)
        assert run.status == "finished" and run.epochs_done == full_run.epochs_done
        assert run.best_epoch == full_run.best_epoch
        assert metrics == full_metrics
        ours = load_checkpoint(run.best_checkpoint_path, run.best_checkpoint_sha256)["model"]
        theirs = load_checkpoint(full_run.best_checkpoint_path, full_run.best_checkpoint_sha256)["model"]
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    _sqlite_is_sound(path)
