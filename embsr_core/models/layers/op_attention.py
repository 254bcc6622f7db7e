"""Operation-aware self-attention (eq. 12–17), with a plain self-attention path.

e_ij = x_i W^Q (x_j + e_{r_ij} + e_{p_j})ᵀ / √d,   z_i = Σ_j α_ij (x_j + e_{r_ij} + e_{p_j})

The dyadic term never materialises a B×L×L×d tensor: q_i·M_Rᵀ gives |R| = |O|² scores per query,
gathered by the pair index r_ij = o_i·|O| + o_j; on the value side the attention weights are
summed into |R| buckets per query and multiplied by M_R. Cost O(B·L·(L + |R|)·d) instead of
O(B·L²·d) memory.

Without ``n_op_rows`` (no dyadic term) this is a standard single-layer Transformer encoder block
(optionally with learned K/V projections) usable by GC-SAN / BERT4Rec-style baselines.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class OpAwareAttentionLayer(nn.Module):
    """One attention block: attention, dropout, residual + LayerNorm, FFN (eq. 17), residual + LN.

    Args:
        dim: model size d.
        heads: attention heads (paper: 1); ``dim`` must be divisible by it.
        n_op_rows: rows of the operation vocabulary incl. padding and special tokens (the relation
            table M_R has n_op_rows² rows); ``None`` = no dyadic term (standard self-attention).
        dropout: on the attention weights and both sublayer outputs.
        kv_projection: learn W^K, W^V (standard Transformer); the paper uses x_j directly.
    """

    def __init__(self, dim: int, heads: int = 1, n_op_rows: int | None = None, dropout: float = 0.0,
                 kv_projection: bool = False):
        super().__init__()
        if dim % heads:
            raise ValueError(f"heads: {heads} does not divide the embedding size {dim}")
        self.dim, self.heads, self.n_op_rows = dim, heads, n_op_rows
        self.w_q = nn.Linear(dim, dim, bias=False)  # W^Q of eq. 16
        self.w_k = nn.Linear(dim, dim, bias=False) if kv_projection else None
        self.w_v = nn.Linear(dim, dim, bias=False) if kv_projection else None
        self.relation = nn.Embedding(n_op_rows * n_op_rows, dim) if n_op_rows else None  # M_R
        self.ffn = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))  # eq. 17
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor, pos: torch.Tensor | None = None,
                ops: torch.Tensor | None = None, query_index: torch.Tensor | None = None,
                return_weights: bool = False) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """x: B×K×d tokens; key_mask: B×K bool (True = attend); pos: B×K×d positional embeddings
        (added to keys and values) or None; ops: B×K operation ids (needed for the dyadic term);
        query_index: Q positions to compute outputs for (default all K).

        Returns (B×Q×d outputs, info). With ``return_weights`` info holds ``weights`` B×H×Q×K and,
        with the dyadic term, ``dyadic_logit`` B×H×Q×K (its contribution to the attention logits).
        """
        B, K, d = x.shape
        H, dh = self.heads, self.dim // self.heads
        xq = x if query_index is None else x[:, query_index]  # B×Q×d
        Q = xq.shape[1]
        kv = x if pos is None else x + pos  # B×K×d: x_j + e_{p_j}
        keys = kv if self.w_k is None else self.w_k(kv)
        vals = kv if self.w_v is None else self.w_v(kv)
        q = self.w_q(xq).view(B, Q, H, dh).transpose(1, 2) / math.sqrt(dh)  # B×H×Q×dh
        keys = keys.view(B, K, H, dh).transpose(1, 2)  # B×H×K×dh
        vals = vals.view(B, K, H, dh).transpose(1, 2)
        logits = q @ keys.transpose(-1, -2)  # B×H×Q×K
        info: dict[str, torch.Tensor] = {}
        pair = None
        if self.relation is not None:
            if ops is None:
                raise ValueError("the dyadic term needs the operation ids of the tokens")
            R = self.relation.weight.view(-1, H, dh).transpose(0, 1)  # H×|R|×dh
            q_rel = q @ R.transpose(-1, -2).unsqueeze(0)  # B×H×Q×|R|: every q_i·e_r once
            ops_q = ops if query_index is None else ops[:, query_index]
            pair = ops_q[:, :, None] * self.n_op_rows + ops[:, None, :]  # B×Q×K: r_ij
            pair = pair[:, None].expand(B, H, Q, K)
            dyadic = q_rel.gather(-1, pair)  # B×H×Q×K
            logits = logits + dyadic
            if return_weights:
                info["dyadic_logit"] = dyadic
        logits = logits.masked_fill(~key_mask[:, None, None, :], float("-inf"))
        weights = torch.softmax(logits.float(), -1).to(vals.dtype)  # eq. 15
        if return_weights:
            info["weights"] = weights
        weights = self.drop(weights)
        out = weights @ vals  # B×H×Q×dh
        if pair is not None:
            buckets = weights.new_zeros(B, H, Q, self.n_op_rows ** 2).scatter_add_(-1, pair, weights)
            out = out + buckets @ R.unsqueeze(0)  # Σ_j α_ij e_{r_ij}, B×H×Q×dh
        z = out.transpose(1, 2).reshape(B, Q, d)  # eq. 14
        h = self.norm1(xq + self.drop(z))
        return self.norm2(h + self.drop(self.ffn(h))), info


class OpAwareSelfAttention(nn.Module):
    """A stack of :class:`OpAwareAttentionLayer` with learned positional embeddings (M_P).

    ``forward(..., last_only=True)`` computes the final layer for the last token only (the star
    token x_s, whose output is z_s): the result is identical to the full computation because the
    other outputs of the final layer are not used.
    """

    def __init__(self, dim: int, max_positions: int, layers: int = 1, heads: int = 1,
                 n_op_rows: int | None = None, dropout: float = 0.0, kv_projection: bool = False):
        super().__init__()
        self.max_positions = max_positions
        self.position = nn.Embedding(max_positions, dim)  # M_P
        self.layers = nn.ModuleList(
            OpAwareAttentionLayer(dim, heads, n_op_rows, dropout, kv_projection) for _ in range(layers)
        )

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor, positions: torch.Tensor,
                ops: torch.Tensor | None = None, last_only: bool = True,
                return_weights: bool = False) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """x: B×K×d; key_mask: B×K; positions: B×K position ids (< max_positions); ops: B×K.

        Returns (B×d output of the last token if ``last_only`` else B×K×d, info of the last layer).
        """
        if int(positions.max()) >= self.max_positions:
            raise ValueError(f"sequence position {int(positions.max())} exceeds the positional table "
                             f"({self.max_positions} rows); sessions must be shorter")
        pos = self.position(positions)  # B×K×d
        info: dict[str, torch.Tensor] = {}
        last = x.new_tensor([x.shape[1] - 1], dtype=torch.long)
        for i, layer in enumerate(self.layers):
            final = i == len(self.layers) - 1
            qi = last if (final and last_only and not return_weights) else None
            x, info = layer(x, key_mask, pos, ops, query_index=qi, return_weights=return_weights and final)
        return (x[:, -1] if last_only else x), info
