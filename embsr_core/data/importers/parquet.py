"""Reading the columns an importer needs from a Parquet file in bounded batches, with clear refusals.

Why a module: Trivago and generic Parquet share the same traps: duplicate column names (pyarrow
then returns both and pandas code breaks far away), list or struct columns (one row holding many
values), and damaged files; each is refused naming the file and the column before any row is read.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd

from embsr_core.data.errors import DataFormatError
from embsr_core.data.importers.base import Probe
from embsr_core.data.importers.table import Rows, repeated


def check_columns(p: Probe, wanted: list[str]) -> None:
    """Refuse duplicate or nested (list / struct / map) columns among ``wanted``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    twice = sorted(repeated(p.parquet_columns) & set(wanted))
    if twice:
        raise DataFormatError(f"the column name {twice[0]!r} occurs more than once in the Parquet schema; expected "
                              "one column of that name (rename the others)", path=p.path, column=twice[0])
    schema = pq.read_schema(p.path)
    for name in wanted:
        kind = schema.field(name).type
        if pa.types.is_nested(kind):
            raise DataFormatError(f"the column holds {kind} values (several per row); expected one value per row",
                                  path=p.path, column=name)


def parquet_chunks(p: Probe, columns: list[str], chunk_rows: int) -> Iterator[tuple[pd.DataFrame, Rows, int]]:
    """``(frame of columns, where its rows are, approximate bytes read)`` per batch of ``chunk_rows``."""
    import pyarrow.parquet as pq

    wanted = list(dict.fromkeys(columns))
    check_columns(p, wanted)
    try:
        file = pq.ParquetFile(p.path)
        total = max(file.metadata.num_rows, 1)
        done = 0
        batches = file.iter_batches(batch_size=chunk_rows, columns=wanted)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            frame = batch.to_pandas()
            first = done + 1
            done += len(frame)
            yield frame, Rows(p.path, first), int(p.size * done / total)
    except DataFormatError:
        raise
    except Exception as exc:  # pyarrow: ArrowInvalid / OSError on damaged files
        raise DataFormatError(f"cannot read the Parquet data ({exc}); expected a complete Parquet file (truncated "
                              "or damaged?)", path=p.path) from None
