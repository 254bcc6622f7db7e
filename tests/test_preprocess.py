"""The paper's preprocessing protocol on hand-made frames, the cache, stats, and the real samples."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from native_fixtures import write_jd, write_trivago_parquet

from embsr_core.data.events import JD_OPERATIONS, EventsError, events_fingerprint, validate_events
from embsr_core.data.prepared import PreparedDataset
from embsr_core.data.preprocess import (
    PRESETS,
    PreprocessConfig,
    cache_path,
    config_hash,
    dataset_stats,
    load_or_prepare,
    prepare,
    preset,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def frame(sessions: dict[str, list[tuple[str, str]]], t0: dict[str, float] | None = None) -> pd.DataFrame:
    """Events from {session: [(item, op), ...]}; one second per micro-behavior from t0[session]."""
    rows = []
    for s, seq in sessions.items():
        start = (t0 or {}).get(s, 0.0)
        rows += [(s, i, o, start + k) for k, (i, o) in enumerate(seq)]
    return pd.DataFrame(rows, columns=["session", "item", "operation", "timestamp"])


def loose(**kw) -> PreprocessConfig:
    """The paper's one-target protocol (prefix training has its own tests) with no support filter."""
    return PreprocessConfig(**{"min_item_support": 1, "split": "order", "augment": False, **kw})


def decode(p: PreparedDataset, split: str, row: int) -> tuple[list[str], list[str], str, str]:
    sp = p.split(split)
    n = sp.lengths[row]
    items = [p.vocab.item_ids[i] for i in sp.items[row, :n]]
    ops = [p.vocab.op_names[o] for o in sp.ops[row, :n]]
    return items, ops, p.vocab.item_ids[sp.targets[row]], p.vocab.op_names[sp.target_ops[row]]


def test_merge_target_trailing_repeats_and_target_op():
    df = frame({"a": [("A", "x"), ("A", "y"), ("B", "x"), ("C", "z"), ("C", "y"), ("C", "x")]})
    p = prepare(df, loose(split_fractions=(1.0, 0.0, 0.0)))
    items, ops, target, target_op = decode(p, "train", 0)
    assert (items, ops) == (["A", "A", "B"], ["x", "y", "x"])  # C's repeats are all the target
    assert (target, target_op) == ("C", "z")  # op of the target's *first* micro-behavior
    assert p.train.items[0, 3:].tolist() == [0] * (p.train.max_len - 3)  # left-aligned, 0-padded
    assert p.stats["mean_macro_items"] == 3.0


def test_support_filter_remerges_and_drops_short_sessions():
    # B is rare: dropping it turns "A B A" into one macro-item A -> the session is too short.
    df = frame(
        {
            "s1": [("A", "x"), ("B", "x"), ("A", "y")],
            "s2": [("C", "x"), ("A", "x"), ("C", "y"), ("B", "z"), ("C", "x")],  # -> C A C C: target C
            "s3": [("A", "x"), ("C", "x")],
            "s4": [("C", "x"), ("A", "y")],
        }
    )
    p = prepare(df, loose(min_item_support=3, split_fractions=(1.0, 0.0, 0.0)))
    proto = p.stats["protocol"]
    assert proto["rows_dropped_support"] == 2 and proto["items_dropped_support"] == 1
    assert proto["sessions_dropped_short"] == 1
    assert p.train.session_ids.tolist() == ["s2", "s3", "s4"]
    items, ops, target, target_op = decode(p, "train", 0)
    assert (items, ops, target, target_op) == (["C", "A"], ["x", "x"], "C", "y")  # trailing C run removed
    assert p.vocab.item_ids[1:] == ["A", "C"] or p.vocab.item_ids[1:] == ["C", "A"]
    assert p.stats["table2"]["micro_behaviors"] == 8


def test_max_len_keeps_the_last_micro_behaviors():
    seq = [(f"i{k}", "x") for k in range(10)] + [("T", "y")]
    p = prepare(frame({"s": seq}), loose(max_len=4, split_fractions=(1.0, 0.0, 0.0)))
    items, _, target, _ = decode(p, "train", 0)
    assert items == ["i6", "i7", "i8", "i9"] and target == "T"
    assert p.train.items.shape == (1, 4) and p.train.lengths.tolist() == [4]


def test_remap_dtypes_and_vocab():
    df = frame({"s1": [("A", "x"), ("B", "y"), ("B", "x")], "s2": [("B", "x"), ("C", "y")]})
    df["category"] = df["item"].map({"A": "cat1", "B": "cat2", "C": None})
    p = prepare(df, loose(split_fractions=(1.0, 0.0, 0.0)))
    assert p.vocab.item_ids == ["<pad>", "B", "A", "C"]  # most frequent first, ties by id
    assert p.vocab.item_categories == [None, "cat2", "cat1", None]
    assert p.vocab.op_names == ["<pad>", "x", "y"]
    sp = p.train
    assert sp.items.dtype == np.int32 and sp.ops.dtype == np.int32 and sp.lengths.dtype == np.int32
    assert sp.targets.dtype == np.int64 and sp.target_ops.dtype == np.int32
    assert sp.session_ids.dtype.kind == "U" and sp.end_times.dtype == np.float64
    assert sp.dwell is None
    assert sp.items.min() >= 0 and sp.items.max() <= p.n_items and sp.targets.min() >= 1


def test_jd_operation_order_and_dwell():
    df = frame({"s": [("A", "Order"), ("A", "Home2Product"), ("B", "Cart")]})
    df["dwell"] = [5.0, np.nan, 7.0]
    p = prepare(df, loose(split_fractions=(1.0, 0.0, 0.0)))
    assert p.vocab.op_names == ["<pad>", "Home2Product", "Cart", "Order"]  # JD behavior_type order
    assert p.train.dwell.dtype == np.float32 and p.train.dwell[0, :2].tolist() == [5.0, 0.0]


def _ten_sessions() -> pd.DataFrame:
    # session k ends at time 100 - k (so the *last* in the file ends first)
    sessions = {f"s{k}": [("A", "x"), ("B", "y"), (f"T{k % 3}", "z")] for k in range(10)}
    return frame(sessions, t0={f"s{k}": 100.0 - k - 2 for k in range(10)})


def test_time_split_by_session_end_time():
    p = prepare(_ten_sessions(), PreprocessConfig(min_item_support=1, split="time", augment=False))
    assert (len(p.train), len(p.valid), len(p.test)) == (7, 1, 2)
    assert p.train.session_ids.tolist() == [f"s{k}" for k in range(9, 2, -1)]  # earliest end first
    assert p.valid.session_ids.tolist() == ["s2"] and p.test.session_ids.tolist() == ["s1", "s0"]
    assert p.train.end_times.max() < p.valid.end_times.min() <= p.test.end_times.min()


def test_random_split_is_seeded_and_ignores_time():
    cfg = PreprocessConfig(min_item_support=1, split="random", seed=3, augment=False)
    a, b = prepare(_ten_sessions(), cfg), prepare(_ten_sessions(), cfg)
    assert a.test.session_ids.tolist() == b.test.session_ids.tolist()
    assert (len(a.train), len(a.valid), len(a.test)) == (7, 1, 2)
    every = set(a.train.session_ids) | set(a.valid.session_ids) | set(a.test.session_ids)
    assert every == {f"s{k}" for k in range(10)}
    others = {tuple(prepare(_ten_sessions(), cfg.replace(seed=s)).test.session_ids) for s in range(6)}
    assert len(others) > 1


def test_time_split_warns_on_relative_timestamps():
    df = frame({f"s{k}": [("A", "x"), ("B", "x")] for k in range(5)})
    with pytest.warns(UserWarning, match="relative timestamps"):
        p = prepare(df, PreprocessConfig(min_item_support=1))
    assert p.stats["protocol"]["warnings"]


def test_unseen_targets_are_counted_not_dropped():
    sessions = {f"tr{k}": [("A", "x"), ("B", "x")] for k in range(7)}
    sessions["va"] = [("A", "x"), ("NEW1", "x")]
    sessions["te1"] = [("A", "x"), ("NEW2", "x")]
    sessions["te2"] = [("A", "x"), ("B", "x")]
    p = prepare(frame(sessions), loose())
    assert p.stats["protocol"]["unseen_valid_targets"] == 1
    assert p.stats["protocol"]["unseen_test_targets"] == 1
    assert {"NEW1", "NEW2"} <= set(p.vocab.item_ids)


def test_prefix_augmentation_of_training_only():
    sessions = {"tr": [("A", "x"), ("A", "y"), ("B", "z"), ("C", "x"), ("D", "y")], "te": [("A", "x"), ("B", "x")]}
    plain = prepare(frame(sessions), loose(split_fractions=(0.5, 0.0, 0.5)))
    aug = prepare(frame(sessions), loose(split_fractions=(0.5, 0.0, 0.5), augment=True))
    assert len(plain.train) == 1 and len(aug.train) == 3 and len(aug.test) == 1
    got = [decode(aug, "train", r) for r in range(3)]
    assert [(g[0], g[2], g[3]) for g in got] == [
        (["A", "A"], "B", "z"),
        (["A", "A", "B"], "C", "x"),
        (["A", "A", "B", "C"], "D", "y"),
    ]
    assert aug.stats["protocol"]["augmented_samples"] == 2


def test_config_presets_and_hash():
    assert PreprocessConfig() == PRESETS["jd-appliances"].replace(split="time")
    assert (preset("jd-computers").max_len, preset("trivago").min_item_support) == (30, 5)
    assert preset("trivago").max_len == 50 and preset("sample", max_len=7).max_len == 7
    assert config_hash(PreprocessConfig()) == config_hash(PreprocessConfig.from_dict(PreprocessConfig().to_dict()))
    assert config_hash(PreprocessConfig()) != config_hash(PreprocessConfig(max_len=39))
    with pytest.raises(ValueError, match="unknown preprocessing preset"):
        preset("nope")
    with pytest.raises(ValueError, match="split_fractions"):
        PreprocessConfig(split_fractions=(0.5, 0.5, 0.5))


def test_cache_round_trip(tmp_path):
    df = _ten_sessions()
    cfg = PreprocessConfig(min_item_support=1)
    first = load_or_prepare(df, cfg, "toy/ds", tmp_path)
    fp = events_fingerprint(validate_events(df))
    path = cache_path(tmp_path, "toy/ds", fp, cfg)
    assert path.exists() and path.with_suffix(".json").exists()

    def no_events():
        raise AssertionError("a cache hit must not load the events")

    t = time.perf_counter()
    again = load_or_prepare(no_events, cfg, "toy/ds", tmp_path, fingerprint=fp)
    assert time.perf_counter() - t < 1.0
    for name in ("train", "valid", "test"):
        a, b = first.split(name), again.split(name)
        for field in ("items", "ops", "lengths", "targets", "target_ops", "session_ids", "end_times"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert again.vocab.item_ids == first.vocab.item_ids and again.stats["table2"] == first.stats["table2"]
    other = load_or_prepare(df, cfg.replace(max_len=5), "toy/ds", tmp_path)
    assert other.train.max_len == 5 and len(list(tmp_path.glob("*.npz"))) == 2
    path.write_bytes(b"garbage")  # a corrupt entry is rebuilt, not fatal
    assert len(load_or_prepare(df, cfg, "toy/ds", tmp_path).train.one_per_session()) == 7


def test_dataset_stats_on_events_and_prepared():
    df = frame({"s1": [("A", "x"), ("B", "y"), ("A", "x"), ("A", "y")], "s2": [("C", "x"), ("D", "x")]})
    st = dataset_stats(df)
    assert st["table2"] == {"sessions": 2, "items": 4, "micro_behaviors": 6}
    assert st["operations"] == {"x": 4, "y": 2}
    assert st["session_length_hist"]["2-4"] == 2 and sum(st["session_length_hist"].values()) == 2
    assert st["revisit_rate"] == pytest.approx(1 / 5)  # macro-items: A B A | C D -> one revisit
    assert st["sessions_with_revisit"] == pytest.approx(0.5)
    p = prepare(df, loose(split_fractions=(0.5, 0.0, 0.5)))
    assert dataset_stats(p)["table2"] == {"train": 1, "valid": 0, "test": 1, "items": 4, "micro_behaviors": 6}


def test_validate_events_errors_name_source_row_and_column():
    df = frame({"s": [("A", "x"), ("B", "y")]})
    with pytest.raises(EventsError, match=r"f\.csv: missing column\(s\) item"):
        validate_events(df.drop(columns="item"), source="f.csv")
    with pytest.raises(EventsError, match=r"f\.csv: row 1, column 'timestamp': got 'soon'"):
        validate_events(df.assign(timestamp=["1", "soon"]), source="f.csv")
    with pytest.raises(EventsError, match=r"row 0, column 'session': missing value"):
        validate_events(df.assign(session=[None, "s"]), source="f.csv")
    iso = validate_events(df.assign(timestamp=["2019-01-01T00:00:00", "2019-01-01T00:00:05"]))
    assert iso["timestamp"].tolist() == [1546300800.0, 1546300805.0]


def test_prepare_one_million_rows_is_fast():
    rng = np.random.default_rng(0)
    lens = rng.integers(5, 47, 40_000)
    n = int(lens.sum())
    items = rng.zipf(1.3, n) % 50_000
    df = pd.DataFrame(
        {
            "session": np.repeat(np.arange(len(lens)), lens).astype(str),
            "item": items.astype(str),
            "operation": np.array(JD_OPERATIONS)[rng.integers(0, 10, n)],
            "timestamp": np.arange(n, dtype=float),
        }
    )
    assert n > 1_000_000
    t = time.perf_counter()
    p = prepare(df, PreprocessConfig(min_item_support=5))
    elapsed = time.perf_counter() - t
    assert elapsed < 5.0, f"prepare took {elapsed:.2f} s for {n} rows"
    t2 = p.stats["table2"]
    assert t2["train"] + t2["valid"] + t2["test"] == 40_000 - p.stats["protocol"]["sessions_dropped_short"]


# ---------------------------------------------------------------- real samples


def _import(fmt: str, path: Path) -> pd.DataFrame:
    """All chunks of one native file through the team's importer, as one canonical frame."""
    from embsr_core.data.importers import Source, get_importer

    chunks = get_importer(fmt).iter_chunks(Source.of(path), chunk_rows=50_000)
    return pd.concat([c.frame for c in chunks], ignore_index=True)


def _sample(relative: str) -> Path:
    path = DATA / relative
    if not path.exists():
        pytest.skip(f"real sample not found at {path} (the fixture-based tests below cover the same path)")
    return path


def test_jd_appliances_sample():
    df = _import("jd", _sample("jd/JD_Appliances_sample.txt"))
    raw = dataset_stats(df)["table2"]
    assert raw == {"sessions": 1000, "items": 9134, "micro_behaviors": 57332}
    p = prepare(df, preset("sample"), "jd-sample")
    assert p.stats["table2"] == {"train": 700, "valid": 100, "test": 200, "items": 6368, "micro_behaviors": 54566}
    assert p.n_ops == 10 and p.vocab.op_names[1:] == list(JD_OPERATIONS)
    assert p.train.max_len == 50 and p.train.dwell is not None
    assert 0 < p.stats["protocol"]["unseen_test_targets"] < 200


def test_trivago_sample_time_split():
    ev = _import("trivago", _sample("trivago/trivago_val_100k.parquet"))
    p = prepare(ev, preset("trivago"), "trivago")
    assert p.n_ops == 6 and p.train.max_len == 50
    assert p.stats["table2"]["train"] == round(0.7 * sum(p.stats["table2"][k] for k in ("train", "valid", "test")))
    assert p.train.end_times.max() <= p.test.end_times.min()
    assert p.stats["protocol"]["unseen_test_targets"] > 0


# ---------------------------------------------------------------- generated native files (always run)


def test_jd_fixture_through_importer_and_sample_preset(tmp_path):
    written = write_jd(tmp_path / "jd.txt", n_sessions=300, seed=4)
    df = _import("jd", written.path)
    assert dataset_stats(df)["table2"] == {"sessions": 300, "items": written.items, "micro_behaviors": written.rows}
    p = prepare(df, preset("sample"), "jd-fixture")
    t2 = p.stats["table2"]
    kept = t2["train"] + t2["valid"] + t2["test"]
    assert kept == 300 - p.stats["protocol"]["sessions_dropped_short"]
    assert (t2["train"], t2["valid"], t2["test"]) == (round(0.7 * kept), round(0.1 * kept),
                                                      kept - round(0.7 * kept) - round(0.1 * kept))
    assert p.n_ops == 10 and p.vocab.op_names[1:] == list(JD_OPERATIONS)
    assert p.train.dwell is not None


def test_trivago_fixture_time_split(tmp_path):
    written = write_trivago_parquet(tmp_path / "val.parquet", n_sessions=200, seed=5)
    ev = _import("trivago", written.path)
    assert len(ev) == written.kept
    p = prepare(ev, preset("trivago"), "trivago-fixture")
    assert p.n_ops == 6 and p.train.max_len <= 50
    t2 = p.stats["table2"]
    assert t2["train"] == round(0.7 * (t2["train"] + t2["valid"] + t2["test"]))
    assert p.train.end_times.max() <= p.test.end_times.min()
