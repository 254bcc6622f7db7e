"""Any table of micro-behaviors: CSV / TSV (delimiter sniffed, gzip ok) or Parquet, with a column mapping.

Unmapped fields fall back to common column names (``session_id``, ``item_id``, ``timestamp``...).
A source may carry a fixed operation name for all of its rows (Diginetica: views + purchases).
Timestamps may be numbers (kept as given) or ISO dates (converted to unix seconds). Ids are opaque
text: ``007`` and ``7`` are two items, whatever the chunking. Missing values in the session, item,
operation or timestamp column are an error naming the line.

A user log without a session id (Taobao UserBehavior) maps a ``user`` column instead: each user's
events are ordered by time (then file order) and cut into sessions at gaps longer than the mapping's
``session_gap``. Those sessions need all of a user's rows, so that mode holds the mapped columns of
all files in memory before the first chunk is written (about 40 bytes per row).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd

from embsr_core.data.errors import DataFormatError
from embsr_core.data.importers.base import (
    Chunk,
    ColumnMapping,
    Probe,
    Source,
    normalise_name,
    probe,
    resolve_column,
    sniff_delimiter,
)
from embsr_core.data.importers.parquet import parquet_chunks
from embsr_core.data.importers.table import Layout, Rows, iter_table, layout_of
from embsr_core.data.importers.values import ids, seconds, shown

NAME = "generic"
DESCRIPTION = "Any CSV / TSV / Parquet table with session (or user), item, operation and time columns (mapped)"
OPERATIONS: tuple[str, ...] = ()
REQUIRED = ("session", "item", "operation", "timestamp")
OPTIONAL = ("category", "dwell")
FLAGS = {"session": "--session-col", "item": "--item-col", "operation": "--operation-col",
         "timestamp": "--timestamp-col", "category": "--category-col", "dwell": "--dwell-col",
         "user": "--user-col"}
DEFAULT_NAMES: dict[str, tuple[str, ...]] = {
    "session": ("session", "session_id", "sessionid"),
    "item": ("item", "item_id", "itemid", "sku", "product_id"),
    "operation": ("operation", "op", "action", "action_type", "behavior", "behavior_type", "event_type"),
    "timestamp": ("timestamp", "time", "ts", "datetime", "event_time", "timeframe", "eventdate", "date"),
    "category": ("category", "category_id", "categoryid"),
    "dwell": ("dwell", "dwell_time", "duration"),
    "user": ("user", "user_id", "userid", "visitor_id", "visitorid", "customer_id"),
}
USER_FIELD = "user"


def sniff(p: Probe) -> bool:
    """Any Parquet file, or text whose first lines split into the same number (> 1) of fields."""
    return p.parquet or sniff_delimiter(p) is not None


def uses_users(mapping: ColumnMapping | None) -> bool:
    """Whether sessions are cut from a user column (a user is mapped and a session is not)."""
    return mapping is not None and bool(mapping.user) and not mapping.session


def resolve_mapping(p: Probe, columns: list[str], mapping: ColumnMapping, fixed_op: str | None) -> dict[str, str]:
    """Canonical field -> source column for this file; raises naming the missing column and the header."""
    resolved: dict[str, str] = {}
    by_user = uses_users(mapping)
    fields = [f for f in (*REQUIRED, *OPTIONAL) if not (f == "session" and by_user)]
    if by_user:
        fields.insert(0, USER_FIELD)
    for fld in fields:
        if fld == "operation" and fixed_op:
            continue
        wanted = getattr(mapping, fld)
        if wanted:
            col = resolve_column(str(wanted), columns)
            if col is None:
                raise DataFormatError(
                    f"no column {wanted!r} (mapped to {fld}); expected one of the file's columns: "
                    f"{_columns_phrase(p, columns, mapping)}"
                    f"{_delimiter_hint(p, columns)}",
                    path=p.path,
                    column=str(wanted),
                )
            resolved[fld] = col
            continue
        keys = {normalise_name(c): c for c in columns} if mapping.header else {}
        found = next((keys[normalise_name(n)] for n in DEFAULT_NAMES[fld] if normalise_name(n) in keys), None)
        if found is not None:
            resolved[fld] = found
        elif fld in REQUIRED:
            extra = " or give a fixed operation for the file (--operation NAME)" if fld == "operation" else ""
            if fld == "session":
                extra = " (or a user column, --user-col, to cut sessions by inactivity)"
            names = "/".join(DEFAULT_NAMES[fld][:2])
            raise DataFormatError(
                f"no column for the {fld}; expected a column named {names} or one mapped with {FLAGS[fld]}{extra} "
                f"({_columns_phrase(p, columns, mapping)})"
                f"{_delimiter_hint(p, columns)}{_headerless_hint(columns, mapping)}",
                path=p.path,
                column=fld,
            )
    for fld, col in resolved.items():
        if f"{col} (2)" in columns:
            raise DataFormatError(f"the header names column {col!r} more than once (mapped to {fld}); expected one "
                                  "column of that name", path=p.path, column=col)
    return resolved


def _columns_phrase(p: Probe, columns: list[str], mapping: ColumnMapping) -> str:
    if not mapping.header:
        return f"the file has no header: give columns by position, 1 to {len(columns)}"
    return f"the header has: {_show(columns)}"


def _show(columns: list[str]) -> str:
    shown = ", ".join(repr(c) for c in columns[:15])
    return shown + (", ..." if len(columns) > 15 else "") if columns else "no columns"


def _delimiter_hint(p: Probe, columns: list[str]) -> str:
    if p.parquet or len(columns) > 1:
        return ""
    sniffed = sniff_delimiter(p)
    if sniffed:
        return f". The header is a single column: is the delimiter {sniffed!r}?"
    return ". The header is a single column: wrong delimiter?"


def _headerless_hint(columns: list[str], mapping: ColumnMapping) -> str:
    if not mapping.header or not columns:
        return ""
    numeric = sum(pd.to_numeric(pd.Series(columns), errors="coerce").notna())
    if numeric >= max(1, len(columns) // 2):
        return (". The first line looks like data, not a header: if the file has none, say so (--no-header) and "
                "map the columns by position (1, 2, ...)")
    return ""


def layout(p: Probe, mapping: ColumnMapping) -> Layout:
    delimiter = mapping.delimiter or sniff_delimiter(p) or ("\t" if ".tsv" in p.path.suffixes else ",")
    return layout_of(p, delimiter, header=mapping.header)


def iter_chunks(
    source: Source,
    mapping: ColumnMapping | None = None,
    *,
    chunk_rows: int,
    session_prefix: str = "",
) -> Iterator[Chunk]:
    """Canonical chunks; in user-log mode (see :func:`uses_users`) the chunks carry a ``user`` column
    instead of ``session`` and :func:`cut_sessions` turns them into sessions."""
    del session_prefix  # several files of one table share their session ids (views + purchases)
    mapping = mapping or ColumnMapping()
    p = probe(source.path)
    if p.parquet:
        if not mapping.header:
            raise DataFormatError("a Parquet file always names its columns; map them by name (not by position)",
                                  path=p.path)
        resolved = resolve_mapping(p, list(p.parquet_columns), mapping, source.operation)
        for frame, rows, bytes_read in parquet_chunks(p, list(resolved.values()), chunk_rows):
            yield _canonical(frame, rows, resolved, source.operation, bytes_read, mapping.numeric_ids)
        return
    lay = layout(p, mapping)
    resolved = resolve_mapping(p, list(lay.names), mapping, source.operation)
    # Ids and names keep their text ("007" is not "7"); where integers print back as their text they
    # are parsed as integers (cheap to parse and factorize), names as categoricals.
    exact = tuple(dict.fromkeys(resolved[f] for f in ("session", USER_FIELD, "item", "operation", "category")
                                if f in resolved))
    dtype: dict[str, object] = {resolved[f]: "category" for f in ("operation", "category") if f in resolved}
    usecols = list(dict.fromkeys(resolved.values()))
    for frame, rows, bytes_read in iter_table(p, lay, usecols=usecols, dtype=dtype, chunk_rows=chunk_rows,
                                              exact=exact, skip_cut_last_line=mapping.skip_cut_last_line):
        yield _canonical(frame, rows, resolved, source.operation, bytes_read, mapping.numeric_ids)


def as_numbers(values: pd.Series | np.ndarray) -> pd.Series | np.ndarray:
    """Whole-number ids written as text in their plain form (``007``, ``+7``, `` 7`` -> ``7``); other ids
    unchanged. Categoricals change their categories only (cheap)."""
    if isinstance(values, np.ndarray) and values.dtype != object:
        return values  # integers already
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        cats = pd.Series(values.cat.categories.astype(str))
        plain = _plain_numbers(cats)
        codes = values.cat.codes.to_numpy()
        return pd.Series(plain.to_numpy(dtype=object)[codes], dtype=object)
    return _plain_numbers(pd.Series(np.asarray(values, dtype=object)).astype(str)).to_numpy(dtype=object)


def _plain_numbers(text: pd.Series) -> pd.Series:
    whole = text.str.fullmatch(r"\s*[+-]?\d+\s*").fillna(False).to_numpy(dtype=bool)
    out = text.copy()
    out[whole] = [str(int(v)) for v in text[whole]]
    return out


def _canonical(
    frame: pd.DataFrame,
    rows: Rows,
    resolved: dict[str, str],
    fixed_op: str | None,
    bytes_read: int,
    numeric_ids: bool = False,
) -> Chunk:
    out: dict[str, object] = {}
    key = USER_FIELD if USER_FIELD in resolved else "session"
    for fld in (key, "item", "operation"):
        if fld == "operation" and fixed_op:
            out[fld] = np.full(len(frame), fixed_op, dtype=object)
            continue
        col = frame[resolved[fld]]
        values = ids(col, rows, resolved[fld], f"the {fld}")
        out[fld] = as_numbers(values) if numeric_ids and fld != "operation" else values
    out["timestamp"] = seconds(frame[resolved["timestamp"]], rows, resolved["timestamp"])
    if "category" in resolved:
        out["category"] = frame[resolved["category"]]
    if "dwell" in resolved:
        col = frame[resolved["dwell"]]
        dwell = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = (np.isnan(dwell) & col.notna().to_numpy()) | np.isinf(dwell) | (dwell < 0)
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            raise rows.error(f"{shown(col.iloc[r])}; expected seconds (a number ≥ 0, or empty)", r, resolved["dwell"])
        out["dwell"] = dwell
    result = pd.DataFrame({k: (v.reset_index(drop=True) if isinstance(v, pd.Series) else v) for k, v in out.items()})
    cut = rows.skipped()
    return Chunk(result, rows_read=len(frame) + sum(cut.values()), bytes_read=bytes_read, skipped=cut)


def cut_sessions(chunks: Iterator[tuple[int, Chunk]], gap: float, chunk_rows: int,
                 sources: Sequence[Source]) -> Iterator[tuple[int, Chunk]]:
    """Sessions from user-log chunks: per user, by time then file order, a new session after more
    than ``gap`` seconds without an event. Session ids are ``user/k`` (k = 1, 2, ... in time order).

    Yields empty chunks while reading (progress and cancelling keep working), then the sessions.
    """
    if not gap > 0 or not np.isfinite(gap):
        raise DataFormatError(f"session gap {gap!r} s; expected a positive number of seconds")
    frames: list[pd.DataFrame] = []
    last = 0
    for index, chunk in chunks:
        frames.append(chunk.frame)
        last = index
        yield index, Chunk(chunk.frame.iloc[:0].rename(columns={USER_FIELD: "session"}), chunk.rows_read,
                           chunk.bytes_read, chunk.skipped)
    if not frames:
        return
    frame = pd.concat(frames, ignore_index=True)  # categoricals of different chunks become text here
    del frames
    users, _ = pd.factorize(frame[USER_FIELD].astype(str), sort=False)  # first appearance order
    ts = frame["timestamp"].to_numpy()
    order = np.lexsort((np.arange(len(frame)), ts, users))  # user, then time, then file order
    users, ts = users[order], ts[order]
    starts = np.r_[True, (users[1:] != users[:-1]) | (np.diff(ts) > gap)] if len(order) else np.zeros(0, bool)
    session_no = np.cumsum(starts)  # global 1-based session number
    user_first = np.r_[True, users[1:] != users[:-1]] if len(order) else np.zeros(0, bool)
    first_session_of_user = session_no[user_first]
    k = session_no - np.repeat(first_session_of_user, np.diff(np.r_[np.flatnonzero(user_first), len(order)])) + 1
    user_text = frame[USER_FIELD].astype(str).to_numpy(dtype=object)[order]
    sorted_frame = frame.iloc[order].drop(columns=[USER_FIELD]).reset_index(drop=True)
    heads = np.flatnonzero(starts)
    names = np.char.add(np.char.add(user_text[heads].astype(str), "/"), k[heads].astype(str)).astype(object)
    sorted_frame.insert(0, "session", names[session_no - 1])
    bounds = np.r_[heads, len(order)]
    begin = 0
    while begin < len(heads):  # chunks of whole sessions, about chunk_rows rows each
        stop = int(np.searchsorted(bounds, bounds[begin] + chunk_rows, side="left"))
        stop = min(max(stop, begin + 1), len(heads))
        part = sorted_frame.iloc[int(bounds[begin]) : int(bounds[stop])].reset_index(drop=True)
        yield last, Chunk(part, rows_read=0, bytes_read=sources[last].path.stat().st_size)
        begin = stop
