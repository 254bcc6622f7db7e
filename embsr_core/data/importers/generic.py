"""Any table of micro-behaviors: CSV / TSV (delimiter sniffed, gzip ok) or Parquet, with a column mapping.

Unmapped fields fall back to common column names (``session_id``, ``item_id``, ``timestamp``...).
A source may carry a fixed operation name for all of its rows (Diginetica: views + purchases).
Timestamps may be numbers (kept as given) or ISO dates (converted to unix seconds). Missing values
in the session, item, operation or timestamp column are an error naming the line.
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
    normalise_name,
    probe,
    read_header,
    resolve_column,
    sniff_delimiter,
)

NAME = "generic"
DESCRIPTION = "Any CSV / TSV / Parquet table with session, item, operation and time columns (mapped)"
OPERATIONS: tuple[str, ...] = ()
REQUIRED = ("session", "item", "operation", "timestamp")
OPTIONAL = ("category", "dwell")
FLAGS = {"session": "--session-col", "item": "--item-col", "operation": "--operation-col",
         "timestamp": "--timestamp-col", "category": "--category-col", "dwell": "--dwell-col"}
DEFAULT_NAMES: dict[str, tuple[str, ...]] = {
    "session": ("session", "session_id", "sessionid"),
    "item": ("item", "item_id", "itemid", "sku", "product_id"),
    "operation": ("operation", "op", "action", "action_type", "behavior", "behavior_type", "event_type"),
    "timestamp": ("timestamp", "time", "ts", "datetime", "event_time", "timeframe", "eventdate", "date"),
    "category": ("category", "category_id", "categoryid"),
    "dwell": ("dwell", "dwell_time", "duration"),
}


def sniff(p: Probe) -> bool:
    """Any Parquet file, or text whose first lines split into the same number (> 1) of fields."""
    return p.parquet or sniff_delimiter(p) is not None


def resolve_mapping(p: Probe, columns: list[str], mapping: ColumnMapping, fixed_op: str | None) -> dict[str, str]:
    """Canonical field -> source column for this file; raises naming the missing column and the header."""
    resolved: dict[str, str] = {}
    for fld in (*REQUIRED, *OPTIONAL):
        if fld == "operation" and fixed_op:
            continue
        wanted = getattr(mapping, fld)
        if wanted:
            col = resolve_column(wanted, columns)
            if col is None:
                raise DataFormatError(
                    f"no column {wanted!r} (mapped to {fld}); the header has: {_show(columns)}"
                    f"{_delimiter_hint(p, columns)}",
                    path=p.path,
                    column=wanted,
                )
            resolved[fld] = col
            continue
        keys = {normalise_name(c): c for c in columns}
        found = next((keys[normalise_name(n)] for n in DEFAULT_NAMES[fld] if normalise_name(n) in keys), None)
        if found is not None:
            resolved[fld] = found
        elif fld in REQUIRED:
            extra = " or give a fixed operation for the file (--operation NAME)" if fld == "operation" else ""
            raise DataFormatError(
                f"no column for the {fld}; map one with {FLAGS[fld]}{extra} (the header has: {_show(columns)})"
                f"{_delimiter_hint(p, columns)}",
                path=p.path,
                column=fld,
            )
    return resolved


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


def iter_chunks(
    source: Source,
    mapping: ColumnMapping | None = None,
    *,
    chunk_rows: int,
    session_prefix: str = "",
) -> Iterator[Chunk]:
    del session_prefix  # several files of one table share their session ids (views + purchases)
    mapping = mapping or ColumnMapping()
    p = probe(source.path)
    if p.parquet:
        yield from _parquet_chunks(p, mapping, source.operation, chunk_rows)
        return
    delimiter = mapping.delimiter or sniff_delimiter(p) or ("\t" if ".tsv" in p.path.suffixes else ",")
    columns = read_header(p, delimiter)
    resolved = resolve_mapping(p, columns, mapping, source.operation)
    # Categoricals: a few distinct names over millions of rows factorize for free.
    dtype = {resolved[f]: "category" for f in ("operation", "category") if f in resolved}
    for frame, line, bytes_read in iter_csv(p, delimiter=delimiter, usecols=list(set(resolved.values())),
                                            dtype=dtype, chunk_rows=chunk_rows):
        yield _canonical(p, frame, resolved, source.operation, line, bytes_read, "line")


def _parquet_chunks(p: Probe, mapping: ColumnMapping, fixed_op: str | None, chunk_rows: int) -> Iterator[Chunk]:
    import pyarrow.parquet as pq

    resolved = resolve_mapping(p, list(p.parquet_columns), mapping, fixed_op)
    try:
        file = pq.ParquetFile(p.path)
        total = max(file.metadata.num_rows, 1)
        done = 0
        for batch in file.iter_batches(batch_size=chunk_rows, columns=list(set(resolved.values()))):
            frame = batch.to_pandas()
            first = done + 1
            done += len(frame)
            yield _canonical(p, frame, resolved, fixed_op, first, int(p.size * done / total), "row")
    except DataFormatError:
        raise
    except Exception as exc:  # pyarrow: ArrowInvalid / OSError on damaged files
        raise DataFormatError(f"cannot read the Parquet data, truncated or damaged? ({exc})", path=p.path) from None


def _error(p: Probe, message: str, where: int, row_word: str, column: str) -> DataFormatError:
    if row_word == "line":
        return DataFormatError(message, path=p.path, line=where, column=column)
    return DataFormatError(f"row {where}: {message}", path=p.path, column=column)


def _canonical(
    p: Probe,
    frame: pd.DataFrame,
    resolved: dict[str, str],
    fixed_op: str | None,
    first: int,
    bytes_read: int,
    row_word: str,
) -> Chunk:
    out: dict[str, object] = {}
    for fld in ("session", "item", "operation"):
        if fld == "operation" and fixed_op:
            out[fld] = np.full(len(frame), fixed_op, dtype=object)
            continue
        col = frame[resolved[fld]]
        missing = col.isna().to_numpy()
        if missing.any():
            row = int(np.flatnonzero(missing)[0])
            raise _error(p, f"missing value; expected the {fld} (file truncated?)", first + row, row_word,
                         resolved[fld])
        out[fld] = col if isinstance(col.dtype, pd.CategoricalDtype) else _ids(col)
    out["timestamp"] = _seconds(p, frame[resolved["timestamp"]], resolved["timestamp"], first, row_word)
    if "category" in resolved:
        out["category"] = frame[resolved["category"]]
    if "dwell" in resolved:
        col = frame[resolved["dwell"]]
        dwell = pd.to_numeric(col, errors="coerce")
        bad = (dwell.isna() & col.notna()).to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise _error(p, f"{col.iloc[row]!r}; expected seconds (a number)", first + row, row_word, resolved["dwell"])
        out["dwell"] = dwell.to_numpy(dtype=np.float64)
    result = pd.DataFrame(out, index=frame.index).reset_index(drop=True)
    return Chunk(result, rows_read=len(frame), bytes_read=bytes_read)


def _ids(col: pd.Series) -> np.ndarray:
    """Integer ids stay int64 (cheap to factorize); anything else becomes str."""
    if pd.api.types.is_integer_dtype(col.dtype):
        return col.to_numpy(dtype=np.int64)
    if pd.api.types.is_float_dtype(col.dtype):
        values = col.to_numpy()
        if np.all(values == np.round(values)):
            return values.astype(np.int64)
    return col.astype(str).to_numpy(dtype=object)


def _seconds(p: Probe, col: pd.Series, name: str, first: int, row_word: str) -> np.ndarray:
    """Numbers as given; ISO dates / datetimes as unix seconds. Errors name the first bad line."""
    missing = col.isna().to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise _error(p, "missing value; expected a time (seconds or an ISO date)", first + row, row_word, name)
    if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        return col.to_numpy(dtype=np.float64)
    if not pd.api.types.is_datetime64_any_dtype(col.dtype):
        numeric = pd.to_numeric(col, errors="coerce")
        if numeric.notna().all():
            return numeric.to_numpy(dtype=np.float64)
        dates = pd.to_datetime(col, errors="coerce", utc=True, format="ISO8601")
        bad = dates.isna().to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise _error(p, f"{col.iloc[row]!r} is not a time; expected seconds or an ISO date "
                         "(e.g. 2016-05-09 or 2016-05-09T13:45:00)", first + row, row_word, name)
        col = dates
    if col.dt.tz is None:
        col = col.dt.tz_localize("UTC")
    return ((col - pd.Timestamp("1970-01-01", tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64)

