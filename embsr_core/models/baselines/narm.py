"""NARM: neural attentive session-based recommendation (Li et al., CIKM 2017).

A GRU over the macro-item sequence; the global encoder is its last state h_t, the local encoder
attends over all states with h_t as the query (α_tj = vᵀσ(A_1 h_t + A_2 h_j), softmax-normalised
as in the authors' code); c = [h_t ; Σ α_tj h_j] is decoded bilinearly against item embeddings
(score_i = e_iᵀ B c). Simplification: one GRU layer with hidden size d.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from embsr_core.models.base import Batch
from embsr_core.models.baselines._common import NEURAL_PARAMS, MacroBaseline, register_baseline
from embsr_core.models.layers.readouts import AdditiveAttention, valid_mask
from embsr_core.models.layers.sequence_gru import LeftAlignedGRU


class NARM(MacroBaseline):
    """NARM: GRU encoder with global (last state) and local (attention) session features."""

    def __init__(self, n_items: int, n_ops: int, config: dict[str, Any]):
        super().__init__(n_items, n_ops, config)
        d = self.dim
        self.gru = LeftAlignedGRU(d, d)
        self.attention = AdditiveAttention(d, (d,), softmax=True)
        self.bilinear = nn.Linear(2 * d, d, bias=False)
        self.reset_parameters()

    def scores(self, batch: Batch) -> torch.Tensor:
        items, lengths = batch["items"], batch["lengths"]  # B×T, B
        states, last = self.gru(self.dropout(self.item_embedding(items)), lengths)  # B×T×d, B×d
        local, _ = self.attention(states, valid_mask(lengths, items.shape[1]), (last,))
        return self.item_scores(self.bilinear(self.dropout(torch.cat([last, local], dim=-1))))


register_baseline("NARM", NARM, NEURAL_PARAMS)
