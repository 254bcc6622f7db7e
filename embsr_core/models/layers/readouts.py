"""Attention readouts of the RNN/GNN baselines: one additive-attention form serves them all.

NARM's local encoder, STAMP's attention net, SR-GNN's soft attention, SGNN-HN's positional
attention and RIB/HUP's pooling all compute α_i = wᵀ act(W_k k_i + Σ_j W_j q_j + b) over the
session's positions, optionally softmax-normalised, and sum values with those weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from embsr_core.models.layers.segment import segment_softmax


def last_valid(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """x[b, lengths[b] - 1] for left-aligned padded B×T×d ``x`` → B×d."""
    return x[torch.arange(x.shape[0], device=x.device), lengths - 1]


def valid_mask(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """B×width bool, True on the first ``lengths[b]`` positions."""
    return torch.arange(width, device=lengths.device)[None, :] < lengths[:, None]


class AdditiveAttention(nn.Module):
    """α_i = wᵀ act(W_k k_i + Σ_j W_j q_j + b); returns (Σ_i α_i v_i, α)."""

    def __init__(
        self,
        key_dim: int,
        query_dims: Sequence[int] = (),
        hidden: int | None = None,
        softmax: bool = False,
        activation: str = "sigmoid",
    ):
        super().__init__()
        hidden = hidden or key_dim
        self.key = nn.Linear(key_dim, hidden)
        self.queries = nn.ModuleList(nn.Linear(q, hidden, bias=False) for q in query_dims)
        self.w = nn.Linear(hidden, 1, bias=False)
        self.softmax = softmax
        self.act = torch.sigmoid if activation == "sigmoid" else torch.tanh

    def forward(
        self, keys: torch.Tensor, mask: torch.Tensor, queries: Sequence[torch.Tensor] = (),
        values: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # keys: B×T×dk; mask: B×T bool; queries: each B×dq; values: B×T×dv (default keys)
        z = self.key(keys)
        for proj, q in zip(self.queries, queries, strict=True):
            z = z + proj(q)[:, None, :]
        alpha = self.w(self.act(z))[..., 0]  # B×T
        alpha = alpha.masked_fill(~mask, float("-inf")).softmax(-1) if self.softmax else alpha * mask
        pooled = torch.einsum("bt,btd->bd", alpha, keys if values is None else values)  # B×dv
        return pooled, alpha


class SoftAttentionReadout(nn.Module):
    """SR-GNN's session embedding (eq. 6-7): s_h = W_3 [v_n ; Σ_i α_i v_i], α queried by the last item."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.attention = AdditiveAttention(in_dim, (in_dim,))
        self.out = nn.Linear(2 * in_dim, out_dim)

    def forward(self, seq: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # seq: B×T×in_dim left-aligned; returns (B×out_dim, last item B×in_dim)
        last = last_valid(seq, lengths)
        pooled, _ = self.attention(seq, valid_mask(lengths, seq.shape[1]), (last,))
        return self.out(torch.cat([last, pooled], dim=-1)), last


class PositionalAttentionReadout(nn.Module):
    """SGNN-HN's readout (Pan et al. 2020, eq. 12-14): reversed-position embeddings added to the keys,
    attention queried by the star node and the last item, z_h = W [z_g ; z_r]."""

    def __init__(self, dim: int, max_len: int):
        super().__init__()
        self.max_len = max_len
        self.position = nn.Embedding(max_len, dim)
        self.attention = AdditiveAttention(dim, (dim, dim))
        self.out = nn.Linear(2 * dim, dim)

    def forward(self, seq: torch.Tensor, lengths: torch.Tensor, star: torch.Tensor) -> torch.Tensor:
        # seq: B×T×d satellite states per macro position; star: B×d → B×d
        T = seq.shape[1]
        rev = (lengths[:, None] - 1 - torch.arange(T, device=seq.device)[None, :]).clamp(0, self.max_len - 1)
        last = last_valid(seq, lengths)
        pooled, _ = self.attention(seq + self.position(rev), valid_mask(lengths, T), (star, last), values=seq)
        return self.out(torch.cat([pooled, last], dim=-1))


def segment_attention_pool(
    scores: torch.Tensor, values: torch.Tensor, segment: torch.Tensor, n_segments: int
) -> torch.Tensor:
    """Softmax-weighted sum of ``values`` within each segment of a row (HUP's micro → item pooling).

    scores: B×L; values: B×L×d; segment: B×L int64 segment index per position, -1 on padding.
    Returns B×n_segments×d (zeros for empty segments).
    """
    B, _, d = values.shape
    row, col = torch.nonzero(segment >= 0, as_tuple=True)  # valid positions, flat
    flat_segment = row * n_segments + segment[row, col]
    weight = segment_softmax(scores[row, col], flat_segment, B * n_segments)  # per valid position
    out = values.new_zeros(B * n_segments, d).index_add_(0, flat_segment, weight[:, None] * values[row, col])
    return out.view(B, n_segments, d)
