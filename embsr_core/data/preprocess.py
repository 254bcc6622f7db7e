"""The paper's preprocessing protocol (§II-B, §V-A): canonical events → :class:`PreparedDataset`.

Steps, all vectorised over rows (no Python loop per session):

1. drop micro-behaviors on items seen fewer than ``min_item_support`` times (counted over the
   micro-behaviors of the *whole* dataset, before the split — the paper filters before splitting,
   and a train-only count would make the vocabulary depend on the split);
2. merge consecutive micro-behaviors on the same item into macro-items — *after* the filter, so
   ``A B A`` with ``B`` dropped becomes one macro-item ``A``; drop sessions with fewer than
   ``min_macro_items`` macro-items (one pass, as in the paper: no iteration to a fixed point);
3. target = the last macro-item; input = the micro-behaviors before it (trailing repeats of the
   target item are therefore never in the input), the last ``max_len`` of them; ``target_op`` =
   the operation of the target's first micro-behavior (eq. 13);
4. split sessions 70/10/20 by session end time (ties: source order), at random with ``seed``, or
   in source order; item ids remapped to 1..N (0 = padding) over all kept items, most frequent first,
   so valid/test targets unseen in training still have an id — they are counted in
   ``stats['protocol']`` (``unseen_valid_targets`` / ``unseen_test_targets``), never silently dropped;
5. prefix training (``augment``, on by default): every macro-item position k ≥ 2 of a *training*
   session is a sample (input = the micro-behaviors before its k-th macro-item, target = that
   macro-item and its first operation), as SR-GNN does; validation and test keep one target per
   session. ``augment=False`` is the paper's one-target protocol. Samples are index views into the
   sessions (:class:`~embsr_core.data.prepared.SampleView`), never padded copies.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from embsr_core.data.events import JD_OPERATIONS, events_fingerprint, validate_events
from embsr_core.data.prepared import PreparedDataset, SampleView, SplitArrays, Vocab

# Bump when the protocol's output changes: it invalidates every cache entry.
# 2: samples are index views and prefix training is on by default.
PREPROCESS_VERSION = 2

SplitMode = Literal["time", "random", "order"]


@dataclass(frozen=True)
class PreprocessConfig:
    """Protocol knobs; the defaults are the paper's JD-Appliances settings."""

    min_item_support: int = 50  # items with fewer micro-behaviors are dropped (paper: JD 50, Trivago 5)
    min_macro_items: int = 2  # sessions with fewer macro-items (after the filter) are dropped
    max_len: int = 40  # L: micro-behaviors kept before the target (JD-Appl. 40, JD-Comp. 30, Trivago 50)
    split: SplitMode = "time"  # by session end time (the authors' code), "random" (seeded), "order"
    split_fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)
    seed: int = 0  # for split="random"
    augment: bool = True  # prefix training: one training sample per macro-item position (False = paper)

    def __post_init__(self) -> None:
        if self.min_item_support < 1:
            raise ValueError(f"min_item_support must be ≥ 1, got {self.min_item_support}")
        if self.min_macro_items < 2:
            raise ValueError(f"min_macro_items must be ≥ 2 (a target and an input), got {self.min_macro_items}")
        if self.max_len < 1:
            raise ValueError(f"max_len must be ≥ 1, got {self.max_len}")
        if self.split not in ("time", "random", "order"):
            raise ValueError(f"split must be 'time', 'random' or 'order', got {self.split!r}")
        fr = tuple(float(f) for f in self.split_fractions)
        if len(fr) != 3 or min(fr) < 0 or abs(sum(fr) - 1.0) > 1e-6:
            raise ValueError(f"split_fractions must be three non-negative numbers summing to 1, got {fr}")
        object.__setattr__(self, "split_fractions", fr)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessConfig:
        """From a plain dict; a stored config without ``augment`` predates prefix training: one target."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {"augment": False, **data}
        return cls(**{k: (tuple(v) if k == "split_fractions" else v) for k, v in values.items() if k in known})

    def replace(self, **changes: Any) -> PreprocessConfig:
        return dataclasses.replace(self, **changes)


# JD has no absolute time (timestamps restart at 0 per session), so its presets split at random.
PRESETS: dict[str, PreprocessConfig] = {
    "jd-appliances": PreprocessConfig(min_item_support=50, max_len=40, split="random"),
    "jd-computers": PreprocessConfig(min_item_support=50, max_len=30, split="random"),
    "trivago": PreprocessConfig(min_item_support=5, max_len=50, split="time"),
    "synthetic": PreprocessConfig(min_item_support=5, max_len=50, split="time"),
    # the small real samples in ../shared/data: a support of 50 would leave almost nothing
    "sample": PreprocessConfig(min_item_support=2, max_len=50, split="random"),
}


def preset(name: str, **overrides: Any) -> PreprocessConfig:
    """The preset ``name`` (see :data:`PRESETS`) with ``overrides`` applied."""
    if name not in PRESETS:
        raise ValueError(f"unknown preprocessing preset {name!r}; expected one of {', '.join(PRESETS)}")
    return PRESETS[name].replace(**overrides)


def config_hash(config: PreprocessConfig) -> str:
    """Stable hex digest of the config and the protocol version (a cache key part)."""
    payload = json.dumps({"v": PREPROCESS_VERSION, **config.to_dict()}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def prepare(
    events: pd.DataFrame, config: PreprocessConfig | None = None, dataset_name: str = ""
) -> PreparedDataset:
    """Run the protocol on a canonical events frame (validated here) and return the prepared dataset."""
    cfg = config or PreprocessConfig()
    df = validate_events(events, source=dataset_name or "<events>")
    sess_codes, sess_names = pd.factorize(df["session"], sort=False)
    item_codes, item_names = pd.factorize(df["item"], sort=False)
    op_codes, op_names = pd.factorize(df["operation"], sort=False)
    ts = df["timestamp"].to_numpy(np.float64)
    report: dict[str, Any] = {
        "config_hash": config_hash(cfg),
        "rows_raw": len(df),
        "sessions_raw": len(sess_names),
        "items_raw": len(item_names),
        "warnings": [],
    }

    # 1. support filter on the whole dataset
    support = np.bincount(item_codes, minlength=len(item_names))
    keep = support[item_codes] >= cfg.min_item_support
    report["rows_dropped_support"] = int((~keep).sum())
    report["items_dropped_support"] = int((support < cfg.min_item_support).sum())

    # 2. macro-items and the short-session filter
    s, it = sess_codes[keep], item_codes[keep]
    new_sess, new_macro = _boundaries(s, it)
    starts = np.flatnonzero(new_sess)
    n_macro = np.add.reduceat(new_macro.astype(np.int64), starts) if len(starts) else np.zeros(0, np.int64)
    good = n_macro >= cfg.min_macro_items
    report["sessions_dropped_short"] = int(len(sess_names) - good.sum())
    rows = np.flatnonzero(keep)[np.repeat(good, np.diff(np.r_[starts, len(s)]))]  # kept rows of df
    if len(rows) == 0:
        raise ValueError(
            f"{dataset_name or 'dataset'}: no session has {cfg.min_macro_items} macro-items after dropping "
            f"items seen < {cfg.min_item_support} times; lower min_item_support"
        )
    s, it, op, t = sess_codes[rows], item_codes[rows], op_codes[rows], ts[rows]
    new_sess, new_macro = _boundaries(s, it)
    starts = np.flatnonzero(new_sess)
    stops = np.r_[starts[1:], len(s)]
    macro_starts = np.flatnonzero(new_macro)
    last_macro = macro_starts[np.searchsorted(macro_starts, stops) - 1]
    end_times = t[stops - 1]
    if cfg.split == "time" and np.all(t[starts] == 0):
        msg = "split='time' on relative timestamps (every session starts at 0): splitting by duration"
        warnings.warn(msg, stacklevel=2)
        report["warnings"].append(msg)

    # 3. split sessions
    split_of, rank = _split_sessions(len(starts), end_times, cfg)

    # 4. vocabularies
    item_dense, item_vocab = _remap(it, np.asarray(item_names, dtype=str))
    op_dense, op_vocab = _op_remap(op, np.asarray(op_names, dtype=str))
    categories = _item_categories(df, rows, it, item_dense, len(item_vocab))

    # 5. samples: (session, row where the target macro-item starts)
    sample_sess = np.arange(len(starts))
    sample_tgt = last_macro
    if cfg.augment:
        m_sess = np.searchsorted(starts, macro_starts, side="right") - 1
        extra = (macro_starts != starts[m_sess]) & (macro_starts != last_macro[m_sess]) & (split_of[m_sess] == 0)
        sample_sess = np.r_[sample_sess, m_sess[extra]]
        sample_tgt = np.r_[sample_tgt, macro_starts[extra]]
        report["augmented_samples"] = int(extra.sum())
    dwell = df["dwell"].to_numpy(np.float64)[rows] if "dwell" in df.columns else None
    cols = {"it": item_dense[it], "op": op_dense[op], "dwell": dwell}
    sess_ids = np.asarray(sess_names, dtype=str)[s[starts]]
    splits = {}
    for k, name in enumerate(("train", "valid", "test")):
        pick = np.flatnonzero(split_of[sample_sess] == k)
        pick = pick[np.lexsort((sample_tgt[pick], rank[sample_sess[pick]]))]
        splits[name] = _sample_views(
            sample_sess[pick], sample_tgt[pick], starts, cols, cfg.max_len, sess_ids, end_times
        )

    seen = np.zeros(len(item_vocab), dtype=bool)
    seen[cols["it"][split_of[np.repeat(np.arange(len(starts)), stops - starts)] == 0]] = True
    report["unseen_valid_targets"] = int((~seen[splits["valid"].targets]).sum())
    report["unseen_test_targets"] = int((~seen[splits["test"].targets]).sum())
    report["micro_behaviors"] = len(rows)

    prepared = PreparedDataset(
        vocab=Vocab(item_ids=item_vocab.tolist(), item_categories=categories, op_names=op_vocab.tolist()),
        config=cfg.to_dict(),
        dataset_name=dataset_name,
        **splits,
    )
    stats = _stats_from_codes(s, cols["it"], cols["op"], op_vocab.tolist())
    report["train_samples"] = len(splits["train"])
    stats["table2"] = {  # sessions, as in the paper's Table II (train_samples in the protocol report)
        "train": int((split_of == 0).sum()),
        "valid": len(splits["valid"]),
        "test": len(splits["test"]),
        "items": len(item_vocab) - 1,
        "micro_behaviors": len(rows),
    }
    stats["protocol"] = report
    prepared.stats = stats
    return prepared


def dataset_stats(data: PreparedDataset | pd.DataFrame) -> dict[str, Any]:
    """The paper's Table II row plus operation distribution, session-length histogram, revisit rate.

    For a :class:`PreparedDataset` these were computed by :func:`prepare` over the kept
    micro-behaviors (whole sessions, not the L-truncated inputs) and are returned as stored; for a
    canonical events frame they are computed over all of it (Table II then has ``sessions``).
    """
    if isinstance(data, PreparedDataset):
        return data.stats
    df = validate_events(data, source="<events>")
    s, _ = pd.factorize(df["session"], sort=False)
    it, names = pd.factorize(df["item"], sort=False)
    op, op_names = pd.factorize(df["operation"], sort=False)
    stats = _stats_from_codes(s, it, op + 1, ["<pad>", *map(str, op_names)])
    stats["table2"] = {"sessions": int(s.max(initial=-1) + 1), "items": len(names), "micro_behaviors": len(df)}
    return stats


def cache_path(cache_dir: Path | str, dataset_name: str, fingerprint: str, config: PreprocessConfig) -> Path:
    """Where :func:`load_or_prepare` keeps this (dataset, content, config) triple."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", dataset_name).strip("_") or "dataset"
    return Path(cache_dir) / f"{slug}-{fingerprint[:16]}-{config_hash(config)[:16]}.npz"


def load_or_prepare(
    events: pd.DataFrame | Callable[[], pd.DataFrame],
    config: PreprocessConfig,
    dataset_name: str,
    cache_dir: Path | str,
    *,
    fingerprint: str | None = None,
) -> PreparedDataset:
    """The cached prepared dataset, or prepare and cache it.

    ``events`` may be a frame or a zero-argument loader; with a known ``fingerprint`` (e.g. the
    store's content hash of the dataset) a cache hit never loads the events at all. Without one,
    the fingerprint is :func:`events_fingerprint` of the validated frame. A corrupt or foreign cache
    file is ignored and rewritten.
    """
    frame: pd.DataFrame | None = None
    if fingerprint is None:
        frame = validate_events(events() if callable(events) else events, source=dataset_name or "<events>")
        fingerprint = events_fingerprint(frame)
    path = cache_path(cache_dir, dataset_name, fingerprint, config)
    if path.exists() and path.with_suffix(".json").exists():
        try:
            cached = PreparedDataset.load(path)
            if cached.stats.get("protocol", {}).get("config_hash") == config_hash(config):
                return cached
        except (OSError, ValueError, KeyError, json.JSONDecodeError):
            pass  # unreadable: prepare again below
    if frame is None:
        frame = events() if callable(events) else events
    prepared = prepare(frame, config, dataset_name)
    prepared.save(path)
    return prepared


# ---------------------------------------------------------------- internals


def _boundaries(s: np.ndarray, it: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row flags: first row of a session; first row of a macro-item (a session or item change)."""
    new_sess = np.r_[True, s[1:] != s[:-1]] if len(s) else np.zeros(0, bool)
    new_macro = new_sess | (np.r_[True, it[1:] != it[:-1]] if len(it) else new_sess)
    return new_sess, new_macro


def _split_sessions(n: int, end_times: np.ndarray, cfg: PreprocessConfig) -> tuple[np.ndarray, np.ndarray]:
    """(split 0/1/2 per session, rank of the session in split order)."""
    if cfg.split == "time":
        order = np.argsort(end_times, kind="stable")
    elif cfg.split == "random":
        order = np.random.default_rng(cfg.seed).permutation(n)
    else:
        order = np.arange(n)
    n_train = int(round(cfg.split_fractions[0] * n))
    n_valid = min(int(round(cfg.split_fractions[1] * n)), n - n_train)
    split_of = np.empty(n, np.int8)
    split_of[order] = np.repeat(np.array([0, 1, 2], np.int8), [n_train, n_valid, n - n_train - n_valid])
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n)
    return split_of, rank


def _remap(codes: np.ndarray, names: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense ids 1..N for the codes present, most frequent first (ties by external id)."""
    counts = np.bincount(codes, minlength=len(names))
    present = np.flatnonzero(counts)
    present = present[np.lexsort((names[present], -counts[present]))]
    dense = np.zeros(len(names), np.int32)
    dense[present] = np.arange(1, len(present) + 1, dtype=np.int32)
    return dense, np.r_[np.array(["<pad>"]), names[present]]


def _op_remap(codes: np.ndarray, names: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Operation ids: the JD behavior_type order when every name is a JD one, else alphabetical."""
    present = np.unique(codes)
    jd = {name: k for k, name in enumerate(JD_OPERATIONS)}
    if all(names[c] in jd for c in present):
        present = present[np.argsort([jd[names[c]] for c in present])]
    else:
        present = present[np.argsort(names[present], kind="stable")]
    dense = np.zeros(len(names), np.int32)
    dense[present] = np.arange(1, len(present) + 1, dtype=np.int32)
    return dense, np.r_[np.array(["<pad>"]), names[present]]


def _item_categories(
    df: pd.DataFrame, rows: np.ndarray, it: np.ndarray, item_dense: np.ndarray, n: int
) -> list[str | None]:
    """Category of each dense item: the first non-missing one seen (None when unknown)."""
    out: list[str | None] = [None] * n
    if "category" not in df.columns:
        return out
    cat = df["category"].to_numpy(dtype=object)[rows]
    has = ~pd.isna(cat)
    dense = item_dense[it[has]]
    uniq, first = np.unique(dense, return_index=True)
    for d, c in zip(uniq.tolist(), cat[has][first].tolist(), strict=True):
        out[d] = str(c)
    return out


def _sample_views(
    sess: np.ndarray,
    tgt: np.ndarray,
    starts: np.ndarray,
    cols: dict[str, np.ndarray | None],
    max_len: int,
    sess_ids: np.ndarray,
    end_times: np.ndarray,
) -> SplitArrays:
    """Samples (session, target start row), ordered session by session, as views into the sessions.

    Each session's rows from its earliest sample window to its last target are stored once (flat,
    sessions in sample order); a sample is the last ≤ L rows before its target, i.e. an
    ``(end, length)`` window of that storage (:class:`SampleView`), never a padded copy.
    """
    n = len(sess)
    lengths = np.minimum(tgt - starts[sess], max_len).astype(np.int32)  # N, ≥ 1
    first = tgt - lengths
    new_group = np.r_[True, sess[1:] != sess[:-1]] if n else np.zeros(0, bool)
    g_start = np.flatnonzero(new_group)  # first sample of each session
    group = np.cumsum(new_group) - 1  # N: session number within the split
    lo = np.minimum.reduceat(first, g_start) if n else first  # S: first stored row of each session
    hi = np.maximum.reduceat(tgt, g_start) if n else tgt  # S: its last target (exclusive)
    size = hi - lo
    offset = np.r_[0, np.cumsum(size)]  # S+1: where each session starts in the flat storage
    rows = np.repeat(lo - offset[:-1], size) + np.arange(int(offset[-1]))  # T: source rows, in order
    ends = (offset[:-1][group] + (tgt - lo[group])).astype(np.int64)  # N
    dwell = None
    if cols["dwell"] is not None:
        dwell = SampleView(np.nan_to_num(cols["dwell"][rows], nan=0.0).astype(np.float32), ends, lengths, max_len)
    return SplitArrays(
        items=SampleView(cols["it"][rows].astype(np.int32), ends, lengths, max_len),
        ops=SampleView(cols["op"][rows].astype(np.int32), ends, lengths, max_len),
        lengths=lengths,
        targets=cols["it"][tgt].astype(np.int64),
        target_ops=cols["op"][tgt].astype(np.int32),
        session_ids=sess_ids[sess],
        end_times=end_times[sess].astype(np.float64),
        dwell=dwell,
        session_rows=group.astype(np.int32),
    )


_LENGTH_BINS = (1, 2, 5, 10, 20, 30, 40, 50, 75, 100, 200)


def _stats_from_codes(s: np.ndarray, it: np.ndarray, op: np.ndarray, op_names: list[str]) -> dict[str, Any]:
    """Operation distribution, micro-behaviors-per-session histogram, revisit rate (sorted rows)."""
    new_sess, new_macro = _boundaries(s, it)
    starts = np.flatnonzero(new_sess)
    lengths = np.diff(np.r_[starts, len(s)])
    n_macro = int(new_macro.sum())
    macro_sess = np.cumsum(new_sess)[new_macro]
    pair = macro_sess.astype(np.int64) * (int(it.max(initial=0)) + 1) + it[new_macro]
    revisits = pd.Series(pair).duplicated().to_numpy()
    sessions_with_revisit = len(np.unique(macro_sess[revisits]))
    op_counts = np.bincount(op, minlength=len(op_names))
    edges = np.r_[_LENGTH_BINS, np.iinfo(np.int64).max]
    hist, _ = np.histogram(lengths, bins=edges)
    labels = [
        str(lo) if hi - lo == 1 else (f"{lo}+" if k == len(_LENGTH_BINS) - 1 else f"{lo}-{hi - 1}")
        for k, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True))
    ]
    return {
        "operations": {name: int(op_counts[k]) for k, name in enumerate(op_names) if k > 0},
        "session_length_hist": dict(zip(labels, hist.astype(int).tolist(), strict=True)),
        "mean_session_length": float(lengths.mean()) if len(lengths) else 0.0,
        "mean_macro_items": float(n_macro / max(len(starts), 1)),
        "revisit_rate": float(revisits.sum() / max(n_macro, 1)),  # macro-items revisiting an earlier item
        "sessions_with_revisit": float(sessions_with_revisit / max(len(starts), 1)),
    }
