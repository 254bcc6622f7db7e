"""Dwell-time features for the micro-behavior baselines (RIB, HUP).

Dwell seconds are heavy-tailed, so they are bucketed on a log2 scale and embedded, as RIB does with
its dwell-time embedding; bucket 0 means unknown (dwell 0, missing, or padding).
"""

from __future__ import annotations

import torch
from torch import nn


class DwellEmbedding(nn.Module):
    """B×L dwell seconds → B×L×dim embedding of log2 buckets (bucket 0 = unknown)."""

    def __init__(self, dim: int, n_buckets: int = 16):
        super().__init__()
        self.n_buckets = n_buckets
        self.embedding = nn.Embedding(n_buckets, dim, padding_idx=0)

    def forward(self, dwell: torch.Tensor) -> torch.Tensor:
        bucket = torch.log2(dwell.clamp_min(0) + 1).floor().long() + 1  # dwell 0 → 1 → set to 0 below
        bucket = torch.where(dwell > 0, bucket.clamp(max=self.n_buckets - 1), torch.zeros_like(bucket))
        return self.embedding(bucket)
