"""Full-ranking evaluation: H@K, M@K (MRR@K) and NDCG@K from one forward pass per batch.

Every metric is a function of the target's rank, so one forward pass gives one rank per session and
all metrics for all K follow from those ranks (the authors' code runs a pass per metric). The ranks
are kept (int32, 1-based) for paired significance tests between runs.

Ties are broken pessimistically: the rank is the number of real items (ids 1..n) whose score is
greater than *or equal to* the target's, so a model that scores everything equally ranks the target
last, never first. Padding (column 0) is never ranked. A NaN target score gets the worst rank.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from embsr_core.data.prepared import SplitArrays
from embsr_core.models.base import SessionRecommender, TargetOp, batch_to
from embsr_core.training.config import K_VALUES
from embsr_core.training.precision import precision_for

BYTES_PER_SCORE = 4  # float32


@dataclass
class EvalResult:
    """One evaluation of one split in one target-operation mode."""

    metrics: dict[str, float]  # "hit@20" → value in [0, 1]
    ranks: np.ndarray  # int32 N, 1-based pessimistic rank of each session's target

    @property
    def n(self) -> int:
        return int(self.ranks.shape[0])


def target_ranks(
    scores: torch.Tensor,  # B×(n_items+1), column 0 = padding
    targets: torch.Tensor,  # int64 B, 1..n_items
    seen_items: torch.Tensor | None = None,  # int64 B×L item ids already in the session (0 = padding)
    item_chunk: int | None = None,
) -> torch.Tensor:  # int32 B
    """Pessimistic 1-based rank of each target among items 1..n_items.

    ``seen_items``: their scores are set to -inf first (in place), so a target seen in the session
    falls to the last rank. ``item_chunk`` bounds the temporary comparison block to B×item_chunk.
    """
    scores = scores.float()
    if seen_items is not None:
        scores.scatter_(1, seen_items.long(), float("-inf"))
    n_items = scores.shape[1] - 1
    target_scores = scores.gather(1, targets.view(-1, 1).long())  # B×1
    chunk = n_items if item_chunk is None else max(1, int(item_chunk))
    counts = torch.zeros(scores.shape[0], dtype=torch.int64, device=scores.device)
    for lo in range(1, n_items + 1, chunk):
        hi = min(lo + chunk, n_items + 1)
        counts += (scores[:, lo:hi] >= target_scores).sum(dim=1)
    counts = torch.where(torch.isnan(target_scores.squeeze(1)), torch.full_like(counts, n_items), counts)
    return counts.clamp_(min=1).to(torch.int32)


def metrics_from_ranks(ranks: np.ndarray, ks: tuple[int, ...] = K_VALUES) -> dict[str, float]:
    """hit@K, mrr@K and ndcg@K (means over sessions) for each K; NaN for an empty split."""
    ranks = np.asarray(ranks, dtype=np.float64)
    out: dict[str, float] = {}
    for k in ks:
        inside = ranks <= k
        if ranks.size == 0:
            hit = mrr = ndcg = float("nan")
        else:
            hit = float(inside.mean())
            mrr = float(np.where(inside, 1.0 / ranks, 0.0).mean())
            ndcg = float(np.where(inside, 1.0 / np.log2(ranks + 1.0), 0.0).mean())
        out[f"hit@{k}"] = hit
        out[f"mrr@{k}"] = mrr
        out[f"ndcg@{k}"] = ndcg
    return out


def rows_per_block(n_items: int, batch_size: int, memory_mb: int) -> int:
    """Largest batch ≤ ``batch_size`` whose B×(n_items+1) float32 score block fits ``memory_mb``."""
    budget_rows = (memory_mb * 2**20) // ((n_items + 1) * BYTES_PER_SCORE)
    return int(max(1, min(batch_size, budget_rows)))


@torch.no_grad()
def compute_ranks(
    model: SessionRecommender,
    split: SplitArrays,
    target_op: TargetOp,
    *,
    device: torch.device,
    batch_size: int = 1024,
    exclude_seen: bool = False,
    memory_mb: int = 512,
    amp: bool = False,
    index: np.ndarray | None = None,
    check: Callable[[], None] | None = None,
) -> np.ndarray:  # int32 len(index)
    """Target ranks of rows ``index`` (default: all) of ``split``, in that order.

    ``check`` is called before every block (the trainer's pause / cancel check: it may raise, and a
    long validation then stops within one block instead of at its end).
    """
    was_training = model.training
    model.eval()
    rows = np.arange(len(split)) if index is None else np.asarray(index)
    step = rows_per_block(model.n_items, batch_size, memory_mb)
    # The comparison block (bool B×chunk) gets the same budget as the score block.
    item_chunk = max(1, (memory_mb * 2**20) // max(1, step))
    out = np.empty(len(rows), dtype=np.int32)
    precision = precision_for(amp, device)
    try:
        for lo in range(0, len(rows), step):
            if check is not None:
                check()
            idx = rows[lo : lo + step]
            batch = batch_to(model.collate(split, idx, target_op), device)
            with precision.autocast():
                scores = model.scores(batch)  # B×(n_items+1)
            seen = torch.from_numpy(split.items[idx].astype(np.int64)).to(device) if exclude_seen else None
            ranks = target_ranks(scores, batch["targets"], seen, item_chunk)
            out[lo : lo + len(idx)] = ranks.cpu().numpy()
    finally:
        model.train(was_training)
    return out


def evaluate(
    model: SessionRecommender,
    split: SplitArrays,
    target_op: TargetOp,
    *,
    device: torch.device,
    batch_size: int = 1024,
    exclude_seen: bool = False,
    memory_mb: int = 512,
    amp: bool = False,
) -> EvalResult:
    """All metrics of ``model`` on ``split`` in one target-operation mode."""
    ranks = compute_ranks(
        model,
        split,
        target_op,
        device=device,
        batch_size=batch_size,
        exclude_seen=exclude_seen,
        memory_mb=memory_mb,
        amp=amp,
    )
    return EvalResult(metrics_from_ranks(ranks), ranks)


def criterion_improved(criterion: str, current: dict[str, float], best: dict[str, float] | None) -> bool:
    """Is ``current`` a new best epoch under ``criterion`` (see :mod:`embsr_core.training.config`)?

    ``authors``: relative gain of hit@20 plus relative gain of mrr@20 is > 0 (a zero best counts
    any increase as an infinite gain). A single metric: strictly greater.
    """
    if best is None:
        return True
    if criterion == "authors":
        return _relative_gain(current["hit@20"], best["hit@20"]) + _relative_gain(current["mrr@20"], best["mrr@20"]) > 0
    return current[criterion] > best[criterion]


def criterion_value(criterion: str, metrics: dict[str, float]) -> float:
    """A single number for ranking runs against each other (grid search): for ``authors``, H@20 + M@20."""
    if criterion == "authors":
        return metrics["hit@20"] + metrics["mrr@20"]
    return metrics[criterion]


def _relative_gain(value: float, best: float) -> float:
    if best == 0:
        return 0.0 if value == 0 else (float("inf") if value > 0 else float("-inf"))
    return (value - best) / best
