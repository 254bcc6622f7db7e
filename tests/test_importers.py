"""Native importers on the real samples (read in place) and on every kind of bad input."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _store_helpers import DATA
from native_fixtures import (
    jd_sessions,
    jd_text,
    trivago_frame,
    write_diginetica,
    write_generic_csv,
    write_generic_parquet,
    write_jd,
    write_taobao,
    write_tmall,
    write_trivago_csv,
    write_trivago_parquet,
)

from embsr_core.data.errors import CutLastLineError, DataFormatError
from embsr_core.data.events import JD_OPERATIONS
from embsr_core.data.importers import (
    ColumnMapping,
    Source,
    detect_format,
    get_importer,
    ignored_mapping,
    iter_source_chunks,
    read_events,
)
from embsr_core.data.importers.table import CUT_LAST_LINE

JD = DATA / "jd" / "JD_Appliances_sample.txt"
HUP = DATA / "jd" / "HUP_Appliances_sample.txt"
TRIVAGO_CSV = DATA / "trivago" / "train_small.csv"
TRIVAGO_PARQUET = DATA / "trivago" / "trivago_val_100k.parquet"
VIEWS = DATA / "diginetica" / "sample_train-item-views.csv"
PURCHASES = DATA / "diginetica" / "train-purchases.csv"
DIGI_MAPPING = ColumnMapping(session="session_id", item="item_id", timestamp="timeframe")

needs_samples = pytest.mark.skipif(not JD.exists(), reason=f"real samples not found at {DATA} (the tests on "
                                   "generated files cover the same paths)")


def _chunks(fmt: str, path: Path, chunk_rows: int = 10_000, **kw):
    return list(get_importer(fmt).iter_chunks(Source(path), kw.pop("mapping", None), chunk_rows=chunk_rows, **kw))


@needs_samples
@pytest.mark.parametrize(
    ("path", "fmt"),
    [(JD, "jd"), (HUP, "jd"), (TRIVAGO_CSV, "trivago"), (TRIVAGO_PARQUET, "trivago"), (VIEWS, "generic"),
     (PURCHASES, "generic")],
)
def test_detect_format_sniffs_the_real_samples(path: Path, fmt: str) -> None:
    assert detect_format(path) == fmt


@needs_samples
def test_detect_format_reads_content_not_extension(tmp_path: Path) -> None:
    disguised = tmp_path / "data.csv"  # JD lines behind a .csv name
    shutil.copyfile(JD, disguised)
    assert detect_format(disguised) == "jd"
    zipped = tmp_path / "train.bin"  # gzip-compressed trivago CSV without a telling name
    zipped.write_bytes(gzip.compress(TRIVAGO_CSV.read_bytes()))
    assert detect_format(zipped) == "trivago"


@needs_samples
def test_jd_appliances_sample_exact_counts_and_fields() -> None:
    df = read_events(JD, "jd")
    assert len(df) == 57_332
    assert df["session"].nunique() == 1_000
    assert df["item"].nunique() == 9_134
    assert df["operation"].nunique() == 10
    assert set(df["operation"]) == set(JD_OPERATIONS)
    assert df["category"].nunique() == 71
    # line 1 starts: 879089+5+753+180+180 877096+5+753+35+35 879089+5+753+8+67 879089+7+753+30+67
    first = df[df["session"] == "1"].head(4)
    assert first["item"].tolist() == ["879089", "877096", "879089", "879089"]
    assert first["operation"].tolist() == ["SearchList2Product"] * 3 + ["Detail_specification"]
    assert first["timestamp"].tolist() == [0.0, 180.0, 215.0, 223.0]  # cumulative intervals
    assert first["dwell"].tolist() == [180.0, 35.0, 67.0, 67.0]
    assert set(first["category"]) == {"753"}
    starts = df.groupby("session", sort=False)["timestamp"].min()
    assert (starts == 0).all()


@needs_samples
def test_hup_sample_exact_counts() -> None:
    df = read_events(HUP, "jd")
    assert len(df) == 28_108
    assert df["session"].nunique() == 1_000


@needs_samples
def test_jd_chunks_are_bounded_whole_sessions() -> None:
    chunks = _chunks("jd", JD, chunk_rows=5_000)
    assert len(chunks) > 5
    assert sum(len(c.frame) for c in chunks) == 57_332
    sessions = [set(c.frame["session"]) for c in chunks]
    assert all(a.isdisjoint(b) for a, b in zip(sessions, sessions[1:], strict=False))


@needs_samples
def test_trivago_small_csv_keeps_item_actions_and_counts_skips() -> None:
    chunks = _chunks("trivago", TRIVAGO_CSV)
    assert sum(c.rows_read for c in chunks) == 1_010
    frame = pd.concat([c.frame for c in chunks])
    assert len(frame) == 997
    assert frame["session"].nunique() == 7
    skipped = chunks[0].skipped
    assert skipped == {"action type without an item": 13}
    assert set(frame["operation"]) <= set(get_importer("trivago").OPERATIONS)


@needs_samples
def test_trivago_parquet_counts_and_order() -> None:
    chunks = _chunks("trivago", TRIVAGO_PARQUET, chunk_rows=20_000)
    assert all(c.rows_read <= 20_000 for c in chunks)  # streamed in bounded batches
    assert sum(c.rows_read for c in chunks) == 100_003
    skipped: dict[str, int] = {}
    for c in chunks:
        for k, v in c.skipped.items():
            skipped[k] = skipped.get(k, 0) + v
    assert skipped == {"action type without an item": 12_391, "reference is not an item id": 4}
    df = read_events(TRIVAGO_PARQUET, "trivago")
    assert len(df) == 87_608
    assert df["session"].nunique() == 7_513
    assert df["item"].nunique() == 13_949
    assert df["operation"].nunique() == 6
    assert df["item"].str.fullmatch(r"\d+").all()


@needs_samples
def test_trivago_rows_are_ordered_by_timestamp_then_step(tmp_path: Path) -> None:
    raw = pd.read_csv(TRIVAGO_CSV)
    shuffled = raw.sample(frac=1.0, random_state=3)
    path = tmp_path / "shuffled.csv"
    shuffled.to_csv(path, index=False)
    df = read_events(path, "trivago")
    for _, group in df.groupby("session", sort=False):
        keys = list(zip(group["timestamp"], group["step"], strict=True))
        assert keys == sorted(keys)


@needs_samples
def test_trivago_gzip_equals_plain(tmp_path: Path) -> None:
    path = tmp_path / "train.csv.gz"
    path.write_bytes(gzip.compress(TRIVAGO_CSV.read_bytes()))
    pd.testing.assert_frame_equal(read_events(path, "trivago"), read_events(TRIVAGO_CSV, "trivago"))


@needs_samples
def test_diginetica_views_and_purchases_through_generic() -> None:
    df = read_events([Source(VIEWS, "view"), Source(PURCHASES, "purchase")], "generic", DIGI_MAPPING)
    assert len(df) == 12_391 + 18_025
    assert df["operation"].value_counts().to_dict() == {"purchase": 18_025, "view": 12_391}
    views = df[df["operation"] == "view"]
    assert views["session"].nunique() == 2_986
    assert df["session"].nunique() == 15_478
    # the purchases file spells its columns sessionId / itemId: one mapping serves both files
    assert df[df["operation"] == "purchase"]["item"].nunique() > 0


def test_generic_tsv_with_iso_dates_category_and_dwell(tmp_path: Path) -> None:
    path = tmp_path / "log.tsv"
    path.write_text(
        "sid\tsku\taction\twhen\tcat\tsecs\n"
        "a\tx1\tview\t2024-01-01T00:00:10\tc1\t3\n"
        "a\tx2\tcart\t2024-01-01T00:00:00\tc2\t\n"
        "b\tx1\tview\t2024-01-02\tc1\t5.5\n"
    )
    mapping = ColumnMapping(session="sid", item="sku", operation="action", timestamp="when", category="cat",
                            dwell="secs")
    assert detect_format(path) == "generic"
    df = read_events(path, "generic", mapping)
    assert df["session"].tolist() == ["a", "a", "b"]
    assert df["item"].tolist() == ["x2", "x1", "x1"]  # ordered by time within the session
    t0 = pd.Timestamp("2024-01-01", tz="UTC").timestamp()
    assert df["timestamp"].tolist() == [t0, t0 + 10, t0 + 86_400]
    assert df["category"].tolist() == ["c2", "c1", "c1"]
    assert np.isnan(df["dwell"].iloc[0]) and df["dwell"].iloc[1] == 3.0


def test_generic_parquet_with_default_column_names(tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    pd.DataFrame(
        {"session_id": [1, 1, 2], "item_id": [10, 11, 10], "action": ["v", "b", "v"], "ts": [1.0, 2.0, 3.0]}
    ).to_parquet(path)
    assert detect_format(path) == "generic"
    df = read_events(path)
    assert df[["session", "item", "operation"]].to_numpy().tolist() == [["1", "10", "v"], ["1", "11", "b"],
                                                                         ["2", "10", "v"]]


# -- bad input: each error names the file, the line or column, and what was expected -------------
def _error(sources, fmt="auto", mapping=None) -> str:
    with pytest.raises(DataFormatError) as info:
        read_events(sources, fmt, mapping)
    return str(info.value)


@needs_samples
def test_missing_mapped_column(tmp_path: Path) -> None:
    msg = _error(VIEWS, "generic", ColumnMapping(session="session_id", item="product", timestamp="timeframe",
                                                operation="op"))
    assert str(VIEWS) in msg and "'product'" in msg and "header has" in msg and "item_id" in msg


@needs_samples
def test_unmapped_operation_column_asks_for_mapping_or_fixed_operation() -> None:
    msg = _error(VIEWS, "generic", DIGI_MAPPING)
    assert str(VIEWS) in msg and "column 'operation'" in msg and "--operation" in msg


@needs_samples
def test_misnamed_trivago_columns(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    text = TRIVAGO_CSV.read_text()
    path.write_text(text.replace("session_id", "sessionid", 1))
    msg = _error(path, "trivago")
    assert str(path) in msg and "missing column(s) session_id" in msg and "column 'session_id'" in msg


@needs_samples
def test_wrong_delimiter() -> None:
    mapping = ColumnMapping(session="session_id", item="item_id", timestamp="timeframe", delimiter=",")
    msg = _error(Source(VIEWS, "view"), "generic", mapping)
    assert str(VIEWS) in msg and "single column" in msg and "';'" in msg


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    for fmt in ("auto", "jd", "trivago", "generic"):
        msg = _error(path, fmt)
        assert str(path) in msg and "empty" in msg


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "blob.csv"
    path.write_bytes(bytes(range(256)) * 64)
    msg = _error(path, "generic")
    assert str(path) in msg and "binary" in msg


@needs_samples
def test_truncated_jd_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "jd.txt"
    lines = JD.read_text().splitlines()
    path.write_text("\n".join(lines[:40]) + "\n" + lines[40][:25])  # cut in the middle of a micro-behavior
    msg = _error(path, "jd")
    assert str(path) in msg and "line 41" in msg and "sku+behavior_type+category+time_interval+dwell_time" in msg


@needs_samples
def test_truncated_gzip(tmp_path: Path) -> None:
    path = tmp_path / "train.csv.gz"
    data = gzip.compress(TRIVAGO_CSV.read_bytes())
    path.write_bytes(data[: len(data) // 2])
    msg = _error(path, "trivago")
    assert str(path) in msg and "ends early" in msg


@needs_samples
def test_truncated_parquet(tmp_path: Path) -> None:
    path = tmp_path / "val.parquet"
    path.write_bytes(TRIVAGO_PARQUET.read_bytes()[:100_000])
    msg = _error(path, "trivago")
    assert str(path) in msg and "truncated or damaged" in msg


def test_truncated_generic_csv_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "views.csv"
    path.write_text("session_id;item_id;timeframe\n1;10;5\n1;11;6\n2;")
    msg = _error(Source(path, "view"), "generic", DIGI_MAPPING)
    assert str(path) in msg and "line 4" in msg and "cut short" in msg


@needs_samples
def test_other_format_than_chosen() -> None:
    msg = _error(JD, "trivago")
    assert str(JD) in msg and "looks like the jd format" in msg
    msg = _error(TRIVAGO_CSV, "jd")
    assert str(TRIVAGO_CSV) in msg and "line 1" in msg and "looks like the trivago format" in msg
    msg = _error(TRIVAGO_PARQUET, "jd")
    assert str(TRIVAGO_PARQUET) in msg and "Parquet" in msg


def test_non_numeric_jd_ids(tmp_path: Path) -> None:
    path = tmp_path / "jd.txt"
    path.write_text("879089+5+753+180+180 877096+5+753+35+35\n12+5+7+1+1 sku42+5+753+8+67\n")
    msg = _error(path, "jd")
    assert str(path) in msg and "line 2" in msg and "micro-behavior 2" in msg and "'sku42+5+753+8+67'" in msg


def test_jd_behavior_type_out_of_range(tmp_path: Path) -> None:
    path = tmp_path / "jd.txt"
    path.write_text("879089+5+753+180+180\n877096+11+753+35+35\n")
    msg = _error(path, "jd")
    assert "line 2" in msg and "behavior_type 11" in msg and "expected 1..10" in msg


@needs_samples
def test_non_numeric_trivago_timestamp(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    lines = TRIVAGO_CSV.read_text().splitlines()
    fields = lines[5].split(",")
    fields[2] = "yesterday"
    lines[5] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    msg = _error(path, "trivago")
    assert str(path) in msg and "line 6" in msg and "column 'timestamp'" in msg and "expected a number" in msg


def test_generic_bad_timestamp(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("session,item,operation,time\na,1,view,2024-01-01\na,2,view,soon\n")
    msg = _error(path, "generic")
    assert "line 3" in msg and "column 'time'" in msg and "'soon'" in msg and "ISO date" in msg


def test_missing_file_and_unknown_format(tmp_path: Path) -> None:
    msg = _error(tmp_path / "nope.csv")
    assert "nope.csv" in msg and "not found" in msg
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        get_importer("xml")


# == generated native files: the same paths on any clone ==========================================
def _trivago_rows(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False, lineterminator="\n")
    return path


@pytest.mark.parametrize("kind", ["jd", "trivago_csv", "trivago_parquet", "generic_csv", "generic_tsv",
                                  "generic_parquet"])
def test_generated_files_are_sniffed_and_imported_exactly(tmp_path: Path, kind: str) -> None:
    writers = {
        "jd": lambda: write_jd(tmp_path / "s.txt"),
        "trivago_csv": lambda: write_trivago_csv(tmp_path / "train.csv"),
        "trivago_parquet": lambda: write_trivago_parquet(tmp_path / "val.parquet"),
        "generic_csv": lambda: write_generic_csv(tmp_path / "log.csv"),
        "generic_tsv": lambda: write_generic_csv(tmp_path / "log.tsv", sep="\t"),
        "generic_parquet": lambda: write_generic_parquet(tmp_path / "log.parquet"),
    }
    written = writers[kind]()
    fmt = kind.split("_")[0]
    assert detect_format(written.path) == fmt
    chunks = _chunks(fmt, written.path, chunk_rows=50)
    assert sum(c.rows_read for c in chunks) == written.rows
    skipped: dict[str, int] = {}
    for c in chunks:
        for k, v in c.skipped.items():
            skipped[k] = skipped.get(k, 0) + v
    assert skipped == written.skipped
    df = read_events(written.path, fmt)
    assert (len(df), df["session"].nunique(), df["item"].nunique()) == (written.kept, written.sessions, written.items)


def test_jd_fixture_fields_and_cumulative_times(tmp_path: Path) -> None:
    written = write_jd(tmp_path / "jd.txt", n_sessions=30, seed=1)
    df = read_events(written.path, "jd")
    first = written.extra["sessions_data"][0]
    s1 = df[df["session"] == "1"]
    assert s1["item"].tolist() == [str(mb[0]) for mb in first]
    assert s1["operation"].tolist() == [JD_OPERATIONS[mb[1] - 1] for mb in first]
    assert s1["timestamp"].tolist() == list(np.cumsum([0] + [mb[3] for mb in first[:-1]]).astype(float))
    assert s1["dwell"].tolist() == [float(mb[4]) for mb in first]
    assert df["category"].nunique() == written.extra["categories"]
    chunks = _chunks("jd", written.path, chunk_rows=40)
    sessions = [set(c.frame["session"]) for c in chunks]
    assert len(chunks) > 3 and all(a.isdisjoint(b) for a, b in zip(sessions, sessions[1:], strict=False))


def test_content_not_extension_and_gzip_equals_plain(tmp_path: Path) -> None:
    jd = write_jd(tmp_path / "data.csv")  # JD lines behind a .csv name
    assert detect_format(jd.path) == "jd"
    plain = write_trivago_csv(tmp_path / "train.csv")
    zipped = write_trivago_csv(tmp_path / "train.bin", gz=True)  # gzip without a telling name
    assert detect_format(zipped.path) == "trivago"
    pd.testing.assert_frame_equal(read_events(zipped.path, "trivago"), read_events(plain.path, "trivago"))


def test_trivago_fixture_is_ordered_by_timestamp_then_step(tmp_path: Path) -> None:
    frame = trivago_frame(40, seed=2)
    path = _trivago_rows(tmp_path / "shuffled.csv", frame.sample(frac=1.0, random_state=3))
    df = read_events(path, "trivago")
    for _, group in df.groupby("session", sort=False):
        keys = list(zip(group["timestamp"], group["step"], strict=True))
        assert keys == sorted(keys)


def test_diginetica_like_two_files_through_one_mapping(tmp_path: Path) -> None:
    views, purchases = write_diginetica(tmp_path / "digi")
    mapping = ColumnMapping(session="session_id", item="item_id", timestamp="timeframe")
    df = read_events([Source(views.path, "view"), Source(purchases.path, "purchase")], "generic", mapping)
    assert df["operation"].value_counts().to_dict() == {"view": views.rows, "purchase": purchases.rows}
    assert df["session"].nunique() == purchases.extra["sessions_both"]
    assert df["item"].nunique() == purchases.extra["items_both"]
    # bad input: a mapped column that is not there, then no operation column and no fixed operation
    msg = _error(views.path, "generic", ColumnMapping(session="session_id", item="product", timestamp="timeframe",
                                                      operation="op"))
    assert str(views.path) in msg and "'product'" in msg and "header has" in msg and "item_id" in msg
    msg = _error(views.path, "generic", mapping)
    assert "column 'operation'" in msg and "--operation" in msg
    msg = _error(Source(views.path, "view"), "generic", ColumnMapping(session="session_id", item="item_id",
                                                                       timestamp="timeframe", delimiter=","))
    assert "single column" in msg and "';'" in msg


def test_generated_files_cut_or_damaged(tmp_path: Path) -> None:
    lines = jd_text(jd_sessions(60)).splitlines()
    jd = tmp_path / "jd.txt"
    jd.write_text("\n".join(lines[:40]) + "\n" + lines[40][:9])  # cut in the middle of a micro-behavior
    msg = _error(jd, "jd")
    assert str(jd) in msg and "line 41" in msg and "sku+behavior_type+category+time_interval+dwell_time" in msg
    gz = tmp_path / "train.csv.gz"
    data = gzip.compress(trivago_frame(300).to_csv(index=False).encode())
    gz.write_bytes(data[: len(data) // 2])
    assert "ends early" in _error(gz, "trivago")
    parquet = write_trivago_parquet(tmp_path / "val.parquet", n_sessions=300).path
    parquet.write_bytes(parquet.read_bytes()[:-200])
    msg = _error(parquet, "trivago")
    assert str(parquet) in msg and "truncated or damaged" in msg
    msg = _error(write_jd(tmp_path / "j.txt").path, "trivago")
    assert "looks like the jd format" in msg
    msg = _error(write_trivago_csv(tmp_path / "t.csv").path, "jd")
    assert "line 1" in msg and "looks like the trivago format" in msg
    assert "Parquet" in _error(write_trivago_parquet(tmp_path / "t.parquet").path, "jd")


def test_misnamed_trivago_columns_on_a_generated_file(tmp_path: Path) -> None:
    path = _trivago_rows(tmp_path / "train.csv", trivago_frame(5).rename(columns={"session_id": "sessionid"}))
    msg = _error(path, "trivago")
    assert "missing column(s) session_id" in msg and "column 'session_id'" in msg


def test_generated_files_chunks_operations_and_bad_timestamp(tmp_path: Path) -> None:
    """What the real-sample tests check besides their counts, on generated files: Diginetica-like files
    sniffed as generic, bounded chunks of whole JD sessions, Parquet streamed in bounded batches, trivago
    operations, and a non-numeric trivago timestamp at its line."""
    views, purchases = write_diginetica(tmp_path / "digi")
    assert detect_format(views.path) == detect_format(purchases.path) == "generic"
    jd = write_jd(tmp_path / "jd.txt", n_sessions=200, seed=6)
    chunks = _chunks("jd", jd.path, chunk_rows=jd.rows // 8)
    assert len(chunks) > 5 and sum(len(c.frame) for c in chunks) == jd.rows
    sessions = [set(c.frame["session"]) for c in chunks]
    assert all(a.isdisjoint(b) for a, b in zip(sessions, sessions[1:], strict=False))
    parquet = write_trivago_parquet(tmp_path / "val.parquet", n_sessions=200)
    chunks = _chunks("trivago", parquet.path, chunk_rows=parquet.rows // 6)
    assert len(chunks) > 3 and all(c.rows_read <= parquet.rows // 6 for c in chunks)  # bounded batches
    assert sum(c.rows_read for c in chunks) == parquet.rows
    df = read_events(parquet.path, "trivago")
    assert set(df["operation"]) <= set(get_importer("trivago").OPERATIONS)
    assert df["operation"].value_counts().to_dict() == parquet.extra["operation_counts"]
    assert df["item"].str.fullmatch(r"\d+").all()
    lines = trivago_frame(10).to_csv(index=False, lineterminator="\n").splitlines()
    fields = lines[5].split(",")
    fields[2] = "yesterday"
    lines[5] = ",".join(fields)
    path = _write(tmp_path / "train.csv", "\n".join(lines) + "\n")
    msg = _error(path, "trivago")
    assert str(path) in msg and "line 6" in msg and "column 'timestamp'" in msg and "expected a number" in msg


# == issue 13 regressions: each failed before the importer fixes ===================================
def _write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _store_items(tmp_path: Path, path: Path, chunk_rows: int, mapping: ColumnMapping | None = None) -> int:
    from embsr_core.data.store_io import import_into_store
    from embsr_core.store import open_store

    store = open_store(f"sqlite:///{tmp_path / f'items{chunk_rows}.db'}")
    try:
        return import_into_store(store, path, "generic", "t", mapping, chunk_rows=chunk_rows).n_items
    finally:
        store.dispose()


def test_d2_generic_ids_are_opaque_text(tmp_path: Path) -> None:
    path = _write(tmp_path / "log.csv", "session,item,operation,timestamp\n1,007,v,1\n1,7,v,2\n2,7,v,3\n"
                  "2,18446744073709551615,v,4\n3,9223372036854775808,v,5\n")
    df = read_events(path, "generic")
    assert df["item"].tolist() == ["007", "7", "7", "18446744073709551615", "9223372036854775808"]
    assert df["item"].nunique() == 4


def test_d2_item_count_does_not_depend_on_chunking(tmp_path: Path) -> None:
    rows = ["session,item,operation,timestamp"]
    rows += [f"s{k // 5},{k % 50},v,{k}" for k in range(3000)]  # plain integers first
    rows += [f"t{k // 5},{k % 50:03d},v,{k}" for k in range(3000)]  # then the same with leading zeros
    path = _write(tmp_path / "log.csv", "\n".join(rows) + "\n")
    counts = {_store_items(tmp_path, path, chunk_rows) for chunk_rows in (1000, 250_000)}
    assert counts == {100}


def test_d4_trivago_last_line_cut_inside_reference(tmp_path: Path) -> None:
    text = trivago_frame(5).to_csv(index=False, lineterminator="\n")
    lines = text.splitlines()
    last = lines[-1]
    cut = last[: last.index(",", last.index("item") if "item" in last else 0) + 3]
    path = _write(tmp_path / "train.csv", "\n".join(lines[:-1]) + "\n" + cut)
    msg = _error(path, "trivago")
    assert f"line {len(lines)}" in msg and "expected 12" in msg and "cut short" in msg


@pytest.mark.parametrize("chunk_rows", [1, 2, 10_000])
@pytest.mark.parametrize("tail", ["2,ab", '2,"a,b', "2"])  # fields missing; a quote left open; one field
def test_a_cut_last_line_is_skipped_and_counted_when_asked(tmp_path: Path, chunk_rows: int, tail: str) -> None:
    """The refusal says how to go on; with the option the rest is imported and the report names the
    skipped line, whatever the chunk size (the last chunk carries it, or the cut line is alone)."""
    body = "item,session,operation,timestamp\n1,abc,v,1\n2,abc,v,2\n3,abd,c,3\n"
    path = _write(tmp_path / "log.csv", body + tail)
    with pytest.raises(CutLastLineError) as info:
        read_events(path, "generic")
    assert "line 5" in str(info.value) and "--skip-cut-last-line" in str(info.value)
    chunks = _chunks("generic", path, chunk_rows, mapping=ColumnMapping(skip_cut_last_line=True))
    assert sum(len(c.frame) for c in chunks) == 3 and sum(c.rows_read for c in chunks) == 4
    assert [c.skipped for c in chunks if c.skipped] == [{CUT_LAST_LINE: 1}]
    assert chunks[-1].skipped == {CUT_LAST_LINE: 1}
    df = read_events(path, "generic", ColumnMapping(skip_cut_last_line=True))
    assert df["item"].astype(str).tolist() == ["1", "2", "3"]


def test_only_a_cut_last_line_is_skipped(tmp_path: Path) -> None:
    """The option skips nothing else: a short line inside the file, or a short last line that ends with
    a line end (the file was not cut there), is still refused at its line."""
    skip = ColumnMapping(skip_cut_last_line=True)
    inside = _write(tmp_path / "a.csv", "item,session,operation,timestamp\n1,abc,v,1\n2,ab\n3,abd,c,3")
    msg = _error(inside, "generic", skip)
    assert "line 3" in msg and "cut short" in msg
    ended = _write(tmp_path / "b.csv", "item,session,operation,timestamp\n1,abc,v,1\n2,ab\n")
    assert "line 3" in _error(ended, "generic", skip)
    whole = _write(tmp_path / "c.csv", "item,session,operation,timestamp\n1,abc,v,1\n2,abc,v,2")
    chunks = _chunks("generic", whole, mapping=skip)  # a complete last line without a line end is kept
    assert sum(len(c.frame) for c in chunks) == 2 and not any(c.skipped for c in chunks)


def test_trivago_cut_last_line_is_skipped_when_asked(tmp_path: Path) -> None:
    text = trivago_frame(5).to_csv(index=False, lineterminator="\n")
    lines = text.splitlines()
    path = _write(tmp_path / "train.csv", "\n".join(lines[:-1]) + "\n" + lines[-1][:12])
    whole = read_events(_write(tmp_path / "whole.csv", "\n".join(lines[:-1]) + "\n"), "trivago")
    df = read_events(path, "trivago", ColumnMapping(skip_cut_last_line=True))
    pd.testing.assert_frame_equal(df, whole)
    chunks = _chunks("trivago", path, 2, mapping=ColumnMapping(skip_cut_last_line=True))
    assert chunks[-1].skipped.get(CUT_LAST_LINE) == 1 and sum(c.rows_read for c in chunks) == len(lines) - 1


def test_skipping_a_cut_line_is_said_to_be_ignored_for_jd() -> None:
    assert "ignored" in (ignored_mapping("jd", ColumnMapping(skip_cut_last_line=True)) or "")
    assert ignored_mapping("trivago", ColumnMapping(skip_cut_last_line=True)) is None


def test_d4_generic_cut_inside_the_session_and_extra_fields(tmp_path: Path) -> None:
    path = _write(tmp_path / "log.csv", "item,session,operation,timestamp\n1,abc,v,1\n2,ab")
    msg = _error(path, "generic")
    assert "line 3" in msg and "cut short" in msg
    for text, line in (("session,item,operation,timestamp\n1,2,v,1,9\n1,3,v,2,9\n", 2),  # pandas shifted these
                       ("session,item,operation,timestamp\n1,2,v,1\n1,3,v,2,extra\n", 3)):
        msg = _error(_write(tmp_path / "x.csv", text), "generic")
        assert f"line {line}" in msg and "5 ','-separated field(s), expected 4" in msg and "extra field" in msg


def test_d4_five_field_trivago_row(tmp_path: Path) -> None:
    lines = trivago_frame(3).to_csv(index=False, lineterminator="\n").splitlines()
    lines.insert(4, "U1,sess,1541030400,3,clickout item")
    msg = _error(_write(tmp_path / "train.csv", "\n".join(lines) + "\n"), "trivago")
    assert "line 5" in msg and "5 ','-separated field(s), expected 12" in msg
    assert "reference is not an item id" not in msg


def test_d5_parquet_microsecond_timestamps_are_seconds(tmp_path: Path) -> None:
    t = pd.to_datetime([1_541_030_400, 1_541_030_460], unit="s").as_unit("us")
    frame = trivago_frame(1).head(2).assign(timestamp=t, action_type="clickout item", reference=["1", "2"])
    frame.to_parquet(tmp_path / "t.parquet")
    assert read_events(tmp_path / "t.parquet", "trivago")["timestamp"].tolist() == [1_541_030_400.0, 1_541_030_460.0]
    pd.DataFrame({"session": ["a", "a"], "item": ["1", "2"], "operation": ["v", "v"], "timestamp": t}).to_parquet(
        tmp_path / "g.parquet")
    assert read_events(tmp_path / "g.parquet", "generic")["timestamp"].tolist() == [1_541_030_400.0, 1_541_030_460.0]


def test_d5_bool_nan_inf_and_negative_values_refused(tmp_path: Path) -> None:
    base = {"session": ["a", "a"], "item": ["1", "2"], "operation": ["v", "v"]}
    pd.DataFrame({**base, "timestamp": [True, False]}).to_parquet(tmp_path / "b.parquet")
    msg = _error(tmp_path / "b.parquet", "generic")
    assert "row 1" in msg and "true/false" in msg and "column 'timestamp'" in msg
    for value, line in (("inf", 3), ("-inf", 3), ("1e400", 3)):
        path = _write(tmp_path / "t.csv", f"session,item,operation,timestamp\na,1,v,5\na,2,v,{value}\n")
        msg = _error(path, "generic")
        assert f"line {line}" in msg and "finite seconds" in msg
    pd.DataFrame({**base, "timestamp": [1.0, np.nan]}).to_parquet(tmp_path / "n.parquet")
    assert "row 2" in _error(tmp_path / "n.parquet", "generic")
    jd = _write(tmp_path / "jd.txt", "879089+5+753+180+180 877096+5+753+-35+35\n")
    msg = _error(jd, "jd")
    assert "line 1" in msg and "micro-behavior 2" in msg


def test_d5_step_above_2_64_is_refused(tmp_path: Path) -> None:
    frame = trivago_frame(2)
    frame["step"] = frame["step"].astype(object)
    frame.loc[3, "step"] = "18446744073709551617"
    msg = _error(_trivago_rows(tmp_path / "train.csv", frame), "trivago")
    assert "line 5" in msg and "column 'step'" in msg and "2^63-1" in msg


def test_d6_huge_numbers_and_nul_bytes_give_messages(tmp_path: Path) -> None:
    big = "1" + "0" * 400
    msg = _error(_write(tmp_path / "jd.txt", f"1+5+7+1+1\n1+5+7+{big}+1 2+5+7+1+1\n"), "jd")
    assert "line 2" in msg and "time_interval" in msg
    msg = _error(_write(tmp_path / "g.csv", f"session,item,operation,timestamp\na,1,v,1\na,2,v,{'9' * 400}\n"),
                 "generic")
    assert "line 3" in msg and "column 'timestamp'" in msg and "finite seconds" in msg
    frame = trivago_frame(2)
    frame["timestamp"] = frame["timestamp"].astype(object)
    frame.loc[2, "timestamp"] = "7" * 400
    msg = _error(_trivago_rows(tmp_path / "t.csv", frame), "trivago")
    assert "line 4" in msg and "column 'timestamp'" in msg
    rows = "".join(f"s{k},{k},v,{k}\n" for k in range(20_000))  # past the 64 KiB head
    path = _write(tmp_path / "nul.csv", ("session,item,operation,timestamp\n" + rows + "s\x00x,1,v,1\n").encode())
    msg = _error(path, "generic")
    assert "line 20002" in msg and "NUL" in msg
    msg = _error(_write(tmp_path / "nul2.csv", b"session,item,operation,timestamp\na,1,v,1\na\x00,2,v,2\n"), "generic")
    assert "line 3" in msg and "NUL" in msg
    pd.DataFrame({"session": ["a", "b\x00"], "item": ["1", "2"], "operation": ["v", "v"],
                  "timestamp": [1, 2]}).to_parquet(tmp_path / "nul.parquet")
    msg = _error(tmp_path / "nul.parquet", "generic")
    assert "row 2" in msg and "NUL" in msg


def test_d7_jd_big_sku_at_its_line_with_any_chunking(tmp_path: Path) -> None:
    sessions = jd_sessions(900, seed=5)
    text = jd_text(sessions).splitlines()
    text[69] = text[69] + " 9223372036854775808+5+753+1+1"
    text[799] = text[799].replace(text[799].split("+")[0], "99999999999999999999", 1)
    path = _write(tmp_path / "jd.txt", "\n".join(text) + "\n")
    msg = _error(path, "jd")
    assert "line 70" in msg and "above 2^63-1" in msg
    text[69] = text[69].rsplit(" ", 1)[0]
    path = _write(tmp_path / "jd.txt", "\n".join(text) + "\n")
    for chunk_rows in (50, 5000):
        with pytest.raises(DataFormatError) as info:
            [c for c in get_importer("jd").iter_chunks(Source(path), None, chunk_rows=chunk_rows)]
        assert info.value.line == 800, (chunk_rows, str(info.value))


def test_d7_latin1_bytes_at_their_exact_line(tmp_path: Path) -> None:
    lines = jd_text(jd_sessions(2000)).encode().splitlines()  # > 64 KiB: the probe reads UTF-8
    lines[1500] = lines[1500] + b" caf\xe9"
    msg = _error(_write(tmp_path / "jd.txt", b"\n".join(lines) + b"\n"), "jd")
    assert "line 1501" in msg and "0xe9" in msg
    lines = [b"session,item,operation,timestamp"] + [f"s{k},{k},v,{k}".encode() for k in range(20_000)]
    lines[15_000] = b"s1,caf\xe9,v,1"
    path = _write(tmp_path / "g.csv", b"\n".join(lines) + b"\n")
    msg = _error(path, "generic")
    assert "line 15001" in msg and "0xe9" in msg and "UTF-8" in msg
    short = jd_text(jd_sessions(5)).encode().splitlines()
    short[2] = short[2] + b" \xe9"
    msg = _error(_write(tmp_path / "short.txt", b"\n".join(short) + b"\n"))
    assert "line 3" in msg and "UTF-8" in msg and "unrecognised" not in msg


def test_d7_locations_with_quotes_blank_lines_and_chunks(tmp_path: Path) -> None:
    lines = trivago_frame(8).to_csv(index=False, lineterminator="\n").splitlines()
    n = len(lines)
    lines[-1] = lines[-1].replace('"Berlin, Germany"', '"Berlin, Ger')
    msg = _error(_write(tmp_path / "t.csv", "\n".join(lines)), "trivago")
    assert f"line {n}" in msg and "never closed" in msg
    text = "session,item,operation,timestamp\n\na,\"x\ny\",v,1\n\nb,2,v,2\nb,3,v,later\n"
    for chunk_rows in (1, 1000):
        with pytest.raises(DataFormatError) as info:
            list(get_importer("generic").iter_chunks(Source(_write(tmp_path / "q.csv", text)), None,
                                                     chunk_rows=chunk_rows))
        assert info.value.line == 7 and info.value.column == "timestamp"


def test_d7_parquet_duplicate_and_list_columns_and_symlink_loop(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table([pa.array(["a"]), pa.array(["1"]), pa.array(["v"]), pa.array([1.0]), pa.array(["x"])],
                     names=["session", "item", "operation", "timestamp", "item"])
    pq.write_table(table, tmp_path / "dup.parquet")
    msg = _error(tmp_path / "dup.parquet", "generic")
    assert "'item' occurs more than once" in msg
    table = pa.table({"session": ["a"], "item": pa.array([["1", "2"]]), "operation": ["v"], "timestamp": [1.0]})
    pq.write_table(table, tmp_path / "list.parquet")
    msg = _error(tmp_path / "list.parquet", "generic")
    assert "column 'item'" in msg and "several per row" in msg and "damaged" not in msg
    loop = tmp_path / "loop.csv"
    loop.symlink_to(tmp_path / "loop2.csv")
    (tmp_path / "loop2.csv").symlink_to(loop)
    msg = _error(loop)
    assert "loop of symbolic links" in msg and "not found" not in msg


def test_d8_byte_order_mark_is_not_part_of_the_first_column(tmp_path: Path) -> None:
    for fmt, plain, marked in (
        ("jd", write_jd(tmp_path / "a.txt"), write_jd(tmp_path / "b.txt", bom=True)),
        ("trivago", write_trivago_csv(tmp_path / "a.csv"), write_trivago_csv(tmp_path / "b.csv", bom=True)),
        ("generic", write_generic_csv(tmp_path / "a.tsv", sep="\t"),
         write_generic_csv(tmp_path / "b.tsv", sep="\t", bom=True)),
    ):
        assert detect_format(marked.path) == fmt
        pd.testing.assert_frame_equal(read_events(marked.path), read_events(plain.path))
    bom = _write(tmp_path / "m.csv", "\ufeffaction_time,session_id,item_id,op\n5,a,1,v\n")
    assert read_events(bom, "generic", ColumnMapping(timestamp="action_time"))["timestamp"].tolist() == [5.0]


def test_d8_trivago_without_step_orders_by_time_then_file_order(tmp_path: Path) -> None:
    frame = trivago_frame(6).drop(columns=["step"])
    frame.loc[[0, 1], "timestamp"] = frame.loc[0, "timestamp"]  # a tie: file order decides
    path = _trivago_rows(tmp_path / "nostep.csv", frame)
    assert detect_format(path) == "trivago"
    df = read_events(path)
    kept = frame[frame["action_type"].isin(get_importer("trivago").OPERATIONS)
                 & frame["reference"].str.fullmatch(r"\d+")]
    expected = kept.assign(pos=np.arange(len(kept))).sort_values(["timestamp", "pos"], kind="stable")
    for session, group in df.groupby("session", sort=False):
        want = expected[expected["session_id"] == session]["reference"].tolist()
        assert group["item"].tolist() == want


def test_d8_pandas_parquet_with_float_references(tmp_path: Path) -> None:
    frame = trivago_frame(5)
    numeric = pd.to_numeric(frame["reference"], errors="coerce")  # NaN where the reference is text
    frame.assign(reference=numeric).to_parquet(tmp_path / "float.parquet")
    df = read_events(tmp_path / "float.parquet", "trivago")
    assert len(df) > 0 and df["item"].str.fullmatch(r"\d+").all()
    assert set(df["item"]) <= set(frame["reference"])


def test_d11_lines_over_the_limit_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from embsr_core.data.importers import table

    monkeypatch.setattr(table, "MAX_LINE_BYTES", 4096)
    long_session = " ".join(["879089+5+753+1+1"] * 1000)
    msg = _error(_write(tmp_path / "jd.txt", f"1+5+7+1+1\n{long_session}\n"), "jd")
    assert "line 2" in msg and "longer than" in msg
    path = _write(tmp_path / "g.csv", "session,item,operation,timestamp\n" + "a" * 1_000_000 + ",1,v,1\n")
    msg = _error(path, "generic")
    assert "line 2" in msg and "longer than" in msg


# == sessions from a user log ======================================================================
TAOBAO = DATA / "taobao" / "UserBehavior_sample.csv"
TMALL = DATA / "tmall" / "t_alibaba_data.csv"
def _by_position(**kw: object) -> ColumnMapping:
    """The Taobao layout mapped by position (the file has no header)."""
    return ColumnMapping(**{"user": "1", "item": "2", "category": "3", "operation": "4", "timestamp": "5",
                            "header": False, **kw})


def test_user_log_without_header_is_cut_by_the_gap(tmp_path: Path) -> None:
    written = write_taobao(tmp_path / "ub.csv", n_users=30, seed=4)
    df = read_events(written.path, "generic", _by_position())
    assert len(df) == written.rows and df["session"].nunique() == written.sessions
    for _, group in df.groupby("session", sort=False):
        assert group["timestamp"].is_monotonic_increasing
        assert not (group["timestamp"].diff() > 1800).any()  # no gap over 30 minutes inside a session
    users = df["session"].str.rsplit("/", n=1).str[0]
    assert users.nunique() == written.extra["users"]
    one_hour = read_events(written.path, "generic", _by_position(session_gap=3600))
    assert one_hour["session"].nunique() <= written.sessions
    # the same log in two chunks or in one gives the same sessions
    chunked = list(iter_source_chunks([Source(written.path)], "generic", _by_position(), chunk_rows=7)[1])
    frames = [c.frame for _, c in chunked if len(c.frame)]
    assert pd.concat(frames)["session"].nunique() == written.sessions


def test_header_less_file_without_the_flag_says_what_to_do(tmp_path: Path) -> None:
    written = write_taobao(tmp_path / "ub.csv")
    msg = _error(written.path, "generic")
    assert "looks like data, not a header" in msg and "--no-header" in msg


@pytest.mark.skipif(not TAOBAO.exists(), reason=f"the Taobao sample is not at {TAOBAO}")
def test_taobao_sample_sessions_by_30_and_60_minutes(tmp_path: Path) -> None:
    msg = _error(TAOBAO, "generic", _by_position())  # its last line is cut: refused, not imported partly
    assert "line 84476" in msg and "cut short" in msg and "--skip-cut-last-line" in msg
    complete = tmp_path / "complete.csv"
    complete.write_bytes(TAOBAO.read_bytes().rsplit(b"\n", 1)[0] + b"\n")
    df = read_events(complete, "generic", _by_position())
    assert (len(df), df["session"].nunique(), df["item"].nunique()) == (84_475, 14_122, 55_368)
    pd.testing.assert_frame_equal(read_events(TAOBAO, "generic", _by_position(skip_cut_last_line=True)), df)
    hour = read_events(complete, "generic", _by_position(session_gap=3600.0))
    assert hour["session"].nunique() == 12_469


def test_month_day_dates_are_refused_not_ordered_silently(tmp_path: Path) -> None:
    written = write_tmall(tmp_path / "tmall.csv")
    mapping = ColumnMapping(user="user_id", item="brand_id", operation="type", timestamp="visit_datetime")
    msg = _error(written.path, "generic", mapping)
    assert "line 2" in msg and "month-day" in msg and "invented" in msg
    if TMALL.exists():
        assert "month-day" in _error(TMALL, "generic", mapping)


def test_numeric_ids_when_the_user_says_so(tmp_path: Path) -> None:
    path = _write(tmp_path / "log.csv", "session,item,operation,timestamp\n01,007,v,1\n01,7,v,2\n1,+7,v,3\n2,x7,v,4\n")
    assert read_events(path, "generic")["item"].nunique() == 4  # opaque text by default
    df = read_events(path, "generic", ColumnMapping(numeric_ids=True))
    assert df["item"].tolist() == ["7", "7", "7", "x7"] and df["session"].nunique() == 2
    rows = ["session,item,operation,timestamp"] + [f"s{k // 5},{k % 50},v,{k}" for k in range(3000)]
    rows += [f"t{k // 5},{k % 50:03d},v,{k}" for k in range(3000)]
    path = _write(tmp_path / "big.csv", "\n".join(rows) + "\n")
    mapping = ColumnMapping(numeric_ids=True)
    assert {_store_items(tmp_path, path, n, mapping) for n in (700, 250_000)} == {50}
