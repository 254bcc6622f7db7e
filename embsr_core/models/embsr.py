"""EMBSR (§IV) with its ablations (§V-C) and variants (§V-D/E/F) as switches on one model.

Pipeline (one module per component under :mod:`embsr_core.models.layers`):
  multigraph + op trie (collate) → op-GRU h̃ (eq. 3–4) → star GNN (eq. 5–11) → tokens
  x_i = h_f[v_i] + e_{o_i} (eq. 12), x_s = e_{u_s} + e_{o_{t+1}} (eq. 13) → operation-aware
  self-attention → z_s (eq. 14–17) → fusion with x_t (eq. 18) → scaled cosine scores (eq. 19–20).
  ``recent="gated"`` (the default, chosen on validation) passes x_t's item vector through one GRU step
  whose input is the op-GRU state of the last macro-item's whole operation run; ``"run"`` adds a linear
  map of that state instead; ``"micro"`` is the paper's x_t, which sees only the last micro-behavior.

Switches (pinned per registered name through ``ModelSpec.fixed``):
  graph      "star_gnn" | "none" (EMBSR-NG: h_f = item embeddings, star = their mean) |
             "rnn" (RNN-Self: a GRU over [e_v; e_o] replaces the GNN, star = mean of its states)
  op_gru     feed op-GRU states into the GNN messages (sequential pattern of micro-operations)
  attention  the self-attention layer; off (EMBSR-NS) gives z_s = x_s
  abs_op     add operation embeddings to the tokens (e_{o_i}, and e_{o_{t+1}} on the star token)
  dyadic     the relation embedding M_R in attention (off = standard self-attention)
  fusion     "gate" (eq. 18) | "mlp" (EMBSR-NF) | "fixed" (§V-F, weight ``beta``)

The target operation o_{t+1} (eq. 13) comes from ``collate(target_op=...)``: "oracle" (the
split's ``target_ops``, the paper's protocol), "unknown" (the learned token n_ops+1: the honest
live setting) or an int (query mode). During training it is replaced by the unknown token with
probability ``target_op_dropout`` so that one trained model serves all three modes; 0 gives the
paper's pure oracle training. Operation table rows: 0 pad, 1..n_ops, n_ops+1 = unknown/next.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from embsr_core.data.prepared import SplitArrays
from embsr_core.models.base import Batch, SessionRecommender, TargetOp
from embsr_core.models.layers.dropout import UniformMaskDropout
from embsr_core.models.layers.fusion import make_fusion
from embsr_core.models.layers.gather import gather_nodes
from embsr_core.models.layers.macro_batch import macro_sequences
from embsr_core.models.layers.multigraph import build_multigraph
from embsr_core.models.layers.op_attention import OpAwareSelfAttention
from embsr_core.models.layers.op_gru import PrefixTrieGRU
from embsr_core.models.layers.repeat_pointer import RepeatPointer
from embsr_core.models.layers.scoring import CosineScorer
from embsr_core.models.layers.segment import segment_mean
from embsr_core.models.layers.sequence_gru import LeftAlignedGRU
from embsr_core.models.layers.star_gnn import StarGNN
from embsr_core.models.registry import ModelSpec, Param, register

MAX_POSITIONS = 256  # rows of M_P: sessions of up to 255 micro-behaviors + the star token

DEFAULTS: dict[str, Any] = {
    "embedding_dim": 100,
    "dropout": 0.1,
    "gnn_layers": 1,
    "attn_layers": 1,
    "heads": 1,
    "w_k": 8.0,  # the paper's 12 lost on validation (docs/embsr_model.md, "Defaults chosen on validation")
    "message_source": "paper",
    "tokens": "micro",
    "positions": "reverse",  # counted from the end: better on planted validation, level on the samples
    "recent": "gated",  # one GRU step on the last item's run: better on planted and real validation
    "repeat": "pointer",  # a copy of the session's own items (not in the paper): better on real validation
    "target_op_dropout": 0.5,
    "beta": 0.5,
    # switches
    "graph": "star_gnn",
    "op_gru": True,
    "attention": True,
    "abs_op": True,
    "dyadic": True,
    "fusion": "gate",
}


class EMBSR(SessionRecommender):
    """EMBSR and all its ablations / variants; ``config`` keys as in :data:`DEFAULTS`."""

    def __init__(self, n_items: int, n_ops: int, config: dict[str, Any] | None = None):
        cfg = {**DEFAULTS, **(config or {})}
        super().__init__(n_items, n_ops, cfg)
        unknown = set(cfg) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"EMBSR: unknown config keys {sorted(unknown)}")
        if cfg["graph"] not in ("star_gnn", "none", "rnn"):
            raise ValueError(f"graph: expected 'star_gnn', 'none' or 'rnn', got {cfg['graph']!r}")
        if cfg["tokens"] not in ("micro", "macro"):
            raise ValueError(f"tokens: expected 'micro' or 'macro', got {cfg['tokens']!r}")
        if cfg["tokens"] == "macro" and (cfg["op_gru"] or cfg["abs_op"] or cfg["graph"] == "rnn"):
            raise ValueError("tokens='macro' is for models without operations (SGNN-Self)")
        self.macro_tokens = cfg["tokens"] == "macro"
        if cfg["positions"] not in ("forward", "reverse"):
            raise ValueError(f"positions: expected 'forward' or 'reverse', got {cfg['positions']!r}")
        self.reverse_positions = cfg["positions"] == "reverse"
        if cfg["recent"] not in ("micro", "run", "gated"):
            raise ValueError(f"recent: expected 'micro', 'run' or 'gated', got {cfg['recent']!r}")
        if cfg["recent"] == "run" and not cfg["op_gru"]:
            raise ValueError("recent='run' needs op_gru=True (it reads the last run's op-GRU state)")
        if cfg["repeat"] not in ("off", "pointer", "pointer-items"):
            raise ValueError(f"repeat: expected 'off', 'pointer' or 'pointer-items', got {cfg['repeat']!r}")
        if cfg["op_gru"] and cfg["graph"] != "star_gnn":
            raise ValueError("op_gru needs graph='star_gnn' (the op-GRU feeds the GNN messages)")
        d = self.dim = int(cfg["embedding_dim"])
        self.graph = cfg["graph"]
        self.use_attention, self.abs_op = bool(cfg["attention"]), bool(cfg["abs_op"])
        self.uses_target_op = self.abs_op  # the target op only enters through e_{o_{t+1}}
        self.uses_operations = bool(cfg["op_gru"] or cfg["abs_op"] or cfg["graph"] == "rnn")
        self.target_op_dropout = float(cfg["target_op_dropout"])
        self.unknown_op = n_ops + 1
        self.item_emb = nn.Embedding(n_items + 1, d, padding_idx=0)  # M_V
        self.op_emb = nn.Embedding(n_ops + 2, d, padding_idx=0) if self.uses_operations else None  # M_O
        self.op_gru = PrefixTrieGRU(d, d) if cfg["op_gru"] else None
        # recent='run': x_t also carries the op-GRU state of the last macro-item's whole operation run
        self.recent_run = nn.Linear(d, d, bias=False) if cfg["recent"] == "run" else None
        # recent='gated': the last item's vector passes one GRU step with that run's state as input, so
        # what the operations say (an intent) can select what of the item carries over (a product, not a sum)
        self.recent_gru = nn.GRUCell(d, d) if cfg["recent"] == "gated" else None
        # ... and without an op-GRU the same step reads a learned vector: the same capacity, no operations,
        # so a model without them (SGNN-Self, the control of the planted check) differs only in those
        self.recent_input = (nn.Parameter(torch.empty(d)) if cfg["recent"] == "gated" and not cfg["op_gru"]
                             else None)
        self.gnn = (StarGNN(d, int(cfg["gnn_layers"]), seq_dim=d if cfg["op_gru"] else None,
                            message_source=cfg["message_source"])
                    if self.graph == "star_gnn" else None)
        self.rnn = LeftAlignedGRU(2 * d, d) if self.graph == "rnn" else None
        self.attn = (OpAwareSelfAttention(d, MAX_POSITIONS, int(cfg["attn_layers"]), int(cfg["heads"]),
                                          n_op_rows=n_ops + 2 if cfg["dyadic"] else None,
                                          dropout=float(cfg["dropout"]))
                     if self.use_attention else None)
        if cfg["dyadic"] and not (self.use_attention and self.abs_op):
            raise ValueError("dyadic needs attention=True and abs_op=True")
        self.fusion = make_fusion(cfg["fusion"], d, float(cfg["beta"]))
        self.scorer = CosineScorer(float(cfg["w_k"]))
        self.repeat = RepeatPointer(d) if cfg["repeat"] != "off" else None
        self.pointer_on_items = cfg["repeat"] == "pointer-items"  # keys: e_v, not the GNN's node vectors
        self.drop = UniformMaskDropout(float(cfg["dropout"]))  # on the embeddings
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """U(−1/√d, 1/√d) for every weight as in MKM-SR / SR-GNN (§V-A-4); LayerNorm keeps 1 / 0."""
        stdv = 1.0 / math.sqrt(self.dim)
        norms = {id(p) for m in self.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters()}
        for p in self.parameters():
            if id(p) not in norms:
                nn.init.uniform_(p, -stdv, stdv)
        if hasattr(self.fusion, "reset_parameters"):  # EMBSR-NF's layer has an initialisation of its own
            self.fusion.reset_parameters()
        with torch.no_grad():  # padding rows stay exactly 0 (padding_idx: they never get a gradient)
            for emb in (self.item_emb, self.op_emb):
                if emb is not None:
                    emb.weight[0].zero_()

    # ------------------------------------------------------------------ batching
    def collate(self, split: SplitArrays, index: np.ndarray, target_op: TargetOp = "oracle") -> Batch:
        """Tensors for rows ``index``, trimmed to the batch's longest session.

        Keys (int64 CPU tensors): ``items``, ``ops`` B×L (0 = padding), ``lengths`` B,
        ``target_op`` B (id fed to the star token), ``targets`` B, and for graph models the
        multigraph (``g_*``, see :class:`~embsr_core.models.layers.multigraph.Multigraph`).
        """
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        if index.size == 0:
            raise ValueError("collate: empty index")
        lengths = split.lengths[index].astype(np.int64)
        if lengths.min() < 1:
            raise ValueError(f"collate: session row {int(index[np.argmin(lengths)])} has length < 1")
        if lengths.max() + 1 > MAX_POSITIONS:
            raise ValueError(f"collate: sessions longer than {MAX_POSITIONS - 1} micro-behaviors")
        width = int(lengths.max())
        valid = np.arange(width)[None, :] < lengths[:, None]
        items = np.where(valid, split.items[index, :width], 0).astype(np.int64)
        ops = np.where(valid, split.ops[index, :width], 0).astype(np.int64)
        if self.macro_tokens:  # one token per macro-item: run lengths (micro information) never enter
            items, lengths = macro_sequences(items, lengths)
            valid = np.arange(items.shape[1])[None, :] < lengths[:, None]
            ops = valid.astype(np.int64)  # a placeholder operation (1): this model never reads it
        if items.max() > self.n_items or items[valid].min() < 1:
            raise ValueError(f"collate: item ids must be in 1..{self.n_items}")
        if ops.max() > self.n_ops or (self.uses_operations and ops[valid].min() < 1):
            raise ValueError(f"collate: operation ids must be in 1..{self.n_ops}")
        batch: Batch = {
            "items": torch.from_numpy(items),
            "ops": torch.from_numpy(ops),
            "lengths": torch.from_numpy(lengths),
            "target_op": torch.from_numpy(self._target_ops(split, index, target_op)),
            "targets": torch.from_numpy(split.targets[index].astype(np.int64)),
        }
        if self.graph != "rnn":
            batch.update(build_multigraph(items, ops, lengths).to_tensors("g_"))
        return batch

    def _target_ops(self, split: SplitArrays, index: np.ndarray, target_op: TargetOp) -> np.ndarray:
        if isinstance(target_op, str):
            if target_op == "oracle":
                return split.target_ops[index].astype(np.int64)
            if target_op == "unknown":
                return np.full(len(index), self.unknown_op, dtype=np.int64)
            raise ValueError(f"target_op: expected 'oracle', 'unknown' or an operation id, got {target_op!r}")
        op = int(target_op)
        if not 1 <= op <= self.n_ops:
            raise ValueError(f"target_op: operation id {op} is outside 1..{self.n_ops}")
        return np.full(len(index), op, dtype=np.int64)

    # ------------------------------------------------------------------ model
    def _encode(self, batch: Batch, explain: bool = False) -> dict[str, Any]:
        items, ops, lengths = batch["items"], batch["ops"], batch["lengths"]  # B×L, B×L, B
        B, L = items.shape
        dev = items.device
        valid = torch.arange(L, device=dev)[None, :] < lengths[:, None]  # B×L
        rows = torch.arange(B, device=dev)
        out: dict[str, Any] = {}
        last_run: torch.Tensor | None = None
        if self.graph == "rnn":
            seq = self.drop(torch.cat([self.item_emb(items), self.op_emb(ops)], -1))  # B×L×2d
            item_part, _ = self.rnn(seq, lengths)  # B×L×d, padding zeroed
            star = item_part.sum(1) / lengths[:, None].to(item_part.dtype)  # B×d (eq. 2 analogue)
            last_item = item_part[rows, lengths - 1]  # B×d
            node_table = slots = None
        else:
            node_session = batch["g_node_session"]
            h0 = self.drop(self.item_emb(batch["g_node_items"]))  # Nn×d, eq. 1 (embedding dropout)
            if self.gnn is None:
                h_f, star = h0, segment_mean(h0, node_session, B)  # eq. 2
            else:
                seq_feat, src_pos, dst_pos = self._op_gru_features(batch)
                if (self.recent_run is not None or self.recent_gru is not None) and seq_feat is not None:
                    last_prefix = batch["g_macro_prefix"].index_select(0, self._last_macro(batch, B))
                    last_run = seq_feat.index_select(0, last_prefix)  # B×d: h̃ of the last run
                h_f, star, info = self.gnn(h0, node_session, B, batch["g_edge_src"], batch["g_edge_dst"],
                                           src_pos, dst_pos, seq_feat)
                if explain and info:
                    out["star_gate_node"] = info["alpha"]
                    out["star_weight_node"] = info["star_weight"]
            # every token's item part is one gather from [satellites; 0; stars]: e_{v_i} from the
            # satellites (padding → the zero row) and the star node at slot L (no B×L×d concatenation
            # whose gradient would come back in non-contiguous slices)
            micro_node = batch["g_micro_node"]  # B×L, padding → Nn
            n_nodes = h_f.shape[0]
            node_table = torch.cat([h_f, h_f.new_zeros(1, self.dim), star])  # (Nn+1+B)×d
            slots = torch.cat([micro_node, (n_nodes + 1 + rows)[:, None]], 1)  # B×(L+1)
            last_item = node_table.index_select(0, micro_node[rows, lengths - 1])  # B×d
            item_part = None
        tgt = batch["target_op"]
        if self.training and self.uses_target_op and self.target_op_dropout > 0:
            hide = torch.rand(B, device=dev) < self.target_op_dropout
            tgt = torch.where(hide, torch.full_like(tgt, self.unknown_op), tgt)
        x_s = star  # B×d
        x_t = last_item  # B×d: the last micro-behavior (recent interest), x[rows, lengths − 1]
        if self.recent_run is not None and last_run is not None:
            x_t = x_t + self.recent_run(last_run)
        if self.recent_gru is not None:
            step_in = last_run if last_run is not None else self.recent_input.expand(B, -1)
            if explain:  # the update gate z: the share of the item's own vector the step keeps
                out["recent_keep"] = recent_update_gate(self.recent_gru, step_in, x_t)
            x_t = self.recent_gru(step_in, x_t)
        if self.abs_op:  # (x_t is built from its B×d parts: a gather from x costs a B×L×d gradient)
            x_s = x_s + self.op_emb(tgt)  # eq. 13
            x_t = x_t + self.op_emb(ops[rows, lengths - 1])
        if self.attn is not None:
            token_ops = torch.cat([ops, tgt[:, None]], 1)  # B×(L+1)
            if node_table is None:
                tokens = torch.cat([item_part, star[:, None]], 1)  # B×(L+1)×d, star at slot L
            else:
                tokens = node_table.index_select(0, slots.reshape(-1)).view(B, L + 1, self.dim)
            key_mask = torch.cat([valid, valid.new_ones(B, 1)], 1)  # B×(L+1)
            forward = torch.arange(L, device=dev).expand(B, L)  # B×L: 0 = the oldest micro-behavior
            if self.reverse_positions:  # distance from the end: star 0, last micro-behavior 1, ...
                positions = torch.cat([(lengths[:, None] - forward).clamp_min(0), lengths.new_zeros(B, 1)], 1)
            else:
                positions = torch.cat([forward, lengths[:, None]], 1)  # B×(L+1), star after the last
            # eq. 12 and 13: x_i = e_{v_i} + e_{o_i}, x_s = e_s + e_{o_{t+1}} (padding rows are 0); the
            # attention adds e_{o_i} itself (by id when only the star row is computed)
            z_s, att = self.attn(tokens, key_mask, positions, token_ops, last_only=True,
                                 return_weights=explain, last_token=x_s,
                                 op_emb=self.op_emb if self.abs_op else None)  # B×d
            if explain:
                out["attention"] = att["weights"].mean(1)  # B×(L+1)×(L+1), heads averaged
                if "dyadic_logit" in att:
                    out["dyadic_logit"] = att["dyadic_logit"].mean(1)
                out["token_ops"] = token_ops
        else:
            z_s = x_s  # EMBSR-NS: no self-attention layer
        m, beta = self.fusion(z_s, x_t)  # B×d, eq. 18
        out.update(m=m, beta=beta, star=star, valid=valid)
        if self.repeat is not None:  # the copy mechanism's gate and pointer over the micro-behaviors
            if self.pointer_on_items:  # each micro-behavior's item embedding e_v (as dropped for the GNN)
                seen = self.drop(self.item_emb(items))
            elif node_table is None:
                seen = item_part
            else:
                seen = node_table.index_select(0, micro_node.reshape(-1)).view(B, L, self.dim)
            if self.op_emb is not None:
                seen = seen + self.op_emb(ops)
            out["repeat_share"], out["repeat_alpha"] = self.repeat(m, x_t, seen, valid)
        return out

    @staticmethod
    def _last_macro(batch: Batch, n_sessions: int) -> torch.Tensor:
        """B: the macro position of each session's last macro-item (``recent='run'`` reads its whole run).

        The largest macro position of each session (every session has at least one), by a scatter of
        fixed size: a bincount's size depends on the data, which makes a GPU wait every step.
        """
        session = batch["g_macro_session"]
        positions = torch.arange(session.shape[0], device=session.device)
        return positions.new_full((n_sessions,), -1).scatter_reduce_(0, session, positions, reduce="amax")

    def _op_gru_features(self, batch: Batch) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """The op-GRU states h̃ (eq. 3–4) as a table and each edge's row in it, for the GNN messages.

        The table is the trie's P states, not the M per-position states h̃[macro_prefix]: the GNN
        projects every row of it (W⁺_m, W⁻_m of eq. 6) and then gathers one per edge, so indexing the
        edges straight into the trie (P ≪ M: few distinct operation runs) gives the same messages for
        a fifth of those products and their gradients.
        """
        src_pos, dst_pos = batch["g_edge_src_pos"], batch["g_edge_dst_pos"]  # Ne macro positions
        if self.op_gru is None:
            return None, src_pos, dst_pos
        trie_h = self.op_gru(self.op_emb(batch["g_trie_op"]), batch["g_trie_parent"],
                             batch["g_trie_level_ptr"].tolist())  # P×d
        prefix = batch["g_macro_prefix"]  # M: the trie node of each macro position
        return trie_h, prefix.index_select(0, src_pos), prefix.index_select(0, dst_pos)

    def scores(self, batch: Batch) -> torch.Tensor:
        enc = self._encode(batch)
        logits = self.scorer.scores(enc["m"], self.item_emb.weight)  # B×(n+1)
        return logits if self.repeat is None else self._copy_log_probs(enc, logits, batch)

    def loss(self, batch: Batch) -> torch.Tensor:
        enc = self._encode(batch)
        if self.repeat is None:
            return self.scorer.loss(enc["m"], self.item_emb.weight, batch["targets"])
        item_ce = self.scorer.row_losses(enc["m"], self.item_emb.weight, batch["targets"])  # B
        return self.repeat.loss(item_ce, enc["repeat_share"], enc["repeat_alpha"], batch["items"], batch["targets"])

    def _copy_log_probs(self, enc: dict[str, Any], logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        assert self.repeat is not None
        return self.repeat.log_probs(logits, enc["repeat_share"], enc["repeat_alpha"], batch["items"])

    @torch.no_grad()
    def explain(self, batch: Batch) -> dict[str, Any]:
        """Per-session explanation (CPU tensors; keys present only when the component exists).

        - ``attention`` B×(L+1)×(L+1): self-attention weights of the last attention layer; token
          L is the star token x_s, tokens ≥ length are padding (weight 0 as keys).
        - ``attention_star`` B×(L+1): its star row (the weights that build z_s).
        - ``dyadic_logit`` / ``dyadic_logit_star``: the operation-pair term x_i W^Q e_{r_ij}/√d
          added to the attention logits (same shapes; padding keys set to 0).
        - ``token_ops`` B×(L+1): the operation of each token (last = the target op used).
        - ``beta`` B×d and ``beta_mean`` B: the fusion gate (constant for fixed β).
        - ``star_gate`` B×L: α (eq. 9) of the item at each micro position (0 at padding), and
          ``star_weight`` B×L: that item's weight in the star update (eq. 10).
        - ``recent_keep`` B×d and ``recent_keep_mean`` B (``recent="gated"``): the update gate of the
          last item's GRU step, the share of the item's own vector kept; 1 − it is what the operations
          of its run (or, without an op-GRU, the learned input) rewrote.
        - ``repeat_share`` B and ``repeat_alpha`` B×L (``repeat="pointer"``): how much of the
          prediction copies an item of the session, and the pointer's weight on each micro-behavior.
        - ``valid`` B×L bool, ``lengths`` B.
        """
        was_training = self.training
        self.eval()
        try:
            enc = self._encode(batch, explain=True)
        finally:
            self.train(was_training)
        valid = enc["valid"]
        res: dict[str, Any] = {"valid": valid, "lengths": batch["lengths"]}
        if "attention" in enc:
            key_mask = torch.cat([valid, valid.new_ones(valid.shape[0], 1)], 1)[:, None, :]
            res["attention"] = enc["attention"]
            res["attention_star"] = enc["attention"][:, -1]
            res["token_ops"] = enc["token_ops"]
            if "dyadic_logit" in enc:
                dy = enc["dyadic_logit"].masked_fill(~key_mask, 0.0)
                res["dyadic_logit"], res["dyadic_logit_star"] = dy, dy[:, -1]
        if enc["beta"] is not None:
            res["beta"], res["beta_mean"] = enc["beta"], enc["beta"].mean(-1)
        if "repeat_share" in enc:
            res["repeat_share"], res["repeat_alpha"] = enc["repeat_share"][:, 0], enc["repeat_alpha"]
        if "recent_keep" in enc:
            res["recent_keep"], res["recent_keep_mean"] = enc["recent_keep"], enc["recent_keep"].mean(-1)
        if "star_gate_node" in enc:
            micro = batch["g_micro_node"]  # B×L, padding → Nn
            for key in ("star_gate", "star_weight"):
                res[key] = gather_nodes(enc[key + "_node"], micro)
        return {k: (v.detach().float().cpu() if v.is_floating_point() else v.detach().cpu())
                for k, v in res.items()}


def recent_update_gate(cell: nn.GRUCell, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """z of ``cell(x, h)`` (B×d): h' = (1 − z) ⊙ n + z ⊙ h, PyTorch's gate order being (r, z, n)."""
    d = cell.hidden_size
    gi = F.linear(x, cell.weight_ih[d:2 * d], None if cell.bias_ih is None else cell.bias_ih[d:2 * d])
    gh = F.linear(h, cell.weight_hh[d:2 * d], None if cell.bias_hh is None else cell.bias_hh[d:2 * d])
    return torch.sigmoid(gi + gh)


# ---------------------------------------------------------------------- registry
def _build(fixed: dict[str, Any], n_items: int, n_ops: int, config: dict[str, Any]) -> EMBSR:
    return EMBSR(n_items, n_ops, {**config, **fixed})


_COMMON = (
    Param("embedding_dim", "int", 100, "embedding size d (paper: 100)", low=8, high=1024),
    Param("dropout", "float", 0.1, "dropout on item embeddings, attention weights and sublayers",
          low=0.0, high=0.9, search=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5)),
    Param("w_k", "float", 8.0, "scale w_k of the cosine scores (eq. 19; paper: 12, default 8: better on "
          "validation of planted data and of the real samples)", low=0.1, high=100.0,
          search=(3.0, 4.0, 6.0, 8.0, 10.0, 12.0, 16.0)),
)
_REPEAT = (Param("repeat", "choice", "pointer",
                 "'pointer' (default): mix the item scores with a copy of the session's own items, a "
                 "pointer from the session vector over its micro-behaviors with a learned share (not in "
                 "the paper; level on planted validation, far better on the real samples' validation, where "
                 "next items are often items already seen); 'pointer-items' points with the item embeddings "
                 "instead of the GNN's node vectors (better on planted validation, worse M@20 on the samples'); "
                 "'off' = the paper's scoring",
                 choices=("off", "pointer", "pointer-items"), search=("off", "pointer")),)
_GNN = (Param("gnn_layers", "int", 1, "star-GNN propagation steps (paper: 1; two are better on planted data, "
              "mixed on the real samples: tuned)", low=1, high=8, search=(1, 2)),)
_MSG = (Param("message_source", "choice", "paper",
              "what an outgoing-edge message carries: 'paper' = the neighbour's embedding and op-GRU "
              "state (eq. 5), 'code' = the node's own embedding and op-GRU state (authors' code)",
              choices=("paper", "code")),)
_TOKENS = (Param("tokens", "choice", "macro",
                 "attention tokens: 'macro' = one per macro-item (no micro-behavior information, as "
                 "§V-D describes SGNN-Self), 'micro' = one per micro-behavior (an item visited with k "
                 "operations appears k times)", choices=("macro", "micro")),)
_ATT = (
    Param("attn_layers", "int", 1, "self-attention blocks (paper: 1; a second block lets every pair of "
          "micro-behaviors meet, better on planted data but worse on the small real samples: tuned)",
          low=1, high=6, search=(1, 2)),
    Param("positions", "choice", "reverse",
          "positional embeddings (eq. 14) counted from the session's end ('reverse', default: the last "
          "micro-behavior always has the same position, as in SGNN-HN; better on validation) or from its "
          "start ('forward', the plain reading of the paper)",
          choices=("forward", "reverse")),
    Param("heads", "int", 1, "attention heads (paper: 1); must divide embedding_dim", low=1, high=16),
)
_RECENT = (Param("recent", "choice", "gated",
                 "recent interest x_t of the fusion (eq. 18): 'micro' = the last micro-behavior's item and "
                 "operation (the paper), 'run' = plus a linear map of the op-GRU state of the last "
                 "macro-item's whole operation run, 'gated' (default) = the last item's vector passed "
                 "through one GRU step with that state as input (better on planted and real validation)",
                 choices=("micro", "run", "gated"), search=("micro", "run", "gated")),)
_RECENT_NO_OPS = (Param("recent", "choice", "gated",
                        "recent interest x_t of the fusion (eq. 18): 'micro' = the last item (the paper), "
                        "'gated' (default, as EMBSR's) = the last item's vector through one GRU step on a "
                        "learned input (this model has no operation run to read)",
                        choices=("micro", "gated"), search=("micro", "gated")),)
_TOP = (Param("target_op_dropout", "float", 0.5,
              "training probability of hiding the target operation behind the 'unknown' token, so one "
              "model serves oracle, unknown and query modes (0 = the paper's oracle-only training)",
              low=0.0, high=1.0),)
_BETA = (Param("beta", "float", 0.5, "fixed fusion weight β on z_s (§V-F)", low=0.0, high=1.0),)

# stored configurations saved before a knob existed meant the behaviour of that time
_ABSENT = {"positions": "forward", "recent": "micro", "repeat": "off"}
_FULL = {"graph": "star_gnn", "op_gru": True, "attention": True, "abs_op": True, "dyadic": True, "fusion": "gate"}
_SPECS: tuple[tuple[str, str, str, dict[str, Any], tuple[Param, ...]], ...] = (
    ("EMBSR", "embsr", "EMBSR: multigraph star GNN with op-GRU + operation-aware self-attention + fusion gate",
     {}, _GNN + _MSG + _ATT + _RECENT + _TOP),
    ("EMBSR-NS", "ablation", "EMBSR without the operation-aware self-attention (z_s = x_s)",
     {"attention": False, "dyadic": False}, _GNN + _MSG + _RECENT + _TOP),
    ("EMBSR-NG", "ablation", "EMBSR without the GNN and the op-GRU (item embeddings feed the attention)",
     {"graph": "none", "op_gru": False}, _ATT + _RECENT_NO_OPS + _TOP),
    ("EMBSR-NF", "ablation", "EMBSR with concatenation + MLP instead of the fusion gate",
     {"fusion": "mlp"}, _GNN + _MSG + _ATT + _RECENT + _TOP),
    ("EMBSR-FixedBeta", "variant", "EMBSR with a fixed fusion weight β (§V-F)",
     {"fusion": "fixed"}, _GNN + _MSG + _ATT + _RECENT + _TOP + _BETA),
    ("SGNN-Self", "variant", "star GNN over macro items + standard self-attention (no operations)",
     {"op_gru": False, "abs_op": False, "dyadic": False}, _GNN + _ATT + _RECENT_NO_OPS + _TOKENS),
    ("SGNN-Seq-Self", "variant", "SGNN-Self + op-GRU states in the GNN messages (sequential pattern)",
     {"abs_op": False, "dyadic": False}, _GNN + _MSG + _ATT + _RECENT),
    ("RNN-Self", "variant", "a GRU over [item; operation] embeddings replaces the GNN + standard self-attention",
     {"graph": "rnn", "op_gru": False, "abs_op": False, "dyadic": False}, _ATT + _RECENT_NO_OPS),
    ("SGNN-Abs-Self", "variant", "star GNN + standard self-attention with absolute operation embeddings",
     {"op_gru": False, "dyadic": False}, _GNN + _ATT + _RECENT_NO_OPS + _TOP),
    ("SGNN-Dyadic", "variant", "star GNN without op-GRU + operation-aware (dyadic) self-attention",
     {"op_gru": False}, _GNN + _ATT + _RECENT_NO_OPS + _TOP),
)

for _name, _family, _desc, _switches, _params in _SPECS:
    _fixed = {**_FULL, **_switches}
    register(ModelSpec(
        name=_name, family=_family, description=_desc, params=_COMMON + _params + _REPEAT,  # type: ignore[arg-type]
        builder=partial(_build, _fixed),
        uses_operations=bool(_fixed["op_gru"] or _fixed["abs_op"] or _fixed["graph"] == "rnn"),
        fixed=_fixed,
        absent=_ABSENT,
    ))
