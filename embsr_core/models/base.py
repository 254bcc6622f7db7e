"""The interface every session recommender implements, neural or not.

The trainer, the evaluator, the predictor and the GUI only use these methods, so a baseline and
EMBSR are driven identically.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import nn

from embsr_core.data.prepared import SplitArrays

# How the operation of the micro-behavior being predicted (o_{t+1}, eq. 13) is given to a model:
#  "oracle"  - the true target operation (the paper's protocol),
#  "unknown" - a learned "next" token (the honest live setting),
#  an int    - "query" mode: the caller names the operation id it asks about.
TargetOp = Literal["oracle", "unknown"] | int

Batch = dict[str, torch.Tensor]


class SessionRecommender(nn.Module):
    """Base class. Subclasses set ``uses_operations`` and implement ``collate`` and ``scores``."""

    trainable: ClassVar[bool] = True  # False: fitted by ``fit`` (S-POP, SKNN), no gradient steps
    uses_operations: ClassVar[bool] = True
    # Under DDP: whether some parameters may get no gradient in a step (DDP must then search the graph for
    # them every step, which costs time). Every registered model uses all of its parameters in every step
    # (tests/test_gpu_ready.py checks it); a model that does not sets this to True.
    ddp_find_unused_parameters: ClassVar[bool] = False

    def __init__(self, n_items: int, n_ops: int, config: dict[str, Any]):
        super().__init__()
        self.n_items = n_items
        self.n_ops = n_ops
        self.config = dict(config)

    def collate(self, split: SplitArrays, index: np.ndarray, target_op: TargetOp = "oracle") -> Batch:
        """Tensors (on CPU) for rows ``index`` of ``split``; must include ``targets`` (int64 B)."""
        raise NotImplementedError

    def scores(self, batch: Batch) -> torch.Tensor:
        """B×(n_items+1) scores over all items; column 0 (padding) is -inf and never ranked."""
        raise NotImplementedError

    def loss(self, batch: Batch) -> torch.Tensor:
        """Training loss of one batch (default: cross-entropy of ``scores`` against ``targets``)."""
        return nn.functional.cross_entropy(self.scores(batch), batch["targets"])

    def fit(self, train: SplitArrays) -> None:
        """Non-neural models learn here; neural ones are trained by the trainer instead."""

    def explain(self, batch: Batch) -> dict[str, Any]:
        """Why the model scored as it did (attention, gates), for the playground. Optional."""
        return {}


# Batch entries that steer Python-side loops (sizes, offsets): they stay on the host, so reading them
# (``.tolist()``) in the forward pass never waits for the GPU.
HOST_KEYS = frozenset({"g_trie_level_ptr"})


def batch_to(batch: Batch, device: torch.device | str) -> Batch:
    """Move every tensor of a batch to ``device``, except :data:`HOST_KEYS`.

    To a GPU the tensors go through pinned memory: a copy from ordinary (pageable) memory first waits
    for every kernel already queued, so each step would stall the GPU; from pinned memory it is queued
    like a kernel (``non_blocking``) and the collation of the next batch overlaps the GPU's work.
    """
    pin = torch.device(device).type == "cuda"

    def move(key: str, value: Any) -> Any:
        if not isinstance(value, torch.Tensor) or key in HOST_KEYS:
            return value
        if pin and value.device.type == "cpu":
            value = value.pin_memory()
        return value.to(device, non_blocking=True)

    return {k: move(k, v) for k, v in batch.items()}
