"""RIB: micro behaviors as a new perspective for e-commerce recommendation (Zhou et al., KDD 2018).

Each micro-behavior is embedded as [item ; operation ; dwell] (dwell bucketed on a log scale when
the dataset has it, otherwise the unknown bucket), a GRU runs over the micro-behavior sequence and
an attention layer (α_t = softmax(wᵀtanh(W h_t + b))) pools its states into the session vector,
projected to d and scored by dot product. Simplification: dwell buckets instead of RIB's
dwell-time discretisation; no target operation.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from embsr_core.models.base import Batch
from embsr_core.models.baselines._common import NEURAL_PARAMS, MicroBaseline, register_baseline
from embsr_core.models.layers.readouts import AdditiveAttention, valid_mask
from embsr_core.models.layers.sequence_gru import LeftAlignedGRU


class RIB(MicroBaseline):
    """RIB: GRU over (item, operation, dwell) micro-behaviors with attention pooling."""

    def __init__(self, n_items: int, n_ops: int, config: dict[str, Any]):
        super().__init__(n_items, n_ops, config)
        d = self.dim
        self.gru = LeftAlignedGRU(3 * d, d)
        self.attention = AdditiveAttention(d, softmax=True, activation="tanh")
        self.out = nn.Linear(d, d)
        self.reset_parameters()

    def scores(self, batch: Batch) -> torch.Tensor:
        states, _ = self.gru(self.micro_inputs(batch), batch["lengths"])  # B×L×d
        pooled, _ = self.attention(states, valid_mask(batch["lengths"], states.shape[1]))
        return self.item_scores(self.out(self.dropout(pooled)))


register_baseline("RIB", RIB, NEURAL_PARAMS)
