"""MKM-SR: micro-behaviors and item knowledge in multi-task session recommendation (Meng et al., SIGIR 2020).

Without the knowledge-graph task, as the EMBSR paper runs it: SR-GNN's gated GNN embeds the
session's items (graph over macro-items), a GRU over the operation sequence embeds each
micro-behavior's operation in context, and micro-behavior t is [node state of its item ; op-GRU
state at t]. SR-GNN's soft-attention readout over these 2d-vectors, projected to d, is scored by
dot product against item embeddings. Simplification: the readout's output layer maps 4d → d
directly. Each micro-behavior is a session step, so items repeat as in the micro sequence.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from embsr_core.data.prepared import SplitArrays
from embsr_core.models.base import Batch, TargetOp
from embsr_core.models.baselines._common import GNN_STEPS, NEURAL_PARAMS, collate_graph, register_baseline
from embsr_core.models.baselines.srgnn import SessionGraphEncoder
from embsr_core.models.layers.gather import gather_nodes
from embsr_core.models.layers.readouts import SoftAttentionReadout
from embsr_core.models.layers.sequence_gru import LeftAlignedGRU


class MKMSR(SessionGraphEncoder):
    """MKM-SR (no KG task): gated GNN over items plus a GRU over operations, concatenated."""

    uses_operations = True

    def __init__(self, n_items: int, n_ops: int, config: dict[str, Any]):
        super().__init__(n_items, n_ops, config)
        d = self.dim
        self.op_embedding = nn.Embedding(n_ops + 1, d, padding_idx=0)
        self.op_gru = LeftAlignedGRU(d, d)
        self.readout = SoftAttentionReadout(2 * d, d)
        self.reset_parameters()

    def collate(self, split: SplitArrays, index: np.ndarray, target_op: TargetOp = "oracle") -> Batch:
        batch = collate_graph(split, index)
        width = batch["micro_node"].shape[1]
        batch["ops"] = torch.from_numpy(np.asarray(split.ops[index, :width], dtype=np.int64))
        batch["micro_lengths"] = torch.from_numpy(np.asarray(split.lengths[index], dtype=np.int64))
        return batch

    def scores(self, batch: Batch) -> torch.Tensor:
        items = gather_nodes(self.node_states(batch), batch["micro_node"])  # B×L×d
        ops, _ = self.op_gru(self.dropout(self.op_embedding(batch["ops"])), batch["micro_lengths"])  # B×L×d
        session, _ = self.readout(torch.cat([items, ops], dim=-1), batch["micro_lengths"])
        return self.item_scores(session)


register_baseline("MKM-SR", MKMSR, (*NEURAL_PARAMS, GNN_STEPS))
