"""Reading a delimited text table in bounded chunks, with every row's physical line known.

Why not hand the stream to ``pandas.read_csv`` directly: pandas silently pads short rows, silently
drops extra trailing fields when ``usecols`` is given, skips blank lines and counts quoted newlines
differently, so truncated lines were accepted and errors named the wrong line. Here a vectorised
scan of the raw bytes finds record ends outside quotes and counts each record's fields first; a row
whose field count differs from the header is refused at its line, and pandas only parses blocks of
complete, checked records. The scan costs a few passes of ``numpy`` over the bytes (small next to
the parse).

Documented limit: a line may hold at most :data:`MAX_LINE_BYTES` bytes (a longer one is refused
before it is held in memory whole).
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from embsr_core.data.errors import CutLastLineError, DataFormatError
from embsr_core.data.importers.base import UTF8_BOM as BOM
from embsr_core.data.importers.base import CountingReader, Probe, gzip_error, limit_text, read_header

MAX_LINE_BYTES = 16 * 2**20  # 16 MiB per line: far above any real row, bounds the memory a line takes
MIN_BLOCK_BYTES = 1 * 2**20
MAX_BLOCK_BYTES = 64 * 2**20
CUT_LAST_LINE = "the last line, cut short (the file ends inside it)"  # the import report's skip reason
SKIP_HINT = "to import the rest without it, skip the cut last line (CLI: --skip-cut-last-line)"
NA_VALUES = ["", "NA", "NaN", "null", "NULL"]
QUOTE, NEWLINE, NUL, CR = 34, 10, 0, 13


@dataclass(frozen=True)
class Layout:
    """How a text table is laid out: its delimiter, its column names, whether line 1 is a header."""

    delimiter: str
    names: tuple[str, ...]
    header: bool = True


@dataclass
class Rows:
    """Where a chunk's rows are in the source: the physical line of each row (text tables) or, for
    Parquet (``lines is None``), row numbers counted from ``first_row``; errors point there."""

    path: Any
    first_row: int  # 1-based number of the chunk's first data row in its file
    lines: np.ndarray | None = None  # (rows,) int64 physical line numbers
    cut_line: int | None = None  # set on a file's last chunk: the cut last line that was skipped

    def skipped(self) -> dict[str, int]:
        """What the reader itself left out of this chunk, as import-report reasons."""
        return {CUT_LAST_LINE: 1} if self.cut_line is not None else {}

    def where(self, r: int) -> int:
        return int(self.lines[r]) if self.lines is not None else self.first_row + r

    def error(self, message: str, r: int, column: str | None = None) -> DataFormatError:
        if self.lines is not None:
            return DataFormatError(message, path=self.path, line=int(self.lines[r]), column=column)
        return DataFormatError(f"row {self.first_row + r}: {message}", path=self.path, column=column)


def layout_of(p: Probe, delimiter: str, *, header: bool = True) -> Layout:
    """The table's layout from its first line: header names (stripped; a repeated name gets a
    `` (2)`` suffix so the others stay readable), or positions ``1..n`` for a header-less file."""
    first_fields = read_header(p, delimiter)
    if not header:
        return Layout(delimiter, tuple(str(k) for k in range(1, len(first_fields) + 1)), header=False)
    seen: dict[str, int] = {}
    names = []
    for name in first_fields:
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return Layout(delimiter, tuple(names), header=True)


def repeated(names: tuple[str, ...] | list[str]) -> set[str]:
    """Column names that occur more than once (a table or Parquet schema with duplicate names)."""
    out, seen = set(), set()
    for n in names:
        (out if n in seen else seen).add(n)
    return out


def _first_non_utf8(arr: np.ndarray) -> tuple[int, str] | None:
    """(position, reason) of the first byte that is not UTF-8, or None. Only the runs of non-ASCII bytes
    are decoded (a multi-byte character never contains an ASCII byte), joined by newlines: one decode
    of a few bytes instead of the whole block."""
    high = np.flatnonzero(arr >= 0x80)
    if not len(high):
        return None
    breaks = np.flatnonzero(np.diff(high) > 1) + 1
    joined = np.insert(arr[high], breaks, NEWLINE)
    try:
        joined.tobytes().decode("utf-8")
        return None
    except UnicodeDecodeError as exc:
        separators = breaks + np.arange(len(breaks))
        k = exc.start
        return int(high[k - int(np.searchsorted(separators, k))]), exc.reason


def _block_bytes(p: Probe, chunk_rows: int) -> int:
    lines = max(len(p.lines), 1)
    per_row = max(len((p.text or "").encode()) / lines, 8.0)
    return int(min(max(per_row * chunk_rows * 1.1, MIN_BLOCK_BYTES), MAX_BLOCK_BYTES))


def _outside(positions: np.ndarray, quotes: np.ndarray) -> np.ndarray:
    """The positions not inside a quoted field (an even number of quote characters before them)."""
    if not len(quotes) or not len(positions):
        return positions
    return positions[np.searchsorted(quotes, positions) % 2 == 0]


class _Scanner:
    """Cuts the byte stream into checked records: (record starts, field counts, line numbers)."""

    def __init__(self, p: Probe, layout: Layout, chunk_rows: int, exact: tuple[str, ...] = (),
                 skip_cut_last_line: bool = False):
        self.p = p
        self.skip_cut_last_line = skip_cut_last_line
        self.cut_line: int | None = None  # the cut last line that was skipped
        self.exact = tuple(layout.names.index(c) for c in exact)
        self.utf8 = p.encoding in ("utf-8", "utf-8-sig")
        self.layout = layout
        self.delim = ord(layout.delimiter)
        self.n_fields = len(layout.names)
        self.block = _block_bytes(p, chunk_rows)
        self.line = 1  # physical line number of the first byte of the pending buffer

    def error(self, message: str, line: int, column: str | None = None) -> DataFormatError:
        return DataFormatError(message, path=self.p.path, line=line, column=column)

    def check(self, buf: bytes, last: bool) -> tuple[int, np.ndarray, np.ndarray, int, bool]:
        """(bytes of ``buf`` holding complete records, start of each record, line of each record,
        newlines in those bytes, whether every field reads back exactly as an integer would print).

        Blank records are left out of the returned arrays (pandas skips them too). Raises at the
        first record with the wrong number of fields, a NUL byte, or (at the end) an open quote.
        """
        arr = np.frombuffer(buf, dtype=np.uint8)
        marks = np.flatnonzero((arr == NEWLINE) | (arr == QUOTE) | (arr == self.delim) | (arr == CR))  # one pass
        kind = arr[marks]
        all_nl = marks[kind == NEWLINE]
        quotes = marks[kind == QUOTE]
        returns = marks[kind == CR]
        ends = _outside(all_nl, quotes)
        complete = int(ends[-1]) + 1 if len(ends) else 0
        newlines = int(np.searchsorted(all_nl, complete))
        unterminated = False  # the last record has no line end (it may be cut short)
        if last and complete < len(buf):  # the last line has no newline: it is a record too
            if len(quotes) and np.count_nonzero(quotes >= complete) % 2 == 1:
                if self.skip_cut_last_line:
                    self.cut_line = self._line_at(all_nl, complete)
                    buf = buf[:complete]  # the cut record is dropped; the rest is checked as usual
                    arr, marks = arr[:complete], marks[marks < complete]
                    kind = arr[marks]
                    all_nl, quotes = all_nl[all_nl < complete], quotes[quotes < complete]
                    returns = returns[returns < complete]
                else:
                    opened = int(quotes[np.searchsorted(quotes, complete)])
                    raise CutLastLineError("a quoted field opened here is never closed (file cut inside quotes?); "
                                           f"expected a closing '\"'; {SKIP_HINT}", path=self.p.path,
                                           line=self._line_at(all_nl, opened))
            else:
                ends = np.r_[ends, len(buf)]
                complete = len(buf)
                unterminated = True
        starts = np.r_[0, ends[:-1] + 1] if len(ends) else np.empty(0, np.int64)
        if len(buf) - complete > MAX_LINE_BYTES:
            open_quote = len(quotes) and np.count_nonzero(quotes >= complete) % 2 == 1
            why = "a quoted field opened there is not closed" if open_quote else "no line end found"
            raise self.error(f"the line is longer than {limit_text(MAX_LINE_BYTES)} ({why}); "
                             "expected text lines below that limit", self._line_at(all_nl, complete))
        if not len(ends):
            return 0, starts, starts, 0, True
        self._check_quotes_and_returns(arr, quotes, returns, complete, all_nl)
        if self.utf8:  # every record, used columns or not, must be UTF-8
            bad_at = _first_non_utf8(arr[:complete])
            if bad_at is not None:
                pos, reason = bad_at
                raise self.error(f"undecodable byte 0x{buf[pos]:02x} at byte {pos - self._line_start(all_nl, pos) + 1} "
                                 f"of the line ({reason}); expected UTF-8 text (save the file as UTF-8)",
                                 self._line_at(all_nl, pos))
        nul = buf.find(b"\x00", 0, complete)
        if nul >= 0:
            raise self.error(f"a NUL byte at byte {nul - self._line_start(all_nl, nul) + 1}; expected text",
                             self._line_at(all_nl, nul))
        delims = marks[kind == self.delim]
        delims = _outside(delims[: np.searchsorted(delims, complete)], quotes)
        before_end = np.searchsorted(delims, ends)
        fields = np.diff(np.r_[0, before_end]) + 1
        length = ends - starts
        if len(length) and int(length.max()) > MAX_LINE_BYTES:
            k = int(np.argmax(length > MAX_LINE_BYTES))
            raise self.error(f"the line is longer than {limit_text(MAX_LINE_BYTES)}; expected text lines below that "
                             "limit", self._line_at(all_nl, int(starts[k])))
        cr = length > 0
        cr[cr] = arr[ends[cr] - 1] == 13
        blank = (length == 0) | ((length == 1) & cr)
        if len(all_nl) >= len(ends) and newlines == len(ends):  # no newline inside quotes: line k is record k
            lines = self.line + np.arange(len(ends), dtype=np.int64)
        else:
            lines = self.line + np.searchsorted(all_nl, starts)
        bad = (fields != self.n_fields) & ~blank
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            cut = unterminated and k == len(ends) - 1 and int(fields[k]) < self.n_fields
            if not (cut and self.skip_cut_last_line):
                raise self._field_error(int(fields[k]), int(lines[k]), cut=cut)
            self.cut_line = int(lines[k])  # drop the cut record; its bytes count as read
            delims = delims[: np.searchsorted(delims, starts[k])]
            starts, ends, lines, blank = starts[:k], ends[:k], lines[:k], blank[:k]
        keep = ~blank
        exact = _prints_as_integers(arr, starts[keep], delims, ends[keep], self.n_fields, self.exact)
        return complete, starts[keep], lines[keep], newlines, exact

    def _check_quotes_and_returns(self, arr: np.ndarray, quotes: np.ndarray, returns: np.ndarray, complete: int,
                                  all_nl: np.ndarray) -> None:
        """Quotes only around whole fields (pandas reads a quote inside a field as a letter, which would
        shift the columns), and no carriage return alone inside a line (pandas would end the row there)."""
        n = len(arr)
        q = quotes[quotes < complete]
        if len(q):
            prev = np.where(q > 0, arr[np.maximum(q - 1, 0)], NEWLINE)
            nxt = np.where(q + 1 < n, arr[np.minimum(q + 1, n - 1)], NEWLINE)
            opening = np.arange(len(q)) % 2 == 0
            field_edge = (prev == self.delim) | (prev == NEWLINE) | (prev == QUOTE)
            closing_edge = (nxt == self.delim) | (nxt == NEWLINE) | (nxt == CR) | (nxt == QUOTE) | (q + 1 >= complete)
            bad = np.where(opening, ~field_edge, ~closing_edge)
            if bad.any():
                pos = int(q[np.argmax(bad)])
                raise self.error(f"a quote at byte {pos - self._line_start(all_nl, pos) + 1} of the line is inside a "
                                 "field; expected quotes only around a whole field (write a quote inside a quoted "
                                 "field as \"\")", self._line_at(all_nl, pos))
        r = _outside(returns[returns < complete], quotes)
        if len(r):
            lone = arr[np.minimum(r + 1, n - 1)] != NEWLINE
            lone |= r + 1 >= n
            if lone.any():
                pos = int(r[np.argmax(lone)])
                raise self.error("a carriage return inside the line; expected line ends of \\n or \\r\\n",
                                 self._line_at(all_nl, pos))

    def _line_at(self, all_nl: np.ndarray, pos: int) -> int:
        return self.line + int(np.searchsorted(all_nl, pos))

    @staticmethod
    def _line_start(all_nl: np.ndarray, pos: int) -> int:
        k = int(np.searchsorted(all_nl, pos))
        return int(all_nl[k - 1]) + 1 if k else 0

    def _field_error(self, got: int, line: int, *, cut: bool = False) -> DataFormatError:
        n, d = self.n_fields, self.layout.delimiter
        like = "like the header" if self.layout.header else "like the first line"
        if cut:
            return CutLastLineError(f"{got} {d!r}-separated field(s), expected {n} {like}: the file ends inside "
                                    f"this last line (cut short: file truncated?); {SKIP_HINT}",
                                    path=self.p.path, line=line)
        if got > n:
            why = "an extra field (a stray delimiter or a quote missing?)"
        elif line > 1:
            why = "fields missing (the line is cut short: file truncated?)"
        else:
            why = "fields missing"
        return self.error(f"{got} {d!r}-separated field(s), expected {n} {like}: {why}", line)


_DIGITS = np.zeros(256, dtype=bool)
_DIGITS[ord("0") : ord("9") + 1] = True
_ODD_START = np.zeros(256, dtype=bool)  # a field starting so may not print back as its integer
_ODD_START[[ord("+"), ord(" "), ord("\t"), QUOTE]] = True


def _prints_as_integers(arr: np.ndarray, starts: np.ndarray, delims: np.ndarray, ends: np.ndarray,
                        n_fields: int, columns: tuple[int, ...]) -> bool:
    """False when a field of ``columns`` has a leading zero, sign, space or quote, or a trailing
    space: there an integer parse would change the text (``007`` -> ``7``), so those columns must be
    read as text. Every non-blank record has ``n_fields`` fields here (checked before)."""
    if not columns or not len(starts):
        return True
    grid = delims.reshape(len(starts), n_fields - 1) if n_fields > 1 else np.empty((len(starts), 0), np.int64)
    crlf = ends > 0
    crlf[crlf] = arr[ends[crlf] - 1] == 13
    line_ends = ends - crlf
    n = len(arr)
    for k in columns:
        first_ = starts if k == 0 else grid[:, k - 1] + 1
        stop = line_ends if k == n_fields - 1 else grid[:, k]
        filled = stop > first_
        first_, stop = first_[filled], stop[filled]
        b0 = arr[first_]
        if _ODD_START[b0].any() or (arr[stop - 1] == ord(" ")).any():
            return False
        two = (stop - first_ > 1) & (b0 == ord("0"))
        if two.any() and _DIGITS[arr[np.minimum(first_[two] + 1, n - 1)]].any():
            return False
    return True


def iter_table(
    p: Probe,
    layout: Layout,
    *,
    usecols: list[str],
    dtype: dict[str, Any],
    chunk_rows: int,
    exact: tuple[str, ...] = (),
    skip_cut_last_line: bool = False,
) -> Iterator[tuple[pd.DataFrame, Rows, int]]:
    """Chunks of a text table as ``(frame of usecols, where its rows are, bytes read so far)``.

    Every record is checked for its field count before pandas sees it; parse, decoding and gzip
    errors name the file and line. Columns in ``exact`` keep their text exactly: they may come back
    as integers only where every integer prints back as the text it was read from (fast to parse
    and to factorize), else as text. With ``skip_cut_last_line`` a last line that the file ends inside
    is dropped, and the last chunk's :attr:`Rows.cut_line` says which (each chunk is yielded one
    step late so that the last one can carry it).
    """
    held: tuple[pd.DataFrame, Rows, int] | None = None
    for part in _iter_table(p, layout, usecols, dtype, chunk_rows, exact, skip_cut_last_line):
        if isinstance(part, int):
            if held is not None:
                held[1].cut_line = part
            continue
        if held is not None:
            yield held
        held = part
    if held is not None:
        yield held


def _iter_table(p: Probe, layout: Layout, usecols: list[str], dtype: dict[str, Any], chunk_rows: int,
                exact: tuple[str, ...], skip_cut_last_line: bool) -> Iterator[tuple[pd.DataFrame, Rows, int] | int]:
    """The chunks of :func:`iter_table`, then the skipped cut line's number (an int) if there was one."""
    scanner = _Scanner(p, layout, chunk_rows, exact, skip_cut_last_line)
    encoding = "utf-8" if p.encoding in ("utf-8", "utf-8-sig") else p.encoding
    with CountingReader(p.path, p.gzip) as reader:
        pending = b""
        first = True
        row_number = 1
        eof = False
        while not eof:
            try:
                block = reader.stream.read(scanner.block)
            except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
                raise gzip_error(p.path, exc) from None
            eof = not block
            buf = pending + block
            if first:
                if buf.startswith(BOM):
                    buf = buf[len(BOM):]
                first = False
            complete, starts, lines, newlines, integers_exact = scanner.check(buf, last=eof)
            kinds = dtype if integers_exact else {**dtype, **{c: str for c in exact}}
            if layout.header and scanner.line == 1 and complete:
                # the header is record 1; drop it from what pandas parses
                starts, lines = starts[1:], lines[1:]
            if len(starts):
                view = memoryview(buf)[int(starts[0]) : complete]
                offset = int(starts[0])
                for k in range(0, len(starts), chunk_rows):
                    part_starts = starts[k : k + chunk_rows]
                    stop = int(starts[k + chunk_rows]) if k + chunk_rows < len(starts) else complete
                    data = view[int(part_starts[0]) - offset : stop - offset]
                    frame = _parse(p, data, layout, usecols, kinds, encoding, lines[k : k + chunk_rows])
                    if exact and integers_exact and not _exact(frame, exact):
                        frame = _parse(p, data, layout, usecols, {**dtype, **{c: str for c in exact}}, encoding,
                                       lines[k : k + chunk_rows])
                    rows = Rows(p.path, row_number, lines[k : k + chunk_rows])
                    row_number += len(part_starts)
                    yield frame, rows, reader.bytes_read
            scanner.line += newlines
            pending = buf[complete:]
        if row_number == 1 and not layout.header:
            raise DataFormatError("no data lines; expected a delimited table", path=p.path)
        if scanner.cut_line is not None:
            yield scanner.cut_line


def _exact(frame: pd.DataFrame, columns: tuple[str, ...]) -> bool:
    """Whether the inferred dtypes of ``columns`` keep their text (integers or text; not floats/bools)."""
    for c in columns:
        kind = frame[c].dtype
        if isinstance(kind, pd.CategoricalDtype):
            kind = kind.categories.dtype
        if not (pd.api.types.is_integer_dtype(kind) or pd.api.types.is_object_dtype(kind)
                or pd.api.types.is_string_dtype(kind)):
            return False
    return True


def _parse(p: Probe, data: memoryview, layout: Layout, usecols: list[str], dtype: dict[str, Any],
           encoding: str, lines: np.ndarray) -> pd.DataFrame:
    try:
        frame = pd.read_csv(
            io.BytesIO(data), sep=layout.delimiter, header=None, names=list(layout.names), usecols=usecols,
            dtype=dtype, encoding=encoding, keep_default_na=False, na_values=NA_VALUES, engine="c",
            low_memory=False, skip_blank_lines=True,
        )
    except UnicodeDecodeError as exc:
        raise _decode_error(p, bytes(data), lines, encoding, exc) from None
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataFormatError(f"cannot parse the table ({str(exc).strip()})", path=p.path,
                              line=int(lines[0]) if len(lines) else None) from None
    if len(frame) != len(lines):  # the checks above make this impossible; never store a shifted table
        raise DataFormatError(f"parsed {len(frame)} rows where {len(lines)} lines were checked; expected one "
                              "row per line", path=p.path, line=int(lines[0]) if len(lines) else None)
    return frame


def _decode_error(p: Probe, data: bytes, lines: np.ndarray, encoding: str,
                  exc: UnicodeDecodeError) -> DataFormatError:
    """The exact line and byte of the first undecodable byte (pandas only says that one exists)."""
    try:
        data.decode(encoding)
        pos = 0
    except UnicodeDecodeError as inner:
        pos = inner.start
    line = int(lines[0]) + data.count(b"\n", 0, pos) if len(lines) else None
    col = pos - (data.rfind(b"\n", 0, pos) + 1) + 1
    return DataFormatError(
        f"undecodable byte 0x{data[pos]:02x} at byte {col} of the line ({exc.reason}); expected {encoding} text "
        "(save the file as UTF-8)", path=p.path, line=line,
    )
