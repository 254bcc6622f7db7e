"""Small previews a user looks at: a file's first rows before import, and a few stored sessions after.

Why here and not in a GUI: the import wizard's live preview and its validation must say exactly what
the importer will do (same column resolution, same errors), and a CLI can print the same tables.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from sqlalchemy import select

from embsr_core.data.errors import DataFormatError
from embsr_core.data.importers import detect_format, generic, get_importer, iter_source_chunks
from embsr_core.data.importers.base import ColumnMapping, Probe, Source, normalise_name, probe, sniff_delimiter
from embsr_core.data.importers.generic import DEFAULT_NAMES, OPTIONAL, REQUIRED, USER_FIELD
from embsr_core.store.engine import Store
from embsr_core.store.models import Event, Item, Operation, SessionRow
from embsr_core.store.repository import get_dataset

PREVIEW_ROWS = 20
MAPPED_FIELDS: tuple[str, ...] = (*REQUIRED, *OPTIONAL)
USER_LOG_HEAD_ROWS = 5_000  # a user-log preview cuts sessions from this many first rows only


@dataclass
class SourcePreview:
    """The head of one file: raw rows as the user wrote them, and the same rows as the importer maps them.

    ``error`` is the first problem the importer finds in those rows with the given mapping (a missing
    column, a bad time, ...); ``events`` is then empty. A file that cannot be read at all raises instead.
    """

    path: Path
    format: str
    columns: list[str]
    raw_rows: list[list[str]]
    delimiter: str | None = None  # text tables only
    events: pd.DataFrame = field(default_factory=pd.DataFrame)
    error: DataFormatError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def suggest_mapping(columns: list[str]) -> dict[str, str | None]:
    """Canonical field -> the column the generic importer would pick by name (None: no match);
    ``user`` too, when there is no session column to pick."""
    keys = {normalise_name(c): c for c in columns}
    guess = {
        fld: next((keys[normalise_name(n)] for n in DEFAULT_NAMES[fld] if normalise_name(n) in keys), None)
        for fld in (*MAPPED_FIELDS, USER_FIELD)
    }
    if guess["session"] is not None:
        guess[USER_FIELD] = None
    return guess


def _raw_rows(p: Probe, fmt: str, rows: int, delimiter: str | None,
              header: bool = True) -> tuple[list[str], list[list[str]], str | None]:
    if p.parquet:
        import pyarrow.parquet as pq

        batch = next(pq.ParquetFile(p.path).iter_batches(batch_size=rows), None)
        frame = batch.to_pandas() if batch is not None else pd.DataFrame(columns=list(p.parquet_columns))
        return list(p.parquet_columns), frame.head(rows).astype(str).to_numpy().tolist(), None
    if fmt == "jd":  # one session per line: show the first micro-behaviors, one per row
        fields = list(get_importer("jd").FIELDS)
        out: list[list[str]] = []
        for line in p.lines:
            for token in line.split():
                out.append(token.split("+"))
                if len(out) >= rows:
                    return fields, out, None
        return fields, out, None
    delim = delimiter or sniff_delimiter(p) or ","
    parsed = list(csv.reader(p.lines[: rows + 1], delimiter=delim))
    if not header:
        width = len(parsed[0]) if parsed else 0
        return [str(k) for k in range(1, width + 1)], parsed[:rows], delim
    names = [c.strip() for c in parsed[0]] if parsed else []
    return names, parsed[1:], delim


def preview_source(
    path: str | Path,
    format: str = "auto",  # noqa: A002  (the user-facing word)
    mapping: ColumnMapping | None = None,
    *,
    rows: int = PREVIEW_ROWS,
    operation: str | None = None,
) -> SourcePreview:
    """The first ``rows`` rows of ``path``, raw and mapped; raises :class:`DataFormatError` if unreadable."""
    p = probe(path)
    fmt = detect_format(p.path) if format == "auto" else format
    get_importer(fmt)  # ValueError for an unknown format name
    columns, raw, delim = _raw_rows(p, fmt, rows, mapping.delimiter if mapping else None,
                                    mapping.header if mapping else True)
    preview = SourcePreview(p.path, fmt, columns, raw, delim)
    source = Source(p.path, operation)
    try:
        if fmt == "generic" and generic.uses_users(mapping):
            assert mapping is not None  # sessions cut from the head only: never read a whole log for a preview
            head = generic.iter_chunks(source, mapping, chunk_rows=USER_LOG_HEAD_ROWS)
            first_head = next(head, None)
            head.close()
            cut = generic.cut_sessions(iter([] if first_head is None else [(0, first_head)]), mapping.gap,
                                       max(rows, 1), [source])
            frames = [c.frame for _, c in cut if len(c.frame)]
            if frames:
                preview.events = frames[0].head(rows).reset_index(drop=True)
            return preview
        _, chunks = iter_source_chunks([source], fmt, mapping, chunk_rows=max(rows, 1))
        first = next(chunks, None)
        if first is not None:
            preview.events = first[1].frame.head(rows).reset_index(drop=True)
        chunks.close()
    except DataFormatError as exc:
        preview.error = exc
    return preview


def session_preview(store: Store, dataset: str | int, n_sessions: int = 8) -> pd.DataFrame:
    """The first ``n_sessions`` stored sessions of a dataset as rows of
    ``session, position, item, operation, timestamp`` (in import order), without loading the dataset."""
    ds = get_dataset(store, dataset)
    with store.session() as session:
        first = (
            select(SessionRow.id)
            .where(SessionRow.dataset_id == ds.id)
            .order_by(SessionRow.id)
            .limit(int(n_sessions))
            .scalar_subquery()
        )
        query = (
            select(
                SessionRow.external_id,
                Event.position,
                Item.external_id,
                Operation.name,
                Event.timestamp,
            )
            .join(SessionRow, SessionRow.id == Event.session_id)
            .join(Item, Item.id == Event.item_id)
            .join(Operation, (Operation.dataset_id == Event.dataset_id) & (Operation.code == Event.operation_code))
            .where(Event.dataset_id == ds.id, Event.session_id.in_(first))
            .order_by(Event.session_id, Event.position)
        )
        rows = session.execute(query).all()
    return pd.DataFrame(rows, columns=["session", "position", "item", "operation", "timestamp"])
