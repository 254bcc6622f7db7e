"""Session graphs over flat node / edge lists, and the one gated graph convolution every graph model uses.

SR-GNN's session graph has one node per distinct item and one edge per distinct transition; incoming
edges are weighted 1/in-degree and outgoing edges 1/out-degree of the node they are read from
(SR-GNN's normalised connection matrices A_in, A_out, :func:`normalised_edges`). EMBSR's multigraph
keeps every transition with weight 1. :class:`GatedGraphConv` serves both: SR-GNN, GC-SAN and
MKM-SR use it directly, the star GNN (:mod:`embsr_core.models.layers.star_gnn`) extends it. Computed
over flat node/edge lists of the whole batch with ``index_add`` rather than dense B×n×n matrices.
"""

from __future__ import annotations

from typing import Any, Literal

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


UpdateRule = Literal["paper", "gru_cell"]
_LEGACY_NAMES = {"edge_in.": "msg_in.", "edge_out.": "msg_out."}  # SR-GNN checkpoints before the shared layer


class GatedGraphConv(nn.Module):
    """Gated graph convolution (SR-GNN eq. 1-5, EMBSR eq. 5-8) over flat, optionally weighted edges.

    One step: every edge ``src → dst`` carries a message into ``dst`` from ``src`` and one into ``src``
    from ``dst``, m_in = (W_in h_src + b_in [+ S_in h̃]) · w_in and m_out = (W_out h_dst + b_out
    [+ S_out h̃]) · w_out; a node sums its messages per direction (a_in, a_out; optional per-node
    biases after the sum) and updates its state from a = [a_in ; a_out] with a gate.

    Args:
        dim: node state size d.
        steps: propagation steps of :meth:`forward` (the same weights each step).
        seq_dim: size of a per-edge sequential feature h̃ added to the messages (EMBSR's op-GRU state,
            eq. 6); ``None`` = node messages only.
        update: ``"paper"``: z = σ(W_z a + U_z h), r = σ(W_r a + U_r h), ĥ = tanh(W_u a + U_u (r ⊙ h)),
            h' = (1 − z) h + z ĥ (EMBSR eq. 8, SR-GNN's printed eq. 5). ``"gru_cell"``: SR-GNN's released
            code, a ``torch.nn.GRUCell`` (reset gate applied after U_u and its bias; h' = (1 − z) ĥ + z h).
        node_bias: SR-GNN's b_in / b_out added once per node after the sum.
    """

    def __init__(self, dim: int, steps: int = 1, *, seq_dim: int | None = None, update: UpdateRule = "paper",
                 node_bias: bool = False):
        super().__init__()
        if update not in ("paper", "gru_cell"):
            raise ValueError(f"update: expected 'paper' or 'gru_cell', got {update!r}")
        self.dim, self.steps, self.update_rule = dim, steps, update
        self.msg_in = nn.Linear(dim, dim)  # W_in, b_in (EMBSR: W⁺_m node part, b⁺_m)
        self.msg_out = nn.Linear(dim, dim)  # W_out, b_out (EMBSR: W⁻_m node part, b⁻_m)
        self.seq_in = nn.Linear(seq_dim, dim, bias=False) if seq_dim else None  # W⁺_m (h̃ part)
        self.seq_out = nn.Linear(seq_dim, dim, bias=False) if seq_dim else None  # W⁻_m (h̃ part)
        self.bias_in = nn.Parameter(torch.zeros(dim)) if node_bias else None
        self.bias_out = nn.Parameter(torch.zeros(dim)) if node_bias else None
        if update == "paper":
            self.w_a = nn.Linear(2 * dim, 3 * dim)  # W_z, W_r, W_u stacked
            self.u_zr = nn.Linear(dim, 2 * dim, bias=False)  # U_z, U_r
            self.u_u = nn.Linear(dim, dim, bias=False)  # U_u
            self.cell = None
        else:
            self.cell = nn.GRUCell(2 * dim, dim)
        self._register_load_state_dict_pre_hook(self._rename_legacy)

    @staticmethod
    def _rename_legacy(state: dict[str, Any], prefix: str, *_: Any) -> None:
        for key in [k for k in state if k.startswith(prefix)]:
            for old, new in _LEGACY_NAMES.items():
                if key.startswith(prefix + old):
                    state[prefix + new + key[len(prefix + old):]] = state.pop(key)

    def seq_messages(self, seq_feat: torch.Tensor, in_pos: torch.Tensor,
                     out_pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The h̃ part of each edge's two messages (Ne×d each); it does not change across steps."""
        if self.seq_in is None or self.seq_out is None:
            raise ValueError("GatedGraphConv built without seq_dim takes no sequential features")
        return self.seq_in(seq_feat).index_select(0, in_pos), self.seq_out(seq_feat).index_select(0, out_pos)

    def step(self, h: torch.Tensor, src: torch.Tensor, dst: torch.Tensor, w_in: torch.Tensor | None = None,
             w_out: torch.Tensor | None = None, seq_msg: tuple[torch.Tensor, torch.Tensor] | None = None,
             out_from: torch.Tensor | None = None) -> torch.Tensor:
        """One propagation step. h: Nn×d; src, dst: Ne node indices; w_in, w_out: Ne (None = 1);
        ``out_from``: Ne nodes whose state the outgoing message carries (default ``dst``, the neighbour).

        Gathers are ``index_select`` (its backward is an ``index_add``, several times cheaper on a CPU
        than the accumulating ``index_put`` of advanced indexing).
        """
        n_nodes, d = h.shape
        m_in = self.msg_in(h).index_select(0, src)  # Ne×d: message src → dst
        m_out = self.msg_out(h).index_select(0, dst if out_from is None else out_from)  # Ne×d: into src
        if seq_msg is not None:
            m_in, m_out = m_in + seq_msg[0], m_out + seq_msg[1]
        if w_in is not None:
            m_in = m_in * w_in[:, None]
        if w_out is not None:
            m_out = m_out * w_out[:, None]
        a_in = h.new_zeros(n_nodes, d).index_add_(0, dst, m_in.to(h.dtype))
        a_out = h.new_zeros(n_nodes, d).index_add_(0, src, m_out.to(h.dtype))
        if self.bias_in is not None and self.bias_out is not None:
            a_in, a_out = a_in + self.bias_in, a_out + self.bias_out
        # (a concatenation: its backward is two views; index_add_ into halves of one buffer would
        # make autograd copy the whole Nn×2d gradient)
        return self.update(torch.cat([a_in, a_out], -1), h)  # Nn×d

    def update(self, a: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """Gated update of node states h (Nn×d) from aggregated messages a (Nn×2d).

        "paper" runs as one autograd function (:class:`_PaperGatedUpdate`: every gate in one Nn×3d
        buffer, written in place, and a hand-written backward); under autocast (mixed precision) it
        is the same formula in autograd ops.
        """
        if self.cell is not None:
            return self.cell(a, h)
        if not torch.is_autocast_enabled(h.device.type):
            return _PaperGatedUpdate.apply(a, h, self.w_a.weight, self.w_a.bias, self.u_zr.weight, self.u_u.weight)
        d = h.shape[-1]
        # split / chunk, not slices: their backward is one concatenation, a slice's a zero-filled copy
        ga_zr, ga_u = self.w_a(a).split([2 * d, d], -1)  # Nn×2d, Nn×d: W_{z,r} a + b, W_u a + b
        z, r = torch.sigmoid(torch.addmm(ga_zr, h, self.u_zr.weight.t())).chunk(2, -1)  # Nn×d each
        cand = torch.tanh(torch.addmm(ga_u, r * h, self.u_u.weight.t()))  # Nn×d: ĥ
        return h + z * (cand - h)

    def forward(self, h: torch.Tensor, src: torch.Tensor, dst: torch.Tensor, w_in: torch.Tensor | None = None,
                w_out: torch.Tensor | None = None) -> torch.Tensor:
        """``steps`` propagation steps (no sequential features); returns Nn×d node states."""
        for _ in range(self.steps):
            h = self.step(h, src, dst, w_in, w_out)
        return h


class _PaperGatedUpdate(torch.autograd.Function):
    """EMBSR eq. 8 on flat nodes: z = σ(W_z a + b_z + U_z h), r = σ(W_r a + b_r + U_r h),
    ĥ = tanh(W_u a + b_u + U_u (r ⊙ h)), h' = h + z ⊙ (ĥ − h).

    The gates live in one Nn×3d buffer [z | r | ĥ] that the U products accumulate into and the
    activations overwrite; the backward writes the three pre-activation gradients into one buffer
    of that shape, so every weight gradient is one matmul and no concatenation or per-op temporary
    is made. a: Nn×2d, h: Nn×d; w_a: 3d×2d, b_a: 3d, u_zr: 2d×d, u_u: d×d.
    """

    @staticmethod
    def forward(ctx, a, h, w_a, b_a, u_zr, u_u):  # type: ignore[override]
        d = h.shape[1]
        gates = torch.addmm(b_a, a, w_a.t())  # Nn×3d: W a + b
        gates[:, : 2 * d].addmm_(h, u_zr.t()).sigmoid_()  # [z | r]
        z, r, cand = gates[:, :d], gates[:, d : 2 * d], gates[:, 2 * d :]
        rh = r * h
        cand.addmm_(rh, u_u.t()).tanh_()  # ĥ
        diff = cand - h
        ctx.save_for_backward(a, h, w_a, u_zr, u_u, gates, rh, diff)
        return torch.addcmul(h, z, diff)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        a, h, w_a, u_zr, u_u, gates, rh, diff = ctx.saved_tensors
        d = h.shape[1]
        z, r, cand = gates[:, :d], gates[:, d : 2 * d], gates[:, 2 * d :]
        pre = torch.empty_like(gates)  # gradients of the three pre-activations, same layout
        g_z, g_r, g_u = pre[:, :d], pre[:, d : 2 * d], pre[:, 2 * d :]
        g_cand = grad * z
        torch.ops.aten.tanh_backward.grad_input(g_cand, cand, grad_input=g_u)
        torch.ops.aten.sigmoid_backward.grad_input(grad * diff, z, grad_input=g_z)
        g_rh = g_u @ u_u  # Nn×d
        torch.ops.aten.sigmoid_backward.grad_input(g_rh * h, r, grad_input=g_r)
        g_h = (grad - g_cand).addcmul_(g_rh, r).addmm_(pre[:, : 2 * d], u_zr)  # (1 − z) grad + r g_rh + U_zrᵀ…
        g_a = pre @ w_a if ctx.needs_input_grad[0] else None
        return (g_a, g_h, pre.t() @ a, pre.sum(0), pre[:, : 2 * d].t() @ h, g_u.t() @ rh)
