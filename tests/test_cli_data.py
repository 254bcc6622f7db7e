"""`embsr import` and `embsr datasets ...` through click's runner on a temporary SQLite store."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from _store_helpers import DATA
from click.testing import CliRunner

from embsr_core.cli import data_cmds, main
from embsr_core.store import open_store
from embsr_core.store.repository import store_info

JD = DATA / "jd" / "JD_Appliances_sample.txt"
VIEWS = DATA / "diginetica" / "sample_train-item-views.csv"
PURCHASES = DATA / "diginetica" / "train-purchases.csv"

pytestmark = pytest.mark.skipif(not JD.exists(), reason=f"real samples not found at {DATA}")


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


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


def test_import_list_show_delete(db: str) -> None:
    result = run(db, "import", str(JD), "--name", "jd")
    assert result.exit_code == 0, result.output
    assert "rows read 57,332, kept 57,332" in result.output
    assert "sessions 1,000, items 9,134, operations 10" in result.output

    listing = run(db, "datasets", "list")
    assert listing.exit_code == 0 and "jd" in listing.output and "57,332" in listing.output

    show = run(db, "datasets", "show", "jd")
    assert show.exit_code == 0
    assert "sessions:   1,000" in show.output and "items:      9,134" in show.output
    assert "operations: 10" in show.output
    assert "SearchList2Product" in show.output and "27,580" in show.output  # operation distribution

    kept = run(db, "datasets", "delete", "jd", input="n\n")
    assert kept.exit_code == 1 and "Aborted" in kept.output
    assert _counts(db)["events"] == 57_332

    gone = run(db, "datasets", "delete", "jd", "--yes")
    assert gone.exit_code == 0 and "57,332 events" in gone.output
    assert "No datasets yet" in run(db, "datasets", "list").output
    assert set(_counts(db).values()) == {0}


def test_import_diginetica_with_columns_and_fixed_operations(db: str) -> None:
    result = run(db, "import", str(VIEWS), str(PURCHASES), "--format", "generic", "--name", "digi",
                 "--session-col", "session_id", "--item-col", "item_id", "--timestamp-col", "timeframe",
                 "--operation", "view", "--operation", "purchase")
    assert result.exit_code == 0, result.output
    assert "kept 30,416" in result.output and "operations 2" in result.output
    show = run(db, "datasets", "show", "digi")
    assert "view" in show.output and "12,391" in show.output and "18,025" in show.output


def test_operation_count_must_match_paths(db: str) -> None:
    result = CliRunner().invoke(main, ["--db", db, "import", str(VIEWS), str(PURCHASES), "--operation", "view"])
    assert result.exit_code == 2 and "one per path" in result.output


def test_bad_input_and_duplicate_name_are_clear_errors(db: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("879089+5+753+180+180 oops\n")
    result = run(db, "import", str(bad), "--format", "jd")
    assert result.exit_code == 1
    assert str(bad) in result.output and "line 1" in result.output and "expected sku+" in result.output
    assert set(_counts(db).values()) == {0}

    assert run(db, "import", str(JD), "--name", "twice").exit_code == 0
    again = run(db, "import", str(JD), "--name", "twice")
    assert again.exit_code == 1 and "already exists" in again.output
    assert _counts(db)["datasets"] == 1

    missing = run(db, "datasets", "show", "nope")
    assert missing.exit_code == 1 and "no dataset named 'nope'" in missing.output


def test_ctrl_c_cancels_cleanly(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    original = data_cmds.Progress.__call__

    def interrupt_once(self, rows: int, bytes_read: int, total: int) -> None:
        original(self, rows, bytes_read, total)
        if not getattr(self, "interrupted", False):
            self.interrupted = True
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends; the handler sets the cancel token

    monkeypatch.setattr(data_cmds.Progress, "__call__", interrupt_once)
    handler_before = signal.getsignal(signal.SIGINT)
    result = run(db, "import", str(JD), "--name", "cancelled", "--chunk-rows", "5000")
    assert result.exit_code == data_cmds.EXIT_CANCELLED
    assert "nothing was stored" in result.output
    assert set(_counts(db).values()) == {0}
    assert signal.getsignal(signal.SIGINT) is handler_before  # the handler is restored
