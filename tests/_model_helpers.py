"""Small random splits for the model tests (imported by tests/test_model_*.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from embsr_core.data.prepared import SplitArrays


def random_split(n: int = 16, max_len: int = 10, n_items: int = 40, n_ops: int = 4, seed: int = 0) -> SplitArrays:
    """Left-aligned sessions with repeated items (runs of micro-behaviors) and revisits."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, max_len + 1, n).astype(np.int32)
    lengths[0] = max_len
    items = rng.integers(1, n_items + 1, (n, max_len)).astype(np.int32)
    repeat = rng.random((n, max_len)) < 0.5  # continue the previous item's run
    for j in range(1, max_len):
        items[:, j] = np.where(repeat[:, j], items[:, j - 1], items[:, j])
    items[:, 3] = items[:, 1]  # a revisit → parallel / reverse edges in the multigraph
    ops = rng.integers(1, n_ops + 1, (n, max_len)).astype(np.int32)
    valid = np.arange(max_len)[None, :] < lengths[:, None]
    return SplitArrays(
        items=items * valid,
        ops=ops * valid,
        lengths=lengths,
        targets=rng.integers(1, n_items + 1, n).astype(np.int64),
        target_ops=rng.integers(1, n_ops + 1, n).astype(np.int32),
        session_ids=np.array([f"s{i}" for i in range(n)]),
        end_times=np.zeros(n),
    )


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """The model tests use tiny tensors: one thread avoids OpenMP spin contention on a shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
