"""Streaming a source into the store (one transaction) and reading a dataset back fast.

Why raw DBAPI and not the ORM: SQLAlchemy dict inserts and ``DataFrame.to_sql`` reach ~120 k rows/s;
``pd.factorize`` per chunk + multi-row ``VALUES`` statements (~500 rows each) on the DBAPI cursor reach
~400 k rows/s on SQLite, and a cursor read into ``np.fromiter`` ~1 M rows/s (``read_sql``: ~350 k rows/s,
2 GB). PostgreSQL gets ``COPY`` instead (binary for the events), which multi-row INSERTs trailed 5x.

Ids: a dataset's sessions and items get contiguous ids ``base+1 .. base+n`` (base = the table's max id
when the import starts, under the write lock), so reading back maps ids by subtraction. A session's
rows may be split across chunks or files: the chunk's last session is carried into the next chunk, and
rows of a session already written ("late" rows, e.g. purchases in a second file) are staged in a temp
table and merged into their sessions with one window-function statement at the end.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from embsr_core.data.errors import DataFormatError, DatasetExistsError, ImportCancelled
from embsr_core.data.importers import DEFAULT_CHUNK_ROWS, ColumnMapping, Source, get_importer, iter_source_chunks
from embsr_core.store import engine
from embsr_core.store.diagnose import explain_database_error, is_database_error
from embsr_core.store.engine import Store
from embsr_core.store.errors import StoreError
from embsr_core.store.models import Dataset
from embsr_core.store.repository import check_dataset_name, get_dataset

ROWS_PER_STATEMENT = 500
SQLITE_IMPORT_CACHE_KIB = 256 * 1024  # page cache while importing: fewer spills of the unique indexes
ProgressCallback = Callable[[int, int, int], None]  # (rows read, bytes read, total bytes)


class CancelToken(Protocol):
    def is_set(self) -> bool: ...


@dataclass
class ImportReport:
    """What an import did; also stored as the dataset's ``import_report`` JSON."""

    dataset_id: int
    dataset_name: str
    format: str
    sources: list[str]
    rows_read: int = 0
    rows_kept: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    n_sessions: int = 0
    n_items: int = 0
    n_operations: int = 0  # distinct operations seen
    operation_counts: dict[str, int] = field(default_factory=dict)
    late_rows: int = 0  # rows merged into a session already written (sessions split across files)
    has_category: bool = False
    has_dwell: bool = False
    seconds: float = 0.0

    @property
    def rows_skipped(self) -> int:
        return sum(self.skipped.values())

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else float("inf")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _placeholder(paramstyle: str) -> str:
    if paramstyle == "qmark":
        return "?"
    if paramstyle in ("format", "pyformat"):
        return "%s"
    raise DataFormatError(f"unsupported DBAPI paramstyle {paramstyle!r}; expected qmark, format or pyformat")


class _BulkInserter:
    """Multi-row ``INSERT ... VALUES (...), (...)`` on a DBAPI cursor; constants go in as literals.

    Used for SQLite (and any other DBAPI); PostgreSQL imports go through :class:`_PgCopier`.
    """

    def __init__(self, dbapi_connection: Any, paramstyle: str):
        self.cursor = dbapi_connection.cursor()
        self.mark = _placeholder(paramstyle)
        self._sql: dict[tuple[str, tuple[str, ...], tuple[str, ...], int], str] = {}

    def _statement(self, table: str, columns: Sequence[str], row_sql: tuple[str, ...], rows: int) -> str:
        key = (table, tuple(columns), row_sql, rows)
        sql = self._sql.get(key)
        if sql is None:
            one = "(" + ",".join(self.mark if x == "?" else x for x in row_sql) + ")"
            sql = f'INSERT INTO {table} ({",".join(columns)}) VALUES ' + ",".join([one] * rows)
            self._sql[key] = sql
        return sql

    def insert(self, table: str, columns: Sequence[str], arrays: Sequence[np.ndarray | list[Any] | str]) -> None:
        """``arrays[k]`` is a column of values, or a str: an SQL literal for every row (e.g. the dataset id)."""
        params = [a for a in arrays if not isinstance(a, str)]
        if not params or len(params[0]) == 0:
            return
        n = len(params[0])
        row_sql = tuple(a if isinstance(a, str) else "?" for a in arrays)
        lists = [a.tolist() if isinstance(a, np.ndarray) else list(a) for a in params]
        flat = list(itertools.chain.from_iterable(zip(*lists, strict=True)))
        width = len(lists)
        for start in range(0, n, ROWS_PER_STATEMENT):
            rows = min(ROWS_PER_STATEMENT, n - start)
            sql = self._statement(table, columns, row_sql, rows)
            self.cursor.execute(sql, flat[start * width : (start + rows) * width])

    def pause(self) -> None:
        """Nothing is kept back: every insert has run (the PostgreSQL copier's counterpart waits here)."""

    def close(self, error: BaseException | None = None) -> None:
        self.cursor.close()


_PG_BINARY_TYPES = {"integer": ">i4", "bigint": ">i8", "smallint": ">i2", "double precision": ">f8", "real": ">f4"}
_PGCOPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
_PGCOPY_TRAILER = (-1).to_bytes(2, "big", signed=True)


class _PgCopier:
    """PostgreSQL ``COPY ... FROM STDIN`` inside the import's transaction (same atomicity as INSERT).

    All-numeric tables (events, the late-rows table) go as binary COPY, encoded with NumPy in one
    vectorised pass per chunk (a structured array of big-endian length/value pairs per row); tables
    with text go as text COPY through psycopg's row writer. The events COPY stays open across chunks
    and is fed by a writer thread, so the server stores one chunk while this process parses the next;
    since a connection runs one COPY at a time, sessions and items are kept until :meth:`pause`.
    Multi-row INSERTs reached ~75 k rows/s here.
    """

    STREAMED = "events"
    DEFERRED = frozenset({"sessions", "items"})

    def __init__(self, dbapi_connection: Any):
        self.connection = dbapi_connection
        self.cursor = dbapi_connection.cursor()
        self._types: dict[str, dict[str, str]] = {}
        self._stream: Any = None  # (context manager, Copy) of the open events COPY
        self._stream_key: tuple[str, ...] = ()
        self._deferred: list[tuple[str, Sequence[str], Sequence[Any]]] = []
        for table in ("events", "sessions", "items", "operations"):
            self.column_types(table)  # looked up now: no query may run while the events COPY is open

    def column_types(self, table: str) -> dict[str, str]:
        """Column name → ``format_type`` of ``table`` (temp tables included), cached."""
        got = self._types.get(table)
        if got is None:
            self.pause()
            self.cursor.execute(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped", [table]
            )
            got = {name: kind for name, kind in self.cursor.fetchall()}
            self._types[table] = got
        return got

    def insert(self, table: str, columns: Sequence[str], arrays: Sequence[np.ndarray | list[Any] | str]) -> None:
        """Same contract as :meth:`_BulkInserter.insert` (a str is an SQL literal for every row)."""
        params = [a for a in arrays if not isinstance(a, str)]
        if not params or len(params[0]) == 0:
            return
        if table in self.DEFERRED:
            self._deferred.append((table, columns, arrays))
        else:
            self._write(table, columns, arrays, len(params[0]))

    def _write(self, table: str, columns: Sequence[str], arrays: Sequence[Any], n: int) -> None:
        names = [c.strip('"') for c in columns]
        types = self.column_types(table)
        binary = [_PG_BINARY_TYPES.get(types.get(name, "")) for name in names]
        values = [_literal_column(a, n) if isinstance(a, str) else a for a in arrays]
        sql = f'COPY {table} ({",".join(columns)}) FROM STDIN'
        if not all(binary):
            self.pause()
            lists = [v.tolist() if isinstance(v, np.ndarray) else list(v) for v in values]
            with self.cursor.copy(sql) as copy:
                for row in zip(*lists, strict=True):
                    copy.write_row(row)
            return
        if table == self.STREAMED:
            copy = self._open_stream(sql)
            for block in _binary_rows(values, binary):  # type: ignore[arg-type]
                copy.write(block)
            return
        self.pause()
        with self.cursor.copy(sql + " (FORMAT BINARY)") as copy:
            copy.write(_PGCOPY_HEADER)
            for block in _binary_rows(values, binary):  # type: ignore[arg-type]
                copy.write(block)
            copy.write(_PGCOPY_TRAILER)

    def _open_stream(self, sql: str) -> Any:
        if self._stream is not None and self._stream_key != (sql,):
            self._close_stream()
        if self._stream is None:
            from psycopg.copy import QueuedLibpqWriter

            context = self.cursor.copy(sql + " (FORMAT BINARY)", writer=QueuedLibpqWriter(self.cursor))
            copy = context.__enter__()
            copy.write(_PGCOPY_HEADER)
            self._stream, self._stream_key = (context, copy), (sql,)
        return self._stream[1]

    def _close_stream(self, error: BaseException | None = None) -> None:
        context, copy = self._stream
        self._stream = None
        if error is None:
            copy.write(_PGCOPY_TRAILER)
            context.__exit__(None, None, None)  # waits until the server has stored every row
        else:
            context.__exit__(type(error), error, error.__traceback__)  # the server aborts the COPY

    def pause(self) -> None:
        """End the open events COPY and write the kept sessions and items: then SQL may run again."""
        if self._stream is not None:
            self._close_stream()
        deferred, self._deferred = self._deferred, []
        for table, columns, arrays in deferred:
            n = next(len(a) for a in arrays if not isinstance(a, str))
            self._write(table, columns, arrays, n)

    def close(self, error: BaseException | None = None) -> None:
        try:
            if self._stream is not None:
                self._close_stream(error)
        finally:
            self.cursor.close()


def _literal_column(literal: str, n: int) -> np.ndarray:
    """An SQL literal repeated ``n`` times: NULL → an all-None column, a number → a constant array."""
    if literal.upper() == "NULL":
        return np.full(n, None, dtype=object)
    number = float(literal)
    return np.full(n, int(number) if number.is_integer() else number)


def _binary_rows(values: Sequence[np.ndarray | list[Any]], dtypes: Sequence[str]) -> Iterator[bytes]:
    """Binary COPY tuples of the columns; None in a column is NULL (rows grouped by which are NULL)."""
    n = len(values[0])
    nulls = np.zeros((len(values), n), dtype=bool)
    numeric = []
    for k, (column, dtype) in enumerate(zip(values, dtypes, strict=True)):
        array = np.asarray(column)
        if array.dtype == object:
            nulls[k] = np.fromiter((v is None for v in array), bool, n)
            array = np.where(nulls[k], 0, array).astype(np.float64 if "f" in dtype else np.int64)
        numeric.append(array)
    if nulls.any():
        pattern = (nulls.astype(np.int64) << np.arange(len(values), dtype=np.int64)[:, None]).sum(axis=0)
        groups = [np.flatnonzero(pattern == key) for key in np.unique(pattern)]
    else:
        groups = [np.arange(n)]
    for rows in groups:
        null_here = nulls[:, rows[0]]
        fields: list[tuple[str, str]] = [("count", ">i2")]
        for k, dtype in enumerate(dtypes):
            fields.append((f"len{k}", ">i4"))
            if not null_here[k]:
                fields.append((f"val{k}", dtype))
        out = np.empty(len(rows), dtype=np.dtype(fields))
        out["count"] = len(dtypes)
        for k, dtype in enumerate(dtypes):
            if null_here[k]:
                out[f"len{k}"] = -1
            else:
                out[f"len{k}"] = np.dtype(dtype).itemsize
                out[f"val{k}"] = numeric[k][rows]
        yield out.tobytes()


@dataclass
class _Ids:
    """External id -> dense local id (1-based, in order of first appearance), across chunks."""

    index: dict[str, int] = field(default_factory=dict)

    def map(self, uniques: Any) -> tuple[np.ndarray, np.ndarray]:
        """(local ids of ``uniques``, boolean mask of the ones seen for the first time)."""
        keys = [str(u) for u in (uniques.tolist() if hasattr(uniques, "tolist") else uniques)]
        out = np.empty(len(keys), dtype=np.int64)
        new = np.zeros(len(keys), dtype=bool)
        index = self.index
        for k, key in enumerate(keys):
            got = index.get(key)
            if got is None:
                got = len(index) + 1
                index[key] = got
                new[k] = True
            out[k] = got
        return out, new

    def __len__(self) -> int:
        return len(self.index)


class _DatasetWriter:
    """Writes chunks of one dataset inside the caller's transaction."""

    def __init__(self, conn: Connection, dataset_id: int, operations: Sequence[str]):
        self.conn = conn
        self.dbapi = conn.connection.dbapi_connection
        self.dialect = conn.dialect.name
        self.cursor = self.dbapi.cursor()
        self.bulk: _BulkInserter | _PgCopier = (
            _PgCopier(self.dbapi) if self.dialect == "postgresql"
            else _BulkInserter(self.dbapi, conn.dialect.paramstyle)
        )
        self.mark = _placeholder(conn.dialect.paramstyle)
        self.dataset_id = dataset_id
        self.lit_ds = str(int(dataset_id))
        if self.dialect == "postgresql":  # explicit ids below: keep concurrent imports out meanwhile
            self.cursor.execute(f"SET LOCAL lock_timeout = {int(engine.LOCK_WAIT_MS)}")  # then: who holds it
            self.cursor.execute("LOCK TABLE sessions, items IN EXCLUSIVE MODE")
        self.saved_cache: int | None = None
        if self.dialect == "sqlite":
            self.cursor.execute("PRAGMA cache_size")
            self.saved_cache = int(self.cursor.fetchone()[0])
            self.cursor.execute(f"PRAGMA cache_size = -{SQLITE_IMPORT_CACHE_KIB}")
        self.session_base = self._max_id("sessions")
        self.item_base = self._max_id("items")
        self.sessions = _Ids()
        self.items = _Ids()
        self.ops = _Ids()
        self.ops.map(list(operations))  # a format's fixed vocabulary keeps its code order
        self.op_names_fixed = len(operations)
        self.completed = np.zeros(1024, dtype=bool)  # by local session id: already written
        self.carry: pd.DataFrame | None = None
        self.late_rows = 0
        self.seq = 0
        self.op_counts = np.zeros(1, dtype=np.int64)
        self.has_category = False
        self.has_dwell = False
        self.rows_kept = 0

    def _max_id(self, table: str) -> int:
        self.cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")
        return int(self.cursor.fetchone()[0])

    # -- chunks -------------------------------------------------------------------------------
    def add(self, frame: pd.DataFrame, *, final: bool = False) -> None:
        if self.carry is not None and len(self.carry):
            frame = pd.concat([self.carry, frame], ignore_index=True)
            self.carry = None
        if not len(frame):
            return
        s_codes, s_uniques = pd.factorize(frame["session"], sort=False)
        s_local, _ = self.sessions.map(s_uniques)
        if len(self.sessions) >= len(self.completed):
            self.completed = np.r_[self.completed, np.zeros(len(self.sessions) + len(self.completed), dtype=bool)]
        sid = s_local[s_codes]
        if not final:  # the chunk's last session may go on in the next chunk
            tail = sid == sid[-1]
            if tail.all():
                self.carry = frame
                return
            self.carry = frame[tail]
            frame, sid = frame[~tail], sid[~tail]
        late = self.completed[sid]
        if late.any():
            self._stage_late(frame[late], sid[late])
            frame, sid = frame[~late], sid[~late]
        if len(frame):
            self._write(frame, sid)

    def _codes(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(item ids, operation codes) of the rows; new items and operations are registered (and stored)."""
        i_codes, i_uniques = pd.factorize(frame["item"], sort=False)
        i_local, i_new = self.items.map(i_uniques)
        if i_new.any():
            ext = [str(u) for u in np.asarray(i_uniques, dtype=object)[i_new]]
            category: list[Any] = [None] * len(ext)
            if "category" in frame.columns:
                _, first = np.unique(i_codes, return_index=True)  # first row of each unique, in code order
                cats = frame["category"].iloc[first].to_numpy(dtype=object)[i_new]
                category = [None if pd.isna(c) else str(c) for c in cats]
                self.has_category = self.has_category or any(c is not None for c in category)
            self.bulk.insert(
                "items", ("id", "dataset_id", "external_id", "category"),
                (i_local[i_new] + self.item_base, self.lit_ds, ext, category),
            )
        o_codes, o_uniques = pd.factorize(frame["operation"], sort=False)
        o_local, _ = self.ops.map(o_uniques)
        return i_local[i_codes] + self.item_base, o_local[o_codes]

    def _write(self, frame: pd.DataFrame, sid: np.ndarray) -> None:
        keys = [frame["timestamp"].to_numpy()]
        if "step" in frame.columns:
            keys.insert(0, frame["step"].to_numpy())
        order = np.lexsort([*keys, sid])  # session, then time, then step; stable
        frame = frame.iloc[order]
        sid = sid[order]
        starts = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]])
        lengths = np.diff(np.r_[starts, len(sid)])
        position = np.arange(len(sid)) - np.repeat(starts, lengths)
        new_sessions = sid[starts]
        self.completed[new_sessions] = True
        ext = [str(u) for u in frame["session"].iloc[starts].tolist()]
        self.bulk.insert("sessions", ("id", "dataset_id", "external_id"),
                         (new_sessions + self.session_base, self.lit_ds, ext))
        item_ids, op_codes = self._codes(frame)
        self._count_ops(op_codes)
        dwell: np.ndarray | str = "NULL"
        if "dwell" in frame.columns:
            d = frame["dwell"].to_numpy(dtype=np.float64)
            nan = np.isnan(d)
            self.has_dwell = self.has_dwell or not nan.all()
            dwell = np.where(nan, None, d) if nan.any() else d
        self.bulk.insert(
            "events",
            ("dataset_id", "session_id", "position", "item_id", "operation_code", '"timestamp"', "dwell"),
            (self.lit_ds, sid + self.session_base, position, item_ids, op_codes,
             frame["timestamp"].to_numpy(dtype=np.float64), dwell),
        )
        self.rows_kept += len(frame)

    def _count_ops(self, op_codes: np.ndarray) -> None:
        counts = np.bincount(op_codes, minlength=len(self.ops) + 1)
        if len(counts) > len(self.op_counts):
            self.op_counts = np.r_[self.op_counts, np.zeros(len(counts) - len(self.op_counts), np.int64)]
        self.op_counts[: len(counts)] += counts

    # -- sessions split across chunks or files ------------------------------------------------
    def _stage_late(self, frame: pd.DataFrame, sid: np.ndarray) -> None:
        keys = [frame["timestamp"].to_numpy()]
        if "step" in frame.columns:
            keys.insert(0, frame["step"].to_numpy())
        order = np.lexsort([*keys, sid])
        frame, sid = frame.iloc[order], sid[order]
        if self.late_rows == 0:
            self.bulk.pause()
            self.cursor.execute(
                "CREATE TEMPORARY TABLE embsr_import_late (session_id INTEGER, item_id INTEGER, "
                'operation_code INTEGER, "timestamp" FLOAT, dwell FLOAT, src INTEGER, seq BIGINT)'
            )
        item_ids, op_codes = self._codes(frame)
        self._count_ops(op_codes)
        dwell: np.ndarray | str = "NULL"
        if "dwell" in frame.columns:
            d = frame["dwell"].to_numpy(dtype=np.float64)
            self.has_dwell = self.has_dwell or not np.isnan(d).all()
            dwell = np.where(np.isnan(d), None, d)
        seq = np.arange(self.seq, self.seq + len(frame))
        self.seq += len(frame)
        self.bulk.insert(
            "embsr_import_late",
            ("session_id", "item_id", "operation_code", '"timestamp"', "dwell", "src", "seq"),
            (sid + self.session_base, item_ids, op_codes, frame["timestamp"].to_numpy(dtype=np.float64), dwell,
             "1", seq),
        )
        self.late_rows += len(frame)
        self.rows_kept += len(frame)

    def _merge_late(self) -> None:
        """Re-number the positions of sessions that got late rows: time, then earlier rows first."""
        ds, m = self.lit_ds, self.mark
        touched = "SELECT DISTINCT session_id FROM embsr_import_late WHERE src = 1"
        c = self.cursor
        c.execute(
            'INSERT INTO embsr_import_late (session_id, item_id, operation_code, "timestamp", dwell, src, seq) '
            f'SELECT session_id, item_id, operation_code, "timestamp", dwell, 0, position FROM events '
            f"WHERE dataset_id = {m} AND session_id IN ({touched})",
            [self.dataset_id],
        )
        c.execute(f"DELETE FROM events WHERE dataset_id = {m} AND session_id IN ({touched})", [self.dataset_id])
        c.execute(
            'INSERT INTO events (dataset_id, session_id, position, item_id, operation_code, "timestamp", dwell) '
            f"SELECT {ds}, session_id, ROW_NUMBER() OVER (PARTITION BY session_id "
            'ORDER BY "timestamp", src, seq) - 1, item_id, operation_code, "timestamp", dwell '
            "FROM embsr_import_late"
        )
        c.execute("DROP TABLE embsr_import_late")

    def finish(self) -> None:
        if self.carry is not None:
            self.add(pd.DataFrame(columns=self.carry.columns), final=True)
        self.bulk.pause()  # every row is on the server before the SQL below
        if self.late_rows:
            self._merge_late()
        if self.dialect == "postgresql":  # explicit ids do not move the serial sequences
            for table in ("sessions", "items"):
                self.cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
                )
        ops = self.operation_rows()
        self.bulk.insert("operations", ("dataset_id", "code", "name"),
                         (self.lit_ds, [c for c, _ in ops], [n for _, n in ops]))

    def close(self, error: BaseException | None = None) -> None:
        """End an open COPY (aborted when ``error``) and give the pooled connection its page cache back."""
        try:
            self.bulk.close(error)
        finally:
            try:
                if self.saved_cache is not None:
                    self.cursor.execute(f"PRAGMA cache_size = {self.saved_cache}")
            finally:
                self.cursor.close()

    def operation_rows(self) -> list[tuple[int, str]]:
        return [(code, name) for name, code in self.ops.index.items()]

    def operation_counts(self) -> dict[str, int]:
        names = {code: name for name, code in self.ops.index.items()}
        return {names[c]: int(n) for c, n in enumerate(self.op_counts) if c in names and n > 0}


def _sources(sources: str | Path | Source | Iterable[str | Path | Source]) -> list[Source]:
    if isinstance(sources, str | Path | Source):
        return [Source.of(sources)]
    out = [Source.of(s) for s in sources]
    if not out:
        raise DataFormatError("no input file given; expected at least one path")
    return out


def import_into_store(
    store: Store,
    sources: str | Path | Source | Iterable[str | Path | Source],
    format: str = "auto",  # noqa: A002  (the user-facing word)
    dataset_name: str | None = None,
    mapping: ColumnMapping | None = None,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> ImportReport:
    """Import ``sources`` as a new dataset in one transaction; returns the report.

    Raises :class:`DataFormatError` (bad input; :class:`DatasetExistsError` for a taken name) or
    :class:`ImportCancelled` when ``cancel.is_set()``; in every failure the store is left unchanged.
    """
    started = time.perf_counter()
    srcs = _sources(sources)
    try:  # an empty --name is refused, not replaced by the file's name
        name = check_dataset_name(srcs[0].path.stem if dataset_name is None else dataset_name)
    except ValueError as exc:
        raise DataFormatError(str(exc)) from None
    _refuse_taken_name(store, name)
    resolved_format, chunks = iter_source_chunks(srcs, format, mapping, chunk_rows=chunk_rows)

    report = ImportReport(0, name, resolved_format, [str(s.path) for s in srcs])
    try:
        _write_dataset(store, name, resolved_format, chunks, srcs, report, progress, cancel, started)
    except (DataFormatError, ImportCancelled):
        raise
    except Exception as exc:  # locked, read-only, a value the database refuses: a message, not a traceback
        if not is_database_error(exc):
            raise
        explained = explain_database_error(store, exc)
        if "NUL character" in explained:
            raise DataFormatError(explained, path=srcs[0].path) from None
        raise StoreError(explained) from None
    report.seconds = time.perf_counter() - started
    return report


def _write_dataset(
    store: Store,
    name: str,
    resolved_format: str,
    chunks: Iterable[tuple[int, Any]],
    srcs: list[Source],
    report: ImportReport,
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
    started: float,
) -> None:
    """The one transaction of an import: the dataset row, every chunk, the counts; rolled back on any error."""
    with store.engine.begin() as conn:
        try:
            dataset_id = conn.execute(
                insert(Dataset).values(
                    name=name, source_format=resolved_format, source_path="; ".join(report.sources),
                    imported_at=datetime.now(), n_sessions=0, n_items=0, n_operations=0, n_events=0,
                )
            ).inserted_primary_key[0]
        except IntegrityError:
            raise DatasetExistsError(_taken_message(name)) from None
        report.dataset_id = int(dataset_id)
        writer = _DatasetWriter(conn, report.dataset_id, get_importer(resolved_format).OPERATIONS)
        try:
            _fill(writer, chunks, srcs, report, progress, cancel)
        except BaseException as exc:  # Ctrl-C included: the COPY is aborted, then the transaction rolls back
            writer.close(exc)
            raise
        writer.close()
        report.seconds = time.perf_counter() - started
        conn.execute(
            update(Dataset).where(Dataset.id == report.dataset_id).values(
                n_sessions=report.n_sessions, n_items=report.n_items, n_operations=len(writer.ops),
                n_events=report.rows_kept, import_report=report.as_dict(),
            )
        )


def _fill(
    writer: _DatasetWriter,
    chunks: Iterable[tuple[int, Any]],
    srcs: list[Source],
    report: ImportReport,
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
) -> None:
    """Stream every chunk into ``writer`` and complete ``report``; raises to roll back."""
    name = report.dataset_name
    total_bytes = sum(s.path.stat().st_size for s in srcs if s.path.is_file())
    done_bytes = 0
    current = -1
    for index, chunk in chunks:
        if cancel is not None and cancel.is_set():
            raise ImportCancelled(f"import of {name!r} cancelled; nothing was stored")
        if index != current:
            if current >= 0:
                done_bytes += srcs[current].path.stat().st_size
            current = index
        report.rows_read += chunk.rows_read
        for reason, n in chunk.skipped.items():
            report.skipped[reason] = report.skipped.get(reason, 0) + n
        writer.add(chunk.frame)
        if progress is not None:
            progress(report.rows_read, done_bytes + chunk.bytes_read, total_bytes)
    if cancel is not None and cancel.is_set():
        raise ImportCancelled(f"import of {name!r} cancelled; nothing was stored")
    writer.finish()
    if writer.rows_kept == 0:
        raise DataFormatError(
            f"no micro-behavior to import ({report.rows_read:,} rows read, skipped: "
            f"{report.skipped or 'none'}); expected at least one row", path=srcs[0].path,
        )
    report.rows_kept = writer.rows_kept
    report.n_sessions = len(writer.sessions)
    report.n_items = len(writer.items)
    report.operation_counts = writer.operation_counts()
    report.n_operations = len(report.operation_counts)
    report.late_rows = writer.late_rows
    report.has_category = writer.has_category
    report.has_dwell = writer.has_dwell


def _taken_message(name: str) -> str:
    return (f"a dataset named {name!r} already exists in the store; choose another name "
            "or delete that dataset first")


def _refuse_taken_name(store: Store, name: str) -> None:
    with store.engine.connect() as conn:
        taken = conn.scalar(select(func.count()).select_from(Dataset).where(Dataset.name == name))
    if taken:
        raise DatasetExistsError(_taken_message(name))


# -- reading back ---------------------------------------------------------------------------------
def _resolve_dataset(store: Store, dataset: str | int | Dataset) -> Dataset:
    if isinstance(dataset, Dataset):
        return dataset
    return get_dataset(store, dataset)


def _contiguous(ids: np.ndarray) -> bool:
    return len(ids) > 0 and int(ids[-1] - ids[0]) + 1 == len(ids)


def _id_index(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Positions of ``wanted`` in sorted ``ids``; subtraction when the ids are contiguous (always, when
    the importer wrote them)."""
    if len(ids) and ids[-1] - ids[0] + 1 == len(ids):
        return wanted - ids[0]
    return np.searchsorted(ids, wanted)


def load_events(store: Store, dataset: str | int | Dataset, *, categorical: bool = True) -> pd.DataFrame:
    """The dataset's events as a canonical frame (sessions in import order, then position).

    Id and name columns are pandas Categoricals by default (fast, small); ``categorical=False``
    gives plain object columns of str. ``category`` / ``dwell`` appear when the import had them.
    """
    ds = _resolve_dataset(store, dataset)
    info = ds.import_report or {}
    with store.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        mark = _placeholder(conn.dialect.paramstyle)
        is_pg = conn.dialect.name == "postgresql"
        cur = raw.cursor()
        cur.execute(f"SELECT id, external_id FROM sessions WHERE dataset_id = {mark} ORDER BY id", [ds.id])
        s_rows = cur.fetchall()
        cur.execute(f"SELECT id, external_id, category FROM items WHERE dataset_id = {mark} ORDER BY id", [ds.id])
        i_rows = cur.fetchall()
        cur.execute(f"SELECT code, name FROM operations WHERE dataset_id = {mark} ORDER BY code", [ds.id])
        o_rows = cur.fetchall()
        has_dwell = bool(info.get("has_dwell", True))
        s_ids = np.fromiter((r[0] for r in s_rows), np.int64, len(s_rows))
        i_ids = np.fromiter((r[0] for r in i_rows), np.int64, len(i_rows))
        o_span = int(max((r[0] for r in o_rows), default=0)) + 1
        # Fewer Python objects per row is what makes the cursor fast: with contiguous ids (what the
        # importer writes) session, item and operation travel packed in one integer (~20 % less CPU).
        packed = _contiguous(s_ids) and _contiguous(i_ids) and len(s_ids) * len(i_ids) * o_span < 2**62
        if packed:
            s0, i0, n_i = int(s_ids[0]), int(i_ids[0]), len(i_ids)
            # BIGINT arithmetic: PostgreSQL would overflow INTEGER (SQLite's integers are 64-bit anyway)
            cols = (f"(CAST(session_id - {s0} AS BIGINT) * {n_i} + (item_id - {i0})) * {o_span} + operation_code, "
                    '"timestamp"')
            fields = [("k", np.int64), ("t", np.float64)]
        else:
            cols = "session_id, item_id, operation_code, \"timestamp\""
            fields = [("s", np.int64), ("i", np.int64), ("o", np.int64), ("t", np.float64)]
        if has_dwell:
            cols += ", dwell"
            fields.append(("d", np.float64))
        events_cur = raw.cursor(name="embsr_load_events") if is_pg else raw.cursor()
        if is_pg:
            events_cur.itersize = 100_000
        events_cur.execute(
            f"SELECT {cols} FROM events WHERE dataset_id = {mark} ORDER BY session_id, position", [ds.id]
        )
        data = np.fromiter(events_cur, dtype=np.dtype(fields), count=int(ds.n_events))
        events_cur.close()
        cur.close()
        if is_pg:
            raw.rollback()  # end the read transaction of the named cursor
    if packed:
        rest, op_code = np.divmod(data["k"], o_span)
        s_codes, i_codes = np.divmod(rest, len(i_ids))
    else:
        s_codes = _id_index(s_ids, data["s"])
        i_codes = _id_index(i_ids, data["i"])
        op_code = data["o"]
    o_codes = np.zeros(o_span, dtype=np.int64)
    o_names = [r[1] for r in o_rows]
    o_codes[[r[0] for r in o_rows]] = np.arange(len(o_rows))

    def column(codes: np.ndarray, names: list[Any]) -> Any:
        if categorical:
            return pd.Categorical.from_codes(codes, categories=pd.Index(names, dtype=object))
        return pd.Series(np.asarray(names, dtype=object)[codes], dtype=object)

    out: dict[str, Any] = {
        "session": column(s_codes, [r[1] for r in s_rows]),
        "item": column(i_codes, [r[1] for r in i_rows]),
        "operation": column(o_codes[op_code], o_names),
        "timestamp": data["t"],
    }
    categories = [r[2] for r in i_rows]
    if info.get("has_category", any(c is not None for c in categories)):
        cat_codes, cat_names = pd.factorize(pd.Series(categories, dtype=object), sort=False)
        per_event = cat_codes[i_codes]
        if categorical:
            out["category"] = pd.Categorical.from_codes(per_event, categories=pd.Index(cat_names, dtype=object))
        else:
            out["category"] = pd.Series(np.r_[np.asarray(cat_names, dtype=object), [None]][per_event], dtype=object)
    if has_dwell:
        out["dwell"] = data["d"]
    return pd.DataFrame(out)
