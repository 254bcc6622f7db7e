"""What every importer shares: sources, column mappings, chunks, file probing and chunked CSV reading.

Importers stream: they yield :class:`Chunk` frames of a bounded number of rows, never the whole file.
A chunk's frame has the canonical columns (``session, item, operation, timestamp`` + optional
``category, dwell, step``) but keeps ids in their native dtype (int64 or str) because converting
millions of ids to str costs more than the whole insert; the store maps uniques only.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import gzip
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pandas as pd

from embsr_core.data.errors import DataFormatError

HEAD_BYTES = 64 * 1024
DEFAULT_CHUNK_ROWS = 250_000
GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
PARQUET_MAGIC = b"PAR1"
DELIMITERS = (",", ";", "\t", "|")


DEFAULT_SESSION_GAP = 30 * 60.0  # seconds of inactivity that end a session cut from a user log


@dataclass(frozen=True)
class ColumnMapping:
    """Which source column holds each canonical field (``None``: the importer's default or absent).

    Names match exactly first, then ignoring case and ``_``/``-``/spaces, so one mapping fits files
    that spell a column differently (Diginetica: ``session_id`` in views, ``sessionId`` in purchases).
    With ``header=False`` the file's first line is data and columns are named by position ``"1"``,
    ``"2"``, ... A ``user`` column without a session column cuts each user's events into sessions
    at gaps longer than ``session_gap`` seconds (default 30 minutes). Ids are opaque text (``007``
    and ``7`` differ) unless ``numeric_ids`` says whole-number ids are numbers (then they are one).
    """

    session: str | None = None
    item: str | None = None
    operation: str | None = None
    timestamp: str | None = None
    category: str | None = None
    dwell: str | None = None
    delimiter: str | None = None  # None: sniffed from the content
    user: str | None = None
    session_gap: float | None = None  # None: DEFAULT_SESSION_GAP when sessions are cut from users
    header: bool = True
    numeric_ids: bool = False  # True: session / user / item ids that are whole numbers compare as numbers
    # True: a delimited table's last line that the file ends inside (no line end, and fields missing or a
    # quote open) is skipped and counted in the report instead of refusing the file. Applies to generic and
    # Trivago text tables; a cut inside the last field still has every field and cannot be told apart.
    skip_cut_last_line: bool = False

    def as_dict(self) -> dict[str, str | None]:
        return {k: getattr(self, k) for k in ("session", "item", "operation", "timestamp", "category", "dwell",
                                              "user")}

    @property
    def gap(self) -> float:
        return DEFAULT_SESSION_GAP if self.session_gap is None else float(self.session_gap)

    def has_columns(self) -> bool:
        """Whether any column, delimiter or layout choice was made (they only apply to generic tables)."""
        return any(v is not None for v in self.as_dict().values()) or self.delimiter is not None \
            or self.session_gap is not None or not self.header or self.numeric_ids


@dataclass(frozen=True)
class Source:
    """One input file, optionally with a fixed operation name for all its rows (Diginetica purchases)."""

    path: Path
    operation: str | None = None

    @classmethod
    def of(cls, value: str | Path | Source) -> Source:
        return value if isinstance(value, Source) else cls(Path(value))


@dataclass
class Chunk:
    """A bounded slice of one source in canonical columns, with how far the reader got."""

    frame: pd.DataFrame
    rows_read: int  # source rows consumed for this chunk (kept + skipped)
    bytes_read: int  # position in the (compressed) file after this chunk
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> rows


@dataclass(frozen=True)
class Probe:
    """The first bytes of a file, decompressed and classified, for sniffing and early errors."""

    path: Path
    size: int
    gzip: bool
    parquet: bool
    text: str | None  # decoded head (complete lines only) for text files
    encoding: str
    parquet_columns: tuple[str, ...] = ()

    @property
    def lines(self) -> list[str]:
        return [] if self.text is None else self.text.splitlines()


def probe(path: str | Path) -> Probe:
    """Read and classify the head of ``path``; raises :class:`DataFormatError` for missing/empty/binary files."""
    path = Path(path)
    try:
        path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise DataFormatError("a symbolic link to a missing file; expected a data file", path=path) from None
        raise DataFormatError("file not found; expected an existing data file", path=path) from None
    except OSError as exc:  # ELOOP, EACCES on a parent, name too long...
        reason = "a loop of symbolic links" if exc.errno == errno.ELOOP else exc.strerror or str(exc)
        raise DataFormatError(f"cannot open the file ({reason}); expected a readable data file", path=path) from None
    if path.is_dir():
        raise DataFormatError("this is a folder; expected a data file", path=path)
    size = path.stat().st_size
    if size == 0:
        raise DataFormatError("the file is empty; expected a header or data lines", path=path)
    try:
        with path.open("rb") as raw:
            head = raw.read(HEAD_BYTES)
    except OSError as exc:
        raise DataFormatError(f"cannot read the file ({exc.strerror or exc}); expected a readable data file",
                              path=path) from None
    if head.startswith(PARQUET_MAGIC):
        return Probe(path, size, False, True, None, "utf-8", _parquet_columns(path))
    is_gzip = head.startswith(GZIP_MAGIC)
    if is_gzip:
        head = _gunzip_head(path)
        if not head:
            raise DataFormatError("the compressed file is empty; expected data lines", path=path)
    text, encoding = _decode_text(head, path, complete=len(head) < HEAD_BYTES)
    if not text.strip():
        raise DataFormatError("the file holds only blank lines; expected a header or data lines", path=path)
    return Probe(path, size, is_gzip, False, text, encoding)


def _gunzip_head(path: Path) -> bytes:
    """The first decompressed bytes; a truncated stream gives what it has (the full read reports it)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = b""
    with path.open("rb") as raw:
        try:
            while len(out) < HEAD_BYTES and (block := raw.read(HEAD_BYTES)):
                out += inflater.decompress(block, HEAD_BYTES - len(out))
                if inflater.eof:
                    break
        except zlib.error as exc:
            raise DataFormatError(f"not a readable gzip file ({exc})", path=path) from None
    return out


def _decode_text(head: bytes, path: Path, *, complete: bool) -> tuple[str, str]:
    if head.startswith(UTF8_BOM):  # a byte-order mark (Excel, Notepad): not part of the first field
        text, _ = _decode_text(head[len(UTF8_BOM):], path, complete=complete)
        return text, "utf-8-sig"
    if b"\x00" in head:
        nul = head.index(b"\x00")
        byte = nul - head.rfind(b"\n", 0, nul)
        raise DataFormatError(f"binary content (a NUL byte at byte {byte} of the line); "
                              "expected a text table, JD lines or Parquet", path=path,
                              line=head.count(b"\n", 0, nul) + 1)
    try:
        text, encoding = head.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 3 and not complete:  # a multi-byte character cut by the head limit
            text, encoding = head[: exc.start].decode("utf-8"), "utf-8"
        else:
            controls = sum(b < 9 or 13 < b < 32 for b in head[:4096])
            if controls > 0.01 * min(len(head), 4096):
                raise DataFormatError(
                    f"binary content (byte 0x{head[exc.start]:02x} is neither UTF-8 nor text); expected a text table, "
                    "JD lines or Parquet", path=path, line=head.count(b"\n", 0, exc.start) + 1,
                ) from None
            text, encoding = head.decode("latin-1"), "latin-1"
    if not complete and "\n" in text:
        text = text[: text.rindex("\n") + 1]  # only complete lines
    return text, encoding


def _parquet_columns(path: Path) -> tuple[str, ...]:
    import pyarrow.parquet as pq

    try:
        return tuple(pq.read_schema(path).names)
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError with a terse text
        raise DataFormatError(f"not a readable Parquet file ({exc}); expected a complete Parquet file (truncated or "
                              "damaged?)", path=path) from None


def sniff_delimiter(probe_: Probe) -> str | None:
    """The delimiter that splits the first lines into the same number (> 1) of fields; the most fields wins.

    The last line may be cut (a truncated file): it does not take part when there are others.
    """
    lines = [ln for ln in probe_.lines[:50] if ln.strip()]
    if len(lines) > 1:
        lines = lines[:-1]
    if not lines:
        return None
    best: tuple[int, str] | None = None
    for delim in DELIMITERS:
        counts = {len(row) for row in csv.reader(lines, delimiter=delim)}
        if len(counts) == 1:
            n = counts.pop()
            if n > 1 and (best is None or n > best[0]):
                best = (n, delim)
    return None if best is None else best[1]


def normalise_name(name: str) -> str:
    return re.sub(r"[\s_\-]", "", str(name)).lower()


def resolve_column(wanted: str, columns: list[str]) -> str | None:
    """``wanted`` among ``columns``: exact, else ignoring case and ``_``/``-``/spaces."""
    if wanted in columns:
        return wanted
    key = normalise_name(wanted)
    matches = [c for c in columns if normalise_name(c) == key]
    return matches[0] if len(matches) == 1 else None


class CountingReader:
    """A binary stream over a (maybe gzip) file that knows how many raw bytes were consumed."""

    def __init__(self, path: Path, is_gzip: bool):
        self.path = path
        self.raw: IO[bytes] = path.open("rb")
        self.stream: IO[bytes] = gzip.GzipFile(fileobj=self.raw, mode="rb") if is_gzip else self.raw

    @property
    def bytes_read(self) -> int:
        return self.raw.tell()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stream.close()
        self.raw.close()

    def __enter__(self) -> CountingReader:
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()


def read_header(p: Probe, delimiter: str) -> list[str]:
    """The header fields of a text table (first line)."""
    first = next(csv.reader(p.lines[:1], delimiter=delimiter), [])
    return [c.strip() for c in first]


def gzip_error(path: Path, exc: Exception) -> DataFormatError:
    """A damaged or cut gzip stream, located after the last line that still decompresses."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    lines = 0
    with contextlib.suppress(zlib.error), path.open("rb") as raw:
        while block := raw.read(1 << 20):
            lines += inflater.decompress(block).count(b"\n")
    return DataFormatError(f"the compressed file ends early or is damaged after line {lines} ({exc}); expected a "
                           "complete gzip stream", path=path, line=lines + 1)


def limit_text(n_bytes: int) -> str:
    return f"{n_bytes // 2**20} MiB" if n_bytes >= 2**20 else f"{n_bytes // 1024} KiB"


def text_lines(p: Probe) -> Iterator[tuple[int, str, int]]:
    """Lines of a text file as ``(line_number, text, bytes_read)``, streaming.

    Each line is read as bytes and decoded on its own, so an undecodable byte or a NUL byte is
    reported at its exact line; a line over ``MAX_LINE_BYTES`` is refused before it is held whole.
    """
    from embsr_core.data.importers.table import BOM, MAX_LINE_BYTES

    encoding = "utf-8" if p.encoding == "utf-8-sig" else p.encoding
    with CountingReader(p.path, p.gzip) as reader:
        number = 0
        while True:
            try:
                raw = reader.stream.readline(MAX_LINE_BYTES + 1)
            except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
                raise gzip_error(p.path, exc) from None
            if not raw:
                return
            number += 1
            if number == 1 and raw.startswith(BOM):
                raw = raw[len(BOM):]
            if len(raw) > MAX_LINE_BYTES:
                raise DataFormatError(f"the line is longer than {limit_text(MAX_LINE_BYTES)}; expected lines "
                                      "below that limit", path=p.path, line=number)
            if b"\x00" in raw:
                raise DataFormatError(f"a NUL byte at byte {raw.index(0) + 1}; expected text", path=p.path,
                                      line=number)
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError as exc:
                raise DataFormatError(
                    f"undecodable byte 0x{raw[exc.start]:02x} at byte {exc.start + 1} of the line ({exc.reason}); "
                    f"expected {encoding} text (save the file as UTF-8)", path=p.path, line=number,
                ) from None
            yield number, text, reader.bytes_read
