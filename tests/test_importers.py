"""Native importers on the real samples (read in place) and on every kind of bad input."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _store_helpers import DATA

from embsr_core.data.errors import DataFormatError
from embsr_core.data.events import JD_OPERATIONS
from embsr_core.data.importers import ColumnMapping, Source, detect_format, get_importer, read_events

JD = DATA / "jd" / "JD_Appliances_sample.txt"
HUP = DATA / "jd" / "HUP_Appliances_sample.txt"
TRIVAGO_CSV = DATA / "trivago" / "train_small.csv"
TRIVAGO_PARQUET = DATA / "trivago" / "trivago_val_100k.parquet"
VIEWS = DATA / "diginetica" / "sample_train-item-views.csv"
PURCHASES = DATA / "diginetica" / "train-purchases.csv"
DIGI_MAPPING = ColumnMapping(session="session_id", item="item_id", timestamp="timeframe")

pytestmark = pytest.mark.skipif(not JD.exists(), reason=f"real samples not found at {DATA}")


def _chunks(fmt: str, path: Path, chunk_rows: int = 10_000, **kw):
    return list(get_importer(fmt).iter_chunks(Source(path), kw.pop("mapping", None), chunk_rows=chunk_rows, **kw))


@pytest.mark.parametrize(
    ("path", "fmt"),
    [(JD, "jd"), (HUP, "jd"), (TRIVAGO_CSV, "trivago"), (TRIVAGO_PARQUET, "trivago"), (VIEWS, "generic"),
     (PURCHASES, "generic")],
)
def test_detect_format_sniffs_the_real_samples(path: Path, fmt: str) -> None:
    assert detect_format(path) == fmt


def test_detect_format_reads_content_not_extension(tmp_path: Path) -> None:
    disguised = tmp_path / "data.csv"  # JD lines behind a .csv name
    shutil.copyfile(JD, disguised)
    assert detect_format(disguised) == "jd"
    zipped = tmp_path / "train.bin"  # gzip-compressed trivago CSV without a telling name
    zipped.write_bytes(gzip.compress(TRIVAGO_CSV.read_bytes()))
    assert detect_format(zipped) == "trivago"


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


def test_hup_sample_exact_counts() -> None:
    df = read_events(HUP, "jd")
    assert len(df) == 28_108
    assert df["session"].nunique() == 1_000


def test_jd_chunks_are_bounded_whole_sessions() -> None:
    chunks = _chunks("jd", JD, chunk_rows=5_000)
    assert len(chunks) > 5
    assert sum(len(c.frame) for c in chunks) == 57_332
    sessions = [set(c.frame["session"]) for c in chunks]
    assert all(a.isdisjoint(b) for a, b in zip(sessions, sessions[1:], strict=False))


def test_trivago_small_csv_keeps_item_actions_and_counts_skips() -> None:
    chunks = _chunks("trivago", TRIVAGO_CSV)
    assert sum(c.rows_read for c in chunks) == 1_010
    frame = pd.concat([c.frame for c in chunks])
    assert len(frame) == 997
    assert frame["session"].nunique() == 7
    skipped = chunks[0].skipped
    assert skipped == {"action type without an item": 13}
    assert set(frame["operation"]) <= set(get_importer("trivago").OPERATIONS)


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


def test_trivago_rows_are_ordered_by_timestamp_then_step(tmp_path: Path) -> None:
    raw = pd.read_csv(TRIVAGO_CSV)
    shuffled = raw.sample(frac=1.0, random_state=3)
    path = tmp_path / "shuffled.csv"
    shuffled.to_csv(path, index=False)
    df = read_events(path, "trivago")
    for _, group in df.groupby("session", sort=False):
        keys = list(zip(group["timestamp"], group["step"], strict=True))
        assert keys == sorted(keys)


def test_trivago_gzip_equals_plain(tmp_path: Path) -> None:
    path = tmp_path / "train.csv.gz"
    path.write_bytes(gzip.compress(TRIVAGO_CSV.read_bytes()))
    pd.testing.assert_frame_equal(read_events(path, "trivago"), read_events(TRIVAGO_CSV, "trivago"))


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


def test_missing_mapped_column(tmp_path: Path) -> None:
    msg = _error(VIEWS, "generic", ColumnMapping(session="session_id", item="product", timestamp="timeframe",
                                                operation="op"))
    assert str(VIEWS) in msg and "'product'" in msg and "header has" in msg and "item_id" in msg


def test_unmapped_operation_column_asks_for_mapping_or_fixed_operation() -> None:
    msg = _error(VIEWS, "generic", DIGI_MAPPING)
    assert str(VIEWS) in msg and "column 'operation'" in msg and "--operation" in msg


def test_misnamed_trivago_columns(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    text = TRIVAGO_CSV.read_text()
    path.write_text(text.replace("session_id", "sessionid", 1))
    msg = _error(path, "trivago")
    assert str(path) in msg and "missing column(s) session_id" in msg and "column 'session_id'" in msg


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


def test_truncated_jd_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "jd.txt"
    lines = JD.read_text().splitlines()
    path.write_text("\n".join(lines[:40]) + "\n" + lines[40][:25])  # cut in the middle of a micro-behavior
    msg = _error(path, "jd")
    assert str(path) in msg and "line 41" in msg and "sku+behavior_type+category+time_interval+dwell_time" in msg


def test_truncated_gzip(tmp_path: Path) -> None:
    path = tmp_path / "train.csv.gz"
    data = gzip.compress(TRIVAGO_CSV.read_bytes())
    path.write_bytes(data[: len(data) // 2])
    msg = _error(path, "trivago")
    assert str(path) in msg and "ends early" in msg


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
