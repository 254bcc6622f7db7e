"""The faster training step computes what the former code computed (issue 16).

Each reference below is the former formula written out plainly (advanced indexing, concatenations,
one Nn×d product per projection, log-softmax cross-entropy). The tests compare losses, outputs and
every gradient of the current layers with them, per layer and for the whole model in training mode
(dropout included: both consume the random stream in the same order).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _model_helpers import one_torch_thread, random_split  # noqa: F401 (autouse fixture)
from torch.nn import functional as F

from embsr_core.models import embsr as embsr_module
from embsr_core.models.layers.dropout import UniformMaskDropout
from embsr_core.models.layers.gather import gather_nodes
from embsr_core.models.layers.op_attention import OpAwareAttentionLayer, OpAwareSelfAttention
from embsr_core.models.layers.op_gru import PrefixTrieGRU
from embsr_core.models.layers.scoring import CosineScorer
from embsr_core.models.layers.segment import segment_mean, segment_softmax
from embsr_core.models.layers.session_graph import GatedGraphConv, _PaperGatedUpdate
from embsr_core.models.layers.star_gnn import StarGNN
from embsr_core.models.registry import build_model

D, N_ITEMS, N_OPS = 16, 40, 4
ATOL = 1e-5


# ---------------------------------------------------------------------- the former formulas
def ref_cosine_loss(_scorer: CosineScorer, m: torch.Tensor, items: torch.Tensor, targets: torch.Tensor,
                    w_k: float) -> torch.Tensor:
    logits = w_k * F.normalize(m, dim=-1) @ F.normalize(items[1:], dim=-1).t()
    return F.cross_entropy(logits, targets - 1)


def ref_gather_nodes(values: torch.Tensor, node_index: torch.Tensor) -> torch.Tensor:
    return torch.cat([values, values.new_zeros((1, *values.shape[1:]))])[node_index]


def ref_seq_messages(self: GatedGraphConv, seq_feat, in_pos, out_pos):
    return self.seq_in(seq_feat)[in_pos], self.seq_out(seq_feat)[out_pos]


def ref_step(self: GatedGraphConv, h, src, dst, w_in=None, w_out=None, seq_msg=None, out_from=None):
    n_nodes, d = h.shape
    m_in = self.msg_in(h)[src]
    m_out = self.msg_out(h)[dst if out_from is None else out_from]
    if seq_msg is not None:
        m_in, m_out = m_in + seq_msg[0], m_out + seq_msg[1]
    if w_in is not None:
        m_in = m_in * w_in[:, None]
    if w_out is not None:
        m_out = m_out * w_out[:, None]
    a_in = h.new_zeros(n_nodes, d).index_add_(0, dst, m_in)
    a_out = h.new_zeros(n_nodes, d).index_add_(0, src, m_out)
    if self.bias_in is not None:
        a_in, a_out = a_in + self.bias_in, a_out + self.bias_out
    return ref_update(self, torch.cat([a_in, a_out], -1), h)


def ref_update(self: GatedGraphConv, a, h):
    if self.cell is not None:
        return self.cell(a, h)
    ga_z, ga_r, ga_u = self.w_a(a).chunk(3, -1)
    gh_z, gh_r = self.u_zr(h).chunk(2, -1)
    z, r = torch.sigmoid(ga_z + gh_z), torch.sigmoid(ga_r + gh_r)
    return (1 - z) * h + z * torch.tanh(ga_u + self.u_u(r * h))


def ref_star_forward(self: StarGNN, h0, node_session, n_sessions, edge_src, edge_dst, edge_src_pos=None,
                     edge_dst_pos=None, seq_feat=None):
    d = self.dim
    seq_msg = None
    if self.seq_in is not None:
        out_pos = edge_dst_pos if self.message_source == "paper" else edge_src_pos
        seq_msg = ref_seq_messages(self, seq_feat, edge_src_pos, out_pos)
    out_from = edge_dst if self.message_source == "paper" else edge_src
    star = segment_mean(h0, node_session, n_sessions) if self.star else None
    h, info = h0, {}
    for _ in range(self.layers):
        h_hat = ref_step(self, h, edge_src, edge_dst, seq_msg=seq_msg, out_from=out_from)
        if star is None:
            h = h_hat
            continue
        s_node = star[node_session]
        alpha = (self.q1(h_hat) * self.k1(star)[node_session]).sum(-1, keepdim=True) / math.sqrt(d)
        h = (1 - alpha) * h_hat + alpha * s_node
        logit = (self.k2(h) * self.q2(star)[node_session]).sum(-1) / math.sqrt(d)
        weight = segment_softmax(logit, node_session, n_sessions)
        star = h.new_zeros(n_sessions, d).index_add_(0, node_session, weight[:, None] * h)
        info = {"alpha": alpha[:, 0], "star_weight": weight}
    if self.highway:
        g = torch.sigmoid(self.w_g(torch.cat([h0, h], -1)))
        h = g * h0 + (1 - g) * h
    return h, star, info


def ref_trie_gru(self: PrefixTrieGRU, op_emb, trie_parent, level_ptr):
    levels, h_prev = [], op_emb.new_zeros(1, self.hidden_dim)
    for depth in range(len(level_ptr) - 1):
        lo, hi = level_ptr[depth], level_ptr[depth + 1]
        h0 = h_prev.expand(hi - lo, -1) if depth == 0 else h_prev[trie_parent[lo:hi]]
        h_prev = self.cell(op_emb[lo:hi], h0)
        levels.append(h_prev)
    return torch.cat(levels, 0)


def ref_op_gru_features(self: embsr_module.EMBSR, batch):
    """The former wiring: h̃ per macro position (M×d), indexed by the edges' macro positions."""
    src_pos, dst_pos = batch["g_edge_src_pos"], batch["g_edge_dst_pos"]
    if self.op_gru is None:
        return None, src_pos, dst_pos
    trie_h = self.op_gru(self.op_emb(batch["g_trie_op"]), batch["g_trie_parent"],
                         batch["g_trie_level_ptr"].tolist())
    return trie_h[batch["g_macro_prefix"]], src_pos, dst_pos


def ref_attention_layer(self: OpAwareAttentionLayer, x, key_mask, pos, ops, query_index=None):
    B, K, d = x.shape
    H, dh = self.heads, self.dim // self.heads
    xq = x if query_index is None else x[:, query_index]
    Q = xq.shape[1]
    kv = x if pos is None else x + pos
    keys = kv if self.w_k is None else self.w_k(kv)
    vals = kv if self.w_v is None else self.w_v(kv)
    q = self.w_q(xq).view(B, Q, H, dh).transpose(1, 2) / math.sqrt(dh)
    keys, vals = keys.view(B, K, H, dh).transpose(1, 2), vals.view(B, K, H, dh).transpose(1, 2)
    logits = q @ keys.transpose(-1, -2)
    rel_values = None
    if self.relation is not None:
        ops_q = ops if query_index is None else ops[:, query_index]
        pair = ops_q[:, :, None] * self.n_op_rows + ops[:, None, :]
        dyadic, rel_values = self._dyadic_gather(q, pair)
        logits = logits + dyadic
    weights = self.drop(torch.softmax(logits.masked_fill(~key_mask[:, None, None, :], float("-inf")), -1))
    out = weights @ vals
    if rel_values is not None:
        out = out + rel_values(weights)
    h = self.norm1(xq + self.drop(out.transpose(1, 2).reshape(B, Q, d)))
    return self.norm2(h + self.drop(self.ffn(h))), {}


def ref_self_attention(self: OpAwareSelfAttention, x, key_mask, positions, ops=None, last_only=True,
                       return_weights=False, last_token=None, op_emb=None):
    if op_emb is not None:  # the former tokens: e_{v_i} + e_{o_i} built by the caller
        x = x + op_emb(ops)
    pos = self.position(positions)
    last = torch.tensor([x.shape[1] - 1])
    for i, layer in enumerate(self.layers):
        final = i == len(self.layers) - 1
        x, info = ref_attention_layer(layer, x, key_mask, pos, ops, last if final and last_only else None)
    return (x[:, -1] if last_only else x), info


# ---------------------------------------------------------------------- helpers
def _grads(module: torch.nn.Module, *tensors: torch.Tensor) -> list[torch.Tensor]:
    out = [p.grad.clone() for p in module.parameters() if p.grad is not None]
    out += [t.grad.clone() for t in tensors]
    module.zero_grad(set_to_none=True)
    for t in tensors:
        t.grad = None
    return out


def _assert_close(got: list[torch.Tensor], expected: list[torch.Tensor]) -> None:
    assert len(got) == len(expected) and got
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape
        assert torch.allclose(g, e, atol=ATOL, rtol=1e-4), (g - e).abs().max()


def _graph(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    n_nodes, n_edges, n_sessions = 30, 45, 4
    session = torch.randint(0, n_sessions, (n_nodes,), generator=gen)
    session[:n_sessions] = torch.arange(n_sessions)  # every session has a node
    session = torch.sort(session).values
    src = torch.randint(0, n_nodes, (n_edges,), generator=gen)
    dst = torch.randint(0, n_nodes, (n_edges,), generator=gen)
    pos_src = torch.randint(0, 50, (n_edges,), generator=gen)
    return n_nodes, n_sessions, session, src, dst, pos_src, pos_src + 1


# ---------------------------------------------------------------------- per layer
@pytest.mark.parametrize("w_k,zero_item", [(12.0, False), (90.0, False), (12.0, True)])  # 90: max-shifted
def test_cosine_loss_and_gradients_match_cross_entropy(w_k: float, zero_item: bool) -> None:
    """Loss, dL/dm and dL/d(item table) (row 0 = padding; a zero row takes F.normalize's ε branch)."""
    torch.manual_seed(0)
    scorer = CosineScorer(w_k)
    m = torch.randn(7, D, requires_grad=True)
    items = torch.randn(N_ITEMS + 1, D)
    if zero_item:
        items[5] = 0.0
    items.requires_grad_(True)
    targets = torch.randint(1, N_ITEMS + 1, (7,))
    scorer.loss(m, items, targets).backward()
    got = [scorer.loss(m, items, targets).detach(), *_grads(scorer, m, items)]
    ref_cosine_loss(scorer, m, items, targets, w_k).backward()
    expected = [ref_cosine_loss(scorer, m, items, targets, w_k).detach(), *_grads(scorer, m, items)]
    _assert_close(got, expected)


@pytest.mark.parametrize("w_k", [12.0, 90.0])
def test_cosine_row_losses_and_weighted_gradients_match_cross_entropy(w_k: float) -> None:
    """Per-row losses (the copy mechanism's input): values, and gradients under uneven row weights."""
    torch.manual_seed(0)
    scorer = CosineScorer(w_k)
    m = torch.randn(7, D, requires_grad=True)
    items = torch.randn(N_ITEMS + 1, D, requires_grad=True)
    targets = torch.randint(1, N_ITEMS + 1, (7,))
    weights = torch.rand(7) * 3
    rows = scorer.row_losses(m, items, targets)
    (rows * weights).sum().backward()
    got = [rows.detach(), *_grads(scorer, m, items)]
    logits = w_k * F.normalize(m, dim=-1) @ F.normalize(items[1:], dim=-1).t()
    ref = F.cross_entropy(logits, targets - 1, reduction="none")
    (ref * weights).sum().backward()
    _assert_close(got, [ref.detach(), *_grads(scorer, m, items)])


@pytest.mark.parametrize("message_source", ["paper", "code"])
@pytest.mark.parametrize("layers", [1, 2])
def test_star_gnn_outputs_and_gradients_match_the_former_formula(message_source: str, layers: int) -> None:
    n_nodes, n_sessions, session, src, dst, pos_src, pos_dst = _graph()
    torch.manual_seed(1)
    gnn = StarGNN(D, layers, seq_dim=D, message_source=message_source)  # type: ignore[arg-type]
    h0 = torch.randn(n_nodes, D, requires_grad=True)
    seq = torch.randn(60, D, requires_grad=True)
    args = (h0, session, n_sessions, src, dst, pos_src, pos_dst, seq)
    results = []
    for forward in (gnn.forward, lambda *a: ref_star_forward(gnn, *a)):
        h, star, info = forward(*args)
        (h.square().sum() + star.sin().sum() + info["alpha"].sum() + info["star_weight"].cos().sum()).backward()
        results.append([h.detach(), star.detach(), info["alpha"].detach(), info["star_weight"].detach(),
                        *_grads(gnn, h0, seq)])
    _assert_close(*results)


@pytest.mark.parametrize("update", ["paper", "gru_cell"])
def test_gated_graph_conv_with_weights_and_biases_matches_the_former_step(update: str) -> None:
    n_nodes, _, _, src, dst, _, _ = _graph(2)
    torch.manual_seed(2)
    conv = GatedGraphConv(D, steps=2, update=update, node_bias=True)  # type: ignore[arg-type]
    with torch.no_grad():
        conv.bias_in.normal_(), conv.bias_out.normal_()  # type: ignore[union-attr]
    h = torch.randn(n_nodes, D, requires_grad=True)
    w_in, w_out = torch.rand(len(src)), torch.rand(len(src))
    results = []
    for step in (conv.step, lambda *a: ref_step(conv, *a)):
        out = step(step(h, src, dst, w_in, w_out), src, dst, w_in, w_out)
        out.square().sum().backward()
        results.append([out.detach(), *_grads(conv, h)])
    _assert_close(*results)


def test_fused_gated_update_passes_gradcheck() -> None:
    """The hand-written backward of the 'paper' update against finite differences (float64)."""
    torch.manual_seed(4)
    conv = GatedGraphConv(6).double()
    a = torch.randn(9, 12, dtype=torch.float64, requires_grad=True)
    h = torch.randn(9, 6, dtype=torch.float64, requires_grad=True)
    weights = (conv.w_a.weight, conv.w_a.bias, conv.u_zr.weight, conv.u_u.weight)
    assert torch.autograd.gradcheck(lambda *t: _PaperGatedUpdate.apply(*t), (a, h, *weights))
    assert torch.allclose(conv.update(a, h), ref_update(conv, a, h), atol=1e-12)


def test_gated_update_under_autocast_matches_the_former_formula() -> None:
    """Under autocast the update is plain autograd ops; same values as the former code at bf16 precision."""
    torch.manual_seed(5)
    conv = GatedGraphConv(D)
    a, h = torch.randn(20, 2 * D), torch.randn(20, D)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, expected = conv.update(a, h), ref_update(conv, a, h)
    assert torch.allclose(got.float(), expected.float(), atol=2e-2)


def test_gather_nodes_gradient_matches_advanced_indexing() -> None:
    values = torch.randn(6, 3, requires_grad=True)
    index = torch.tensor([[5, 0, 6], [1, 6, 5], [0, 0, 2]])  # 6 = padding; repeats accumulate
    results = []
    for gather in (gather_nodes, ref_gather_nodes):
        out = gather(values, index)
        (out * torch.arange(27.0).view(3, 3, 3)).sum().backward()
        results.append([out.detach(), values.grad.clone()])
        values.grad = None
    _assert_close(*results)


# ---------------------------------------------------------------------- the whole model
# the former code had the paper's x_t only: the recent-interest GRU step (the default since) has its own
# test in test_model_embsr.py, so these compare the paper's pipeline, recent="micro"
@pytest.mark.parametrize("name,config", [
    ("EMBSR", {"recent": "micro"}),
    ("EMBSR", {"recent": "micro", "message_source": "code", "gnn_layers": 2, "attn_layers": 2, "heads": 2}),
    ("EMBSR", {"recent": "micro", "positions": "reverse", "heads": 4}),
    ("SGNN-Self", {"recent": "micro"}),
    ("RNN-Self", {"recent": "micro"}),
])
def test_training_loss_and_every_gradient_match_the_former_code(monkeypatch: pytest.MonkeyPatch, name: str,
                                                                config: dict) -> None:
    """A training-mode step (dropout, target-op dropout) on one batch: current code vs the former formulas."""
    split = random_split(n=24, max_len=12, n_items=N_ITEMS, n_ops=N_OPS, seed=5)
    torch.manual_seed(3)
    model = build_model(name, N_ITEMS, N_OPS, {"embedding_dim": D, **config}).train()
    batch = model.collate(split, np.arange(24))

    def run() -> list[torch.Tensor]:
        torch.manual_seed(7)  # the same dropout masks for both
        loss = model.loss(batch)
        loss.backward()
        return [loss.detach(), *_grads(model)]

    got = run()
    w_k = model.scorer.w_k
    monkeypatch.setattr(StarGNN, "forward", ref_star_forward)
    monkeypatch.setattr(PrefixTrieGRU, "forward", ref_trie_gru)
    monkeypatch.setattr(OpAwareSelfAttention, "forward", ref_self_attention)
    monkeypatch.setattr(CosineScorer, "loss", lambda self, m, items, t: ref_cosine_loss(self, m, items, t, w_k))
    monkeypatch.setattr(embsr_module, "gather_nodes", ref_gather_nodes)
    monkeypatch.setattr(embsr_module.EMBSR, "_op_gru_features", ref_op_gru_features)
    expected = run()
    _assert_close(got, expected)


def test_the_model_still_trains_under_bf16_autocast() -> None:
    """The CUDA mixed-precision path (autocast) runs the same code: dtypes must still meet."""
    split = random_split(n=16, max_len=10, n_items=N_ITEMS, n_ops=N_OPS)
    torch.manual_seed(0)
    model = build_model("EMBSR", N_ITEMS, N_OPS, {"embedding_dim": D}).train()
    batch = model.collate(split, np.arange(16))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model.loss(batch)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("name", ["EMBSR", "RNN-Self", "EMBSR-NG"])
def test_tokens_and_recent_interest_are_the_former_ones(name: str) -> None:
    """Tokens come from one gather of [satellites; 0; stars] and x_t from its B×d parts: the same values
    as the former [e_v + e_o ; x_s] concatenation and its last valid token x[b, length − 1] (eq. 12–13)."""
    split = random_split(n=16, max_len=10, n_items=N_ITEMS, n_ops=N_OPS, seed=4)
    torch.manual_seed(0)
    model = build_model(name, N_ITEMS, N_OPS, {"embedding_dim": D, "recent": "micro"}).eval()  # x_t as printed
    batch = model.collate(split, np.arange(16))
    seen: dict[str, torch.Tensor] = {}

    def keep(key: str, position: int):
        def hook(_module, args) -> None:  # (a pre-hook returning a value would replace the inputs)
            seen[key] = args[position]
        return hook

    model.attn.register_forward_pre_hook(keep("tokens", 0))
    model.attn.register_forward_pre_hook(keep("token_ops", 3))
    model.fusion.register_forward_pre_hook(keep("x_t", 1))
    if model.gnn is not None:
        model.gnn.register_forward_hook(lambda _m, _args, out: seen.update(h_f=out[0], star=out[1]))
    with torch.no_grad():
        model.loss(batch)
        if model.abs_op:  # the attention adds each token's e_{o_i} itself (eq. 12–13)
            seen["tokens"] = seen["tokens"] + model.op_emb(seen["token_ops"])
        lengths = batch["lengths"]
        expected = seen["tokens"][torch.arange(16), lengths - 1]
        assert torch.allclose(seen["x_t"], expected, atol=1e-6)
        if model.graph == "rnn":
            return
        if model.gnn is None:  # EMBSR-NG: h_f = the item embeddings, star = their mean
            seen["h_f"] = model.item_emb(batch["g_node_items"])
            seen["star"] = segment_mean(seen["h_f"], batch["g_node_session"], 16)
        # the former token layout: [e_{v_i} + e_{o_i} for each micro-behavior ; x_s]
        items = ref_gather_nodes(seen["h_f"], batch["g_micro_node"]) + model.op_emb(batch["ops"])
        x_s = seen["star"] + model.op_emb(batch["target_op"])
        assert torch.allclose(seen["tokens"], torch.cat([items, x_s[:, None]], 1), atol=1e-6)


def test_uniform_mask_dropout_is_dropout() -> None:
    """Keep probability 1 − p, kept values scaled by 1/(1 − p), the gradient through the same mask."""
    drop = UniformMaskDropout(0.25)
    x = torch.randn(400, 250, requires_grad=True)
    torch.manual_seed(0)
    y = drop(x)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.75) < 0.005  # 100,000 draws: sd ≈ 0.0014
    assert torch.allclose(y[kept], x[kept] / 0.75)
    y.sum().backward()
    assert torch.equal(x.grad != 0, kept) and torch.allclose(x.grad[kept], torch.full_like(x.grad[kept], 1 / 0.75))
    drop.eval()
    assert drop(x) is x
    assert UniformMaskDropout(0.0).train()(x) is x
