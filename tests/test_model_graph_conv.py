"""One gated graph convolution for every graph model: SR-GNN, GC-SAN and MKM-SR compute what their own
copy computed (reference written out below from the former formula), the star GNN's gated step is
unchanged, per-edge weights behave as edge multiplicities, and the node gather pads with zeros."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _model_helpers import one_torch_thread, random_split  # noqa: F401 (autouse fixture)

from embsr_core.models.layers.gather import gather_nodes
from embsr_core.models.layers.session_graph import GatedGraphConv
from embsr_core.models.layers.star_gnn import StarGNN
from embsr_core.models.registry import build_model

D = 16


def _old_srgnn_conv(conv: GatedGraphConv, h: torch.Tensor, src: torch.Tensor, dst: torch.Tensor,
                    w_in: torch.Tensor, w_out: torch.Tensor, steps: int) -> torch.Tensor:
    """The baselines' former GatedGraphConv, written out: weighted messages + node biases, GRU cell."""
    cell = conv.cell
    assert cell is not None
    for _ in range(steps):
        into = (h @ conv.msg_in.weight.T + conv.msg_in.bias)[src] * w_in[:, None]
        out_of = (h @ conv.msg_out.weight.T + conv.msg_out.bias)[dst] * w_out[:, None]
        a_in = torch.zeros_like(h).index_add_(0, dst, into) + conv.bias_in
        a_out = torch.zeros_like(h).index_add_(0, src, out_of) + conv.bias_out
        a = torch.cat([a_in, a_out], -1)
        gi = a @ cell.weight_ih.T + cell.bias_ih
        gh = h @ cell.weight_hh.T + cell.bias_hh
        i_r, i_z, i_n = gi.chunk(3, -1)
        h_r, h_z, h_n = gh.chunk(3, -1)
        r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        h = (1 - z) * n + z * h
    return h


@pytest.mark.parametrize("name", ["SR-GNN", "GC-SAN", "MKM-SR"])
def test_graph_baselines_compute_what_their_own_copy_computed(name: str) -> None:
    split = random_split(n=12, max_len=8, n_items=40, n_ops=4, seed=3)
    torch.manual_seed(11)
    model = build_model(name, 40, 4, {"embedding_dim": D, "dropout": 0.0, "gnn_steps": 2})
    model.eval()
    batch = model.collate(split, np.arange(12), "oracle")
    with torch.no_grad():
        h0 = model.item_embedding(batch["node_items"])
        expected = _old_srgnn_conv(model.gnn, h0, batch["src"], batch["dst"], batch["w_in"], batch["w_out"], 2)
        got = model.node_states(batch)
        assert torch.allclose(got, expected, atol=1e-6)
        scores = model.scores(batch)

    # a checkpoint saved before the shared layer (edge_in / edge_out) loads and scores the same
    legacy = {k.replace("gnn.msg_in.", "gnn.edge_in.").replace("gnn.msg_out.", "gnn.edge_out."): v
              for k, v in model.state_dict().items()}
    assert any(k.startswith("gnn.edge_in.") for k in legacy)
    again = build_model(name, 40, 4, {"embedding_dim": D, "dropout": 0.0, "gnn_steps": 2})
    again.load_state_dict(legacy)
    again.eval()
    with torch.no_grad():
        assert torch.equal(again.scores(batch), scores)


def test_star_gnn_gated_step_is_the_former_formula() -> None:
    """star=False, no highway: the star GNN is the shared layer's 'paper' update (EMBSR eq. 5–8)."""
    torch.manual_seed(0)
    n_nodes, n_edges = 9, 14
    h0 = torch.randn(n_nodes, D)
    src, dst = torch.randint(0, n_nodes, (n_edges,)), torch.randint(0, n_nodes, (n_edges,))
    gnn = StarGNN(D, layers=2, star=False, highway=False)
    h = h0
    for _ in range(2):  # the former inline loop
        a_in = h.new_zeros(n_nodes, D).index_add_(0, dst, gnn.msg_in(h)[src])
        a_out = h.new_zeros(n_nodes, D).index_add_(0, src, gnn.msg_out(h)[dst])
        ga_z, ga_r, ga_u = gnn.w_a(torch.cat([a_in, a_out], -1)).chunk(3, -1)
        gh_z, gh_r = gnn.u_zr(h).chunk(2, -1)
        z, r = torch.sigmoid(ga_z + gh_z), torch.sigmoid(ga_r + gh_r)
        h = (1 - z) * h + z * torch.tanh(ga_u + gnn.u_u(r * h))
    with torch.no_grad():
        got, star, _ = gnn(h0, torch.zeros(n_nodes, dtype=torch.long), 1, src, dst)
        assert star is None and torch.allclose(got, h.detach(), atol=1e-6)


@pytest.mark.parametrize("update", ["paper", "gru_cell"])
def test_edge_weights_act_as_edge_multiplicities(update: str) -> None:
    """A transition repeated k times (multigraph, weight 1 each) = one edge of weight k."""
    torch.manual_seed(1)
    conv = GatedGraphConv(D, steps=2, update=update, node_bias=update == "gru_cell")  # type: ignore[arg-type]
    h = torch.randn(5, D)
    src, dst = torch.tensor([0, 1, 1, 1, 3, 2]), torch.tensor([1, 2, 2, 2, 1, 4])
    distinct_src, distinct_dst = torch.tensor([0, 1, 3, 2]), torch.tensor([1, 2, 1, 4])
    weight = torch.tensor([1.0, 3.0, 1.0, 1.0])
    with torch.no_grad():
        repeated = conv(h, src, dst)
        weighted = conv(h, distinct_src, distinct_dst, weight, weight)
        assert torch.allclose(repeated, weighted, atol=1e-5)
        assert torch.equal(conv(h, src, dst, torch.ones(6), torch.ones(6)), repeated)  # weight 1 = none
        assert not torch.allclose(conv(h, distinct_src, distinct_dst), repeated, atol=1e-3)  # weights matter


def test_gather_nodes_pads_with_zeros() -> None:
    values = torch.arange(1.0, 7.0).reshape(3, 2)  # Nn=3 nodes × d=2
    index = torch.tensor([[2, 0, 3], [1, 3, 3]])  # 3 = padding
    out = gather_nodes(values, index)
    assert out.shape == (2, 3, 2)
    assert out[0, 0].tolist() == [5.0, 6.0] and out[0, 2].tolist() == [0.0, 0.0] and out[1, 1].abs().sum() == 0
    flat = gather_nodes(torch.tensor([0.5, 0.25, 0.125]), index)  # Nn values (e.g. the star gate per node)
    assert flat.tolist() == [[0.125, 0.5, 0.0], [0.25, 0.0, 0.0]]
