"""SR-GNN: session-based recommendation with graph neural networks (Wu et al., AAAI 2019).

Each session's macro-items form a directed graph (one node per distinct item, one edge per
distinct transition, SR-GNN's in/out-degree normalisation); a gated GNN updates the node
embeddings, and the soft-attention readout s_h = W_3[v_n ; Σ α_i v_i] (α_i = qᵀσ(W_1 v_n + W_2 v_i + c))
is scored by dot product against item embeddings. Faithful to the paper; the graph is built over
flat node/edge lists of the whole batch instead of dense per-session matrices.
"""

from __future__ import annotations

from typing import Any

import torch

from embsr_core.models.base import Batch
from embsr_core.models.baselines._common import GNN_STEPS, NEURAL_PARAMS, GraphBaseline, register_baseline
from embsr_core.models.layers.gather import gather_nodes
from embsr_core.models.layers.readouts import SoftAttentionReadout
from embsr_core.models.layers.session_graph import GatedGraphConv


class SessionGraphEncoder(GraphBaseline):
    """Embeds the nodes of the batch's session graphs and runs SR-GNN's gated GNN over them."""

    def __init__(self, n_items: int, n_ops: int, config: dict[str, Any]):
        super().__init__(n_items, n_ops, config)
        # SR-GNN's released code: GRU-cell update, per-node biases, 1/degree edge weights
        self.gnn = GatedGraphConv(self.dim, int(config["gnn_steps"]), update="gru_cell", node_bias=True)

    def node_states(self, batch: Batch) -> torch.Tensor:
        """Nn×d node states after propagation."""
        h = self.dropout(self.item_embedding(batch["node_items"]))
        return self.gnn(h, batch["src"], batch["dst"], batch["w_in"], batch["w_out"])


class SRGNN(SessionGraphEncoder):
    """SR-GNN: gated GNN over the session graph with a soft-attention readout."""

    def __init__(self, n_items: int, n_ops: int, config: dict[str, Any]):
        super().__init__(n_items, n_ops, config)
        self.readout = SoftAttentionReadout(self.dim, self.dim)
        self.reset_parameters()

    def scores(self, batch: Batch) -> torch.Tensor:
        seq = gather_nodes(self.node_states(batch), batch["macro_node"])  # B×T×d
        session, _ = self.readout(seq, batch["lengths"])
        return self.item_scores(session)


register_baseline("SR-GNN", SRGNN, (*NEURAL_PARAMS, GNN_STEPS))
