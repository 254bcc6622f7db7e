"""Prediction from a stored run: checkpoint (hash verified) + vocabulary → top-K items for a live session.

Needs only the run's checkpoint folder (weights + ``vocab.json``), never the raw data. At prediction
time the true next operation is not known, so the target operation is either ``"unknown"`` (the
learned "next" token) or an operation the caller asks about by name ("what will they *buy*?").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from embsr_core.data.prepared import PAD, SplitArrays, Vocab
from embsr_core.models.base import SessionRecommender, TargetOp, batch_to
from embsr_core.store import runs_repo
from embsr_core.store.engine import Store
from embsr_core.training.checkpoints import CheckpointError, load_vocab, model_from_checkpoint
from embsr_core.training.config import resolve_device

SessionInput = Sequence[tuple[str, str | None]]  # (item external id, operation name), oldest first


@dataclass(frozen=True)
class Recommendation:
    item_id: str  # external id
    score: float
    category: str | None
    in_session: bool  # the item already occurs in the given session


class UnknownInputError(ValueError):
    """The session names items or operations the model never saw (listed with their positions)."""

    def __init__(self, unknown_items: list[tuple[int, str]], unknown_ops: list[tuple[int, str]], hint: str):
        self.unknown_items = unknown_items
        self.unknown_ops = unknown_ops
        parts = []
        if unknown_items:
            parts.append("unknown item(s): " + ", ".join(f"{i!r} (position {p})" for p, i in unknown_items))
        if unknown_ops:
            parts.append("unknown operation(s): " + ", ".join(f"{o!r} (position {p})" for p, o in unknown_ops))
        super().__init__("; ".join(parts) + f". {hint}")


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores, best first, ties by lower index: the same as a stable
    ``argsort(-scores)[:k]`` without sorting all 100,000 items (a partition, then a small sort)."""
    if k >= scores.shape[0]:
        return np.argsort(-scores, kind="stable")
    kth = np.partition(-scores, k - 1)[k - 1]  # minus the k-th highest score
    candidates = np.flatnonzero(-scores <= kth)  # every item tied with the k-th one is a candidate
    return candidates[np.lexsort((candidates, -scores[candidates]))][:k]


class Predictor:
    """A trained model plus its vocabulary, ready to score sessions given by external ids."""

    def __init__(
        self,
        model: SessionRecommender,
        vocab: Vocab,
        max_len: int,
        *,
        device: torch.device | str = "cpu",
        run_id: int | None = None,
    ):
        self.model = model.eval()
        for module in model.modules():  # weights are frozen here: let scorers keep their item table
            if hasattr(module, "cache_item_table"):
                module.cache_item_table = True
        self.vocab = vocab
        self.max_len = int(max_len)
        self.device = torch.device(device)
        self.run_id = run_id
        self.model_info: Any = None  # the ModelFileInfo when loaded from a portable model file
        self._item_index = {item: i for i, item in enumerate(vocab.item_ids) if i != PAD}
        self._op_index = {op: i for i, op in enumerate(vocab.op_names) if i != PAD}

    @classmethod
    def from_checkpoint(
        cls, path: Path | str, sha256: str | None = None, *, device: str = "cpu", run_id: int | None = None
    ) -> Predictor:
        target = resolve_device(device)
        model, meta = model_from_checkpoint(path, sha256, target)
        vocab, max_len = load_vocab(Path(path).parent / meta["vocab_file"], meta["vocab_sha256"] or None)
        if vocab.n_items != meta["n_items"] or vocab.n_ops != meta["n_ops"]:
            raise CheckpointError(f"vocabulary next to {path} does not match the checkpoint's sizes")
        return cls(model, vocab, max_len, device=target, run_id=run_id)

    @classmethod
    def from_model_file(cls, path: Path | str, *, device: str = "cpu") -> Predictor:
        """A portable model file (``embsr model export``): no store needed, every member hash-checked."""
        from embsr_core.sharing.model_file import load_model_file

        target = resolve_device(device)
        loaded = load_model_file(path, target)
        predictor = cls(loaded.model, loaded.vocab, loaded.info.max_len, device=target)
        predictor.model_info = loaded.info
        return predictor

    @classmethod
    def from_run(cls, store: Store, run_id: int, which: str = "best", *, device: str = "cpu") -> Predictor:
        """The run's best (or last) checkpoint, its SHA-256 checked against the store."""
        run, path, sha = runs_repo.run_checkpoint(store, run_id, which)
        if not path:
            raise ValueError(f"run {run_id} has no {which} checkpoint (status {run.status})")
        return cls.from_checkpoint(path, sha, device=device, run_id=run_id)

    # --- encoding ----------------------------------------------------------------------------------

    def encode(self, session: SessionInput, skip_unknown: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Dense ``(items, ops)`` int32 arrays of the session's last ``max_len`` micro-behaviors."""
        if not session:
            raise ValueError("the session is empty; give at least one (item, operation) pair")
        uses_ops = bool(self.model.uses_operations)
        items, ops, bad_items, bad_ops = [], [], [], []
        for position, (item, op) in enumerate(session, start=1):
            item_id = self._item_index.get(str(item))
            if op is None and not uses_ops:
                op_id: int | None = 1
            else:
                op_id = self._op_index.get(str(op)) if op is not None else None
            if item_id is None:
                bad_items.append((position, str(item)))
            if op_id is None:
                bad_ops.append((position, str(op)))
            if item_id is not None and op_id is not None:
                items.append(item_id)
                ops.append(op_id)
        if (bad_items or bad_ops) and not (skip_unknown and items):
            raise UnknownInputError(
                bad_items, bad_ops, f"Known operations: {', '.join(self.vocab.op_names[1:])}"
            )
        return np.asarray(items[-self.max_len :], np.int32), np.asarray(ops[-self.max_len :], np.int32)

    def _target_op(self, target_op: str) -> TargetOp:
        if target_op == "unknown":
            return "unknown"
        if target_op == "oracle":
            raise ValueError(
                "the true next operation is only known when evaluating; give 'unknown' or an operation name "
                f"({', '.join(self.vocab.op_names[1:])})"
            )
        if target_op not in self._op_index:
            raise ValueError(
                f"target operation {target_op!r} is not one of {', '.join(self.vocab.op_names[1:])} or 'unknown'"
            )
        return self._op_index[target_op] if self.model.uses_operations else "unknown"

    def _batch(self, session: SessionInput, target_op: str, skip_unknown: bool) -> tuple[dict, np.ndarray]:
        items, ops = self.encode(session, skip_unknown)
        n = len(items)
        split = SplitArrays(
            items=items.reshape(1, n),
            ops=ops.reshape(1, n),
            lengths=np.array([n], np.int32),
            targets=np.array([1], np.int64),  # placeholder: collate requires a target
            target_ops=np.array([1], np.int32),
            session_ids=np.array(["query"]),
            end_times=np.zeros(1),
        )
        batch = self.model.collate(split, np.array([0]), self._target_op(target_op))
        return batch_to(batch, self.device), items

    # --- prediction --------------------------------------------------------------------------------

    @torch.no_grad()
    def scores(self, session: SessionInput, target_op: str = "unknown", skip_unknown: bool = False) -> np.ndarray:
        """float32 (n_items+1) scores; index = dense item id, [0] = -inf (padding)."""
        batch, _ = self._batch(session, target_op, skip_unknown)
        return self.model.scores(batch)[0].float().cpu().numpy()

    def predict(
        self,
        session: SessionInput,
        k: int = 20,
        target_op: str = "unknown",
        *,
        exclude_seen: bool = False,
        skip_unknown: bool = False,
    ) -> list[Recommendation]:
        """The top-``k`` items, best first (ties: lower dense id first)."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        batch, items = self._batch(session, target_op, skip_unknown)
        with torch.no_grad():
            scores = self.model.scores(batch)[0].float().cpu().numpy()  # n_items+1
        seen = set(int(i) for i in items)
        if exclude_seen:
            scores[list(seen)] = -np.inf
        order = top_k(scores[1:], k) + 1
        return [
            Recommendation(self.vocab.item_ids[i], float(scores[i]), self.vocab.item_categories[i], int(i) in seen)
            for i in order
            if np.isfinite(scores[i])
        ]

    def explain(self, session: SessionInput, target_op: str = "unknown", skip_unknown: bool = False) -> dict[str, Any]:
        """The model's own explanation (attention, gates) of this session, plus the encoded ids."""
        batch, items = self._batch(session, target_op, skip_unknown)
        with torch.no_grad():
            out = dict(self.model.explain(batch))
        out.setdefault("items", [self.vocab.item_ids[i] for i in items])
        return out
