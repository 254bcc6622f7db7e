"""Paired significance between two runs: Wilcoxon signed-rank on per-session scores (as the paper does).

Both runs must have been evaluated on the same sessions: the stored ranks must come from the same
prepared data (``prep_hash``) and have the same length, otherwise pairing is meaningless and we say so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import wilcoxon

from embsr_core.store import runs_repo
from embsr_core.store.engine import Store

MEASURES = ("rr", "hit", "mrr", "ndcg")


@dataclass(frozen=True)
class WilcoxonResult:
    run_a: int
    run_b: int
    split: str
    target_op: str
    measure: str  # e.g. "rr" (reciprocal rank, no cut-off) or "hit@20"
    n: int  # paired sessions
    mean_a: float
    mean_b: float
    statistic: float
    p_value: float  # two-sided; 1.0 when the two runs score every session identically


def per_session(ranks: np.ndarray, measure: str = "rr", k: int = 20) -> np.ndarray:
    """Per-session values from 1-based ranks: ``rr`` = 1/rank; ``hit``/``mrr``/``ndcg`` at cut-off k."""
    r = np.asarray(ranks, dtype=np.float64)
    inside = r <= k
    if measure == "rr":
        return 1.0 / r
    if measure == "hit":
        return inside.astype(np.float64)
    if measure == "mrr":
        return np.where(inside, 1.0 / r, 0.0)
    if measure == "ndcg":
        return np.where(inside, 1.0 / np.log2(r + 1.0), 0.0)
    raise ValueError(f"measure: expected one of {MEASURES}, got {measure!r}")


def wilcoxon_ranks(a: np.ndarray, b: np.ndarray, measure: str = "rr", k: int = 20) -> tuple[float, float]:
    """``(statistic, p)`` of the two-sided Wilcoxon signed-rank test on paired per-session values."""
    if a.shape != b.shape:
        raise ValueError(f"paired test needs the same sessions: {a.shape[0]} vs {b.shape[0]} ranks")
    return wilcoxon_values(per_session(a, measure, k), per_session(b, measure, k))


def wilcoxon_values(va: np.ndarray, vb: np.ndarray) -> tuple[float, float]:
    """``(statistic, p)`` of the two-sided Wilcoxon signed-rank test on paired per-session values
    (p = 1 when the two score every session identically)."""
    if np.array_equal(va, vb):
        return 0.0, 1.0
    result = wilcoxon(va, vb, zero_method="wilcox", alternative="two-sided")
    return float(result.statistic), float(result.pvalue)


def compare_runs(
    store: Store,
    run_a: int,
    run_b: int,
    *,
    split: str = "test",
    target_op: str = "oracle",
    measure: str = "rr",
    k: int = 20,
) -> WilcoxonResult:
    """Wilcoxon signed-rank between two runs' stored per-session ranks on the same split."""
    ranks_a, hash_a = runs_repo.load_ranks(store, run_a, split, target_op)
    ranks_b, hash_b = runs_repo.load_ranks(store, run_b, split, target_op)
    if hash_a != hash_b:
        raise ValueError(
            f"runs {run_a} and {run_b} were evaluated on different prepared data (prep_hash "
            f"{(hash_a or '?')[:12]} vs {(hash_b or '?')[:12]}); a paired test needs the same sessions"
        )
    if ranks_a.shape != ranks_b.shape:
        raise ValueError(
            f"runs {run_a} and {run_b} hold {ranks_a.shape[0]} and {ranks_b.shape[0]} ranks on {split}; "
            "a paired test needs the same sessions"
        )
    statistic, p = wilcoxon_ranks(ranks_a, ranks_b, measure, k)
    label = measure if measure == "rr" else f"{measure}@{k}"
    return WilcoxonResult(
        run_a,
        run_b,
        split,
        target_op,
        label,
        int(ranks_a.shape[0]),
        float(per_session(ranks_a, measure, k).mean()),
        float(per_session(ranks_b, measure, k).mean()),
        statistic,
        p,
    )
