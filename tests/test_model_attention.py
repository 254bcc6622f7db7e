"""The gather/bucket dyadic attention equals a naive dense B×Q×K×d implementation (eq. 14–16)."""

import math

import pytest
import torch
from _model_helpers import one_torch_thread  # noqa: F401 (autouse fixture)

from embsr_core.models.layers.op_attention import OpAwareAttentionLayer, OpAwareSelfAttention


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


@pytest.mark.parametrize("heads", [1, 2])
def test_fast_dyadic_attention_matches_dense(heads):
    torch.manual_seed(0)
    B, K, d, n_rows = 3, 7, 8, 5
    layer = OpAwareAttentionLayer(d, heads=heads, n_op_rows=n_rows).eval()
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
