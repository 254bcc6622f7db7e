"""`embsr import` on generated files: user logs by position and gap, the ignored-options warning,
and refusals that name the file and line (runs on any clone)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from native_fixtures import write_generic_csv, write_jd, write_taobao

from embsr_core.cli import main
from embsr_core.store import open_store
from embsr_core.store.repository import get_dataset


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def run(db: str, *args: str):
    return CliRunner().invoke(main, ["--db", db, *args], catch_exceptions=False)


def _dataset(db: str, name: str):
    store = open_store(db)
    try:
        return get_dataset(store, name)
    finally:
        store.dispose()


def test_user_log_by_position_with_a_session_gap(db: str, tmp_path: Path) -> None:
    written = write_taobao(tmp_path / "user_behavior.csv", n_users=15, seed=3)
    by_position = ["--format", "generic", "--no-header", "--user-col", "1", "--item-col", "2", "--category-col", "3",
                   "--operation-col", "4", "--timestamp-col", "5"]
    result = run(db, "import", str(written.path), "--name", "ub", *by_position)
    assert result.exit_code == 0, result.output
    assert f"sessions {written.sessions:,}" in result.output
    assert _dataset(db, "ub").n_sessions == written.sessions
    wide = run(db, "import", str(written.path), "--name", "ub-day", *by_position, "--session-gap", "1440")
    assert wide.exit_code == 0, wide.output
    assert _dataset(db, "ub-day").n_sessions < written.sessions


def test_session_gap_needs_a_user_column(db: str, tmp_path: Path) -> None:
    path = write_generic_csv(tmp_path / "log.csv").path
    result = run(db, "import", str(path), "--session-gap", "30")
    assert result.exit_code != 0 and "--user-col" in result.output


def test_column_options_on_a_jd_file_are_ignored_with_a_warning(db: str, tmp_path: Path) -> None:
    written = write_jd(tmp_path / "jd.txt", n_sessions=20)
    result = CliRunner().invoke(main, ["--db", db, "import", str(written.path), "--item-col", "sku"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Warning:" in result.output and "jd file" in result.output and "ignored" in result.output
    plain = run(db, "import", str(written.path), "--name", "jd-2")
    assert "Warning" not in plain.output


def test_header_less_file_without_the_flag_is_refused_with_advice(db: str, tmp_path: Path) -> None:
    written = write_taobao(tmp_path / "ub.csv")
    result = run(db, "import", str(written.path), "--format", "generic")
    assert result.exit_code != 0
    assert str(written.path) in result.output and "--no-header" in result.output


def test_numeric_ids_flag(db: str, tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("session,item,operation,timestamp\na,007,v,1\na,7,v,2\n")
    assert "items 2" in run(db, "import", str(path), "--name", "text-ids").output
    assert "items 1" in run(db, "import", str(path), "--name", "number-ids", "--numeric-ids").output


def test_a_cut_last_line_is_refused_with_the_way_on_then_skipped(db: str, tmp_path: Path) -> None:
    """A user log cut inside its last line (as the Taobao sample is): refused, nothing stored, the message
    names the flag; with it the rest is imported and the report says what was skipped."""
    written = write_taobao(tmp_path / "ub.csv", n_users=12, seed=1)
    data = written.path.read_bytes()
    cut = tmp_path / "cut.csv"
    cut.write_bytes(data + data.splitlines()[0][:9])  # a last line of 3 fields, no line end
    by_position = ["--format", "generic", "--no-header", "--user-col", "1", "--item-col", "2", "--category-col", "3",
                   "--operation-col", "4", "--timestamp-col", "5"]
    lines = data.count(b"\n") + 1
    refused = run(db, "import", str(cut), "--name", "ub", *by_position)
    assert refused.exit_code == 1 and f"line {lines}" in refused.output and "--skip-cut-last-line" in refused.output
    assert "No datasets yet" in run(db, "datasets", "list").output
    result = run(db, "import", str(cut), "--name", "ub", *by_position, "--skip-cut-last-line")
    assert result.exit_code == 0, result.output
    assert "skipped: the last line, cut short" in result.output and f"rows read {lines:,}" in result.output
    dataset = _dataset(db, "ub")
    assert dataset.n_sessions == written.sessions and dataset.n_events == lines - 1
    jd = write_jd(tmp_path / "jd.txt", n_sessions=5).path
    warned = run(db, "import", str(jd), "--name", "jd", "--skip-cut-last-line")
    assert warned.exit_code == 0 and "not to jd files" in warned.output
