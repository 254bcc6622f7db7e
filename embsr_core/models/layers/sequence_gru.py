"""A GRU over left-aligned padded sequences (RNN-Self's encoder; reusable by NARM-style baselines).

Because valid steps come first, the outputs at valid steps do not depend on the padding after
them, so no packing is needed: run the whole B×L block and mask.
"""

from __future__ import annotations

import torch
from torch import nn


class LeftAlignedGRU(nn.Module):
    def __init__(self, input_dim: int, hidden_dim: int):
        super().__init__()
        self.gru = nn.GRU(input_dim, hidden_dim, batch_first=True)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: B×L×d_in, lengths: B (≥ 1) → (outputs B×L×hidden with padding zeroed, last B×hidden)."""
        out, _ = self.gru(x)  # B×L×hidden
        valid = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]  # B×L
        out = out * valid[..., None].to(out.dtype)
        last = out[torch.arange(x.shape[0], device=x.device), lengths - 1]  # B×hidden
        return out, last
