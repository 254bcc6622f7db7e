"""The prepared, model-ready form of a dataset (the contract between data, models and training).

Every model and the trainer read only this: padded micro-behavior sequences per split (or index
views that behave like them, see :class:`SampleView`), plus the vocabularies that map dense ids back
to the store's external ids and operation names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

PAD = 0  # id 0 is padding for items and operations alike; it is never scored.


class SampleView:
    """A padded N×L array whose rows are windows of flat per-session sequences (no copies).

    Sample ``k`` is ``values[ends[k] - lengths[k] : ends[k]]`` left-aligned and padded with 0 to
    ``width`` columns. Every prefix of a training session is one sample, so a copy per sample would
    cost N×L cells; the view stores each micro-behavior once (``values``) plus two ints per sample.
    Indexing (``view[index]``, ``view[index, :w]``, ``view[row, :n]``) gathers only what is asked
    for; ``np.asarray(view)`` materialises the whole padded array (tests, small splits).
    """

    __array_priority__ = 1.0

    def __init__(self, values: np.ndarray, ends: np.ndarray, lengths: np.ndarray, width: int):
        self.values = values  # T: one entry per stored micro-behavior
        self.ends = ends  # int64 N: end (exclusive) of each sample's window in ``values``
        self.lengths = lengths  # int32 N: window length (≤ width)
        self.width = int(width)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.ends), self.width)

    @property
    def dtype(self) -> np.dtype:
        return self.values.dtype

    ndim = 2

    def __len__(self) -> int:
        return len(self.ends)

    def take(self, index: Any, width: int | None = None) -> np.ndarray:
        """Padded ``len(index)×width`` rows (width defaults to the view's); padding = 0."""
        ends, lengths = self.ends[index], self.lengths[index]
        w = self.width if width is None else int(width)
        steps = np.arange(w)
        mask = steps[None, :] < lengths[:, None]  # B×w
        idx = np.where(mask, (ends - lengths)[:, None] + steps[None, :], 0)
        if len(self.values) == 0:
            return np.zeros(idx.shape, self.values.dtype)
        return np.where(mask, self.values[idx], 0).astype(self.values.dtype, copy=False)

    def __getitem__(self, key: Any) -> np.ndarray:
        cols = slice(None)
        if isinstance(key, tuple):
            if len(key) != 2:
                raise IndexError(f"SampleView takes (rows, columns), got {len(key)} indices")
            key, cols = key
        if isinstance(key, (int, np.integer)):
            return self.take(np.array([int(key)]))[0][cols]
        rows = np.arange(len(self))[key] if isinstance(key, slice) else np.asarray(key)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        if isinstance(cols, slice) and cols.start is None and cols.step is None and cols.stop is not None:
            return self.take(rows, min(int(cols.stop), self.width))  # the batch gather: truncated
        if not isinstance(cols, (slice, int, np.integer)):
            return self._pairs(rows, np.asarray(cols))
        return self.take(rows)[:, cols]

    def _pairs(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """``view[rows, cols]`` with two index arrays: numpy's element-wise pairing, one cell each."""
        rows, cols = np.broadcast_arrays(rows, cols)
        cols = np.where(cols < 0, cols + self.width, cols)
        lengths = self.lengths[rows]
        inside = cols < lengths
        flat = np.where(inside, self.ends[rows] - lengths + cols, 0)
        if len(self.values) == 0:
            return np.zeros(rows.shape, self.values.dtype)
        return np.where(inside, self.values[flat], 0).astype(self.values.dtype, copy=False)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self.take(np.arange(len(self)))
        return out if dtype is None else out.astype(dtype)

    def _extreme(self, pick: Any) -> Any:
        """min/max over the padded array without building it (padding contributes 0)."""
        padded = bool((self.lengths < self.width).any())
        stored = pick(self.values) if len(self.values) else 0
        return pick(np.array([stored, 0])) if padded else stored

    def min(self) -> Any:
        return self._extreme(np.min)

    def max(self) -> Any:
        return self._extreme(np.max)

    def __eq__(self, other: object) -> Any:  # elementwise, as for the padded array it stands for
        return np.asarray(self) == np.asarray(other)

    __hash__ = None  # type: ignore[assignment]

    def subset(self, index: np.ndarray) -> SampleView:
        return SampleView(self.values, self.ends[index], self.lengths[index], self.width)

    def __repr__(self) -> str:
        return f"SampleView(shape={self.shape}, stored={len(self.values)}, dtype={self.dtype})"


Sequences = np.ndarray | SampleView  # padded N×L, or the same as a view (see SampleView)


@dataclass
class SplitArrays:
    """One split (train / valid / test) as padded micro-behavior sequences, one row per sample.

    Columns are the sample's micro-behaviors, oldest first and left-aligned (valid steps first,
    padding after). At most ``L`` (the preprocessing ``max_len``) steps are kept. ``items``, ``ops``
    and ``dwell`` are either plain padded arrays or :class:`SampleView` s over the sessions (what
    :func:`~embsr_core.data.preprocess.prepare` builds): both index the same way. With prefix
    training a training session gives several samples; ``session_rows`` then says which session
    (0..S-1 in split order) each sample comes from (``None``: one sample per session).
    """

    items: Sequences  # int32 N×L: item id 1..n_items per micro-behavior, 0 = padding
    ops: Sequences  # int32 N×L: operation id 1..n_ops per micro-behavior, 0 = padding
    lengths: np.ndarray  # int32 N: number of valid micro-behaviors (≥ 1)
    targets: np.ndarray  # int64 N: the next macro-item, 1..n_items
    target_ops: np.ndarray  # int32 N: operation on the target's first micro-behavior, 1..n_ops
    session_ids: np.ndarray  # str N: external session id in the store
    end_times: np.ndarray  # float64 N: session end timestamp (seconds), used by time splits
    dwell: Sequences | None = None  # float32 N×L: dwell seconds per micro-behavior (0 = unknown)
    session_rows: np.ndarray | None = None  # int32 N: session of each sample (prefix training)

    def __len__(self) -> int:
        return int(self.lengths.shape[0])

    @property
    def max_len(self) -> int:
        return int(self.items.shape[1])

    @property
    def is_view(self) -> bool:
        return isinstance(self.items, SampleView)

    def subset(self, index: np.ndarray) -> SplitArrays:
        """Rows ``index`` (any integer array or boolean mask) as a new split (views stay views)."""
        if isinstance(index, np.ndarray) and index.dtype == bool:
            index = np.flatnonzero(index)
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = None if value is None else (
                value.subset(index) if isinstance(value, SampleView) else value[index])
        return SplitArrays(**out)

    def one_per_session(self) -> SplitArrays:
        """The last (longest) sample of each session: the paper's one-target-per-session split.

        Count-based models (S-POP, SKNN) fit on this, so a session weighs once however many
        prefixes it gave.
        """
        if self.session_rows is None:
            return self
        rows = self.session_rows.astype(np.int64)
        order = np.lexsort((self._within_session_key(), rows))
        last = order[np.r_[rows[order][1:] != rows[order][:-1], True]] if len(order) else order
        return self.subset(np.sort(last))

    def _within_session_key(self) -> np.ndarray:
        """Sort key of a sample within its session: its end in the stored sequence (or its length)."""
        return self.items.ends if isinstance(self.items, SampleView) else self.lengths

    def content_arrays(self) -> tuple[np.ndarray, ...]:
        """The arrays that define the split's content (hashing); views contribute their compact parts."""
        if isinstance(self.items, SampleView) and isinstance(self.ops, SampleView):
            return (self.items.values, self.ops.values, self.items.ends, self.lengths, self.targets,
                    self.target_ops)
        return (np.asarray(self.items), np.asarray(self.ops), self.lengths, self.targets, self.target_ops)

    def nbytes(self) -> int:
        """Bytes held by this split's arrays (shared view storage counted once)."""
        seen: set[int] = set()
        total = 0
        for f in fields(self):
            value = getattr(self, f.name)
            parts = [] if value is None else (
                [value.values, value.ends, value.lengths] if isinstance(value, SampleView) else [value])
            for arr in parts:
                if id(arr) not in seen:
                    seen.add(id(arr))
                    total += int(arr.nbytes)
        return total

    def to_npz_dict(self, prefix: str) -> dict[str, np.ndarray]:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, SampleView):
                out[f"{prefix}.{f.name}.values"] = value.values
                out[f"{prefix}.view_ends"] = value.ends
                out[f"{prefix}.view_width"] = np.array(value.width)
            elif value is not None:
                out[f"{prefix}.{f.name}"] = value
        return out

    @classmethod
    def from_npz(cls, data: Any, prefix: str) -> SplitArrays:
        kwargs = {}
        view = f"{prefix}.view_ends" in data
        for f in fields(cls):
            key = f"{prefix}.{f.name}"
            if view and f"{key}.values" in data:
                kwargs[f.name] = SampleView(data[f"{key}.values"], data[f"{prefix}.view_ends"],
                                            data[f"{prefix}.lengths"], int(data[f"{prefix}.view_width"]))
            else:
                kwargs[f.name] = data.get(key)
        return cls(**kwargs)


@dataclass
class Vocab:
    """Dense id → external meaning. Index 0 of each list is the padding entry."""

    item_ids: list[str]  # item_ids[i] = external id of dense item i ("<pad>" at 0)
    item_categories: list[str | None]  # category of dense item i, None when unknown
    op_names: list[str]  # op_names[k] = name of operation k ("<pad>" at 0)

    @property
    def n_items(self) -> int:
        return len(self.item_ids) - 1

    @property
    def n_ops(self) -> int:
        return len(self.op_names) - 1


@dataclass
class PreparedDataset:
    """A dataset after the paper's preprocessing protocol, ready for any registered model."""

    train: SplitArrays
    valid: SplitArrays
    test: SplitArrays
    vocab: Vocab
    config: dict[str, Any]  # the preprocessing config as a plain dict (for hashing and display)
    stats: dict[str, Any] = field(default_factory=dict)
    dataset_name: str = ""

    @property
    def n_items(self) -> int:
        return self.vocab.n_items

    @property
    def n_ops(self) -> int:
        return self.vocab.n_ops

    def split(self, name: str) -> SplitArrays:
        if name not in ("train", "valid", "test"):
            raise ValueError(f"unknown split {name!r}; expected train, valid or test")
        return getattr(self, name)

    def save(self, path: Path) -> None:
        """Write to ``path`` (a .npz) and ``path.with_suffix('.json')`` atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {}
        for name in ("train", "valid", "test"):
            arrays.update(self.split(name).to_npz_dict(name))
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **arrays)
        meta = {
            "vocab": {
                "item_ids": self.vocab.item_ids,
                "item_categories": self.vocab.item_categories,
                "op_names": self.vocab.op_names,
            },
            "config": self.config,
            "stats": self.stats,
            "dataset_name": self.dataset_name,
        }
        meta_path = path.with_suffix(".json")
        meta_tmp = meta_path.with_name(meta_path.name + ".tmp")
        meta_tmp.write_text(json.dumps(meta, default=_json_default))
        tmp.replace(path)
        meta_tmp.replace(meta_path)

    @classmethod
    def load(cls, path: Path) -> PreparedDataset:
        path = Path(path)
        meta = json.loads(path.with_suffix(".json").read_text())
        with np.load(path, allow_pickle=False) as data:
            splits = {name: SplitArrays.from_npz(data, name) for name in ("train", "valid", "test")}
        v = meta["vocab"]
        return cls(
            vocab=Vocab(v["item_ids"], v["item_categories"], v["op_names"]),
            config=meta["config"],
            stats=meta.get("stats", {}),
            dataset_name=meta.get("dataset_name", ""),
            **splits,
        )


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
