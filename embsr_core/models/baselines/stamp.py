"""STAMP: short-term attention/memory priority model (Liu et al., KDD 2018).

With x_i the macro-item embeddings, x_t the last one and m_s their mean, the attention net gives
α_i = w_0ᵀσ(W_1 x_i + W_2 x_t + W_3 m_s + b_a) (not normalised) and m_a = Σ α_i x_i; two MLP cells
give h_s = tanh(W_s m_a + b_s), h_t = tanh(W_t x_t + b_t), and item i scores ⟨h_s ⊙ h_t, x_i⟩
(the trilinear product, followed by the softmax of the loss). Because α and m_s ignore order,
STAMP depends on the order of a session only through its last item.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from embsr_core.models.base import Batch
from embsr_core.models.baselines._common import NEURAL_PARAMS, MacroBaseline, register_baseline
from embsr_core.models.layers.readouts import AdditiveAttention, last_valid, valid_mask


class STAMP(MacroBaseline):
    """STAMP: attention over the session with the last item as short-term memory."""

    def __init__(self, n_items: int, n_ops: int, config: dict[str, Any]):
        super().__init__(n_items, n_ops, config)
        d = self.dim
        self.attention = AdditiveAttention(d, (d, d))
        self.mlp_general = nn.Linear(d, d)
        self.mlp_current = nn.Linear(d, d)
        self.reset_parameters()

    def scores(self, batch: Batch) -> torch.Tensor:
        items, lengths = batch["items"], batch["lengths"]
        x = self.dropout(self.item_embedding(items))  # B×T×d (padding rows are zero)
        last = last_valid(x, lengths)
        mean = x.sum(1) / lengths[:, None].to(x.dtype)
        m_a, _ = self.attention(x, valid_mask(lengths, items.shape[1]), (last, mean))
        h = torch.tanh(self.mlp_general(m_a)) * torch.tanh(self.mlp_current(last))  # B×d
        return self.item_scores(h)


register_baseline("STAMP", STAMP, NEURAL_PARAMS)
