"""Native-format importers, found by name. Each module streams :class:`Chunk` frames of canonical events.

A format module exposes ``NAME``, ``DESCRIPTION``, ``OPERATIONS`` (its operation vocabulary in code
order, empty when open), ``sniff(probe) -> bool`` and
``iter_chunks(source, mapping, *, chunk_rows, session_prefix) -> Iterator[Chunk]``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType

import pandas as pd

from embsr_core.data.errors import DataFormatError
from embsr_core.data.importers import generic
from embsr_core.data.importers.base import (
    DEFAULT_CHUNK_ROWS,
    DEFAULT_SESSION_GAP,
    Chunk,
    ColumnMapping,
    Probe,
    Source,
    probe,
)

# Most specific first: detect_format returns the first whose sniff accepts the file.
FORMATS: tuple[str, ...] = ("trivago", "jd", "generic")


def get_importer(name: str) -> ModuleType:
    """The importer module for ``name`` (one of :data:`FORMATS`); ``ValueError`` names the known ones."""
    if name not in FORMATS:
        raise ValueError(f"unknown format {name!r}; expected one of {', '.join(FORMATS)} (or auto)")
    return importlib.import_module(f"embsr_core.data.importers.{name}")


def detect_format(path: str | Path) -> str:
    """Sniff the content (magic bytes, header, first lines), not only the extension.

    Raises :class:`DataFormatError` for missing, empty, binary or unrecognised files.
    """
    p = probe(path)
    for name in FORMATS:
        if get_importer(name).sniff(p):
            return name
    first = p.lines[0][:80] if p.lines else ""
    if p.encoding == "latin-1":  # not UTF-8: say where, the likeliest reason nothing matched
        line, byte = _first_non_utf8(p)
        raise DataFormatError(f"undecodable byte at byte {byte} of the line; expected UTF-8 text (JD lines, a "
                              "trivago train file, or a delimited table with a header)", path=path, line=line)
    raise DataFormatError(
        f"unrecognised content (first line {first!r}); expected JD micro-behavior lines, a trivago train "
        "file, or a delimited table / Parquet file with a header",
        path=path,
        line=1,
    )


def _first_non_utf8(p: Probe) -> tuple[int, int]:
    """(line, byte in the line) of the first byte of the probed head that is not UTF-8."""
    with p.path.open("rb") as raw:
        head = raw.read(len((p.text or "").encode("latin-1")) or 1)
    if p.gzip:
        import gzip

        with gzip.open(p.path, "rb") as z:
            head = z.read(len(head))
    try:
        head.decode("utf-8")
        return 1, 1
    except UnicodeDecodeError as exc:
        line_start = head.rfind(b"\n", 0, exc.start) + 1
        return head.count(b"\n", 0, exc.start) + 1, exc.start - line_start + 1


def ignored_mapping(format: str, mapping: ColumnMapping | None) -> str | None:  # noqa: A002
    """A warning when column choices were given for a format that fixes its own columns."""
    if mapping is None:
        return None
    notes = []
    if format != "generic" and mapping.has_columns():
        notes.append(f"the column, delimiter, header and session options apply to generic tables only; this is a "
                     f"{format} file, so they are ignored")
    if format not in ("generic", "trivago") and mapping.skip_cut_last_line:
        notes.append(f"skipping a cut last line applies to delimited tables (generic, trivago), not to {format} "
                     "files, so it is ignored")
    return "; ".join(notes) or None


def iter_source_chunks(
    sources: Sequence[Source],
    format: str = "auto",  # noqa: A002  (the user-facing word)
    mapping: ColumnMapping | None = None,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> tuple[str, Iterator[tuple[int, Chunk]]]:
    """(resolved format, chunks of all sources as ``(source index, chunk)``), read lazily.

    ``auto`` detects the first file's format and requires the others to match. When a chosen format
    fails on a file that looks like another format, the error says so.
    """
    if not sources:
        raise DataFormatError("no input file given; expected at least one path")
    if format == "auto":
        found = [detect_format(s.path) for s in sources]
        if len(set(found)) > 1:
            listing = ", ".join(f"{s.path.name}: {f}" for s, f in zip(sources, found, strict=True))
            raise DataFormatError(f"the files are of different formats ({listing}); expected one format")
        format = found[0]  # noqa: A001
    importer = get_importer(format)
    for s in sources:  # fail before any transaction on missing, empty or binary files
        probe(s.path)

    if format == "generic" and generic.uses_users(mapping):
        assert mapping is not None
        return format, generic.cut_sessions(_read(importer, sources, format, mapping, chunk_rows), mapping.gap,
                                            chunk_rows, sources)
    return format, _read(importer, sources, format, mapping, chunk_rows)


def _read(importer: ModuleType, sources: Sequence[Source], format: str,  # noqa: A002
          mapping: ColumnMapping | None, chunk_rows: int) -> Iterator[tuple[int, Chunk]]:
    def chunks() -> Iterator[tuple[int, Chunk]]:
        for index, source in enumerate(sources):
            prefix = f"{index + 1}:" if len(sources) > 1 else ""
            try:
                for chunk in importer.iter_chunks(source, mapping, chunk_rows=chunk_rows, session_prefix=prefix):
                    yield index, chunk
            except DataFormatError as exc:
                raise _with_format_hint(exc, source.path, format) from None

    return chunks()


def _with_format_hint(exc: DataFormatError, path: Path, chosen: str) -> DataFormatError:
    try:
        actual = detect_format(path)
    except DataFormatError:
        return exc
    if actual == chosen or actual == "generic":
        return exc
    return DataFormatError(
        f"{exc.detail} (this file looks like the {actual} format, not {chosen}: choose --format {actual} or auto)",
        path=exc.path, line=exc.line, column=exc.column,
    )


def read_events(
    sources: str | Path | Source | Sequence[str | Path | Source],
    format: str = "auto",  # noqa: A002
    mapping: ColumnMapping | None = None,
) -> pd.DataFrame:
    """A whole (small) source as one validated canonical events frame, without a store."""
    from embsr_core.data.events import validate_events

    items = [sources] if isinstance(sources, str | Path | Source) else list(sources)
    srcs = [Source.of(s) for s in items]
    _, chunks = iter_source_chunks(srcs, format, mapping)
    frames = [chunk.frame for _, chunk in chunks]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["session", "item",
                                                                                      "operation", "timestamp"])
    return validate_events(frame, source=", ".join(str(s.path) for s in srcs))


__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "DEFAULT_SESSION_GAP",
    "FORMATS",
    "Chunk",
    "ColumnMapping",
    "Probe",
    "Source",
    "detect_format",
    "get_importer",
    "ignored_mapping",
    "iter_source_chunks",
    "read_events",
    "probe",
]
