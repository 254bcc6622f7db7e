"""Node values laid out at sequence positions: the gather every graph model does after propagation."""

from __future__ import annotations

import torch


def gather_nodes(values: torch.Tensor, node_index: torch.Tensor) -> torch.Tensor:
    """Per-node values (Nn or Nn×d) at ``node_index`` (any shape); index Nn = padding → zeros.

    Graph batches mark padding positions with the node count Nn, so one zero row appended to the
    node table turns a position→node map (B×L, B×T) into B×L(×d) values without masking.
    """
    pad = values.new_zeros((1, *values.shape[1:]))
    return torch.cat([values, pad])[node_index]
