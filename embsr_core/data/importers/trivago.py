"""Trivago RecSys Challenge 2019 ``train.csv`` / ``.parquet`` (gzip ok).

Keeps the six item-level action types under their own names (their ``reference`` is a hotel id);
rows of the other action types, and item-level rows whose ``reference`` is not a number, are skipped
and counted. ``step`` travels with the rows so sessions are ordered by (timestamp, step).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from embsr_core.data.errors import DataFormatError
from embsr_core.data.importers.base import (
    Chunk,
    ColumnMapping,
    Probe,
    Source,
    iter_csv,
    probe,
    read_header,
    sniff_delimiter,
)

NAME = "trivago"
DESCRIPTION = "Trivago RecSys'19 train.csv / .parquet (item-level actions of hotel search sessions)"
OPERATIONS: tuple[str, ...] = (
    "clickout item",
    "interaction item rating",
    "interaction item info",
    "interaction item image",
    "interaction item deals",
    "search for item",
)
COLUMNS = ("session_id", "timestamp", "step", "action_type", "reference")
SIGNATURE = {"user_id", "session_id", "step", "action_type", "reference"}
SKIP_ACTION = "action type without an item"
SKIP_REFERENCE = "reference is not an item id"


def sniff(p: Probe) -> bool:
    if p.parquet:
        return set(p.parquet_columns) >= SIGNATURE
    delim = sniff_delimiter(p) or ","
    return set(read_header(p, delim)) >= SIGNATURE


def iter_chunks(
    source: Source,
    mapping: ColumnMapping | None = None,
    *,
    chunk_rows: int,
    session_prefix: str = "",
) -> Iterator[Chunk]:
    del mapping, session_prefix  # the format fixes its columns; session ids are global
    p = probe(source.path)
    if p.parquet:
        yield from _parquet_chunks(p, chunk_rows)
        return
    delim = sniff_delimiter(p) or ","
    _check_columns(p, read_header(p, delim))
    dtype = {"session_id": str, "action_type": str, "reference": str}
    for frame, line, bytes_read in iter_csv(p, delimiter=delim, usecols=list(COLUMNS), dtype=dtype,
                                            chunk_rows=chunk_rows):
        yield _keep_items(p, frame, line, bytes_read)


def _parquet_chunks(p: Probe, chunk_rows: int) -> Iterator[Chunk]:
    import pyarrow.parquet as pq

    _check_columns(p, list(p.parquet_columns))
    try:
        file = pq.ParquetFile(p.path)
        total = max(file.metadata.num_rows, 1)
        done = 0
        for batch in file.iter_batches(batch_size=chunk_rows, columns=list(COLUMNS)):
            frame = batch.to_pandas()
            line = done + 1
            done += len(frame)
            yield _keep_items(p, frame, line, int(p.size * done / total), row_word="row")
    except DataFormatError:
        raise
    except Exception as exc:  # pyarrow: ArrowInvalid / OSError on damaged files
        raise DataFormatError(f"cannot read the Parquet data, truncated or damaged? ({exc})", path=p.path) from None


def _check_columns(p: Probe, columns: list[str]) -> None:
    missing = [c for c in COLUMNS if c not in columns]
    if missing:
        raise DataFormatError(
            f"missing column(s) {', '.join(missing)}; a trivago train file has "
            f"{', '.join(COLUMNS)} (found: {', '.join(columns[:12]) or 'nothing'})",
            path=p.path,
            column=missing[0],
        )


def _error(p: Probe, message: str, where: int, row_word: str, column: str) -> DataFormatError:
    """Text files name the line; Parquet files have no lines, so the row number goes into the message."""
    if row_word == "line":
        return DataFormatError(message, path=p.path, line=where, column=column)
    return DataFormatError(f"row {where}: {message}", path=p.path, column=column)


def _numeric(p: Probe, frame: pd.DataFrame, name: str, first_line: int, row_word: str) -> np.ndarray:
    values = pd.to_numeric(frame[name], errors="coerce")
    bad = values.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        got = frame[name].iloc[row]
        what = "missing value" if pd.isna(got) else repr(got)
        raise _error(p, f"{what}; expected a number", first_line + row, row_word, name)
    return values.to_numpy(dtype=np.float64)


def _keep_items(p: Probe, frame: pd.DataFrame, first_line: int, bytes_read: int, row_word: str = "line") -> Chunk:
    n = len(frame)
    timestamp = _numeric(p, frame, "timestamp", first_line, row_word)
    step = _numeric(p, frame, "step", first_line, row_word)
    session = frame["session_id"]
    if session.isna().any():
        row = int(np.flatnonzero(session.isna().to_numpy())[0])
        raise _error(p, "missing value; expected a session id", first_line + row, row_word, "session_id")
    action = frame["action_type"].astype(str)
    item_level = action.isin(OPERATIONS).to_numpy()
    reference = frame["reference"].astype(str)
    is_item = reference.str.fullmatch(r"\d+").to_numpy()
    keep = item_level & is_item
    out = pd.DataFrame(
        {
            "session": session.astype(str).to_numpy()[keep],
            "item": reference.to_numpy()[keep],
            "operation": action.to_numpy()[keep],
            "timestamp": timestamp[keep],
            "step": step[keep].astype(np.int64),
        }
    )
    skipped = {}
    if (n_action := int((~item_level).sum())):
        skipped[SKIP_ACTION] = n_action
    if (n_ref := int((item_level & ~is_item).sum())):
        skipped[SKIP_REFERENCE] = n_ref
    return Chunk(out, rows_read=n, bytes_read=bytes_read, skipped=skipped)

