"""GC-SAN: graph contextualized self-attention network (Xu et al., IJCAI 2019).

SR-GNN's gated GNN encodes the session graph; the node states, laid out in macro-item order, pass
through ``blocks`` self-attention blocks (attention, point-wise FFN, residual connections); the
session is S_f = ω·E_k[last] + (1 − ω)·h_last and items score by dot product. The blocks are the
shared plain self-attention layer (learned Q/K/V, ReLU FFN of width d as in GC-SAN); simplification:
it adds layer norm after each residual, and offers ``heads`` heads (GC-SAN uses one).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from embsr_core.models.base import Batch
from embsr_core.models.baselines._common import GNN_STEPS, NEURAL_PARAMS, register_baseline
from embsr_core.models.baselines.srgnn import SessionGraphEncoder
from embsr_core.models.layers.gather import gather_nodes
from embsr_core.models.layers.op_attention import OpAwareAttentionLayer
from embsr_core.models.layers.readouts import last_valid, valid_mask
from embsr_core.models.registry import Param


class GCSAN(SessionGraphEncoder):
    """GC-SAN: SR-GNN graph encoder followed by self-attention blocks."""

    def __init__(self, n_items: int, n_ops: int, config: dict[str, Any]):
        super().__init__(n_items, n_ops, config)
        d = self.dim
        self.blocks = nn.ModuleList(
            OpAwareAttentionLayer(d, int(config["heads"]), dropout=float(config["dropout"]), kv_projection=True)
            for _ in range(int(config["blocks"]))
        )
        self.omega = float(config["omega"])
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        for module in self.blocks.modules():  # keep layer norms at identity
            if isinstance(module, nn.LayerNorm):
                module.reset_parameters()

    def scores(self, batch: Batch) -> torch.Tensor:
        lengths = batch["lengths"]
        seq = gather_nodes(self.node_states(batch), batch["macro_node"])  # B×T×d
        attended, mask = seq, valid_mask(lengths, seq.shape[1])
        for block in self.blocks:
            attended, _ = block(attended, mask)  # B×T×d
        session = self.omega * last_valid(attended, lengths) + (1 - self.omega) * last_valid(seq, lengths)
        return self.item_scores(session)


register_baseline("GC-SAN", GCSAN, (
    *NEURAL_PARAMS, GNN_STEPS,
    Param("blocks", "int", 1, "Number of self-attention blocks k.", low=1, high=8),
    Param("heads", "choice", 1, "Attention heads (must divide embedding_dim).", choices=(1, 2, 4, 5)),
    Param("omega", "float", 0.6, "Weight ω of the self-attention output against the last GNN state.",
          low=0.0, high=1.0, search=(0.2, 0.4, 0.6, 0.8)),
))
