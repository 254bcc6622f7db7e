"""BERT4Rec: sequential recommendation with bidirectional transformers (Sun et al., CIKM 2019).

Training is the cloze task: the session's macro-items followed by its target are embedded (plus
learned positions), each position is replaced by a [mask] token with probability ``mask_prob``,
and the masked items are predicted from a bidirectional transformer's outputs (GELU projection,
layer norm, then dot product with the tied item embeddings plus an output bias). Prediction
appends [mask] after the session and scores its output. The target position is always masked
in training (BERT4Rec also trains on sequences with only the last item masked, to match
prediction); sequences keep their last ``max_len`` - 1 macro-items. The mask token has its own
embedding row (n_items + 1) that is never an output column.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from embsr_core.models.base import Batch
from embsr_core.models.baselines._common import MAX_LEN, NEURAL_PARAMS, MacroBaseline, register_baseline
from embsr_core.models.layers.readouts import valid_mask
from embsr_core.models.registry import Param


class BERT4Rec(MacroBaseline):
    """BERT4Rec: bidirectional transformer trained by masked-item prediction."""

    def __init__(self, n_items: int, n_ops: int, config: dict[str, Any]):
        super().__init__(n_items, n_ops, config, extra_items=1)
        d = self.dim
        self.mask_token = n_items + 1
        self.max_len = int(config["max_len"]) - 1  # room for the appended mask / target
        self.mask_prob = float(config["mask_prob"])
        self.position = nn.Embedding(self.max_len + 1, d)
        self.input_norm = nn.LayerNorm(d)
        layer = nn.TransformerEncoderLayer(d, int(config["heads"]), dim_feedforward=4 * d,
                                           dropout=float(config["dropout"]), activation="gelu", batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, int(config["layers"]), enable_nested_tensor=False)
        self.head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.LayerNorm(d))
        self.output_bias = nn.Parameter(torch.zeros(n_items + 1))
        with torch.no_grad():  # BERT's truncated-normal(0.02) embedding init
            for emb in (self.item_embedding, self.position):
                nn.init.trunc_normal_(emb.weight, std=0.02, a=-0.04, b=0.04)
            self.item_embedding.weight[0].zero_()

    def _encode(self, seq: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # seq: B×T' item ids incl. mask tokens; lengths: B valid positions → B×T'×d
        positions = torch.arange(seq.shape[1], device=seq.device)
        x = self.dropout(self.input_norm(self.item_embedding(seq) + self.position(positions)[None]))
        return self.head(self.encoder(x, src_key_padding_mask=~valid_mask(lengths, seq.shape[1])))

    def _with_last(self, items: torch.Tensor, lengths: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """B×(T+1) sequences with ``last`` (B) written right after each session's items."""
        seq = torch.cat([items, items.new_zeros(items.shape[0], 1)], dim=1)
        return seq.scatter(1, lengths[:, None], last[:, None])

    def _logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.item_scores(h) + self.output_bias

    def scores(self, batch: Batch) -> torch.Tensor:
        items, lengths = batch["items"], batch["lengths"]
        seq = self._with_last(items, lengths, torch.full_like(lengths, self.mask_token))
        h = self._encode(seq, lengths + 1)
        return self._logits(h[torch.arange(len(lengths), device=h.device), lengths])

    def loss(self, batch: Batch) -> torch.Tensor:
        items, lengths, targets = batch["items"], batch["lengths"], batch["targets"]
        full = self._with_last(items, lengths, targets)  # B×(T+1): session then target
        valid = valid_mask(lengths + 1, full.shape[1])
        masked = valid & (torch.rand(full.shape, device=full.device) < self.mask_prob)
        masked = masked.scatter(1, lengths[:, None], True)  # the target is always predicted
        h = self._encode(full.masked_fill(masked, self.mask_token), lengths + 1)
        return nn.functional.cross_entropy(self._logits(h[masked]), full[masked])


register_baseline("BERT4Rec", BERT4Rec, (
    *NEURAL_PARAMS, MAX_LEN,
    Param("layers", "int", 2, "Transformer layers.", low=1, high=12),
    Param("heads", "choice", 2, "Attention heads (must divide embedding_dim).", choices=(1, 2, 4, 5, 10)),
    Param("mask_prob", "float", 0.2, "Probability that a position is masked in training.", low=0.0, high=1.0,
          search=(0.1, 0.2, 0.3, 0.4, 0.5)),
))
