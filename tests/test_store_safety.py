"""The store's guard rails (issue 13): URLs that would lose data, unwritable places, locks held by
others, ids never taken for names, dead owners of running runs; and no import cycle in the store."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import grimp
import pytest
from click.testing import CliRunner

from embsr_core.cli import main
from embsr_core.store import Store, open_store
from embsr_core.store.models import Dataset
from embsr_core.store.repository import get_dataset, list_datasets


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
