"""Operation-aware self-attention (eq. 12–17), with a plain self-attention path.

e_ij = x_i W^Q (x_j + e_{r_ij} + e_{p_j})ᵀ / √d,   z_i = Σ_j α_ij (x_j + e_{r_ij} + e_{p_j})

The dyadic term (q_i·e_{r_ij} in the logits, Σ_j α_ij e_{r_ij} in the values, r_ij = o_i·n + o_j,
|R| = n² relations for n operation rows) has two exact forms, chosen per call by size
(:func:`dyadic_form`):

- ``"gather"``: the relation row of every (query, key) pair, B×Q×K×d, dotted with q_i and weighted
  by α_ij. Cost O(B·Q·K·d), independent of |R|; the table's gradient is one scatter into |R|×d.
- ``"table"``: every q_i·e_r for all r (one matmul of the flattened B·Q queries with M_R), gathered
  by pair id; the weights are summed into |R| buckets per query and multiplied by M_R (one matmul
  again). Cost O(B·Q·|R|·d), memory O(B·Q·|R|) (no factor d); cheaper when there are few operations.

Neither broadcasts M_R over the batch (a batched ``buckets @ R.unsqueeze(0)`` makes autograd
materialise a B×|R|×d gradient: 8 GB at 200 operations and batch 512). In training and evaluation
only the star row is a query (Q = 1), so the gather form holds B×K×d relation rows; explanations and
``attn_layers`` > 1 ask for every row (Q = K).

Without ``n_op_rows`` (no dyadic term) this is a standard single-layer Transformer encoder block
(optionally with learned K/V projections) usable by GC-SAN / BERT4Rec-style baselines.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

DyadicForm = Literal["auto", "gather", "table"]
RelValues = Callable[[torch.Tensor], torch.Tensor]  # attention weights B×H×Q×K ↦ Σ_j α_ij e_{r_ij}
# "table" while |R| ≤ TABLE_MAX_RELATIONS_PER_KEY × K. Measured on CPU (benchmarks/train_step.py
# --dyadic-forms, batch 512, K = 51, d = 100, forward + backward): the table's two large matmuls beat
# the per-pair gather up to |R| ≈ 2,000 for the star row and ≈ 2,700 for all rows; at 200 operations
# (|R| = 40,804) the table is 10× slower for the star row and does not fit for all rows.
TABLE_MAX_RELATIONS_PER_KEY = 32


def dyadic_form(n_relations: int, n_keys: int) -> Literal["gather", "table"]:
    """The cheaper exact form of the dyadic term for |R| = ``n_relations`` and K = ``n_keys``."""
    return "table" if n_relations <= TABLE_MAX_RELATIONS_PER_KEY * n_keys else "gather"


class OpAwareAttentionLayer(nn.Module):
    """One attention block: attention, dropout, residual + LayerNorm, FFN (eq. 17), residual + LN.

    Args:
        dim: model size d.
        heads: attention heads (paper: 1); ``dim`` must be divisible by it.
        n_op_rows: rows of the operation vocabulary incl. padding and special tokens (the relation
            table M_R has n_op_rows² rows); ``None`` = no dyadic term (standard self-attention).
        dropout: on the attention weights and both sublayer outputs.
        kv_projection: learn W^K, W^V (standard Transformer); the paper uses x_j directly.
        dyadic: ``"auto"`` picks the cheaper exact form per call (:func:`dyadic_form`);
            ``"gather"`` / ``"table"`` force one (tests, benchmarks).
    """

    def __init__(self, dim: int, heads: int = 1, n_op_rows: int | None = None, dropout: float = 0.0,
                 kv_projection: bool = False, dyadic: DyadicForm = "auto"):
        super().__init__()
        if dyadic not in ("auto", "gather", "table"):
            raise ValueError(f"dyadic: expected auto, gather or table, got {dyadic!r}")
        self.dyadic = dyadic
        if dim % heads:
            raise ValueError(f"heads: {heads} does not divide the embedding size {dim}")
        self.dim, self.heads, self.n_op_rows = dim, heads, n_op_rows
        self.w_q = nn.Linear(dim, dim, bias=False)  # W^Q of eq. 16
        self.w_k = nn.Linear(dim, dim, bias=False) if kv_projection else None
        self.w_v = nn.Linear(dim, dim, bias=False) if kv_projection else None
        self.relation = nn.Embedding(n_op_rows * n_op_rows, dim) if n_op_rows else None  # M_R
        self.ffn = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))  # eq. 17
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor, pos: torch.Tensor | None = None,
                ops: torch.Tensor | None = None, query_index: torch.Tensor | None = None,
                return_weights: bool = False, pos_ids: torch.Tensor | None = None,
                pos_table: torch.Tensor | None = None,
                queries: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """x: B×K×d tokens; key_mask: B×K bool (True = attend); pos: B×K×d positional embeddings
        (added to keys and values) or None; ops: B×K operation ids (needed for the dyadic term);
        query_index: Q positions to compute outputs for (default all K).

        ``pos_ids`` (B×K) with ``pos_table`` (P×d) instead of ``pos``: the same positional terms,
        q_i·e_{p_j} and Σ_j α_ij e_{p_j}, from every query's scores against the table (exact; for few
        queries it never builds the B×K×d sum x + pos nor its gradient). Not with learned W^K / W^V.
        ``pos_ids`` B×K×S: S such terms per key, rows of the one ``pos_table`` (e.g. positions and,
        offset, operations); the table form of the dyadic term then joins the same two products.
        ``queries``: x[:, query_index] when the caller holds those tokens apart (their gradient then
        stays B×Q×d instead of a B×K×d scatter).

        Returns (B×Q×d outputs, info). With ``return_weights`` info holds ``weights`` B×H×Q×K and,
        with the dyadic term, ``dyadic_logit`` B×H×Q×K (its contribution to the attention logits).
        """
        B, K, d = x.shape
        H, dh = self.heads, self.dim // self.heads
        if pos_ids is not None and (pos is not None or pos_table is None or self.w_k is not None):
            raise ValueError("pos_ids needs pos_table, no pos, and no learned key / value projection")
        xq = x if query_index is None else x[:, query_index] if queries is None else queries  # B×Q×d
        Q = xq.shape[1]
        kv = x if pos is None else x + pos  # B×K×d: x_j + e_{p_j} (with pos_ids: e_{p_j} below)
        keys = kv if self.w_k is None else self.w_k(kv)
        vals = kv if self.w_v is None else self.w_v(kv)
        q = self.w_q(xq).view(B, Q, H, dh).transpose(1, 2) / math.sqrt(dh)  # B×H×Q×dh
        keys = keys.view(B, K, H, dh).transpose(1, 2)  # B×H×K×dh
        vals = vals.view(B, K, H, dh).transpose(1, 2)
        logits = q @ keys.transpose(-1, -2)  # B×H×Q×K
        info: dict[str, torch.Tensor] = {}
        pair = form = None
        if self.relation is not None:
            if ops is None:
                raise ValueError("the dyadic term needs the operation ids of the tokens")
            ops_q = ops if query_index is None else ops[:, query_index]
            pair = ops_q[:, :, None] * self.n_op_rows + ops[:, None, :]  # B×Q×K: r_ij
            form = self.dyadic if self.dyadic != "auto" else dyadic_form(self.relation.num_embeddings, K)
        pos_values = None
        if pos_ids is not None and pos_table is not None:
            ids = pos_ids[:, None].expand(B, Q, *pos_ids.shape[1:])  # B×Q×K(×S): each key's rows, per query
            if form == "table" and not return_weights:  # one pair of products for all the terms
                ids = torch.cat([ids.reshape(B, Q, K, -1), (pair + pos_table.shape[0])[..., None]], -1)
                pos_table = torch.cat([pos_table, self.relation.weight])
                pair = None
            pos_logit, pos_values = _table_terms(q, ids, pos_table)
            logits = logits + pos_logit
        rel_values = None
        if pair is not None:
            dyadic, rel_values = (self._dyadic_gather if form == "gather" else self._dyadic_table)(q, pair)
            logits = logits + dyadic
            if return_weights:
                info["dyadic_logit"] = dyadic
        logits = logits.masked_fill(~key_mask[:, None, None, :], float("-inf"))
        weights = torch.softmax(logits.float(), -1).to(vals.dtype)  # eq. 15
        if return_weights:
            info["weights"] = weights
        weights = self.drop(weights)
        out = weights @ vals  # B×H×Q×dh
        if pos_values is not None:
            out = out + pos_values(weights)  # Σ_j α_ij e_{p_j}
        if rel_values is not None:
            out = out + rel_values(weights)  # Σ_j α_ij e_{r_ij}
        z = out.transpose(1, 2).reshape(B, Q, d)  # eq. 14
        h = self.norm1(xq + self.drop(z))
        return self.norm2(h + self.drop(self.ffn(h))), info

    def _dyadic_gather(self, q: torch.Tensor, pair: torch.Tensor) -> tuple[torch.Tensor, RelValues]:
        """q: B×H×Q×dh, pair: B×Q×K → (B×H×Q×K logits q_i·e_{r_ij}, weights ↦ B×H×Q×dh values)."""
        B, H, Q, dh = q.shape
        K = pair.shape[-1]
        # one (K×dh) block of relation rows per (query, head): the batch folds into bmm's batch
        rel = self.relation(pair).view(B * Q, K, H, dh).transpose(1, 2).reshape(B * Q * H, K, dh)
        flat_q = q.transpose(1, 2).reshape(B * Q * H, dh, 1)
        logits = torch.bmm(rel, flat_q).view(B, Q, H, K).transpose(1, 2)  # B×H×Q×K

        def values(weights: torch.Tensor) -> torch.Tensor:  # B×H×Q×K → B×H×Q×dh
            flat_w = weights.transpose(1, 2).reshape(B * Q * H, 1, K)
            return torch.bmm(flat_w, rel).view(B, Q, H, dh).transpose(1, 2)

        return logits, values

    def _dyadic_table(self, q: torch.Tensor, pair: torch.Tensor) -> tuple[torch.Tensor, RelValues]:
        """Same contract as :meth:`_dyadic_gather`, via all |R| scores per query (few operations)."""
        return _table_terms(q, pair, self.relation.weight)


def _table_terms(q: torch.Tensor, ids: torch.Tensor, table: torch.Tensor) -> tuple[torch.Tensor, RelValues]:
    """q_i·e_{ids_ij} and weights ↦ Σ_j α_ij e_{ids_ij} for rows of a shared table (M_R, M_P, M_O).

    q: B×H×Q×dh, ids: B×Q×K row ids, or B×Q×K×S for S terms per key (rows of one table, their
    terms summed: e.g. position and operation), table: T×d → (B×H×Q×K logits, B×H×Q×K weights ↦
    B×H×Q×dh): every query scored against all T rows in one matmul, gathered by id; the weights
    summed into T buckets per query and multiplied by the table (one matmul again).
    """
    B, H, Q, dh = q.shape
    K = ids.shape[2]
    S = ids.shape[3] if ids.dim() == 4 else 1
    R = table.view(-1, H, dh).transpose(0, 1)  # H×T×dh
    n_rows = R.shape[1]
    flat_q = q.transpose(0, 1).reshape(H, B * Q, dh)  # H×BQ×dh: the batch folded into the rows
    flat_ids = ids.reshape(1, B * Q, K * S).expand(H, B * Q, K * S)
    q_rows = torch.bmm(flat_q, R.transpose(1, 2))  # H×BQ×T: every q_i·e_r once
    picked = q_rows.gather(-1, flat_ids)  # H×BQ×KS
    if S > 1:
        picked = picked.view(H, B * Q, K, S).sum(-1)
    logits = picked.view(H, B, Q, K).transpose(0, 1)  # B×H×Q×K

    def values(weights: torch.Tensor) -> torch.Tensor:  # B×H×Q×K → B×H×Q×dh
        flat_w = weights.transpose(0, 1).reshape(H, B * Q, K)
        if S > 1:
            flat_w = flat_w[..., None].expand(H, B * Q, K, S).reshape(H, B * Q, K * S)
        buckets = flat_w.new_zeros(H, B * Q, n_rows).scatter_add_(-1, flat_ids, flat_w)  # H×BQ×T
        return torch.bmm(buckets, R).view(H, B, Q, dh).transpose(0, 1)

    return logits, values


class OpAwareSelfAttention(nn.Module):
    """A stack of :class:`OpAwareAttentionLayer` with learned positional embeddings (M_P).

    ``forward(..., last_only=True)`` computes the final layer for the last token only (the star
    token x_s, whose output is z_s): the result is identical to the full computation because the
    other outputs of the final layer are not used.
    """

    def __init__(self, dim: int, max_positions: int, layers: int = 1, heads: int = 1,
                 n_op_rows: int | None = None, dropout: float = 0.0, kv_projection: bool = False):
        super().__init__()
        self.max_positions = max_positions
        self.position = nn.Embedding(max_positions, dim)  # M_P
        self.layers = nn.ModuleList(
            OpAwareAttentionLayer(dim, heads, n_op_rows, dropout, kv_projection) for _ in range(layers)
        )

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor, positions: torch.Tensor,
                ops: torch.Tensor | None = None, last_only: bool = True, return_weights: bool = False,
                last_token: torch.Tensor | None = None,
                op_emb: nn.Embedding | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """x: B×K×d; key_mask: B×K; positions: B×K position ids (< max_positions); ops: B×K;
        last_token: x[:, -1] (B×d) if the caller holds it apart (its gradient then stays B×d).
        ``op_emb``: the tokens are x + op_emb(ops) (eq. 12's e_{o_i}); ``last_token``, if given,
        already holds its own (eq. 13).

        Returns (B×d output of the last token if ``last_only`` else B×K×d, info of the last layer).
        A single layer that only computes the last token takes the positions, and the operations,
        as ids into M_P and M_O (no B×K×d sums nor their gradients, see
        :meth:`OpAwareAttentionLayer.forward`).
        """
        # Checked on the CPU only: reading the maximum back would make a GPU wait every step; the
        # collate function builds the positions from sessions cut to the model's max length.
        if positions.device.type == "cpu" and int(positions.max()) >= self.max_positions:
            raise ValueError(f"sequence position {int(positions.max())} exceeds the positional table "
                             f"({self.max_positions} rows); sessions must be shorter")
        if op_emb is not None and ops is None:
            raise ValueError("op_emb needs the operation ids of the tokens")
        pos: torch.Tensor | None = None  # B×K×d, built only for layers that compute every token
        info: dict[str, torch.Tensor] = {}
        last = torch.full((1,), x.shape[1] - 1, dtype=torch.long, device=x.device)  # no host-to-device copy
        for i, layer in enumerate(self.layers):
            final = i == len(self.layers) - 1
            if final and last_only and not return_weights and layer.w_k is None:
                queries = last_token[:, None] if last_token is not None and i == 0 else None
                ids, table = positions, self.position.weight
                if op_emb is not None and i == 0:  # keys and values x_j + e_{o_j}: e_{o_j} from M_O by id
                    ids = torch.stack([positions, ops + self.max_positions], -1)  # B×K×2
                    table = torch.cat([table, op_emb.weight])
                    if queries is None:
                        queries = (x[:, -1] + op_emb(ops[:, -1]))[:, None]
                x, info = layer(x, key_mask, None, ops, query_index=last, pos_ids=ids,
                                pos_table=table, queries=queries)
                continue
            if op_emb is not None and i == 0:
                x = x + op_emb(ops)
            if pos is None:
                pos = self.position(positions)
            qi = last if (final and last_only and not return_weights) else None
            x, info = layer(x, key_mask, pos, ops, query_index=qi, return_weights=return_weights and final)
        return (x[:, -1] if last_only else x), info
