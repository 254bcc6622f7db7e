"""Data-parallel training with PyTorch DDP (gloo on CPU, NCCL on CUDA), as started by ``torchrun``.

Sharding is the :class:`~torch.utils.data.DistributedSampler` scheme applied per global batch: every
rank draws the same seeded permutation, cuts it into global batches of ``batch_size`` sessions and
takes rows ``rank::world`` of each (padding a short last batch by wrapping around, so every rank
steps the same number of times). The effective batch is therefore the single-process batch. Only
rank 0 writes to the store and the checkpoint files; evaluation shards sessions across ranks and
all-gathers the per-session ranks, so every metric is computed from all sessions exactly once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_spec: str = "auto") -> tuple[DistContext, torch.device]:
    """Join the process group described by torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR…).

    CUDA (``auto`` with a GPU, or ``cuda``) → NCCL on ``cuda:LOCAL_RANK``; otherwise gloo on CPU.
    """
    missing = [v for v in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
    if missing and not dist.is_initialized():
        raise RuntimeError(
            f"--distributed needs the torchrun environment (missing {', '.join(missing)}); start it as "
            "`torchrun --nproc-per-node N -m embsr_core.cli train --distributed ...`"
        )
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_spec.strip().lower() in ("auto", "cuda")
    backend = "nccl" if use_cuda else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    ctx = DistContext(dist.get_rank(), dist.get_world_size(), local_rank, dist.get_backend())
    return ctx, device


def shard_rows(rows: np.ndarray, ctx: DistContext) -> np.ndarray:
    """Rows ``rank::world`` of one global batch, padded by wrap-around to a multiple of world size."""
    rows = np.asarray(rows)
    short = (-len(rows)) % ctx.world_size
    if short:
        rows = np.concatenate([rows, np.resize(rows, short)])
    return rows[ctx.rank :: ctx.world_size]


def eval_rows(n: int, ctx: DistContext, block: int) -> np.ndarray:
    """This rank's share of ``n`` evaluation sessions: whole blocks of ``block`` rows, dealt round-robin.

    Each block is exactly a batch that a single process evaluating with the same block size scores,
    so the distributed ranks are bit-identical to a single-process evaluation (a batch of other rows
    can change the last bits of a score and flip a near-tie).
    """
    starts = np.arange(0, n, max(1, block))[ctx.rank :: ctx.world_size]
    if len(starts) == 0:
        return np.empty(0, dtype=np.int64)
    return np.concatenate([np.arange(lo, min(lo + block, n)) for lo in starts])


def gather_ranks(local: np.ndarray, n: int, ctx: DistContext, device: torch.device, block: int) -> np.ndarray:
    """Reassemble per-session ranks computed on :func:`eval_rows` shards into one int32 N array."""
    shares = [eval_rows(n, DistContext(r, ctx.world_size, ctx.local_rank, ctx.backend), block)
              for r in range(ctx.world_size)]
    per_rank = max(len(rows) for rows in shares)
    padded = torch.full((per_rank,), -1, dtype=torch.int32, device=device)
    padded[: len(local)] = torch.from_numpy(np.asarray(local, dtype=np.int32)).to(device)
    gathered = [torch.empty_like(padded) for _ in range(ctx.world_size)]
    dist.all_gather(gathered, padded)
    out = np.empty(n, dtype=np.int32)
    for rows, part in zip(shares, gathered, strict=True):
        out[rows] = part[: len(rows)].cpu().numpy()
    return out


def any_flag(flag: bool, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on any rank (cancel, non-finite loss)."""
    return any_flags((flag,), device)[0]


def any_flags(flags: Sequence[bool], device: torch.device) -> tuple[bool, ...]:
    """Several flags agreed at once: each is true on every rank when it is true on any rank. One
    all-reduce for all of them, so a control check (cancel, finish early) costs one collective."""
    t = torch.tensor([1.0 if f else 0.0 for f in flags], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return tuple(bool(v > 0) for v in t.tolist())


def mean_tensor_across(values: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """The element-wise mean over ranks of a tensor on this rank's device (one all-reduce, no host read)."""
    total = values.to(torch.float64, copy=True)  # the caller's tensor is left alone
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total / ctx.world_size


def broadcast_int(value: int | None, ctx: DistContext) -> int:
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return int(box[0])  # type: ignore[arg-type]


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


class LossModule(nn.Module):
    """Routes ``forward`` to ``model.loss`` so DDP (which hooks ``forward``) can wrap any recommender."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model.loss(batch)


def wrap_ddp(model: nn.Module, device: torch.device) -> nn.Module:
    """DDP around the loss. The per-step search for unused parameters only for a model that declares it
    needs one (``ddp_find_unused_parameters``); the rows of an embedding never used in a batch (e.g. the
    'unknown' operation token under oracle) are not unused parameters: the embedding gets a gradient."""
    from torch.nn.parallel import DistributedDataParallel

    module = LossModule(model)
    ids = [device.index] if device.type == "cuda" else None
    find_unused = bool(getattr(model, "ddp_find_unused_parameters", True))
    return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=find_unused)
