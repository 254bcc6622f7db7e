"""Node values laid out at sequence positions: the gather every graph model does after propagation."""

from __future__ import annotations

import torch


def gather_nodes(values: torch.Tensor, node_index: torch.Tensor) -> torch.Tensor:
    """Per-node values (Nn or Nn×d) at ``node_index`` (any shape); index Nn = padding → zeros.

    Graph batches mark padding positions with the node count Nn, so one zero row appended to the
    node table turns a position→node map (B×L, B×T) into B×L(×d) values without masking.
    ``index_select`` on the flattened index: its backward is an ``index_add`` (advanced indexing's is
    an accumulating ``index_put``, several times slower on a CPU).
    """
    pad = values.new_zeros((1, *values.shape[1:]))
    table = torch.cat([values, pad])  # (Nn+1)(×d)
    return table.index_select(0, node_index.reshape(-1)).view(*node_index.shape, *values.shape[1:])
