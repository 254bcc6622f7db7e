"""What the baselines share: hyperparameters, collation of macro/micro/graph batches, scoring.

Collation is vectorised numpy over the batch (see :mod:`embsr_core.models.layers.macro_batch`);
baselines never see the target operation (``target_op`` is accepted and ignored), as in the paper.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from embsr_core.data.prepared import SplitArrays
from embsr_core.models.base import Batch, SessionRecommender, TargetOp
from embsr_core.models.layers.dwell import DwellEmbedding
from embsr_core.models.layers.macro_batch import macro_runs, macro_sequences, padded_positions
from embsr_core.models.layers.multigraph import build_multigraph
from embsr_core.models.layers.session_graph import normalised_edges
from embsr_core.models.registry import ModelSpec, Param, register

EMBEDDING_DIM = Param("embedding_dim", "int", 100, "Size d of item (and operation) embeddings.", low=4, high=1024)
DROPOUT = Param("dropout", "float", 0.1, "Dropout rate (the paper searches 0-0.5).", low=0.0, high=0.9,
                search=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5))
MAX_LEN = Param("max_len", "int", 50, "Positions covered by positional embeddings; older macro-items are dropped.",
                low=2, high=1000)
GNN_STEPS = Param("gnn_steps", "int", 1, "Propagation steps of the gated graph neural network.", low=1, high=5,
                  search=(1, 2))  # tuned, as EMBSR's gnn_layers: the graph baselines get the same knob
NEURAL_PARAMS = (EMBEDDING_DIM, DROPOUT)


def register_baseline(name: str, cls: type[SessionRecommender], params: tuple[Param, ...]) -> None:
    """Register ``cls`` under ``name``; the description is the first line of its docstring."""
    register(ModelSpec(
        name=name,
        family="baseline-micro" if cls.uses_operations else "baseline-macro",
        description=(cls.__doc__ or name).strip().splitlines()[0],
        params=params,
        builder=lambda n_items, n_ops, cfg: cls(n_items, n_ops, cfg),
        uses_operations=cls.uses_operations,
    ))


def with_padding_column(scores: torch.Tensor) -> torch.Tensor:
    """B×(n_items+1) scores with column 0 (padding) set to -inf, without touching autograd history."""
    pad = torch.zeros_like(scores[:1], dtype=torch.bool)
    pad[:, 0] = True
    return scores.masked_fill(pad, float("-inf"))


def _targets(split: SplitArrays, index: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(split.targets[index], dtype=np.int64))


def collate_macro(split: SplitArrays, index: np.ndarray, max_len: int | None = None) -> Batch:
    """Macro-item sequences: ``items`` B×T, ``lengths`` B, ``targets`` B (all int64)."""
    seq, lengths = macro_sequences(split.items[index], split.lengths[index], max_len)
    return {"items": torch.from_numpy(seq), "lengths": torch.from_numpy(lengths), "targets": _targets(split, index)}


def collate_micro(split: SplitArrays, index: np.ndarray) -> Batch:
    """Micro-behaviors trimmed to the batch's longest session: ``items``/``ops`` B×L, ``lengths``,
    ``run`` (B×L macro run of each micro-behavior, -1 on padding), ``n_runs`` B, ``macro_items``
    B×T, ``dwell`` B×L (zeros if unknown)."""
    lengths = np.asarray(split.lengths[index], dtype=np.int64)
    width = max(int(lengths.max(initial=1)), 1)
    items = np.asarray(split.items[index, :width], dtype=np.int64)
    _, run, n_runs = macro_runs(items, lengths)
    macro_items, _ = macro_sequences(items, lengths)
    dwell = (np.zeros(items.shape, dtype=np.float32) if split.dwell is None
             else np.asarray(split.dwell[index, :width], dtype=np.float32))
    return {
        "items": torch.from_numpy(items),
        "ops": torch.from_numpy(np.asarray(split.ops[index, :width], dtype=np.int64)),
        "lengths": torch.from_numpy(lengths),
        "run": torch.from_numpy(run),
        "n_runs": torch.from_numpy(n_runs),
        "macro_items": torch.from_numpy(macro_items),
        "dwell": torch.from_numpy(dwell),
        "targets": _targets(split, index),
    }


def collate_graph(split: SplitArrays, index: np.ndarray) -> Batch:
    """SR-GNN session graphs over macro-items, from the shared multigraph batching.

    ``node_items`` Nn; ``src``/``dst``/``w_in``/``w_out`` over distinct edges; ``macro_node`` B×T
    (node of each macro position, Nn = padding → a zero row); ``lengths`` B macro lengths;
    ``micro_node`` B×L (node of each micro-behavior, Nn on padding).
    """
    lengths = np.asarray(split.lengths[index], dtype=np.int64)
    width = max(int(lengths.max(initial=1)), 1)
    mg = build_multigraph(split.items[index, :width], split.ops[index, :width], lengths)
    n_nodes = len(mg.node_items)
    src, dst, w_in, w_out = normalised_edges(mg.edge_src, mg.edge_dst, n_nodes)
    col, macro_len = padded_positions(mg.macro_session, len(lengths))
    macro_node = np.full((len(lengths), max(int(macro_len.max(initial=1)), 1)), n_nodes, dtype=np.int64)
    macro_node[mg.macro_session, col] = mg.macro_node
    as_long = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))
    return {
        "node_items": as_long(mg.node_items),
        "node_session": as_long(mg.node_session),
        "src": as_long(src),
        "dst": as_long(dst),
        "w_in": torch.from_numpy(w_in.astype(np.float32)),
        "w_out": torch.from_numpy(w_out.astype(np.float32)),
        "macro_node": as_long(macro_node),
        "lengths": as_long(macro_len),
        "micro_node": as_long(mg.micro_node),
        "targets": _targets(split, index),
    }


class NeuralBaseline(SessionRecommender):
    """A gradient-trained baseline: item embedding table, dropout, dot-product scoring.

    Parameters are initialised uniformly in ±1/√d, as SR-GNN/MKM-SR do (the paper initialises all
    models like MKM-SR).
    """

    uses_operations = False

    def __init__(self, n_items: int, n_ops: int, config: dict[str, Any], extra_items: int = 0):
        super().__init__(n_items, n_ops, config)
        self.dim = int(config["embedding_dim"])
        self.item_embedding = nn.Embedding(n_items + 1 + extra_items, self.dim, padding_idx=0)
        self.dropout = nn.Dropout(float(config["dropout"]))

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.dim)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.Embedding) and module.padding_idx is not None:
                    module.weight[module.padding_idx].zero_()

    def item_scores(self, session: torch.Tensor) -> torch.Tensor:
        """B×d session representations → B×(n_items+1) dot products with every item embedding."""
        return with_padding_column(session @ self.item_embedding.weight[: self.n_items + 1].T)


class MacroBaseline(NeuralBaseline):
    """A neural baseline over padded macro-item sequences."""

    max_len: int | None = None

    def collate(self, split: SplitArrays, index: np.ndarray, target_op: TargetOp = "oracle") -> Batch:
        return collate_macro(split, index, self.max_len)


class GraphBaseline(NeuralBaseline):
    """A neural baseline over SR-GNN session graphs."""

    def collate(self, split: SplitArrays, index: np.ndarray, target_op: TargetOp = "oracle") -> Batch:
        return collate_graph(split, index)


class MicroBaseline(NeuralBaseline):
    """A neural baseline over the micro-behavior sequence (items, operations, dwell)."""

    uses_operations = True

    def __init__(self, n_items: int, n_ops: int, config: dict[str, Any]):
        super().__init__(n_items, n_ops, config)
        self.op_embedding = nn.Embedding(n_ops + 1, self.dim, padding_idx=0)
        self.dwell = DwellEmbedding(self.dim)

    def micro_inputs(self, batch: Batch) -> torch.Tensor:
        """B×L×3d: [item ; operation ; dwell] per micro-behavior (dropout applied)."""
        x = torch.cat([self.item_embedding(batch["items"]), self.op_embedding(batch["ops"]),
                       self.dwell(batch["dwell"])], dim=-1)
        return self.dropout(x)

    def collate(self, split: SplitArrays, index: np.ndarray, target_op: TargetOp = "oracle") -> Batch:
        return collate_micro(split, index)
