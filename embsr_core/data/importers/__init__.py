"""Native-format importers, found by name. Each module streams :class:`Chunk` frames of canonical events.

A format module exposes ``NAME``, ``DESCRIPTION``, ``OPERATIONS`` (its operation vocabulary in code
order, empty when open), ``sniff(probe) -> bool`` and
``iter_chunks(source, mapping, *, chunk_rows, session_prefix) -> Iterator[Chunk]``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from embsr_core.data.errors import DataFormatError
from embsr_core.data.importers.base import DEFAULT_CHUNK_ROWS, Chunk, ColumnMapping, Probe, Source, probe

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
    raise DataFormatError(
        f"unrecognised content (first line {first!r}); expected JD micro-behavior lines, a trivago train "
        "file, or a delimited table / Parquet file with a header",
        path=path,
        line=1,
    )


__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "FORMATS",
    "Chunk",
    "ColumnMapping",
    "Probe",
    "Source",
    "detect_format",
    "get_importer",
    "probe",
]
