"""Trivago RecSys Challenge 2019 ``train.csv`` / ``.parquet`` (gzip ok).

Keeps the six item-level action types under their own names (their ``reference`` is a hotel id);
rows of the other action types, and item-level rows whose ``reference`` is not a number, are skipped
and counted. ``step`` travels with the rows so sessions are ordered by (timestamp, step); a file
without ``step`` is still a trivago file and its rows are ordered by timestamp, then file order.
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
    probe,
    read_header,
    sniff_delimiter,
)
from embsr_core.data.importers.parquet import parquet_chunks
from embsr_core.data.importers.table import Rows, iter_table, layout_of, repeated
from embsr_core.data.importers.values import counter, require_present, seconds

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
REQUIRED = ("session_id", "timestamp", "action_type", "reference")
SIGNATURE = {"session_id", "action_type", "reference"}
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
    del session_prefix  # the format fixes its columns (only the reading options apply); session ids are global
    skip_cut = mapping is not None and mapping.skip_cut_last_line
    p = probe(source.path)
    if p.parquet:
        columns = _check_columns(p, list(p.parquet_columns))
        for frame, rows, bytes_read in parquet_chunks(p, columns, chunk_rows):
            yield _keep_items(frame, rows, bytes_read)
        return
    layout = layout_of(p, sniff_delimiter(p) or ",")
    columns = _check_columns(p, list(layout.names))
    dtype = {"session_id": str, "action_type": "category", "reference": str}
    for frame, rows, bytes_read in iter_table(p, layout, usecols=columns, dtype=dtype, chunk_rows=chunk_rows,
                                              skip_cut_last_line=skip_cut):
        yield _keep_items(frame, rows, bytes_read)


def _check_columns(p: Probe, columns: list[str]) -> list[str]:
    """The columns to read (``step`` when present); refuses missing or repeated ones."""
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise DataFormatError(
            f"missing column(s) {', '.join(missing)}; expected a trivago train file with the columns "
            f"{', '.join(COLUMNS)} (found: {', '.join(columns[:12]) or 'nothing'})",
            path=p.path,
            column=missing[0],
        )
    twice = sorted(repeated(columns) & set(COLUMNS)) or [c for c in COLUMNS if f"{c} (2)" in columns]
    if twice:
        raise DataFormatError(f"the column {twice[0]!r} occurs twice in the header; expected it once",
                              path=p.path, column=twice[0])
    return [c for c in COLUMNS if c in columns]


def _references(col: pd.Series) -> pd.Series:
    """References as text; whole floats (a pandas Parquet column with gaps: 123.0) as whole numbers."""
    if pd.api.types.is_float_dtype(col.dtype):
        values = col.to_numpy(dtype=np.float64)
        whole = np.isfinite(values) & (values == np.round(values)) & (values >= 0) & (values < 2.0**53)
        out = np.full(len(values), "", dtype=object)
        out[whole] = values[whole].astype(np.int64).astype(str)
        return pd.Series(out)
    return col.astype(str).reset_index(drop=True)


def _keep_items(frame: pd.DataFrame, rows: Rows, bytes_read: int) -> Chunk:
    n = len(frame)
    timestamp = seconds(frame["timestamp"], rows, "timestamp")
    step = counter(frame["step"], rows, "step") if "step" in frame.columns else None
    require_present(frame["session_id"], rows, "session_id", "a session id")
    require_present(frame["action_type"], rows, "action_type", "an action type")
    action = frame["action_type"]
    item_level = action.isin(OPERATIONS).to_numpy(dtype=bool)
    reference = _references(frame["reference"])
    is_item = reference.str.fullmatch(r"\d+").fillna(False).to_numpy(dtype=bool)
    keep = item_level & is_item
    session = frame["session_id"].astype(str).to_numpy(dtype=object)
    nul = pd.Series(session[keep]).str.contains("\x00", regex=False).to_numpy(dtype=bool)
    if nul.any():
        raise rows.error("a NUL byte in the id; expected printable text", int(np.flatnonzero(keep)[nul][0]),
                         "session_id")
    out = {
        "session": session[keep],
        "item": reference[keep].reset_index(drop=True),
        "operation": action[keep].reset_index(drop=True),
        "timestamp": timestamp[keep],
    }
    if step is not None:
        out["step"] = step[keep]
    skipped = rows.skipped()
    n += sum(skipped.values())
    if (n_action := int((~item_level).sum())):
        skipped[SKIP_ACTION] = n_action
    if (n_ref := int((item_level & ~is_item).sum())):
        skipped[SKIP_REFERENCE] = n_ref
    out["session"] = pd.Series(out["session"])
    return Chunk(pd.DataFrame(out), rows_read=n, bytes_read=bytes_read, skipped=skipped)
