"""Checks and conversions of column values that every importer shares (times, ids, counters).

Why one place: the same wrong value (a NaN time, a bool time, a ``timestamp[us]`` column read as
seconds, a step beyond int64, a NUL byte in an id) must be refused with the same clear message
whatever the format, naming the file, the line or row and the column.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from embsr_core.data.importers.table import Rows

MAX_ABS_SECONDS = 2.0**53  # beyond this float seconds are no longer whole numbers: surely not a time
MAX_COUNTER = 2**63 - 1
_MONTH_DAY = re.compile(r"\d{1,2}[-/]\d{1,2}")
_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")


def first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def require_present(col: pd.Series, rows: Rows, name: str, what: str) -> None:
    missing = col.isna().to_numpy()
    if missing.any():
        raise rows.error(f"missing value; expected {what} (file truncated?)", first(missing), name)


def _check_range(values: np.ndarray, col: pd.Series, rows: Rows, name: str) -> np.ndarray:
    bad = ~np.isfinite(values) | (np.abs(values) > MAX_ABS_SECONDS)
    if bad.any():
        r = first(bad)
        raise rows.error(f"{shown(col.iloc[r])} is not a usable time; expected finite seconds within ±2^53 "
                         "(or an ISO date)", r, name)
    return values


def shown(value: object) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def numeric(col: pd.Series) -> pd.Series:
    """``pd.to_numeric(errors="coerce")`` that also takes integers too large for a float (as inf)."""
    try:
        return pd.to_numeric(col, errors="coerce")
    except OverflowError:  # pandas parsed a 400-digit number into a Python int
        return pd.to_numeric(col.astype(str), errors="coerce")


def seconds(col: pd.Series, rows: Rows, name: str) -> np.ndarray:
    """Numbers as given; datetimes of any unit and ISO strings as unix seconds (float64).

    Refused: missing values, booleans, NaN/inf, magnitudes above 2^53, and month-day dates without a
    year or time (``6-4``: the order of a day's events would have to be invented).
    """
    require_present(col, rows, name, "a time (seconds or an ISO date)")
    if pd.api.types.is_bool_dtype(col.dtype):
        raise rows.error(f"{shown(col.iloc[0])} is a true/false value; expected a time (seconds or an ISO date)", 0,
                         name)
    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        return _datetime_seconds(col)
    if pd.api.types.is_numeric_dtype(col.dtype):
        return _check_range(col.to_numpy(dtype=np.float64), col, rows, name)
    if isinstance(col.dtype, pd.CategoricalDtype):
        col = col.astype(object)
    booleans = col.map(lambda v: isinstance(v, bool | np.bool_)).to_numpy(dtype=bool)
    if booleans.any():
        r = first(booleans)
        raise rows.error(f"{col.iloc[r]!r} is a true/false value; expected a time (seconds or an ISO date)", r,
                         name)
    number = numeric(col)
    is_number = number.notna().to_numpy()
    if is_number.all():
        return _check_range(number.to_numpy(dtype=np.float64), col, rows, name)
    if is_number.mean() >= 0.5:  # a column of numbers: the first non-number is the odd one
        r = first(~is_number)
        raise rows.error(f"{shown(col.iloc[r])} is not a number; expected a number of seconds like the rest of "
                         "the column", r, name)
    dates = pd.to_datetime(col, errors="coerce", utc=True, format="ISO8601")
    bad = dates.isna().to_numpy() | is_number
    if bad.any():
        r = first(bad)
        value = str(col.iloc[r]).strip()
        if is_number[r]:
            raise rows.error(f"{shown(col.iloc[r])} is a number among dates; expected one kind of time per "
                             "column", r, name)
        if _MONTH_DAY.fullmatch(value):
            raise rows.error(
                f"{value!r} is a month-day date without a year or a time of day: the order of a day's events "
                "is unknown and would have to be invented; expected seconds or a full ISO date-time "
                "(e.g. 2016-05-09T13:45:00)", r, name)
        raise rows.error(f"{shown(col.iloc[r])} is not a time; expected seconds or an ISO date "
                         "(e.g. 2016-05-09 or 2016-05-09T13:45:00)", r, name)
    return _datetime_seconds(dates)


def _datetime_seconds(col: pd.Series) -> np.ndarray:
    if col.dt.tz is None:
        col = col.dt.tz_localize("UTC")
    return ((col - _EPOCH) / pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64)


def counter(col: pd.Series, rows: Rows, name: str) -> np.ndarray:
    """A non-negative whole-number counter (Trivago ``step``) as int64; refuses text, fractions,
    negatives and values above 2^63-1 with the row."""
    require_present(col, rows, name, "a whole number")
    if pd.api.types.is_bool_dtype(col.dtype):
        raise rows.error(f"{shown(col.iloc[0])} is a true/false value; expected a whole number", 0, name)
    if pd.api.types.is_integer_dtype(col.dtype):
        values = col.to_numpy()
        if values.dtype == np.uint64:
            big = values > MAX_COUNTER
            if big.any():
                raise rows.error(f"{values[first(big)]} is above 2^63-1; expected a smaller whole number",
                                 first(big), name)
        values = values.astype(np.int64)
        negative = values < 0
        if negative.any():
            raise rows.error(f"{values[first(negative)]} is negative; expected a whole number ≥ 0", first(negative),
                             name)
        return values
    text = col if pd.api.types.is_float_dtype(col.dtype) else col.astype(str).str.strip()
    floats = numeric(text).to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(floats) | (floats < 0) | (floats != np.floor(floats)) | (floats >= 2.0**63)
    if bad.any():
        r = first(bad)
        raise rows.error(f"{shown(col.iloc[r])}; expected a whole number between 0 and 2^63-1", r, name)
    if floats.max(initial=0) >= 2.0**53 and not pd.api.types.is_float_dtype(col.dtype):
        return np.array([int(v) for v in text], dtype=np.int64)  # exact for large integers written as text
    return floats.astype(np.int64)


def ids(col: pd.Series, rows: Rows, name: str, what: str) -> pd.Series | np.ndarray:
    """Ids as opaque values: text stays text ("007" ≠ "7"), integer columns stay exact integers
    (uint64 too), whole floats (a pandas column with gaps) become whole numbers. Refuses missing
    values, NUL bytes, and floats beyond 2^53 (their digits are already lost)."""
    require_present(col, rows, name, what)
    if isinstance(col.dtype, pd.CategoricalDtype):
        _refuse_nul(pd.Series(col.cat.categories), col, rows, name)
        return col
    if pd.api.types.is_integer_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
        return col.to_numpy()
    if pd.api.types.is_float_dtype(col.dtype):
        values = col.to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values) | (values != np.round(values)) | (np.abs(values) > 2.0**53)
        if bad.any():
            r = first(bad)
            raise rows.error(f"{values[r]!r} is not a whole number below 2^53; expected an id (ids stored as "
                             "floats lose digits: store them as integers or text)", r, name)
        return values.astype(np.int64)
    text = col.astype(str)
    _refuse_nul(pd.Series(pd.unique(text)), text, rows, name)
    return text.to_numpy(dtype=object)


def _refuse_nul(uniques: pd.Series, col: pd.Series, rows: Rows, name: str) -> None:
    has = uniques.astype(str).str.contains("\x00", regex=False)
    if has.any():
        bad = col.astype(str).str.contains("\x00", regex=False).to_numpy()
        raise rows.error("a NUL byte in the id; expected printable text", first(bad), name)
