"""SR-GNN's gated graph neural network over the session graph (Wu et al., AAAI 2019, eq. 1-5).

The session graph has one node per distinct item and one edge per distinct transition; incoming
edges are weighted 1/in-degree and outgoing edges 1/out-degree of the node they are read from
(SR-GNN's normalised connection matrices A_in, A_out). Computed over flat node/edge lists of the
whole batch with ``index_add`` rather than dense B×n×n matrices.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def normalised_edges(
    edge_src: np.ndarray, edge_dst: np.ndarray, n_nodes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct directed edges and their SR-GNN weights.

    edge_src, edge_dst: Ne (repeats allowed). Returns (src, dst, w_in, w_out) over distinct edges:
    ``w_in = 1/in-degree(dst)`` (the weight of the edge in A_in's row of dst) and
    ``w_out = 1/out-degree(src)`` (its weight in A_out's row of src).
    """
    key = np.unique(np.asarray(edge_src, dtype=np.int64) * n_nodes + np.asarray(edge_dst, dtype=np.int64))
    src, dst = key // max(n_nodes, 1), key % max(n_nodes, 1)
    indeg = np.bincount(dst, minlength=n_nodes)
    outdeg = np.bincount(src, minlength=n_nodes)
    return src, dst, 1.0 / indeg[dst], 1.0 / outdeg[src]


class GatedGraphConv(nn.Module):
    """``steps`` rounds of SR-GNN propagation: a_i = [A_in H W_in + b_in ; A_out H W_out + b_out], GRU update."""

    def __init__(self, dim: int, steps: int = 1):
        super().__init__()
        self.steps = steps
        self.edge_in = nn.Linear(dim, dim)
        self.edge_out = nn.Linear(dim, dim)
        self.bias_in = nn.Parameter(torch.zeros(dim))
        self.bias_out = nn.Parameter(torch.zeros(dim))
        self.cell = nn.GRUCell(2 * dim, dim)  # SR-GNN's gates are exactly a GRU cell's

    def forward(
        self, h: torch.Tensor, src: torch.Tensor, dst: torch.Tensor, w_in: torch.Tensor, w_out: torch.Tensor
    ) -> torch.Tensor:
        # h: Nn×d node states; src, dst: Ne int64 distinct edges; w_in, w_out: Ne float
        for _ in range(self.steps):
            into = self.edge_in(h)[src] * w_in[:, None]  # Ne×d: message src → dst
            out_of = self.edge_out(h)[dst] * w_out[:, None]  # Ne×d: message dst → src (outgoing side)
            a_in = torch.zeros_like(h).index_add_(0, dst, into) + self.bias_in
            a_out = torch.zeros_like(h).index_add_(0, src, out_of) + self.bias_out
            h = self.cell(torch.cat([a_in, a_out], dim=-1), h)  # Nn×d
        return h
