"""HUP: hierarchical user profiling for e-commerce recommender systems (Gu et al., WSDM 2020).

Two of HUP's pyramid levels: a behaviour-level GRU runs over the micro-behaviors ([item ;
operation ; dwell]) and an attention pools its states within each macro-item run; an item-level
GRU runs over the macro-items ([item ; pooled behaviours]) and an attention queried by its last
state pools the item level. The session [last ; pooled] is projected to d and scored by dot
product. Simplifications: GRUs instead of HUP's Behavior-LSTM cells (the dwell and interval
gates become dwell inputs; intervals are not in the prepared data), no category level.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from embsr_core.models.base import Batch
from embsr_core.models.baselines._common import NEURAL_PARAMS, MicroBaseline, register_baseline
from embsr_core.models.layers.readouts import AdditiveAttention, segment_attention_pool, valid_mask
from embsr_core.models.layers.sequence_gru import LeftAlignedGRU


class HUP(MicroBaseline):
    """HUP: behaviour-level and item-level GRUs with attention at each level."""

    def __init__(self, n_items: int, n_ops: int, config: dict[str, Any]):
        super().__init__(n_items, n_ops, config)
        d = self.dim
        self.gru = LeftAlignedGRU(3 * d, d)  # behaviour level
        self.behaviour_score = nn.Linear(d, 1)
        self.item_gru = LeftAlignedGRU(2 * d, d)
        self.item_attention = AdditiveAttention(d, (d,), softmax=True)
        self.out = nn.Linear(2 * d, d)
        self.reset_parameters()

    def scores(self, batch: Batch) -> torch.Tensor:
        run, n_runs = batch["run"], batch["n_runs"]  # B×L macro run per micro-behavior, B
        behaviour, _ = self.gru(self.micro_inputs(batch), batch["lengths"])  # B×L×d
        T = batch["macro_items"].shape[1]
        pooled = segment_attention_pool(self.behaviour_score(behaviour)[..., 0], behaviour, run, T)  # B×T×d
        item_in = torch.cat([self.item_embedding(batch["macro_items"]), pooled], dim=-1)
        states, last = self.item_gru(self.dropout(item_in), n_runs)  # B×T×d, B×d
        context, _ = self.item_attention(states, valid_mask(n_runs, T), (last,))
        return self.item_scores(self.out(self.dropout(torch.cat([last, context], dim=-1))))


register_baseline("HUP", HUP, NEURAL_PARAMS)
