"""Hypothesis-generated malformed and odd files for every importer family, imported into a real store.

Each must be refused with the file, the line / row / column and what was expected, with the store
left exactly as it was, or imported exactly: for text files an independent reference reading (the
``csv`` module, a regular expression for JD tokens) says how many records the file holds and which
ids it contains, so a partial or invented import (a phantom item from a cut reference, a shifted
table) is caught. Harmless variations (blank lines, CRLF, a BOM, gzip, shuffled rows) must import
exactly. The default run is bounded for ``make test``; ``EMBSR_FUZZ_SOAK=1`` adds a longer soak.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _fault_harness import Expect, attempt, store_state
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from native_fixtures import generic_frame, jd_sessions, jd_text, trivago_frame

from embsr_core.store import Store, open_store

SOAKING = bool(os.environ.get("EMBSR_FUZZ_SOAK"))  # the longer soak: many random examples per family
FAST = settings(max_examples=300 if SOAKING else 15, deadline=None, derandomize=not SOAKING,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
SOAK = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                         HealthCheck.function_scoped_fixture])
INTERESTING = [b"\x00", b"\xff", b"\xe9", b'"', b",", b"\n", b"\r", b" ", b"+", b"-", b"9" * 25, b"\t", b";",
               b"nan", b"inf", b"\xef\xbb\xbf", b"\r\n", b"\n\n", b"1" + b"0" * 400]
_names = itertools.count()
JD_TOKEN = re.compile(r"\d+\+\d+\+\d+\+\d+(?:\.\d+)?\+\d+(?:\.\d+)?")
MAX_ID = 2**63 - 1


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """One store for all examples, with a dataset already in it: a refusal must leave both untouched."""
    s = open_store(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'store.db'}")
    path = tmp_path_factory.mktemp("seed") / "seed.txt"
    path.write_text(jd_text(jd_sessions(5)))
    from embsr_core.data.store_io import import_into_store

    import_into_store(s, path, "jd", "already here")
    yield s
    s.dispose()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("files")


# -- mutations -----------------------------------------------------------------------------------
@st.composite
def mutations(draw: st.DrawFn, size: int) -> list[tuple[str, int, int, bytes]]:
    """1-3 edits ``(kind, position, length, bytes)``: cut, insert, delete or overwrite."""
    out = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["cut", "insert", "delete", "overwrite", "insert"]))
        pos = draw(st.integers(0, max(size - 1, 0)))
        length = draw(st.integers(1, 12))
        data = draw(st.sampled_from(INTERESTING) | st.binary(min_size=1, max_size=4))
        out.append((kind, pos, length, data))
    return out


def mutate(data: bytes, edits: list[tuple[str, int, int, bytes]]) -> bytes:
    for kind, pos, length, piece in edits:
        pos = min(pos, len(data))
        if kind == "cut":
            data = data[:pos]
        elif kind == "insert":
            data = data[:pos] + piece + data[pos:]
        elif kind == "delete":
            data = data[:pos] + data[pos + length :]
        else:
            data = data[:pos] + piece + data[pos + len(piece) :]
    return data


def _file(folder: Path, suffix: str, data: bytes) -> Path:
    path = folder / f"f{next(_names)}{suffix}"
    path.write_bytes(data)
    return path


def _check(result, store: Store, before) -> None:
    assert result.outcome in ("refused clearly", "imported exactly"), (result.outcome, result.message)
    if result.outcome == "refused clearly":
        assert store_state(store) == before


# -- reference readings --------------------------------------------------------------------------
def _decoded(data: bytes) -> str | None:
    """The text the importer sees: UTF-8 (a BOM dropped); None when it is not UTF-8 text."""
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def jd_reference(data: bytes) -> Expect:
    """Exact: valid JD lines give (tokens, lines, distinct skus); anything else must be refused."""
    text = _decoded(data)
    if text is None:
        return Expect(refuse=True)
    rows, sessions, skus = 0, 0, set()
    for line in text.split("\n"):
        tokens = line.split()
        if not tokens:
            continue
        t = 0.0
        for tok in tokens:
            if not JD_TOKEN.fullmatch(tok):
                return Expect(refuse=True)
            sku, behavior, category, interval, dwell = tok.split("+")
            if max(int(sku), int(behavior), int(category)) > MAX_ID or not 1 <= int(behavior) <= 10:
                return Expect(refuse=True)
            if not (np.isfinite(float(interval)) and np.isfinite(float(dwell))) or t > 2.0**53:
                return Expect(refuse=True)
            t += float(interval)
            skus.add(int(sku))
            rows += 1
        sessions += 1
    if rows == 0:
        return Expect(refuse=True)
    return Expect(rows=rows, sessions=sessions, items=len(skus))


def csv_records(data: bytes, delimiter: str = ",") -> list[list[str]] | None:
    """Non-blank records by the ``csv`` module (strict quotes); None when the text cannot be read.
    Text that is not UTF-8 is read as latin-1, as the importer does for a table."""
    text = _decoded(data)
    if text is None and b"\x00" not in data:
        text = data.decode("latin-1")
    if text is None:
        return None
    try:
        return [r for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True) if r]
    except csv.Error:
        return None


def accepted_matches_reference(store: Store, name: str, records: list[list[str]] | None, id_columns: dict[str, int],
                               kept_rows: Callable[[list[list[str]]], int]) -> None:
    """An accepted import holds only records the file holds (no shifted, cut or invented ids)."""
    from embsr_core.data.store_io import load_events

    assert records is not None, "accepted a file the csv module cannot read"
    header, body = records[0], records[1:]
    assert all(len(r) == len(header) for r in body), "accepted rows whose field count differs from the header"
    events = load_events(store, name, categorical=False)
    assert len(events) == kept_rows(body)
    for field, k in id_columns.items():
        assert set(events[field]) <= {r[k] for r in body}, f"{field} ids that are not in the file"


# -- JD ------------------------------------------------------------------------------------------
JD_BASE = jd_text(jd_sessions(25, seed=11)).encode()


def _jd_case(store: Store, folder: Path, edits) -> None:
    """JD's reference reading is exact: valid lines must import with its counts, anything else be refused."""
    data = mutate(JD_BASE, edits)
    expect = jd_reference(data)
    before = store_state(store)
    result = attempt(store, f"jd {next(_names)}", [_file(folder, ".txt", data)], "jd", None, expect)
    _check(result, store, before)


@FAST
@given(edits=mutations(len(JD_BASE)))
def test_jd_malformed_lines(store: Store, folder: Path, edits) -> None:
    _jd_case(store, folder, edits)


# -- Trivago CSV ---------------------------------------------------------------------------------
TRIVAGO = trivago_frame(25, seed=12)
TRIVAGO_BASE = TRIVAGO.to_csv(index=False, lineterminator="\n").encode()
ITEM_ACTIONS = set(TRIVAGO["action_type"][TRIVAGO["action_type"].str.contains("item")])


def _trivago_kept(body: list[list[str]]) -> int:
    from embsr_core.data.importers.trivago import OPERATIONS

    return sum(1 for r in body if r[4] in OPERATIONS and re.fullmatch(r"\d+", r[5]))


def _trivago_case(store: Store, folder: Path, data: bytes) -> None:
    before = store_state(store)
    name = f"trivago {next(_names)}"
    result = attempt(store, name, [_file(folder, ".csv", data)], "trivago", None, Expect(refuse=None))
    _check(result, store, before)
    if result.outcome == "imported exactly":
        accepted_matches_reference(store, name, csv_records(data), {"session": 1, "item": 5}, _trivago_kept)


@FAST
@given(edits=mutations(len(TRIVAGO_BASE)))
def test_trivago_csv_malformed(store: Store, folder: Path, edits) -> None:
    _trivago_case(store, folder, mutate(TRIVAGO_BASE, edits))


# -- generic CSV ---------------------------------------------------------------------------------
GENERIC = generic_frame(25, seed=13)
GENERIC_BASE = GENERIC.to_csv(index=False, lineterminator="\n").encode()


def _generic_case(store: Store, folder: Path, data: bytes) -> None:
    before = store_state(store)
    name = f"generic {next(_names)}"
    result = attempt(store, name, [_file(folder, ".csv", data)], "generic", None, Expect(refuse=None))
    _check(result, store, before)
    if result.outcome == "imported exactly":
        accepted_matches_reference(store, name, csv_records(data), {"session": 0, "item": 1}, len)


@FAST
@given(edits=mutations(len(GENERIC_BASE)))
def test_generic_csv_malformed(store: Store, folder: Path, edits) -> None:
    _generic_case(store, folder, mutate(GENERIC_BASE, edits))


# -- Parquet (both families): typed columns changed, then maybe bytes damaged ---------------------
PARQUET_EDITS = {
    "timestamp": ["nan", "inf", "huge", "bool", "text", "us", "ms", "float", "int32"],
    "step": ["negative", "nan", "huge", "float", "int32"],
    "reference": ["float", "int", "text"],
    "session_id": ["null", "int", "nul", "category"],
    "session": ["null", "int", "nul", "category"],
    "item": ["float_nan", "int", "float", "nul"],
}


def _edit_column(frame: pd.DataFrame, column: str, kind: str, row: int) -> tuple[pd.DataFrame, bool]:
    """(changed frame, whether the change must be refused)."""
    f = frame.copy()
    col = f[column]
    refuse = False
    if kind == "nan":
        f[column] = pd.to_numeric(col, errors="coerce").astype(float).where(f.index != row)
        refuse = True
    elif kind == "inf":
        f[column] = col.astype(float).where(f.index != row, np.inf)
        refuse = True
    elif kind == "huge":
        f[column] = col.astype(float).where(f.index != row, 1e300)
        refuse = True
    elif kind == "bool":
        f[column] = col.astype(int) % 2 == 0
        refuse = True
    elif kind == "text" and column == "timestamp":
        f[column] = col.astype(str).where(f.index != row, "soon")
        refuse = True
    elif kind == "us":
        f[column] = pd.to_datetime(col, unit="s").dt.as_unit("us")
    elif kind == "ms":
        f[column] = pd.to_datetime(col, unit="s").dt.as_unit("ms")
    elif kind == "float":
        f[column] = col.astype(float) if column != "reference" else pd.to_numeric(col, errors="coerce")
    elif kind == "int32":
        f[column] = col.astype("int32")
    elif kind == "negative":
        f[column] = col.where(f.index != row, -5)
        refuse = True
    elif kind == "int" and column == "reference":  # rows whose reference is text go (they were skipped)
        numeric = pd.to_numeric(col, errors="coerce")
        f = f[numeric.notna()].copy()
        f[column] = numeric[numeric.notna()].astype("int64")
    elif kind == "int":  # ids as integers: one per distinct text id
        f[column] = pd.factorize(col)[0].astype("int64") + 1000
    elif kind == "text":
        f[column] = col.astype(str)
    elif kind == "null":
        f[column] = col.where(f.index != row, None)
        refuse = True
    elif kind == "nul":
        f[column] = col.astype(str).where(f.index != row, "a\x00b")
        refuse = True
    elif kind == "category":
        f[column] = col.astype("category")
    elif kind == "float_nan":
        f[column] = pd.to_numeric(col.str.lstrip("0").replace("", "0"), errors="coerce").astype(float).where(
            f.index != row)
        refuse = True
    return f, refuse


@st.composite
def parquet_edits(draw: st.DrawFn, columns: tuple[str, ...]) -> list[tuple[str, str, int]]:
    return [(c, draw(st.sampled_from(PARQUET_EDITS[c])), draw(st.integers(0, 30)))
            for c in draw(st.lists(st.sampled_from(columns), min_size=1, max_size=2, unique=True))]


def _kept_rows(frame: pd.DataFrame) -> np.ndarray:
    """Rows an import keeps (a bad value in a skipped trivago row, e.g. a NUL in its session, is never stored)."""
    if "action_type" not in frame.columns:
        return np.arange(len(frame))
    kept = frame["action_type"].str.contains("item") & frame["reference"].astype(str).str.fullmatch(r"\d+")
    return np.flatnonzero(kept.to_numpy())


def _parquet_case(store: Store, folder: Path, base: pd.DataFrame, fmt: str, edits, cut: int | None) -> None:
    frame, refuse = base, False
    for column, kind, row in edits:
        kept = _kept_rows(frame)
        frame, must = _edit_column(frame, column, kind, int(frame.index[kept[row % len(kept)]]))
        refuse = refuse or must
    path = folder / f"p{next(_names)}.parquet"
    frame.to_parquet(path, index=False)
    if cut is not None:
        path.write_bytes(path.read_bytes()[: max(cut, 1) % max(path.stat().st_size - 8, 1)])
        refuse = True
    before = store_state(store)
    result = attempt(store, f"parquet {next(_names)}", [path], fmt, None,
                     Expect(refuse=refuse or None, located=False))
    if refuse:
        _check(result, store, before)
    else:
        assert result.outcome == "imported exactly", (result.outcome, result.message, edits)


@FAST
@given(edits=parquet_edits(("timestamp", "step", "reference", "session_id")),
       cut=st.none() | st.integers(1, 10_000))
def test_trivago_parquet_typed_and_damaged(store: Store, folder: Path, edits, cut) -> None:
    _parquet_case(store, folder, TRIVAGO, "trivago", edits, cut)


GENERIC_PARQUET = GENERIC.rename(columns={"session_id": "session", "item_id": "item"})


@FAST
@given(edits=parquet_edits(("timestamp", "session", "item")), cut=st.none() | st.integers(1, 10_000))
def test_generic_parquet_typed_and_damaged(store: Store, folder: Path, edits, cut) -> None:
    _parquet_case(store, folder, GENERIC_PARQUET, "generic", edits, cut)


# -- harmless variations import exactly ------------------------------------------------------------
@st.composite
def harmless(draw: st.DrawFn) -> dict[str, bool]:
    return {k: draw(st.booleans()) for k in ("crlf", "blank", "bom", "gzip", "no_final_newline")}


def _vary(data: bytes, how: dict[str, bool]) -> bytes:
    if how["blank"]:
        data = data.replace(b"\n", b"\n\n", 4)
    if how["no_final_newline"]:
        data = data.rstrip(b"\n")
    if how["crlf"]:
        data = data.replace(b"\n", b"\r\n")
    if how["bom"]:
        data = b"\xef\xbb\xbf" + data
    return gzip.compress(data, mtime=0) if how["gzip"] else data


@FAST
@given(how=harmless(), family=st.sampled_from(["jd", "trivago", "generic"]), seed=st.integers(0, 3))
def test_harmless_variations_import_exactly(store: Store, folder: Path, how, family: str, seed: int) -> None:
    if family == "jd":
        sessions = jd_sessions(12, seed=seed)
        data = jd_text(sessions).encode()
        expect = Expect(rows=sum(map(len, sessions)), sessions=12, items=len({m[0] for s in sessions for m in s}))
    elif family == "trivago":
        frame = trivago_frame(12, seed=seed).sample(frac=1.0, random_state=seed)
        data = frame.to_csv(index=False, lineterminator="\n").encode()
        kept = frame[frame["action_type"].str.contains("item") & frame["reference"].str.fullmatch(r"\d+")]
        expect = Expect(rows=len(kept), sessions=kept["session_id"].nunique(), items=kept["reference"].nunique())
    else:
        frame = generic_frame(12, seed=seed).sample(frac=1.0, random_state=seed)
        data = frame.to_csv(index=False, lineterminator="\n").encode()
        expect = Expect(rows=len(frame), sessions=frame["session_id"].nunique(), items=frame["item_id"].nunique())
    path = _file(folder, ".gz" if how["gzip"] else ".txt", _vary(data, how))
    result = attempt(store, f"harmless {next(_names)}", [path], "auto", None, expect)
    assert result.outcome == "imported exactly", (result.outcome, result.message, how)


# -- the longer soak ---------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.skipif(not SOAKING, reason="the long fuzz soak (400 more examples, and 300 instead of 15 per "
                    "family above) runs with EMBSR_FUZZ_SOAK=1")
@SOAK
@given(edits=mutations(len(JD_BASE)), which=st.sampled_from(["jd", "trivago", "generic"]))
def test_soak_text_families(store: Store, folder: Path, edits, which: str) -> None:
    if which == "jd":
        _jd_case(store, folder, edits)
    elif which == "trivago":
        _trivago_case(store, folder, mutate(TRIVAGO_BASE, edits))
    else:
        _generic_case(store, folder, mutate(GENERIC_BASE, edits))
