"""Errors of the data layer that a user must be able to act on (CLI and GUI show the message as is)."""

from __future__ import annotations

from pathlib import Path


class DataFormatError(ValueError):
    """Input that cannot be imported: the message names the file, the line or column, and what was expected.

    ``path``, ``line`` and ``column`` are kept as attributes so a GUI can point at the spot.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.line = line
        self.column = column
        self.detail = message
        where = []
        if path is not None:
            where.append(str(path))
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class CutLastLineError(DataFormatError):
    """The file ends inside its last line (no line end, fields missing or a quote left open): the file
    was cut short, as by a download or a ``head -c``. Importing with the skip-cut-last-line option
    drops that one line and counts it in the report."""


class DatasetExistsError(DataFormatError):
    """The dataset name is already taken in the store (checked before anything is read)."""


class ImportCancelled(RuntimeError):
    """The import was cancelled through its token; the transaction was rolled back, nothing stored."""
