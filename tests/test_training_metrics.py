"""Ranking metrics against a hand-computed example; config schema; events and control token."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
import torch

from embsr_core.training.config import TRAIN_PARAMS, TrainConfig
from embsr_core.training.events import ControlToken
from embsr_core.training.metrics import (
    compute_ranks,
    criterion_improved,
    metrics_from_ranks,
    rows_per_block,
    target_ranks,
)

NEG = float("-inf")
SCORES = torch.tensor(
    [
        [NEG, 0.1, 0.5, 0.3, 0.5, 0.2],  # target 2 ties with item 4 → pessimistic rank 2
        [NEG, 0.9, 0.1, 0.1, 0.1, 0.0],  # target 1 → rank 1
        [NEG, 0.4, 0.3, 0.2, 0.1, 0.0],  # target 5 → rank 5 (last)
    ]
)
TARGETS = torch.tensor([2, 1, 5])


def test_ranks_and_metrics_match_hand_computation() -> None:
    ranks = target_ranks(SCORES.clone(), TARGETS)
    assert ranks.dtype == torch.int32
    assert ranks.tolist() == [2, 1, 5]
    for chunk in (1, 2, 4):  # item chunks give the same ranks
        assert target_ranks(SCORES.clone(), TARGETS, item_chunk=chunk).tolist() == [2, 1, 5]
    m = metrics_from_ranks(ranks.numpy())
    assert m["hit@1"] == pytest.approx(1 / 3)
    assert m["hit@3"] == pytest.approx(2 / 3)
    assert m["hit@5"] == pytest.approx(1.0)
    assert m["mrr@1"] == pytest.approx(1 / 3)
    assert m["mrr@3"] == pytest.approx((1 / 2 + 1) / 3)
    assert m["mrr@5"] == pytest.approx((1 / 2 + 1 + 1 / 5) / 3)
    assert m["ndcg@1"] == pytest.approx(1 / 3)
    assert m["ndcg@3"] == pytest.approx((1 / math.log2(3) + 1) / 3)
    assert m["ndcg@20"] == pytest.approx((1 / math.log2(3) + 1 + 1 / math.log2(6)) / 3)
    assert set(m) == {f"{name}@{k}" for name in ("hit", "mrr", "ndcg") for k in (1, 3, 5, 10, 20)}


def test_equal_scores_rank_last_and_seen_items_can_be_excluded() -> None:
    flat = torch.zeros(2, 6)
    flat[:, 0] = NEG
    assert target_ranks(flat, torch.tensor([1, 3])).tolist() == [5, 5]  # ties: pessimistic
    seen = torch.tensor([[2, 0], [4, 4], [1, 0]])  # row 0 saw its target; rows 1, 2 saw a competitor
    ranks = target_ranks(SCORES.clone(), TARGETS, seen_items=seen)
    assert ranks.tolist() == [5, 1, 4]  # a seen target falls last; a seen competitor is removed
    nan_scores = SCORES.clone()
    nan_scores[1, 1] = float("nan")
    assert target_ranks(nan_scores, TARGETS)[1].item() == 5  # a NaN target gets the worst rank


def test_memory_budget_limits_rows() -> None:
    assert rows_per_block(n_items=999, batch_size=10_000, memory_mb=1) == 2**20 // (1000 * 4)
    assert rows_per_block(n_items=10, batch_size=7, memory_mb=1) == 7
    assert rows_per_block(n_items=10**9, batch_size=7, memory_mb=1) == 1


def test_compute_ranks_is_independent_of_batching() -> None:
    from _training_helpers import ensure_tiny_model, tiny_prepared

    from embsr_core.models.registry import build_model

    data = tiny_prepared()
    torch.manual_seed(0)
    model = build_model(ensure_tiny_model(), data.n_items, data.n_ops, {})
    cpu = torch.device("cpu")
    a = compute_ranks(model, data.valid, "oracle", device=cpu, batch_size=1024)
    b = compute_ranks(model, data.valid, "oracle", device=cpu, batch_size=7, memory_mb=1)
    assert a.dtype == np.int32 and np.array_equal(a, b)
    assert a.min() >= 1 and a.max() <= data.n_items


def test_authors_criterion() -> None:
    best = {"hit@20": 0.5, "mrr@20": 0.2}
    assert criterion_improved("authors", {"hit@20": 0.49, "mrr@20": 0.21}, best)  # -2% + 5% > 0
    assert not criterion_improved("authors", {"hit@20": 0.45, "mrr@20": 0.21}, best)  # -10% + 5%
    assert criterion_improved("authors", best, None)
    assert criterion_improved("hit@20", {"hit@20": 0.6}, {"hit@20": 0.5})
    assert not criterion_improved("hit@20", {"hit@20": 0.5}, {"hit@20": 0.5})


def test_train_config_schema_validates() -> None:
    assert [p.name for p in TRAIN_PARAMS][:3] == ["lr", "weight_decay", "amsgrad"]
    cfg = TrainConfig.from_dict({"lr": "0.01", "batch_size": "64", "amsgrad": "true", "criterion": "ndcg@10"})
    assert cfg.lr == 0.01 and cfg.batch_size == 64 and cfg.amsgrad is True
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="criterion"):
        TrainConfig(criterion="hit@7")
    with pytest.raises(ValueError, match="unknown training setting"):
        TrainConfig.from_dict({"learning_rate": 1})
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=-1)  # 0 means "fit the batch to the data" (AUTO_BATCH)
    assert TrainConfig(batch_size=0).batch_size == 0


def test_control_token_pause_blocks_and_cancel_wakes() -> None:
    token = ControlToken()
    assert token.wait_if_paused()
    token.pause()
    result: list[bool] = []
    worker = threading.Thread(target=lambda: result.append(token.wait_if_paused()))
    worker.start()
    time.sleep(0.1)
    assert worker.is_alive() and not result  # blocked while paused
    token.cancel()
    worker.join(2)
    assert result == [False]


def test_first_ctrl_c_cancels_cleanly_second_raises() -> None:
    import os
    import signal

    from embsr_core.training.events import cancel_on_sigint

    token = ControlToken()
    before = signal.getsignal(signal.SIGINT)
    with cancel_on_sigint(token):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        assert token.cancelled
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)
    assert signal.getsignal(signal.SIGINT) is before
