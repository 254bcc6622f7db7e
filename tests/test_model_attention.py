"""Both forms of the dyadic attention (gather, |R| table) equal a naive dense B×K×K×d implementation
(eq. 14–16), in values and in gradients, and the size rule picks the cheaper one."""

import math

import pytest
import torch
from _model_helpers import one_torch_thread  # noqa: F401 (autouse fixture)

from embsr_core.models.layers.op_attention import (
    TABLE_MAX_RELATIONS_PER_KEY,
    OpAwareAttentionLayer,
    OpAwareSelfAttention,
    dyadic_form,
)


def _naive(layer: OpAwareAttentionLayer, x, key_mask, pos, ops):
    """Dense reference: builds e_{r_ij} for every pair (B×K×K×d) and splits heads explicitly."""
    B, K, d = x.shape
    H, dh = layer.heads, d // layer.heads
    r = layer.relation.weight[ops[:, :, None] * layer.n_op_rows + ops[:, None, :]]  # B×K×K×d
    kv = x[:, None, :, :] + r + pos[:, None, :, :]  # B×K(i)×K(j)×d: x_j + e_{r_ij} + e_{p_j}
    q = layer.w_q(x)  # B×K×d
    outs = []
    for h in range(H):
        sl = slice(h * dh, (h + 1) * dh)
        e = torch.einsum("bid,bijd->bij", q[..., sl], kv[..., sl]) / math.sqrt(dh)  # eq. 16
        e = e.masked_fill(~key_mask[:, None, :], float("-inf"))
        alpha = torch.softmax(e, -1)  # eq. 15
        outs.append(torch.einsum("bij,bijd->bid", alpha, kv[..., sl]))  # eq. 14
    z = torch.cat(outs, -1)
    h = layer.norm1(x + z)
    return layer.norm2(h + layer.ffn(h))


@pytest.mark.parametrize("form", ["gather", "table"])
@pytest.mark.parametrize("heads", [1, 2])
def test_fast_dyadic_attention_matches_dense(heads, form):
    torch.manual_seed(0)
    B, K, d, n_rows = 3, 7, 8, 5
    layer = OpAwareAttentionLayer(d, heads=heads, n_op_rows=n_rows, dyadic=form).eval()
    x, pos = torch.randn(B, K, d), torch.randn(B, K, d)
    ops = torch.randint(0, n_rows, (B, K))
    key_mask = torch.ones(B, K, dtype=torch.bool)
    key_mask[1, 4:-1] = False  # padding in the middle of the token block (star token last)
    fast, info = layer(x, key_mask, pos, ops, return_weights=True)
    torch.testing.assert_close(fast, _naive(layer, x, key_mask, pos, ops), atol=1e-5, rtol=1e-5)
    # star-row only gives the same last row
    last, _ = layer(x, key_mask, pos, ops, query_index=torch.tensor([K - 1]))
    torch.testing.assert_close(last[:, 0], fast[:, -1], atol=1e-6, rtol=1e-6)
    # the reported dyadic logits are q_i·e_{r_ij}/√dh
    q = layer.w_q(x).view(B, K, heads, d // heads)
    r = layer.relation.weight[ops[:, :, None] * n_rows + ops[:, None, :]].view(B, K, K, heads, d // heads)
    expect = torch.einsum("bihd,bijhd->bhij", q, r) / math.sqrt(d // heads)
    torch.testing.assert_close(info["dyadic_logit"], expect, atol=1e-5, rtol=1e-5)
    assert torch.all(info["weights"][1, :, :, 4:-1] == 0)


def test_stack_last_only_equals_full():
    torch.manual_seed(1)
    B, K, d = 2, 6, 8
    att = OpAwareSelfAttention(d, max_positions=16, layers=2, heads=2, n_op_rows=4).eval()
    x = torch.randn(B, K, d)
    mask = torch.ones(B, K, dtype=torch.bool)
    positions = torch.arange(K).expand(B, K)
    ops = torch.randint(1, 4, (B, K))
    last, _ = att(x, mask, positions, ops, last_only=True)
    full, _ = att(x, mask, positions, ops, last_only=False)
    torch.testing.assert_close(last, full[:, -1], atol=1e-6, rtol=1e-6)


def _inputs(B: int, K: int, d: int, n_rows: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(B, K, d, generator=gen, requires_grad=True)
    pos = torch.randn(B, K, d, generator=gen)
    ops = torch.randint(0, n_rows, (B, K), generator=gen)
    key_mask = torch.ones(B, K, dtype=torch.bool)
    key_mask[0, 2:-1] = False
    return x, key_mask, pos, ops


def _grads(layer: OpAwareAttentionLayer, out: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Gradients of a fixed random projection of ``out`` w.r.t. x and every parameter."""
    layer.zero_grad(set_to_none=True)
    x.grad = None
    probe = torch.randn(out.shape, generator=torch.Generator().manual_seed(99))
    (out * probe).sum().backward()
    grads = {name: p.grad.clone() for name, p in layer.named_parameters() if p.grad is not None}
    grads["x"] = x.grad.clone()
    return grads


@pytest.mark.parametrize("heads", [1, 2])
@pytest.mark.parametrize("star_only", [False, True])
def test_both_forms_have_the_dense_gradients(heads, star_only):
    """Values and gradients (x, W^Q, M_R, FFN, norms) of gather and table equal the dense reference."""
    torch.manual_seed(2)
    B, K, d, n_rows = 4, 6, 8, 4
    layer = OpAwareAttentionLayer(d, heads=heads, n_op_rows=n_rows).eval()
    x, key_mask, pos, ops = _inputs(B, K, d, n_rows, seed=3)
    dense = _naive(layer, x, key_mask, pos, ops)
    if star_only:
        dense = dense[:, -1:]
    expect = _grads(layer, dense, x)
    query = torch.tensor([K - 1]) if star_only else None
    for form in ("gather", "table"):
        layer.dyadic = form
        out, _ = layer(x, key_mask, pos, ops, query_index=query)
        torch.testing.assert_close(out, dense, atol=1e-5, rtol=1e-5)
        got = _grads(layer, out, x)
        assert got.keys() == expect.keys()
        for name in expect:
            torch.testing.assert_close(got[name], expect[name], atol=1e-5, rtol=1e-4, msg=f"{form}: {name}")


def test_forms_agree_in_training_mode_with_dropout():
    """Same dropout mask (same seed) → same output and M_R gradient in both forms."""
    B, K, d, n_rows = 3, 5, 8, 6
    torch.manual_seed(4)
    layer = OpAwareAttentionLayer(d, n_op_rows=n_rows, dropout=0.3).train()
    x, key_mask, pos, ops = _inputs(B, K, d, n_rows, seed=5)
    results = []
    for form in ("gather", "table"):
        layer.dyadic = form
        torch.manual_seed(6)
        out, _ = layer(x, key_mask, pos, ops)
        results.append((out, _grads(layer, out, x)["relation.weight"]))
    torch.testing.assert_close(results[0][0], results[1][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(results[0][1], results[1][1], atol=1e-5, rtol=1e-4)


def test_size_rule_and_auto():
    """Few operations → the |R| table; many (|R| far above the keys) → the per-pair gather."""
    K = 51
    assert dyadic_form(12 * 12, K) == "table"  # 10 operations + pad + unknown
    assert dyadic_form(202 * 202, K) == "gather"  # 200 operations
    assert dyadic_form(TABLE_MAX_RELATIONS_PER_KEY * K, K) == "table"
    assert dyadic_form(TABLE_MAX_RELATIONS_PER_KEY * K + 1, K) == "gather"
    with pytest.raises(ValueError, match="dyadic"):
        OpAwareAttentionLayer(8, n_op_rows=3, dyadic="dense")  # type: ignore[arg-type]


def test_gather_gradient_of_the_table_touches_only_used_pairs():
    """Many operations: the table's gradient is nonzero only on the pairs present in the batch."""
    torch.manual_seed(7)
    B, K, d, n_rows = 2, 5, 8, 40
    layer = OpAwareAttentionLayer(d, n_op_rows=n_rows).eval()
    assert dyadic_form(n_rows**2, K) == "gather"
    x, key_mask, pos, ops = _inputs(B, K, d, n_rows, seed=8)
    out, _ = layer(x, key_mask, pos, ops, query_index=torch.tensor([K - 1]))
    grad = _grads(layer, out, x)["relation.weight"]
    used = torch.unique(ops[:, -1:, None] * n_rows + ops[:, None, :])
    touched = torch.nonzero(grad.abs().sum(1)).flatten()
    assert set(touched.tolist()) <= set(used.tolist())
    assert len(touched) > 0


@pytest.mark.parametrize("form", ["gather", "table"])
@pytest.mark.parametrize("heads", [1, 2])
def test_operations_and_positions_by_id_equal_dense_tokens(form, heads):
    """The star-row path with operations and positions as ids into one table [M_P; M_O] (and, in the
    table form, M_R joining the same products) equals tokens x + e_o with dense positions: output
    and the gradients of x, both tables and every parameter."""
    torch.manual_seed(9)
    B, K, d, n_rows, n_pos = 3, 6, 8, 5, 10
    layer = OpAwareAttentionLayer(d, heads=heads, n_op_rows=n_rows, dyadic=form).eval()
    x, key_mask, _, ops = _inputs(B, K, d, n_rows, seed=10)
    pos_table = torch.randn(n_pos, d, requires_grad=True)
    op_table = torch.randn(n_rows, d, requires_grad=True)
    positions = torch.randint(0, n_pos, (B, K))
    last = torch.tensor([K - 1])

    def grads(out):
        got = _grads(layer, out, x)
        got.update(pos=pos_table.grad.clone(), op=op_table.grad.clone())
        pos_table.grad = op_table.grad = None
        return got

    tokens = x + op_table[ops]
    dense, _ = layer(tokens, key_mask, pos_table[positions], ops, query_index=last)
    expect = grads(dense)
    ids = torch.stack([positions, ops + n_pos], -1)
    out, _ = layer(x, key_mask, None, ops, query_index=last, pos_ids=ids,
                   pos_table=torch.cat([pos_table, op_table]), queries=(x + op_table[ops])[:, -1:])
    torch.testing.assert_close(out, dense, atol=1e-5, rtol=1e-5)
    got = grads(out)
    assert got.keys() == expect.keys()
    for name in expect:
        torch.testing.assert_close(got[name], expect[name], atol=1e-5, rtol=1e-4, msg=f"{form}: {name}")


def test_stack_adds_operation_embeddings_once_in_every_path():
    """``op_emb`` given to the stack: the star-row path (ids) and the full path (added to x) agree
    with tokens that already hold e_{o_i}, for one layer and for two."""
    torch.manual_seed(11)
    B, K, d = 2, 6, 8
    emb = torch.nn.Embedding(4, d, padding_idx=0)
    x = torch.randn(B, K, d)
    mask = torch.ones(B, K, dtype=torch.bool)
    positions = torch.arange(K).expand(B, K)
    ops = torch.randint(1, 4, (B, K))
    for layers in (1, 2):
        att = OpAwareSelfAttention(d, max_positions=16, layers=layers, n_op_rows=4).eval()
        with torch.no_grad():
            expect, _ = att(x + emb(ops), mask, positions, ops, last_only=False)
            last, _ = att(x, mask, positions, ops, last_only=True, op_emb=emb)
            full, _ = att(x, mask, positions, ops, last_only=False, op_emb=emb)
        torch.testing.assert_close(last, expect[:, -1], atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(full, expect, atol=1e-6, rtol=1e-6)
