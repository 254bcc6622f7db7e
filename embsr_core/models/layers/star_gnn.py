"""Star graph neural network over the session multigraph (eq. 5–11).

Works on flat node / edge lists (only valid nodes and edges, aggregated with ``index_add``), so
its cost follows the real graph sizes, not B×L×L adjacency matrices. The gated GNN step (eq. 5–8)
is the shared :class:`~embsr_core.models.layers.session_graph.GatedGraphConv`, which this layer
extends with the star node and the highway. Without positional features (``seq_dim=None``) it is
SGNN-HN's star GNN over macro items; with ``star=False`` and no highway it reduces to SR-GNN's
gated GNN on a (multi)graph.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from embsr_core.models.layers.segment import segment_mean, segment_softmax
from embsr_core.models.layers.session_graph import GatedGraphConv

MessageSource = Literal["paper", "code"]


class StarGNN(GatedGraphConv):
    """Stacked gated-GNN layers with a star node and a highway connection.

    Args:
        dim: node embedding size d.
        layers: number of propagation steps (paper: 1).
        seq_dim: size of the per-position sequential feature h̃ (the op-GRU state) concatenated to
            the neighbour in each message (eq. 6); ``None`` = plain item messages.
        message_source: what an *outgoing* edge message (u_i → u_j, macro positions k → k+1)
            carries. ``"paper"``: the neighbour u_j's embedding and its op-GRU state at k+1 (eq. 5);
            ``"code"``: the node's own embedding and its own op-GRU state at k, as the authors'
            code wires it (one message per macro position, ``[e_{v_k}; h̃_k]``, sent along both
            the in- and the out-edge of that position). Incoming messages (u_j → u_i) always carry
            the neighbour u_j and its state.
        star: use the star node (eq. 9–10); ``False`` gives a plain gated GNN.
        highway: mix the initial and last node embeddings (eq. 11).
    """

    def __init__(self, dim: int, layers: int = 1, seq_dim: int | None = None,
                 message_source: MessageSource = "paper", star: bool = True, highway: bool = True):
        super().__init__(dim, layers, seq_dim=seq_dim, update="paper")  # eq. 5–8 (W±_m, W_z/r/u, U_z/r/u)
        if message_source not in ("paper", "code"):
            raise ValueError(f"message_source: expected 'paper' or 'code', got {message_source!r}")
        self.dim, self.layers, self.message_source = dim, layers, message_source
        self.star, self.highway = star, highway
        if star:
            self.q1, self.k1 = nn.Linear(dim, dim, bias=False), nn.Linear(dim, dim, bias=False)  # eq. 9
            self.q2, self.k2 = nn.Linear(dim, dim, bias=False), nn.Linear(dim, dim, bias=False)  # eq. 10
        if highway:
            self.w_g = nn.Linear(2 * dim, dim, bias=False)  # eq. 11

    def forward(self, h0: torch.Tensor, node_session: torch.Tensor, n_sessions: int,
                edge_src: torch.Tensor, edge_dst: torch.Tensor,
                edge_src_pos: torch.Tensor | None = None, edge_dst_pos: torch.Tensor | None = None,
                seq_feat: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None, dict]:
        """h0: Nn×d initial satellites (eq. 1); node_session: Nn; edges: Ne node indices in time
        order; seq_feat: rows of sequential features (one per macro position, or EMBSR's op-trie
        states) and edge_*_pos: each edge's source / target row in it.

        Returns (h_f Nn×d, star B×d or None, info) where info holds the last layer's star gate
        ``alpha`` (Nn, eq. 9) and star attention ``star_weight`` (Nn, eq. 10).
        """
        d = self.dim
        seq_msg = None
        if self.seq_in is not None:
            if seq_feat is None or edge_src_pos is None or edge_dst_pos is None:
                raise ValueError("StarGNN built with seq_dim needs seq_feat and edge positions")
            out_pos = edge_dst_pos if self.message_source == "paper" else edge_src_pos
            # the h̃ part of each message does not change across layers: compute it once, Ne×d
            seq_msg = self.seq_messages(seq_feat, edge_src_pos, out_pos)
        out_from = edge_dst if self.message_source == "paper" else edge_src
        star = segment_mean(h0, node_session, n_sessions) if self.star else None  # B×d, eq. 2
        h = h0
        info: dict[str, torch.Tensor] = {}
        for _ in range(self.layers):
            # eq. 5–8: messages along incoming edges come from the source; outgoing ones from the
            # target (paper) or from the node itself (authors' code); unweighted sums, gated update
            h_hat = self.step(h, edge_src, edge_dst, seq_msg=seq_msg, out_from=out_from)  # Nn×d
            if star is None:
                h = h_hat
                continue
            # eq. 9–10 use W_q1 h_i · W_k1 s and W_k2 h_i · W_q2 s; both are h_i · (a per-session vector):
            # u1 = (W_k1 s) W_q1 / √d and u2 = (W_q2 s) W_k2 / √d are B×d products, where W_q1 h and
            # W_k2 h would be two Nn×d×d ones. (Three gathers, not one of [s, u1, u2] then a chunk: the
            # chunk's backward would concatenate an Nn×3d gradient.)
            u1 = self.k1(star) @ self.q1.weight / math.sqrt(d)  # B×d
            u2 = self.q2(star) @ self.k2.weight / math.sqrt(d)  # B×d
            s_node, u1, u2 = (v.index_select(0, node_session) for v in (star, u1, u2))  # Nn×d each
            # eq. 9: star gate, as printed and as in the authors' code: no sigmoid (a sigmoid measured
            # worse on validation, docs/embsr_model.md)
            alpha = (h_hat * u1).sum(-1, keepdim=True)  # Nn×1
            h = torch.lerp(h_hat, s_node, alpha)  # Nn×d: (1 − α) ĥ + α s
            # eq. 10: star update by attention over its satellites (only this session's nodes)
            weight = segment_softmax((h * u2).sum(-1), node_session, n_sessions)  # Nn
            star = h.new_zeros(n_sessions, d).index_add_(0, node_session, weight[:, None].to(h.dtype) * h)
            info = {"alpha": alpha[:, 0], "star_weight": weight}
        if self.highway:  # eq. 11: g = σ(W_g [h0; h]) as two products summed in the matmul (no Nn×2d copy)
            w0, w1 = self.w_g.weight.chunk(2, -1)
            g = torch.sigmoid(torch.addmm(h0 @ w0.t(), h, w1.t()))  # Nn×d
            h = h + g * (h0 - h)  # g h0 + (1 − g) h
        return h, star, info
