"""JD.com micro-behavior lines: one session per line, ``sku+behavior_type+category+time_interval+dwell_time``.

There is no absolute time: a micro-behavior's timestamp is the sum of the intervals before it in its
session (``time_interval`` is the time until the *next* one), so each session starts at 0. The session
id is the line number (prefixed by the file number when several files are combined).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import numpy as np
import pandas as pd

from embsr_core.data.errors import DataFormatError
from embsr_core.data.events import JD_OPERATIONS
from embsr_core.data.importers.base import Chunk, ColumnMapping, Probe, Source, probe, text_lines
from embsr_core.data.importers.values import MAX_ABS_SECONDS, MAX_COUNTER

NAME = "jd"
DESCRIPTION = "JD micro-behavior sessions (one per line: sku+behavior_type+category+time_interval+dwell_time)"
OPERATIONS = JD_OPERATIONS
FIELDS = ("sku", "behavior_type", "category", "time_interval", "dwell_time")
MAX_ID = MAX_COUNTER
_TOKEN = re.compile(r"\d+\+\d+\+\d+\+\d+(?:\.\d+)?\+\d+(?:\.\d+)?", re.ASCII)


def sniff(p: Probe) -> bool:
    """The first non-blank lines are space-separated tokens of five '+'-joined numbers."""
    lines = [ln for ln in p.lines[:5] if ln.strip()]
    return bool(lines) and all(_TOKEN.fullmatch(tok) for ln in lines for tok in ln.split()[:20])


def iter_chunks(
    source: Source,
    mapping: ColumnMapping | None = None,
    *,
    chunk_rows: int,
    session_prefix: str = "",
) -> Iterator[Chunk]:
    """Chunks of whole sessions (lines), about ``chunk_rows`` micro-behaviors each."""
    del mapping  # the format fixes its fields
    p = probe(source.path)
    if p.parquet:
        raise DataFormatError("a Parquet file; expected JD micro-behavior lines (text). Choose the trivago or "
                              "generic format", path=p.path)
    lines: list[str] = []
    numbers: list[int] = []
    tokens = 0
    blank = 0
    bytes_read = 0
    for number, text, bytes_read in text_lines(p):
        stripped = text.strip()
        if not stripped:
            blank += 1
            continue
        lines.append(stripped)
        numbers.append(number)
        tokens += stripped.count(" ") + 1
        if tokens >= chunk_rows:
            yield _parse(p, lines, numbers, bytes_read, session_prefix, blank, source.operation)
            lines, numbers, tokens, blank = [], [], 0, 0
    if lines or blank:
        yield _parse(p, lines, numbers, bytes_read, session_prefix, blank, source.operation)


def _parse(
    p: Probe,
    lines: list[str],
    numbers: list[int],
    bytes_read: int,
    prefix: str,
    blank: int,
    fixed_op: str | None,
) -> Chunk:
    split = [ln.split() for ln in lines]
    counts = np.fromiter((len(t) for t in split), dtype=np.int64, count=len(split))
    flat = "\n".join(tok for toks in split for tok in toks)
    try:
        table = pd.read_csv(
            io.StringIO(flat), sep="+", header=None, names=list(FIELDS), engine="c",
            dtype={"sku": np.int64, "behavior_type": np.int64, "category": np.int64,
                   "time_interval": np.float64, "dwell_time": np.float64},
        ) if flat else pd.DataFrame({f: np.empty(0, np.int64) for f in FIELDS})
        ok = len(table) == int(counts.sum()) and not table.isna().to_numpy().any()
    except (ValueError, pd.errors.ParserError, OverflowError):
        ok = False
    if not ok:
        raise _first_bad_token(p, split, numbers)
    values = table.to_numpy(dtype=np.float64)  # (tokens, 5)
    bad = (values < 0) | ~np.isfinite(values)
    if bad.any():
        row, col = (int(x[0]) for x in np.nonzero(bad))
        line_no, tok_no = _locate(counts, numbers, row)
        raise DataFormatError(
            f"micro-behavior {tok_no}: {FIELDS[col]} {split_token(split, counts, row)[col]!r}; expected a finite "
            "number ≥ 0 (sku+behavior_type+category+time_interval+dwell_time)",
            path=p.path, line=line_no,
        )
    behavior = table["behavior_type"].to_numpy()
    bad = (behavior < 1) | (behavior > len(OPERATIONS))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        line_no, tok_no = _locate(counts, numbers, row)
        raise DataFormatError(
            f"micro-behavior {tok_no}: behavior_type {int(behavior[row])}; expected 1..{len(OPERATIONS)} "
            f"({', '.join(f'{i + 1} {n}' for i, n in enumerate(OPERATIONS))})",
            path=p.path,
            line=line_no,
        )
    session_lines = np.repeat(np.asarray(numbers, dtype=np.int64), counts)
    interval = table["time_interval"].to_numpy()
    cum = np.cumsum(interval)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    before_start = cum[starts] - interval[starts] if len(starts) else cum[:0]
    timestamp = cum - interval - np.repeat(before_start, counts)  # seconds since the session's start
    huge = ~np.isfinite(timestamp) | (timestamp > MAX_ABS_SECONDS)
    if huge.any():
        row = int(np.flatnonzero(huge)[0])
        line_no, tok_no = _locate(counts, numbers, row)
        raise DataFormatError(
            f"micro-behavior {tok_no}: the time_interval values before it add up to more than 2^53 seconds; "
            "expected seconds between micro-behaviors", path=p.path, line=line_no,
        )
    names = np.asarray(OPERATIONS, dtype=object)
    operation = np.full(len(table), fixed_op, dtype=object) if fixed_op else names[behavior - 1]
    session = session_lines if not prefix else np.char.add(prefix, session_lines.astype(str)).astype(object)
    frame = pd.DataFrame(
        {
            "session": session,
            "item": table["sku"].to_numpy(),
            "operation": operation,
            "timestamp": timestamp,
            "category": table["category"].to_numpy(),
            "dwell": table["dwell_time"].to_numpy(),
        }
    )
    skipped = {"blank line": blank} if blank else {}
    return Chunk(frame, rows_read=len(frame), bytes_read=bytes_read, skipped=skipped)


def split_token(split: list[list[str]], counts: np.ndarray, row: int) -> list[str]:
    """The five fields of flat token ``row``."""
    ends = np.cumsum(counts)
    k = int(np.searchsorted(ends, row, side="right"))
    start = int(ends[k - 1]) if k else 0
    return split[k][row - start].split("+")


def _locate(counts: np.ndarray, numbers: list[int], row: int) -> tuple[int, int]:
    """(file line, 1-based token index in it) of flat token ``row``."""
    ends = np.cumsum(counts)
    k = int(np.searchsorted(ends, row, side="right"))
    start = int(ends[k - 1]) if k else 0
    return numbers[k], row - start + 1


def _first_bad_token(p: Probe, split: list[list[str]], numbers: list[int]) -> DataFormatError:
    for toks, number in zip(split, numbers, strict=True):
        for k, tok in enumerate(toks, start=1):
            if not _TOKEN.fullmatch(tok):
                shown = tok if len(tok) <= 60 else tok[:57] + "..."
                return DataFormatError(
                    f"micro-behavior {k} is {shown!r}; expected sku+behavior_type+category+time_interval+dwell_time "
                    "(five non-negative numbers joined by '+', e.g. 879089+7+753+30+67)",
                    path=p.path,
                    line=number,
                )
            fields = tok.split("+")
            big = next((f for f, v in zip(FIELDS, fields[:3], strict=False) if len(v) > 18 and int(v) > MAX_ID), None)
            if big is not None:
                shown = fields[FIELDS.index(big)]
                shown = shown if len(shown) <= 30 else shown[:27] + "..."
                return DataFormatError(f"micro-behavior {k}: {big} {shown} is above 2^63-1; expected a smaller "
                                       "whole number", path=p.path, line=number)
    return DataFormatError("cannot parse the micro-behaviors of this chunk; expected JD lines", path=p.path,
                           line=numbers[0] if numbers else None)
