"""SGNN-HN: star graph neural networks with highway networks (Pan et al., CIKM 2020).

The session's macro-items form a graph with a star node linked to every item; the shared star GNN
(:class:`~embsr_core.models.layers.star_gnn.StarGNN`, the same layer as EMBSR's without
sequential features) updates satellites with a gated GNN, gates them with the star node, updates
the star by attention and mixes initial and final states through a highway network. The
positional attention readout (reversed positions, queried by star and last item) gives z_h,
scored by scaled cosine similarity w_k·cos(z_h, v_i). Simplification: messages are summed over
the distinct transitions (the shared layer) instead of SGNN-HN's degree-normalised mean.
"""

from __future__ import annotations

from typing import Any

import torch

from embsr_core.models.base import Batch
from embsr_core.models.baselines._common import (
    GNN_STEPS,
    MAX_LEN,
    NEURAL_PARAMS,
    GraphBaseline,
    register_baseline,
)
from embsr_core.models.layers.gather import gather_nodes
from embsr_core.models.layers.readouts import PositionalAttentionReadout
from embsr_core.models.layers.scoring import CosineScorer
from embsr_core.models.layers.star_gnn import StarGNN
from embsr_core.models.registry import Param


class SGNNHN(GraphBaseline):
    """SGNN-HN: star GNN with highway network, positional attention readout, scaled cosine scores."""

    def __init__(self, n_items: int, n_ops: int, config: dict[str, Any]):
        super().__init__(n_items, n_ops, config)
        d = self.dim
        self.gnn = StarGNN(d, layers=int(config["gnn_steps"]), star=True, highway=True)
        self.readout = PositionalAttentionReadout(d, int(config["max_len"]))
        self.scorer = CosineScorer(float(config["w_k"]))
        self.reset_parameters()

    def session(self, batch: Batch) -> torch.Tensor:
        """B×d session representation z_h."""
        lengths = batch["lengths"]
        h0 = self.dropout(self.item_embedding(batch["node_items"]))  # Nn×d
        h, star, _ = self.gnn(h0, batch["node_session"], len(lengths), batch["src"], batch["dst"])
        return self.readout(gather_nodes(h, batch["macro_node"]), lengths, star)

    def scores(self, batch: Batch) -> torch.Tensor:
        return self.scorer.scores(self.session(batch), self.item_embedding.weight)

    def loss(self, batch: Batch) -> torch.Tensor:
        return self.scorer.loss(self.session(batch), self.item_embedding.weight, batch["targets"])


register_baseline("SGNN-HN", SGNNHN, (
    *NEURAL_PARAMS, GNN_STEPS, MAX_LEN,
    Param("w_k", "float", 12.0, "Scale w_k of the cosine scores (the paper uses 12).", low=0.1, high=100.0,
          search=(4.0, 6.0, 8.0, 10.0, 12.0, 16.0)),
))
