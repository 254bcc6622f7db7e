"""Running one odd or malformed file through the real import and saying how it went.

Shared by the fuzz tests and ``benchmarks/fault_table.py``: both must judge an outcome the same way.
An import either stores exactly what the file holds or is refused with a message naming the file,
the line / row / column and what was expected; in every refusal the store is left as it was.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text

from embsr_core.data.errors import DataFormatError
from embsr_core.data.importers import ColumnMapping, Source
from embsr_core.data.store_io import import_into_store
from embsr_core.store import Store

OUTCOMES = ("refused clearly", "refused unclearly", "wrongly accepted", "traceback", "valid file refused",
            "partial state", "imported exactly")
TABLES = ("datasets", "sessions", "items", "operations", "events")
# Refusals about the whole file, where no line or column applies.
FILE_LEVEL = ("the file is empty", "only blank lines", "no micro-behavior to import", "not a readable Parquet",
              "cannot read the Parquet data", "the compressed file is empty", "not a readable gzip",
              "no data lines", "unrecognised content")


@dataclass(frozen=True)
class Expect:
    """What an exact import gives (``refuse`` False), that the file must be refused (True), or that
    either is right (None: a refusal must still be clear); a refusal of a whole file (empty, binary,
    a link loop) need not name a line (``located`` False)."""

    refuse: bool | None = False
    rows: int | None = None
    sessions: int | None = None
    items: int | None = None
    located: bool = True


@dataclass
class Result:
    outcome: str
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def store_state(store: Store) -> tuple[tuple[int, ...], str, int]:
    """(row count of each table, integrity_check answer, foreign-key violations)."""
    with store.engine.connect() as conn:
        counts = tuple(int(conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()) for t in TABLES)
        if conn.dialect.name == "sqlite":
            integrity = str(conn.execute(text("PRAGMA integrity_check")).scalar_one())
            fk = len(conn.execute(text("PRAGMA foreign_key_check")).all())
        else:
            integrity, fk = "ok", 0
    return counts, integrity, fk


def is_clear(exc: DataFormatError, paths: Sequence[Path], located: bool) -> bool:
    """The message names one of the files, a line / row / column (unless file-level) and an expectation."""
    message = str(exc)
    names_file = any(str(p) in message for p in paths)
    where = exc.line is not None or exc.column is not None or re.search(r"\brow \d+", message) is not None
    file_level = any(fragment in message for fragment in FILE_LEVEL)
    return names_file and (where or not located or file_level) and "expected" in message


def attempt(store: Store, name: str, sources: Sequence[str | Path | Source], fmt: str = "auto",
            mapping: ColumnMapping | None = None, expect: Expect | None = None, *,
            chunk_rows: int = 250_000) -> Result:
    """Import ``sources`` as dataset ``name`` and classify the outcome against ``expect``."""
    expect = expect or Expect()
    srcs = [Source.of(s) for s in sources]
    before = store_state(store)
    try:
        report = import_into_store(store, srcs, fmt, name, mapping, chunk_rows=chunk_rows)
    except DataFormatError as exc:
        after = store_state(store)
        if after != before:
            return Result("partial state", str(exc), {"before": before, "after": after})
        if expect.refuse is False:
            return Result("valid file refused", str(exc))
        clear = is_clear(exc, [s.path for s in srcs], expect.located)
        return Result("refused clearly" if clear else "refused unclearly", str(exc))
    except Exception as exc:  # anything else is a traceback the user would see
        after = store_state(store)
        outcome = "partial state" if after != before else "traceback"
        return Result(outcome, f"{type(exc).__name__}: {exc}")
    after = store_state(store)
    if after[1] != "ok" or after[2]:
        return Result("partial state", "integrity check failed after an import", {"after": after})
    got = {"rows": report.rows_kept, "sessions": report.n_sessions, "items": report.n_items}
    if expect.refuse:
        return Result("wrongly accepted", f"imported {got}", got)
    wanted = {k: getattr(expect, k) for k in got if getattr(expect, k) is not None}
    wrong = {k: (got[k], v) for k, v in wanted.items() if got[k] != v}
    if wrong:
        return Result("wrongly accepted", f"imported (got, expected) {wrong}", got)
    return Result("imported exactly", "", got)
