"""The prepared, model-ready form of a dataset (the contract between data, models and training).

Every model and the trainer read only this: padded micro-behavior sequences per split, plus the
vocabularies that map dense ids back to the store's external ids and operation names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

PAD = 0  # id 0 is padding for items and operations alike; it is never scored.


@dataclass
class SplitArrays:
    """One split (train / valid / test) as padded micro-behavior sequences.

    Rows are sessions; columns are the session's micro-behaviors, oldest first and left-aligned
    (valid steps first, padding after). At most ``L`` (the preprocessing ``max_len``) steps are kept.
    """

    items: np.ndarray  # int32 N×L: item id 1..n_items per micro-behavior, 0 = padding
    ops: np.ndarray  # int32 N×L: operation id 1..n_ops per micro-behavior, 0 = padding
    lengths: np.ndarray  # int32 N: number of valid micro-behaviors (≥ 1)
    targets: np.ndarray  # int64 N: the next macro-item, 1..n_items
    target_ops: np.ndarray  # int32 N: operation on the target's first micro-behavior, 1..n_ops
    session_ids: np.ndarray  # str N: external session id in the store
    end_times: np.ndarray  # float64 N: session end timestamp (seconds), used by time splits
    dwell: np.ndarray | None = None  # float32 N×L: dwell seconds per micro-behavior (0 = unknown)

    def __len__(self) -> int:
        return int(self.lengths.shape[0])

    @property
    def max_len(self) -> int:
        return int(self.items.shape[1])

    def subset(self, index: np.ndarray) -> SplitArrays:
        """Rows ``index`` (any integer array or boolean mask) as a new split."""
        return SplitArrays(
            **{
                f.name: (None if getattr(self, f.name) is None else getattr(self, f.name)[index])
                for f in fields(self)
            }
        )

    def to_npz_dict(self, prefix: str) -> dict[str, np.ndarray]:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[f"{prefix}.{f.name}"] = value
        return out

    @classmethod
    def from_npz(cls, data: Any, prefix: str) -> SplitArrays:
        kwargs = {}
        for f in fields(cls):
            key = f"{prefix}.{f.name}"
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
