"""Hand-built sessions for the playground (and `embsr predict`): search, random and test-set sessions.

A session here is what :class:`embsr_core.inference.Predictor` takes: a list of
``(item external id, operation name)`` micro-behaviors, oldest first. Everything works from a run's
:class:`~embsr_core.data.prepared.Vocab` (its item catalogue and operation vocabulary).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from embsr_core.data.prepared import PreparedDataset, Vocab

Session = list[tuple[str, str]]


@dataclass(frozen=True)
class ItemMatch:
    item_id: str  # external id
    category: str | None
    dense_id: int


class Catalogue:
    """Search over a vocabulary's items by external id or category (substring, case-insensitive).

    Exact id matches come first, then id prefixes, then other id matches, then category matches.
    Built once per run (≈ 0.1 s for 100,000 items); each search is a vectorised scan.
    """

    def __init__(self, vocab: Vocab):
        self.vocab = vocab
        self._ids = np.asarray(vocab.item_ids[1:], dtype=str)  # n, dense id = index + 1
        self._ids_lower = np.char.lower(self._ids)
        cats = [c if c is not None else "" for c in vocab.item_categories[1:]]
        self._cats_lower = np.char.lower(np.asarray(cats, dtype=str))
        codes, names = pd.factorize(pd.Series(cats, dtype=object), use_na_sentinel=False)
        self.category_codes = codes  # int n: category of each item as an index into category_names
        self.category_names = [str(c) for c in names]
        self._index = {item: i + 1 for i, item in enumerate(vocab.item_ids[1:])}

    def __len__(self) -> int:
        return int(self._ids.shape[0])

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._index

    def dense_id(self, item_id: str) -> int:
        try:
            return self._index[item_id]
        except KeyError:
            raise KeyError(f"item {item_id!r} is not in this run's catalogue") from None

    def category(self, item_id: str) -> str | None:
        return self.vocab.item_categories[self.dense_id(item_id)]

    def search(self, query: str, limit: int = 50) -> list[ItemMatch]:
        q = query.strip().lower()
        if not q:
            order = np.arange(min(limit, len(self)))
        else:
            in_id = np.char.find(self._ids_lower, q) >= 0
            in_cat = np.char.find(self._cats_lower, q) >= 0
            exact = self._ids_lower == q
            prefix = np.char.startswith(self._ids_lower, q)
            rank = np.where(exact, 0, np.where(prefix, 1, np.where(in_id, 2, np.where(in_cat, 3, 9))))
            hits = np.flatnonzero(rank < 9)
            order = hits[np.argsort(rank[hits], kind="stable")][:limit]
        return [
            ItemMatch(str(self._ids[i]), self.vocab.item_categories[i + 1], int(i + 1)) for i in order.tolist()
        ]


def random_session(catalogue: Catalogue, seed: int | None = None, max_steps: int = 20) -> Session:
    """A plausible session on this catalogue, from the synthetic generator's behaviour model.

    The generator (intents, operation templates over this vocabulary's operations, returns to a
    studied item) draws one session; its items are then mapped onto real catalogue items, keeping
    its structure: a repeated item stays the same item, and items of one synthetic category land
    in one catalogue category when the catalogue has categories.
    """
    from embsr_core.data.synthetic import generate_synthetic

    vocab = catalogue.vocab
    rng = np.random.default_rng(seed)
    ops = [name for name in vocab.op_names[1:]]
    if len(ops) < 2:
        ops = ops + [f"{ops[0]}_"] if ops else ["view", "view_"]
    frame = generate_synthetic(
        n_sessions=1, n_items=200, n_categories=10, operations=ops, seed=int(rng.integers(2**31))
    ).head(max_steps)
    item_ids = vocab.item_ids[1:]
    names = [i for i, name in enumerate(catalogue.category_names) if name]  # known categories' codes
    cat_map: dict[str, int] = {}
    pools: dict[str, np.ndarray] = {}
    item_map: dict[str, str] = {}
    session: Session = []
    known_ops = set(vocab.op_names[1:])
    for item, op, cat in zip(frame["item"], frame["operation"], frame["category"], strict=True):
        if item not in item_map:
            index = int(rng.integers(len(item_ids)))
            if names:
                if cat not in cat_map:
                    cat_map[cat] = names[int(rng.integers(len(names)))]
                    pools[cat] = np.flatnonzero(catalogue.category_codes == cat_map[cat])
                index = int(rng.choice(pools[cat]))
            item_map[item] = item_ids[index]
        session.append((item_map[item], op if op in known_ops else vocab.op_names[1]))
    return session


@dataclass(frozen=True)
class HeldOutSample:
    session: Session
    next_item: str  # the true next macro-item (external id)
    next_op: str  # the operation on its first micro-behavior
    row: int  # row in the test split


def sample_test_session(prepared: PreparedDataset, row: int | None = None, seed: int | None = None) -> HeldOutSample:
    """One test-split session as ``(item, op)`` steps with its true next item (random row by default)."""
    split = prepared.test
    if len(split) == 0:
        raise ValueError("the test split of this dataset is empty")
    if row is None:
        row = int(np.random.default_rng(seed).integers(len(split)))
    if not 0 <= row < len(split):
        raise IndexError(f"test row {row} out of range 0..{len(split) - 1}")
    vocab = prepared.vocab
    n = int(split.lengths[row])
    session = [
        (vocab.item_ids[int(i)], vocab.op_names[int(o)])
        for i, o in zip(split.items[row, :n], split.ops[row, :n], strict=True)
    ]
    return HeldOutSample(
        session=session,
        next_item=vocab.item_ids[int(split.targets[row])],
        next_op=vocab.op_names[int(split.target_ops[row])],
        row=row,
    )
