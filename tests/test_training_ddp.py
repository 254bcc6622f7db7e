"""DDP: two CPU processes over gloo train one run; its stored evaluation equals a single-process one."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import torch.multiprocessing as mp
from _training_helpers import ddp_worker, tiny_prepared, tiny_store

from embsr_core.store import runs_repo
from embsr_core.training import evaluate_checkpoint
from embsr_core.training.distributed import DistContext, eval_rows, shard_rows


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sharding_covers_every_row_once() -> None:
    ctxs = [DistContext(r, 3, r, "gloo") for r in range(3)]
    batch = list(range(10, 17))  # 7 rows → padded to 9 by wrap-around
    shards = [shard_rows(batch, c).tolist() for c in ctxs]
    assert all(len(s) == 3 for s in shards)
    assert sorted(sum(shards, [])) == sorted(batch + [10, 11])
    shares = [eval_rows(8, c, block=2).tolist() for c in ctxs]
    assert shares == [[0, 1, 6, 7], [2, 3], [4, 5]]  # whole blocks, as a single process batches them


@pytest.mark.timeout(300)
def test_two_process_gloo_run_matches_single_process_evaluation(tmp_path: Path) -> None:
    store = tiny_store(tmp_path)
    overrides = {"embedding_dim": 16, "dropout": 0.1}
    mp.spawn(ddp_worker, args=(2, _free_port(), store.url, str(tmp_path), "EMBSR", overrides), nprocs=2, join=True)
    outcomes = [json.loads((tmp_path / f"outcome_{r}.json").read_text()) for r in range(2)]
    assert [o["status"] for o in outcomes] == ["finished", "finished"], outcomes
    assert outcomes[0]["run_id"] == outcomes[1]["run_id"]
    assert outcomes[0]["test"] == outcomes[1]["test"]  # every rank saw the gathered metrics

    run_id = outcomes[0]["run_id"]
    run = runs_repo.get_run(store, run_id)
    assert run.status == "finished" and run.epochs_done == 2 and run.device == "cpu"
    frame = runs_repo.metrics_frame(store, [run_id])
    assert sorted(frame[frame.split == "valid"].epoch.unique()) == [1, 2]
    assert len(runs_repo.loss_frame(store, [run_id])) == 2 * 3  # 96 sessions / 32 per global batch
    data = tiny_prepared()
    for mode in ("oracle", "unknown"):
        single = evaluate_checkpoint(store, run_id, "test", mode, prepared=data, device="cpu")
        stored, _ = runs_repo.load_ranks(store, run_id, "test", mode)
        assert single.ranks.tolist() == stored.tolist()
        assert single.metrics == pytest.approx(outcomes[0]["test"][mode], abs=1e-12)


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("request_", "status"), [("finish", "finished"), ("cancel", "stopped")])
def test_a_request_made_to_one_rank_ends_every_rank_alike(tmp_path: Path, request_: str, status: str) -> None:
    """A tuner's finish-early or a user's cancel reaches one rank (here rank 1, which has no store);
    the ranks agree on it at one control check, so none waits on a collective the others left. At the
    4th check (the first batch of epoch 2) a finish keeps epoch 1 and scores test; a cancel stops."""
    store = tiny_store(tmp_path)
    overrides = {"embedding_dim": 16, "dropout": 0.1}
    mp.spawn(ddp_worker, args=(2, _free_port(), store.url, str(tmp_path), "EMBSR", overrides, (1, request_, 4)),
             nprocs=2, join=True)
    outcomes = [json.loads((tmp_path / f"outcome_{r}.json").read_text()) for r in range(2)]
    assert [o["status"] for o in outcomes] == [status, status], outcomes
    assert [o["epochs_done"] for o in outcomes] == [1, 1]
    run = runs_repo.get_run(store, outcomes[0]["run_id"])
    assert run.status == status and run.epochs_done == 1
    if request_ == "finish":
        assert [o["best_epoch"] for o in outcomes] == [1, 1]
        assert outcomes[0]["test"] == outcomes[1]["test"] and outcomes[0]["test"]
        assert runs_repo.final_metrics(store, run.id, "test")["oracle"] == pytest.approx(outcomes[0]["test"]["oracle"])
    else:
        assert outcomes[0]["test"] is None or outcomes[0]["test"] == {}
