"""`embsr import` and `embsr datasets ...` through click's runner on a temporary SQLite store.

The commands run on files the tests generate (any clone); the real samples under ../shared/data add a
second layer with their exact counts and skip, each with its reason, when absent.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

import pytest
from _store_helpers import real_sample
from click.testing import CliRunner
from native_fixtures import write_diginetica, write_jd

from embsr_core.cli import data_cmds, main
from embsr_core.store import open_store
from embsr_core.store.repository import store_info

JD = "jd/JD_Appliances_sample.txt"
VIEWS = "diginetica/sample_train-item-views.csv"
PURCHASES = "diginetica/train-purchases.csv"
TOP_JD_OPERATION = "SearchList2Product"  # the most frequent operation of the real JD sample


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


@dataclass(frozen=True)
class JdFile:
    """A JD file and what an exact import of it gives."""

    path: Path
    rows: int
    sessions: int
    items: int
    operations: int
    top_operation_rows: int  # rows of TOP_JD_OPERATION
    chunk_rows: int  # gives several chunks


@pytest.fixture(params=["generated", "real-sample"])
def jd_file(request: pytest.FixtureRequest, tmp_path: Path) -> JdFile:
    """A generated JD file (any clone), or the real sample (skips when absent)."""
    if request.param == "real-sample":
        return JdFile(real_sample(JD), 57_332, 1_000, 9_134, 10, 27_580, 5_000)
    written = write_jd(tmp_path / "jd.txt", n_sessions=400, seed=7)
    counts = written.extra["operation_counts"]
    return JdFile(written.path, written.rows, written.sessions, written.items, len(counts),
                  counts[TOP_JD_OPERATION], written.rows // 6)


@dataclass(frozen=True)
class Diginetica:
    views: Path
    purchases: Path
    view_rows: int
    purchase_rows: int


@pytest.fixture(params=["generated", "real-sample"])
def digi(request: pytest.FixtureRequest, tmp_path: Path) -> Diginetica:
    """Diginetica-like views and purchases files (any clone), or the real samples (skip when absent)."""
    if request.param == "real-sample":
        return Diginetica(real_sample(VIEWS), real_sample(PURCHASES), 12_391, 18_025)
    views, purchases = write_diginetica(tmp_path / "digi", n_sessions=60)
    return Diginetica(views.path, purchases.path, views.rows, purchases.rows)


def run(db: str, *args: str, input: str | None = None):  # noqa: A002
    return CliRunner().invoke(main, ["--db", db, *args], input=input, catch_exceptions=False)


def _counts(db: str) -> dict[str, int]:
    store = open_store(db)
    try:
        return store_info(store).counts
    finally:
        store.dispose()


@pytest.mark.parametrize("command", [["import"], ["datasets"], ["datasets", "list"], ["datasets", "show"],
                                     ["datasets", "delete"]])
def test_every_command_has_help_with_examples(command: list[str]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output


def test_import_list_show_delete(db: str, jd_file: JdFile) -> None:
    rows = f"{jd_file.rows:,}"
    result = run(db, "import", str(jd_file.path), "--name", "jd")
    assert result.exit_code == 0, result.output
    assert f"rows read {rows}, kept {rows}" in result.output
    assert (f"sessions {jd_file.sessions:,}, items {jd_file.items:,}, operations {jd_file.operations}"
            in result.output)

    listing = run(db, "datasets", "list")
    assert listing.exit_code == 0 and "jd" in listing.output and rows in listing.output

    show = run(db, "datasets", "show", "jd")
    assert show.exit_code == 0
    assert f"sessions:   {jd_file.sessions:,}" in show.output and f"items:      {jd_file.items:,}" in show.output
    assert f"operations: {jd_file.operations}" in show.output
    assert TOP_JD_OPERATION in show.output and f"{jd_file.top_operation_rows:,}" in show.output  # distribution

    kept = run(db, "datasets", "delete", "jd", input="n\n")
    assert kept.exit_code == 1 and "Aborted" in kept.output
    assert _counts(db)["events"] == jd_file.rows

    gone = run(db, "datasets", "delete", "jd", "--yes")
    assert gone.exit_code == 0 and f"{rows} events" in gone.output
    assert "No datasets yet" in run(db, "datasets", "list").output
    assert set(_counts(db).values()) == {0}


def test_import_diginetica_with_columns_and_fixed_operations(db: str, digi: Diginetica) -> None:
    result = run(db, "import", str(digi.views), str(digi.purchases), "--format", "generic", "--name", "digi",
                 "--session-col", "session_id", "--item-col", "item_id", "--timestamp-col", "timeframe",
                 "--operation", "view", "--operation", "purchase")
    assert result.exit_code == 0, result.output
    assert f"kept {digi.view_rows + digi.purchase_rows:,}" in result.output and "operations 2" in result.output
    show = run(db, "datasets", "show", "digi")
    assert "view" in show.output and f"{digi.view_rows:,}" in show.output
    assert f"{digi.purchase_rows:,}" in show.output


def test_operation_count_must_match_paths(db: str, tmp_path: Path) -> None:
    views, purchases = (w.path for w in write_diginetica(tmp_path / "digi"))
    result = CliRunner().invoke(main, ["--db", db, "import", str(views), str(purchases), "--operation", "view"])
    assert result.exit_code == 2 and "one per path" in result.output


def test_bad_input_and_duplicate_name_are_clear_errors(db: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("879089+5+753+180+180 oops\n")
    result = run(db, "import", str(bad), "--format", "jd")
    assert result.exit_code == 1
    assert str(bad) in result.output and "line 1" in result.output and "expected sku+" in result.output
    assert set(_counts(db).values()) == {0}

    jd = write_jd(tmp_path / "jd.txt").path
    assert run(db, "import", str(jd), "--name", "twice").exit_code == 0
    again = run(db, "import", str(jd), "--name", "twice")
    assert again.exit_code == 1 and "already exists" in again.output
    assert _counts(db)["datasets"] == 1

    missing = run(db, "datasets", "show", "nope")
    assert missing.exit_code == 1 and "no dataset named 'nope'" in missing.output


def test_ctrl_c_cancels_cleanly(db: str, jd_file: JdFile, monkeypatch: pytest.MonkeyPatch) -> None:
    original = data_cmds.Progress.__call__

    def interrupt_once(self, rows: int, bytes_read: int, total: int) -> None:
        original(self, rows, bytes_read, total)
        if not getattr(self, "interrupted", False):
            self.interrupted = True
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends; the handler sets the cancel token

    monkeypatch.setattr(data_cmds.Progress, "__call__", interrupt_once)
    handler_before = signal.getsignal(signal.SIGINT)
    result = run(db, "import", str(jd_file.path), "--name", "cancelled", "--chunk-rows", str(jd_file.chunk_rows))
    assert result.exit_code == data_cmds.EXIT_CANCELLED
    assert "nothing was stored" in result.output
    assert set(_counts(db).values()) == {0}
    assert signal.getsignal(signal.SIGINT) is handler_before  # the handler is restored
