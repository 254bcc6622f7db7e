"""GRU over each macro-item's operation run, evaluated once per distinct prefix (eq. 3–4).

A GRU state depends only on the operation prefix, and operations are few, so a batch holds few
distinct prefixes (a trie, built by :func:`multigraph.build_multigraph`). Evaluating a ``GRUCell``
level by level over the trie gives exactly the per-run GRU states h̃ of eq. 4 at a fraction of a
packed ``nn.GRU`` over every run.
"""

from __future__ import annotations

import torch
from torch import nn


class PrefixTrieGRU(nn.Module):
    """h̃ for every trie node; index the result with ``macro_prefix`` to get h̃ per macro position."""

    def __init__(self, input_dim: int, hidden_dim: int):
        super().__init__()
        self.hidden_dim = hidden_dim
        self.cell = nn.GRUCell(input_dim, hidden_dim)  # Φ_GRU of eq. 3

    def forward(self, op_emb: torch.Tensor, trie_parent: torch.Tensor, level_ptr: list[int]) -> torch.Tensor:
        """op_emb: P×d_in (embedding of each trie node's last operation); trie_parent: P (index in the
        previous level); level_ptr: depth+1 Python ints. Returns P×hidden (state after each prefix)."""
        levels: list[torch.Tensor] = []
        h_prev = op_emb.new_zeros(1, self.hidden_dim)  # h̃_0 = 0 for every run
        for depth in range(len(level_ptr) - 1):
            lo, hi = level_ptr[depth], level_ptr[depth + 1]
            h0 = h_prev.expand(hi - lo, -1) if depth == 0 else h_prev.index_select(0, trie_parent[lo:hi])
            h_prev = self.cell(op_emb[lo:hi], h0)  # (hi-lo)×hidden
            levels.append(h_prev)
        if not levels:
            return op_emb.new_zeros(0, self.hidden_dim)
        return torch.cat(levels, 0)  # P×hidden
