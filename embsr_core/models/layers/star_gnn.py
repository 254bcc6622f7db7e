"""Star graph neural network over the session multigraph (eq. 5–11).

Works on flat node / edge lists (only valid nodes and edges, aggregated with ``index_add``), so
its cost follows the real graph sizes, not B×L×L adjacency matrices. Without positional features
(``seq_dim=None``) it is SGNN-HN's star GNN over macro items; with ``star=False`` and no
highway it reduces to SR-GNN's gated GNN on a (multi)graph.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from embsr_core.models.layers.segment import segment_mean, segment_softmax

MessageSource = Literal["paper", "code"]
StarGate = Literal["paper", "sigmoid"]


class StarGNN(nn.Module):
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
        star_gate: eq. 9's α. ``"paper"``: the scaled dot product as printed (and as in the
            authors' code: no squashing, so α may leave [0, 1]); ``"sigmoid"``: σ of it.
        star: use the star node (eq. 9–10); ``False`` gives a plain gated GNN.
        highway: mix the initial and last node embeddings (eq. 11).
    """

    def __init__(self, dim: int, layers: int = 1, seq_dim: int | None = None,
                 message_source: MessageSource = "paper", star: bool = True, highway: bool = True,
                 star_gate: StarGate = "paper"):
        super().__init__()
        if message_source not in ("paper", "code"):
            raise ValueError(f"message_source: expected 'paper' or 'code', got {message_source!r}")
        if star_gate not in ("paper", "sigmoid"):
            raise ValueError(f"star_gate: expected 'paper' or 'sigmoid', got {star_gate!r}")
        self.star_gate = star_gate
        self.dim, self.layers, self.message_source = dim, layers, message_source
        self.star, self.highway = star, highway
        self.msg_in = nn.Linear(dim, dim)  # W⁺_m (node part) and b⁺_m, eq. 6
        self.msg_out = nn.Linear(dim, dim)  # W⁻_m (node part) and b⁻_m
        self.seq_in = nn.Linear(seq_dim, dim, bias=False) if seq_dim else None  # W⁺_m (h̃ part)
        self.seq_out = nn.Linear(seq_dim, dim, bias=False) if seq_dim else None  # W⁻_m (h̃ part)
        self.w_a = nn.Linear(2 * dim, 3 * dim)  # W_z, W_r, W_u of eq. 8 stacked
        self.u_zr = nn.Linear(dim, 2 * dim, bias=False)  # U_z, U_r
        self.u_u = nn.Linear(dim, dim, bias=False)  # U_u
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
        order; seq_feat: M×seq_dim per macro position (indexed by edge_*_pos).

        Returns (h_f Nn×d, star B×d or None, info) where info holds the last layer's star gate
        ``alpha`` (Nn, eq. 9) and star attention ``star_weight`` (Nn, eq. 10).
        """
        d = self.dim
        n_nodes = h0.shape[0]
        seq_msg_in = seq_msg_out = None
        if self.seq_in is not None:
            if seq_feat is None or edge_src_pos is None or edge_dst_pos is None:
                raise ValueError("StarGNN built with seq_dim needs seq_feat and edge positions")
            out_pos = edge_dst_pos if self.message_source == "paper" else edge_src_pos
            # the h̃ part of each message does not change across layers: compute it once, Ne×d
            seq_msg_in = self.seq_in(seq_feat)[edge_src_pos]
            seq_msg_out = self.seq_out(seq_feat)[out_pos]
        star = segment_mean(h0, node_session, n_sessions) if self.star else None  # B×d, eq. 2
        h = h0
        info: dict[str, torch.Tensor] = {}
        for _ in range(self.layers):
            # eq. 5–7: messages along incoming edges come from the source; outgoing ones from the
            # target (paper) or from the node itself (authors' code)
            m_in = self.msg_in(h)[edge_src]  # Ne×d
            m_out = self.msg_out(h)[edge_dst if self.message_source == "paper" else edge_src]  # Ne×d
            if seq_msg_in is not None:
                m_in = m_in + seq_msg_in
                m_out = m_out + seq_msg_out
            a_in = h.new_zeros(n_nodes, d).index_add_(0, edge_dst, m_in.to(h.dtype))
            a_out = h.new_zeros(n_nodes, d).index_add_(0, edge_src, m_out.to(h.dtype))
            a = torch.cat([a_in, a_out], -1)  # Nn×2d, eq. 7
            # eq. 8 gated update
            ga_z, ga_r, ga_u = self.w_a(a).chunk(3, -1)
            gh_z, gh_r = self.u_zr(h).chunk(2, -1)
            z = torch.sigmoid(ga_z + gh_z)
            r = torch.sigmoid(ga_r + gh_r)
            cand = torch.tanh(ga_u + self.u_u(r * h))
            h_hat = (1 - z) * h + z * cand  # Nn×d
            if star is None:
                h = h_hat
                continue
            s_node = star[node_session]  # Nn×d
            # eq. 9: star gate, as printed and as in the authors' code: no sigmoid (``star_gate=
            # "sigmoid"`` adds one). W_k1 is applied per session (B×d) and then gathered: same
            # result, Nn/B times cheaper.
            k_star = self.k1(star)[node_session]  # Nn×d
            alpha = (self.q1(h_hat) * k_star).sum(-1, keepdim=True) / math.sqrt(d)  # Nn×1
            if self.star_gate == "sigmoid":
                alpha = torch.sigmoid(alpha)
            h = (1 - alpha) * h_hat + alpha * s_node  # Nn×d
            # eq. 10: star update by attention over its satellites (only this session's nodes)
            logit = (self.k2(h) * self.q2(star)[node_session]).sum(-1) / math.sqrt(d)  # Nn
            weight = segment_softmax(logit, node_session, n_sessions)
            star = h.new_zeros(n_sessions, d).index_add_(0, node_session, weight[:, None].to(h.dtype) * h)
            info = {"alpha": alpha[:, 0], "star_weight": weight}
        if self.highway:
            g = torch.sigmoid(self.w_g(torch.cat([h0, h], -1)))  # eq. 11
            h = g * h0 + (1 - g) * h
        return h, star, info
