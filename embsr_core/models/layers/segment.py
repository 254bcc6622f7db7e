"""Per-session reductions over flat (variable-size) node lists: mean and softmax via index_add."""

from __future__ import annotations

import torch


def segment_mean(x: torch.Tensor, segment: torch.Tensor, n_segments: int) -> torch.Tensor:
    """x: N×d, segment: N (0..n_segments-1) → n_segments×d means (0 for an empty segment)."""
    total = x.new_zeros(n_segments, x.shape[-1]).index_add_(0, segment, x)
    # index_add_ of ones, not bincount: bincount's output size depends on the data (max + 1), which
    # makes a GPU wait for the result before the next kernel can be queued. Counts are exact in fp32.
    ones = torch.ones(segment.shape[0], dtype=torch.float32, device=segment.device)
    count = torch.zeros(n_segments, dtype=torch.float32, device=segment.device).index_add_(0, segment, ones)
    count = count.clamp_min(1).to(x.dtype)
    return total / count[:, None]


def segment_softmax(logits: torch.Tensor, segment: torch.Tensor, n_segments: int) -> torch.Tensor:
    """logits: N → softmax within each segment (N), numerically stable."""
    peak = logits.new_full((n_segments,), float("-inf"))
    peak = peak.scatter_reduce(0, segment, logits.detach(), reduce="amax", include_self=True)
    w = torch.exp(logits - peak[segment])
    denom = w.new_zeros(n_segments).index_add_(0, segment, w)
    return w / denom[segment]
