"""The Playground's fast path: a cached normalised item table and a partial top-K, both exact."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

from embsr_core.inference import top_k
from embsr_core.models.layers.scoring import CosineScorer


@given(st.lists(st.integers(-3, 3), min_size=1, max_size=40), st.integers(1, 50))
def test_top_k_equals_a_stable_full_sort(values: list[int], k: int) -> None:
    scores = np.array(values, dtype=np.float32)
    assert top_k(scores, k).tolist() == np.argsort(-scores, kind="stable")[:k].tolist()


def test_cached_item_table_follows_the_weights() -> None:
    torch.manual_seed(0)
    table = torch.nn.Parameter(torch.randn(50, 8))
    scorer = CosineScorer(12.0)
    scorer.cache_item_table = True  # as the Predictor does
    m = torch.randn(3, 8)
    with torch.no_grad():
        first = scorer.scores(m, table)
        assert torch.equal(first, scorer.scores(m, table))  # served from the cache
    optimizer = torch.optim.SGD([table], lr=1.0)
    scorer.loss(m, table, torch.tensor([1, 2, 3])).backward()
    optimizer.step()  # an in-place update: the cached table must not be reused
    with torch.no_grad():
        after = scorer.scores(m, table)
    expected = 12.0 * torch.nn.functional.normalize(m, dim=-1) @ torch.nn.functional.normalize(table[1:], dim=-1).t()
    assert not torch.equal(first, after)
    torch.testing.assert_close(after[:, 1:], expected)
    assert torch.isinf(after[:, 0]).all()


def test_the_cache_is_opt_in() -> None:
    """Training and evaluation never cache: a collective (dist.broadcast) can write weights unseen."""
    table = torch.nn.Parameter(torch.randn(20, 4))
    scorer = CosineScorer()
    with torch.no_grad():
        before = scorer.scores(torch.ones(1, 4), table)
        table.data[1:] = torch.randn(19, 4)  # a write that bumps no version counter
        after = scorer.scores(torch.ones(1, 4), table)
    assert not torch.equal(before, after)
