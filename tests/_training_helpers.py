"""Tiny data, a tiny model and a store for the training tests (imported by tests/test_training_*.py)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from embsr_core.data.prepared import PreparedDataset, SplitArrays, Vocab
from embsr_core.models.base import Batch, SessionRecommender, TargetOp
from embsr_core.models.registry import ModelSpec, Param, get_spec, register
from embsr_core.store import Store, open_store
from embsr_core.store.models import Dataset
from embsr_core.training.events import ControlToken

TINY_MODEL = "_TinyMean"
N_ITEMS, N_OPS, MAX_LEN = 30, 3, 6


class TinyMean(SessionRecommender):
    """Mean of (item + operation) embeddings plus the target-op embedding, dot-product scores."""

    def __init__(self, n_items: int, n_ops: int, config: dict[str, Any]):
        super().__init__(n_items, n_ops, config)
        d = int(config["dim"])
        self.item_emb = nn.Embedding(n_items + 1, d, padding_idx=0)
        self.op_emb = nn.Embedding(n_ops + 2, d, padding_idx=0)  # n_ops + 1 = "unknown"
        self.drop = nn.Dropout(float(config["dropout"]))
        self.nan = bool(config["nan"])

    def collate(self, split: SplitArrays, index: np.ndarray, target_op: TargetOp = "oracle") -> Batch:
        index = np.asarray(index)
        if target_op == "oracle":
            top = split.target_ops[index].astype(np.int64)
        elif target_op == "unknown":
            top = np.full(len(index), self.n_ops + 1, dtype=np.int64)
        else:
            top = np.full(len(index), int(target_op), dtype=np.int64)
        return {
            "items": torch.from_numpy(split.items[index].astype(np.int64)),  # B×L
            "ops": torch.from_numpy(split.ops[index].astype(np.int64)),  # B×L
            "target_op": torch.from_numpy(top),  # B
            "targets": torch.from_numpy(split.targets[index].astype(np.int64)),  # B
        }

    def scores(self, batch: Batch) -> torch.Tensor:
        mask = (batch["items"] > 0).float().unsqueeze(-1)  # B×L×1
        h = ((self.item_emb(batch["items"]) + self.op_emb(batch["ops"])) * mask).sum(1) / mask.sum(1).clamp(min=1)
        h = self.drop(h + self.op_emb(batch["target_op"]))  # B×d
        s = h @ self.item_emb.weight.T  # B×(n+1)
        if self.nan:
            s = s * float("nan")
        s[:, 0] = float("-inf")
        return s


def ensure_tiny_model() -> str:
    try:
        get_spec(TINY_MODEL)
    except KeyError:
        register(
            ModelSpec(
                name=TINY_MODEL,
                family="baseline-macro",
                description="test model: embedding mean",
                params=(
                    Param("dim", "int", 16, "embedding size", low=1),
                    Param("dropout", "float", 0.2, "dropout", low=0.0, high=0.9),
                    Param("nan", "bool", False, "make every score NaN (failure test)"),
                ),
                builder=TinyMean,
            )
        )
    return TINY_MODEL


def _split(n: int, rng: np.random.Generator) -> SplitArrays:
    lengths = rng.integers(2, MAX_LEN + 1, n).astype(np.int32)
    items = rng.integers(1, N_ITEMS + 1, (n, MAX_LEN)).astype(np.int32)
    ops = rng.integers(1, N_OPS + 1, (n, MAX_LEN)).astype(np.int32)
    valid = np.arange(MAX_LEN)[None, :] < lengths[:, None]
    items, ops = items * valid, ops * valid
    last = items[np.arange(n), lengths - 1]
    targets = (last * 7) % N_ITEMS + 1  # learnable: the next item follows from the last one
    return SplitArrays(
        items=items,
        ops=ops,
        lengths=lengths,
        targets=targets.astype(np.int64),
        target_ops=rng.integers(1, N_OPS + 1, n).astype(np.int32),
        session_ids=np.array([f"s{i}" for i in range(n)]),
        end_times=np.arange(n, dtype=np.float64),
    )


def tiny_prepared(name: str = "tiny", n_train: int = 96, n_eval: int = 40, seed: int = 0) -> PreparedDataset:
    rng = np.random.default_rng(seed)
    vocab = Vocab(
        item_ids=["<pad>"] + [f"i{i}" for i in range(1, N_ITEMS + 1)],
        item_categories=[None] + [f"c{i % 4}" for i in range(1, N_ITEMS + 1)],
        op_names=["<pad>", "view", "cart", "buy"],
    )
    return PreparedDataset(
        train=_split(n_train, rng),
        valid=_split(n_eval, rng),
        test=_split(n_eval, rng),
        vocab=vocab,
        config={"max_len": MAX_LEN, "seed": seed},
        dataset_name=name,
    )


def tiny_store(folder: Path, dataset_name: str = "tiny") -> Store:
    """A fresh SQLite store in ``folder`` holding one (empty) dataset row named ``dataset_name``."""
    store = open_store(f"sqlite:///{folder / 'store.db'}")
    with store.session() as session, session.begin():
        session.add(Dataset(name=dataset_name, source_format="synthetic", imported_at=datetime.now(),
                            n_sessions=0, n_items=N_ITEMS, n_operations=N_OPS, n_events=0))
    return store


class _RequestAfterChecks(ControlToken):
    """A control on which one request (``"finish"`` or ``"cancel"``) appears at its ``checks``-th
    control check: what a tuner or a user does to one rank of a DDP run, at a known step."""

    def __init__(self, request: str, checks: int) -> None:
        super().__init__()
        self._request, self._left = request, checks

    def wait_if_paused(self, timeout: float | None = None) -> bool:
        self._left -= 1
        if self._left == 0:
            self.finish_early() if self._request == "finish" else self.cancel()
        return super().wait_if_paused(timeout)


def ddp_worker(rank: int, world: int, port: int, db_url: str, folder: str, model: str, overrides: dict,
               request: tuple[int, str, int] | None = None) -> None:
    """One torchrun-like rank (spawned by tests/test_training_ddp.py): trains with DDP over gloo.
    ``request`` = (rank, "finish" | "cancel", at which control check): asked of that rank only."""
    import json
    import os

    from embsr_core.training import TrainConfig, run_training

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    ensure_tiny_model()
    store = open_store(db_url) if rank == 0 else None
    cfg = TrainConfig(batch_size=32, max_epochs=2, device="cpu", seed=3, eval_batch_size=16)
    control = _RequestAfterChecks(request[1], request[2]) if request and request[0] == rank else None
    outcome = run_training(store, tiny_prepared(), model, overrides, cfg, checkpoint_root=Path(folder),
                           distributed=True, control=control)
    (Path(folder) / f"outcome_{rank}.json").write_text(json.dumps(
        {"run_id": outcome.run_id, "status": outcome.status, "error": outcome.error, "test": outcome.test_metrics,
         "best_epoch": outcome.best_epoch, "epochs_done": outcome.epochs_done}
    ))
