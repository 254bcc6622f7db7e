"""EMBSR and its registered ablations / variants: batching, invariances, ablations, gradients."""

import numpy as np
import pytest
import torch
from _model_helpers import one_torch_thread, random_split  # noqa: F401 (autouse fixture)
from torch.nn import functional as F

from embsr_core.data.prepared import SplitArrays
from embsr_core.models.layers.fusion import FixedFusion, FusionMLP
from embsr_core.models.registry import build_model, get_spec, list_specs

N_ITEMS, N_OPS = 40, 4
SMALL = {"embedding_dim": 16}
NAMES = ["EMBSR", "EMBSR-NS", "EMBSR-NG", "EMBSR-NF", "EMBSR-FixedBeta", "SGNN-Self", "SGNN-Seq-Self",
         "RNN-Self", "SGNN-Abs-Self", "SGNN-Dyadic"]


def _model(name="EMBSR", seed=0, **overrides):
    torch.manual_seed(seed)
    return build_model(name, N_ITEMS, N_OPS, {**SMALL, **overrides}).eval()


@pytest.fixture(scope="module")
def split():
    return random_split(n=16, max_len=10, n_items=N_ITEMS, n_ops=N_OPS)


def test_all_names_registered_build_and_score(split):
    registered = {s.name for s in list_specs()}
    assert set(NAMES) <= registered
    for name in NAMES:
        model = _model(name)
        batch = model.collate(split, np.arange(8))
        s = model.scores(batch)
        assert s.shape == (8, N_ITEMS + 1)
        assert torch.all(s[:, 0] == float("-inf")) and torch.isfinite(s[:, 1:]).all(), name
        assert torch.isfinite(model.loss(batch)), name
        assert get_spec(name).uses_operations == model.uses_operations
    assert get_spec("EMBSR-FixedBeta").param("beta").validate(0.2) == 0.2
    with pytest.raises(ValueError, match="beta"):
        get_spec("EMBSR-FixedBeta").param("beta").validate(1.5)


def test_fused_loss_equals_cross_entropy_of_scores(split):
    model = _model()
    batch = model.collate(split, np.arange(16))
    fused = model.loss(batch)
    (g_fused,) = torch.autograd.grad(fused, model.item_emb.weight)
    ref = F.cross_entropy(model.scores(batch), batch["targets"])
    (g_ref,) = torch.autograd.grad(ref, model.item_emb.weight)
    torch.testing.assert_close(fused, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(g_fused, g_ref, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("name", ["EMBSR", "RNN-Self", "EMBSR-NG"])
def test_extra_padding_changes_no_output(split, name):
    model = _model(name)
    batch = model.collate(split, np.arange(16))
    padded = dict(batch)
    extra = 5
    for key in ("items", "ops"):
        padded[key] = F.pad(batch[key], (0, extra))
    if "g_micro_node" in batch:
        padded["g_micro_node"] = F.pad(batch["g_micro_node"], (0, extra), value=len(batch["g_node_items"]))
    torch.testing.assert_close(model.scores(padded), model.scores(batch), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["EMBSR", "RNN-Self"])
def test_session_output_independent_of_batch(split, name):
    model = _model(name)
    full = model.scores(model.collate(split, np.arange(16)))
    for rows in ([3], [3, 0, 9], [12, 3]):
        part = model.scores(model.collate(split, np.array(rows)))
        torch.testing.assert_close(part[rows.index(3)], full[3], atol=1e-5, rtol=1e-5)


def _param_names(model):
    return {n for n, _ in model.named_parameters()}


# ablation → (prefixes of EMBSR parameters it must lack, prefixes it adds); without the op-GRU the
# recent-interest GRU step reads a learned vector (recent_input) instead of the last run's state
ABLATIONS = {
    "EMBSR-NS": ({"attn."}, set()),
    "EMBSR-NG": ({"gnn.", "op_gru."}, {"recent_input"}),
    "EMBSR-NF": ({"fusion.w_m."}, {"fusion.linear."}),
    "EMBSR-FixedBeta": ({"fusion.w_m."}, set()),
    "SGNN-Self": ({"op_emb.", "op_gru.", "gnn.seq_in.", "gnn.seq_out.", "attn.layers.0.relation."}, {"recent_input"}),
    "SGNN-Seq-Self": ({"attn.layers.0.relation."}, set()),
    "SGNN-Abs-Self": ({"op_gru.", "gnn.seq_in.", "gnn.seq_out.", "attn.layers.0.relation."}, {"recent_input"}),
    "SGNN-Dyadic": ({"op_gru.", "gnn.seq_in.", "gnn.seq_out."}, {"recent_input"}),
    "RNN-Self": ({"gnn.", "op_gru.", "attn.layers.0.relation."}, {"rnn.", "recent_input"}),
}


@pytest.mark.parametrize("name", sorted(ABLATIONS))
def test_each_ablation_removes_exactly_its_component(name):
    full, ablated = _param_names(_model()), _param_names(_model(name))
    missing, added = ABLATIONS[name]
    assert {n for n in full - ablated} == {n for n in full if any(n.startswith(p) for p in missing)}
    assert {n for n in ablated - full} == {n for n in ablated if any(n.startswith(p) for p in added)}
    assert (ablated - full) or not added


def test_ablation_behaviour(split):
    batch = _model().collate(split, np.arange(16))
    shuffled = _model().collate(_changed_ops(split), np.arange(16))  # every operation changed
    other_target = dict(batch, target_op=(batch["target_op"] % N_OPS) + 1)
    # SGNN-Self is macro-only: operations and target ops change nothing
    m = _model("SGNN-Self")
    assert torch.equal(m.scores(batch), m.scores(shuffled))
    assert torch.equal(m.scores(batch), m.scores(other_target))
    # SGNN-Seq-Self uses op runs in the GNN but never the target op; EMBSR uses the target op
    assert torch.equal(_model("SGNN-Seq-Self").scores(batch), _model("SGNN-Seq-Self").scores(other_target))
    assert not torch.allclose(_model().scores(batch), _model().scores(other_target))
    # EMBSR-NS has no attention: explain carries no attention weights
    assert "attention" not in _model("EMBSR-NS").explain(batch)
    assert isinstance(_model("EMBSR-NF").fusion, FusionMLP)
    fixed = _model("EMBSR-FixedBeta", beta=0.2)
    assert isinstance(fixed.fusion, FixedFusion)
    assert torch.allclose(fixed.explain(batch)["beta_mean"], torch.full((16,), 0.2))


def test_op_gru_changes_messages_and_message_source_option(split):
    paper, code = _model(), _model(message_source="code")
    batch = paper.collate(split, np.arange(16))
    assert not torch.allclose(paper.scores(batch), code.scores(batch))
    # SGNN-Seq-Self sees operations only through the op-GRU in the GNN messages
    m = _model("SGNN-Seq-Self")
    assert not torch.allclose(m.scores(batch), m.scores(m.collate(_changed_ops(split), np.arange(16))))


def _changed_ops(split):
    s = split.subset(np.arange(len(split)))
    s.ops = np.where(s.ops > 0, (s.ops % N_OPS) + 1, 0).astype(np.int32)
    return s


@pytest.mark.parametrize("name", NAMES)
def test_every_parameter_gets_a_gradient(split, name):
    model = _model(name, target_op_dropout=0.5) if "target_op_dropout" in get_spec(name).defaults() \
        else _model(name)
    model.train()
    model.loss(model.collate(split, np.arange(16))).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}: {pname} got no gradient"


def test_seeded_cpu_training_is_bit_identical(split):
    def run():
        model = _model(seed=123).train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        torch.manual_seed(7)
        for start in (0, 8):
            opt.zero_grad()
            model.loss(model.collate(split, np.arange(start, start + 8))).backward()
            opt.step()
        return [p.detach().clone() for p in model.parameters()]

    for a, b in zip(run(), run(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", ["EMBSR", "RNN-Self", "EMBSR-NG"])
def test_batch_of_one(split, name):
    model = _model(name)
    short = int(np.argmin(split.lengths))
    for row in (0, short):
        batch = model.collate(split, np.array([row]))
        assert model.scores(batch).shape == (1, N_ITEMS + 1)
        model.train()
        assert torch.isfinite(model.loss(batch))
        model.eval()
        ex = model.explain(batch)
        assert ex["beta"].shape == (1, 16)
        if "attention" in ex:
            width = int(batch["items"].shape[1])
            assert ex["attention"].shape == (1, width + 1, width + 1)


def test_target_op_modes(split):
    model = _model()
    idx = np.arange(16)
    oracle, unknown = model.collate(split, idx, "oracle"), model.collate(split, idx, "unknown")
    assert torch.equal(oracle["target_op"], torch.from_numpy(split.target_ops.astype(np.int64)))
    assert torch.all(unknown["target_op"] == N_OPS + 1)
    query = model.collate(split, idx, 2)
    assert torch.all(query["target_op"] == 2)
    s = {k: model.scores(b) for k, b in (("o", oracle), ("u", unknown), ("q", query))}
    assert not torch.allclose(s["o"], s["u"]) and not torch.allclose(s["u"], s["q"])
    same = np.nonzero(split.target_ops == 2)[0]
    torch.testing.assert_close(s["q"][same], s["o"][same])
    for bad in (0, N_OPS + 1, "future"):
        with pytest.raises(ValueError, match="target_op"):
            model.collate(split, idx, bad)


def test_explain_keys_and_shapes(split):
    model = _model()
    batch = model.collate(split, np.arange(4))
    ex = model.explain(batch)
    B, L = batch["items"].shape
    assert ex["attention"].shape == (B, L + 1, L + 1)
    torch.testing.assert_close(ex["attention"].sum(-1), torch.ones(B, L + 1))
    torch.testing.assert_close(ex["attention_star"], ex["attention"][:, -1])
    assert ex["dyadic_logit_star"].shape == (B, L + 1)
    assert ex["star_gate"].shape == (B, L) and ex["beta"].shape == (B, 16)
    assert torch.all(ex["attention_star"][:, :L][~ex["valid"]] == 0)
    assert torch.all(ex["star_gate"][~ex["valid"]] == 0)
    assert torch.isfinite(ex["star_gate"]).all()  # eq. 9 as printed: a scaled dot product, not a probability
    assert not model.training


def test_star_gate_is_eq9_as_printed_without_a_sigmoid(split):
    model = _model()
    with torch.no_grad():  # large gate weights: a sigmoid would keep α inside (0, 1), eq. 9 does not
        model.gnn.q1.weight.mul_(40.0)
        model.gnn.k1.weight.mul_(40.0)
    ex = model.explain(model.collate(split, np.arange(16)))
    alpha = ex["star_gate"][ex["valid"]]
    assert (alpha < 0).any() or (alpha > 1).any()
    assert "star_gate" not in {p.name for p in get_spec("EMBSR").params}  # no sigmoid option (measured worse)


def test_message_source_code_uses_the_nodes_own_embedding_and_op_state():
    from embsr_core.models.layers.star_gnn import StarGNN

    torch.manual_seed(0)
    d = 8
    # one session A → B: node 0 = A at macro position 0, node 1 = B at position 1
    edges = dict(edge_src=torch.tensor([0]), edge_dst=torch.tensor([1]),
                 edge_src_pos=torch.tensor([0]), edge_dst_pos=torch.tensor([1]))
    h0, seq = torch.randn(2, d), torch.randn(2, d)
    h0_b, seq_b = h0.clone(), seq.clone()
    h0_b[1] += 1.0  # change B's embedding
    seq_b[1] += 1.0  # and B's op-GRU state
    for source, a_depends_on_b in (("paper", True), ("code", False)):
        gnn = StarGNN(d, seq_dim=d, message_source=source, star=False, highway=False)
        out = gnn(h0, torch.zeros(2, dtype=torch.long), 1, seq_feat=seq, **edges)[0]
        out_b = gnn(h0_b, torch.zeros(2, dtype=torch.long), 1, seq_feat=seq_b, **edges)[0]
        # A has only an outgoing edge: its update sees B (paper, eq. 5) or only itself (authors' code)
        assert (not torch.allclose(out[0], out_b[0])) == a_depends_on_b, source
        if source == "code":  # and its own state does reach it
            seq_a = seq.clone()
            seq_a[0] += 1.0
            assert not torch.allclose(out[0], gnn(h0, torch.zeros(2, dtype=torch.long), 1, seq_feat=seq_a,
                                                  **edges)[0][0])


def _split_from_rows(rows: list[list[int]]) -> SplitArrays:
    """Sessions given as item lists (operation 1 + position % N_OPS, so runs carry operations)."""
    n, width = len(rows), max(map(len, rows))
    items = np.zeros((n, width), np.int32)
    for r, row in enumerate(rows):
        items[r, : len(row)] = row
    lengths = np.array([len(r) for r in rows], np.int32)
    ops = np.where(items > 0, 1 + np.arange(width)[None, :] % N_OPS, 0).astype(np.int32)
    return SplitArrays(items=items, ops=ops, lengths=lengths, targets=np.ones(n, np.int64),
                       target_ops=np.ones(n, np.int32), session_ids=np.arange(n).astype(str), end_times=np.zeros(n))


def test_sgnn_self_is_macro_level_run_lengths_change_nothing():
    short = [[3, 5, 7], [2, 9]]  # macro-items
    long_runs = [[3, 3, 3, 5, 7, 7], [2, 9, 9, 9, 9]]  # same macro-items, other run lengths
    a, b = _split_from_rows(short), _split_from_rows(long_runs)
    m = _model("SGNN-Self")
    assert get_spec("SGNN-Self").param("tokens").default == "macro"
    torch.testing.assert_close(m.scores(m.collate(a, np.arange(2))), m.scores(m.collate(b, np.arange(2))))
    micro = _model("SGNN-Self", tokens="micro")  # the earlier token-per-micro-behavior form sees them
    assert not torch.allclose(micro.scores(micro.collate(a, np.arange(2))),
                              micro.scores(micro.collate(b, np.arange(2))))


def test_bad_input_is_reported(split):
    model = _model()
    bad = split.subset(np.arange(4))
    bad.items = bad.items.copy()
    bad.items[0, 0] = N_ITEMS + 5
    with pytest.raises(ValueError, match="item ids"):
        model.collate(bad, np.arange(4))
    with pytest.raises(ValueError, match="heads"):
        build_model("EMBSR", N_ITEMS, N_OPS, {"embedding_dim": 10, "heads": 3})


def test_deeper_multihead_config_under_bf16_autocast(split):
    model = _model(heads=2, gnn_layers=2, attn_layers=2, message_source="code").train()
    batch = model.collate(split, np.arange(16))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model.loss(batch)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        s = model.eval().scores(batch)
    assert s.dtype == torch.float32 and torch.isfinite(s[:, 1:]).all()


def test_reverse_positions_ignore_padding_and_count_from_the_end(split):
    model = _model(positions="reverse")
    batch = model.collate(split, np.arange(16))
    padded = dict(batch)
    for key in ("items", "ops"):
        padded[key] = F.pad(batch[key], (0, 5))
    if "g_micro_node" in batch:
        padded["g_micro_node"] = F.pad(batch["g_micro_node"], (0, 5), value=len(batch["g_node_items"]))
    torch.testing.assert_close(model.scores(padded), model.scores(batch), atol=1e-5, rtol=1e-5)
    forward = _model(positions="forward")
    forward.load_state_dict(model.state_dict())
    assert not torch.allclose(forward.scores(batch), model.scores(batch))  # the switch changes the model


def test_nf_fusion_starts_at_the_mean_of_its_inputs():
    layer = _model("EMBSR-NF").fusion  # EMBSR's uniform init must not overwrite the layer's own
    z, x = torch.randn(3, SMALL["embedding_dim"]), torch.randn(3, SMALL["embedding_dim"])
    m, beta = layer(z, x)
    torch.testing.assert_close(m, (z + x) / 2)
    assert beta is None


def test_registered_defaults_are_the_models_defaults() -> None:
    """The form, the CLI and the tuner's trial 0 read the Param defaults; the model reads DEFAULTS: one value."""
    from embsr_core.models.embsr import DEFAULTS
    from embsr_core.models.registry import list_specs

    for spec in list_specs():
        if spec.family in ("embsr", "ablation", "variant"):
            for p in spec.params:
                assert p.default == DEFAULTS[p.name] or spec.name == "SGNN-Self" and p.name == "tokens", (spec.name, p)


def test_recent_run_reads_the_op_gru_state_of_each_sessions_last_run():
    from embsr_core.models.embsr import EMBSR
    from embsr_core.models.layers.multigraph import build_multigraph

    rows = [[3, 5, 5, 5], [2, 9, 9, 4, 4], [7]]  # last runs: 3, 2 and 1 micro-behaviors long
    split = _split_from_rows(rows)
    batch = _model(recent="run").collate(split, np.arange(3))
    last = EMBSR._last_macro(batch, 3).numpy()
    graph = build_multigraph(split.items, split.ops, split.lengths)
    runs = graph.op_sequences()
    for b, row in enumerate(rows):
        n_last = len(row) - max(j for j in range(len(row)) if j == 0 or row[j] != row[j - 1])  # last run's length
        assert runs[last[b]] == tuple(split.ops[b, len(row) - n_last : len(row)].tolist())
    # the switch changes the model only through that state: same weights, other outputs
    model, paper = _model(recent="run"), _model(recent="micro")
    paper.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("recent_run.")})
    assert not torch.allclose(model.scores(batch), paper.scores(batch))
    with torch.no_grad():
        model.recent_run.weight.zero_()
    torch.testing.assert_close(model.scores(batch), paper.scores(batch))
    with pytest.raises(ValueError, match="op_gru"):
        EMBSR(N_ITEMS, N_OPS, {**SMALL, "recent": "run", "op_gru": False, "graph": "none"})


def test_recent_gated_passes_the_last_item_through_one_gru_step_on_its_runs_state():
    from embsr_core.models.embsr import EMBSR

    split = _split_from_rows([[3, 5, 5, 5], [2, 9, 9, 4, 4], [7]])
    model, paper = _model(recent="gated"), _model(recent="micro")
    batch = model.collate(split, np.arange(3))
    paper.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("recent_gru.")})
    assert not torch.allclose(model.scores(batch), paper.scores(batch))
    keep = model.explain(batch)["recent_keep_mean"]  # the Playground's "kept of the last item"
    assert keep.shape == (3,) and bool(((keep > 0) & (keep < 1)).all())
    with torch.no_grad():  # the update gate shut: the GRU step keeps the item's vector, as the paper's x_t
        d = model.dim
        model.recent_gru.bias_ih[d : 2 * d].fill_(1e4)
    torch.testing.assert_close(model.scores(batch), paper.scores(batch))
    torch.testing.assert_close(model.explain(batch)["recent_keep_mean"], torch.ones(3))
    assert "recent_keep" not in paper.explain(batch)
    # without the op-GRU (SGNN-Self, the planted control) the same step reads a learned vector, no operations
    control = _model("SGNN-Self")
    assert control.recent_gru is not None and control.recent_input is not None and control.op_emb is None
    assert _model("SGNN-Self", recent="micro").recent_gru is None
    with pytest.raises(ValueError, match="op_gru"):
        EMBSR(N_ITEMS, N_OPS, {**SMALL, "recent": "run", "op_gru": False, "graph": "none"})


def test_recent_update_gate_is_the_gru_cells_z():
    from embsr_core.models.embsr import recent_update_gate

    torch.manual_seed(0)
    cell, d = torch.nn.GRUCell(6, 6), 6
    x, h = torch.randn(4, 6), torch.randn(4, 6)
    gi, gh = cell.weight_ih @ x.T, cell.weight_hh @ h.T  # 3d×B, gates in PyTorch's order (r, z, n)
    gi, gh = gi.T + cell.bias_ih, gh.T + cell.bias_hh
    r = torch.sigmoid(gi[:, :d] + gh[:, :d])
    n = torch.tanh(gi[:, 2 * d :] + r * gh[:, 2 * d :])
    z = recent_update_gate(cell, x, h)
    torch.testing.assert_close(cell(x, h), (1 - z) * n + z * h)


@pytest.mark.parametrize("name", ["EMBSR", "SGNN-Self", "EMBSR-NS", "RNN-Self"])
def test_repeat_pointer_mixes_a_copy_of_the_sessions_items_into_a_distribution(name):
    split = _split_from_rows([[3, 5, 5, 5], [2, 9, 9, 4, 4], [7]])
    model, paper = _model(name), _model(name, repeat="off")  # the pointer is the default
    paper.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("repeat.")})
    batch = model.collate(split, np.arange(3))
    log_p = model.scores(batch)
    torch.testing.assert_close(torch.logsumexp(log_p, 1), torch.zeros(3), atol=1e-5, rtol=0)  # a distribution
    assert torch.isinf(log_p[:, 0]).all()  # padding is never ranked
    with torch.no_grad():  # share → 0: the paper's softmax, the same ranking
        model.repeat.gate.bias.fill_(-1e4)
    torch.testing.assert_close(model.scores(batch), torch.log_softmax(paper.scores(batch), 1))
    with torch.no_grad():  # share → 1: only the session's own items, with the pointer's weights summed per item
        model.repeat.gate.bias.fill_(1e4)
    with torch.no_grad():
        p = model.scores(batch).exp()
    expl = model.explain(batch)
    for b, row in enumerate([[3, 5, 5, 5], [2, 9, 9, 4, 4], [7]]):
        tokens = batch["items"][b, : int(batch["lengths"][b])].tolist()
        for item in set(row):
            weight = float(expl["repeat_alpha"][b, : len(tokens)][torch.tensor(tokens) == item].sum())
            assert float(p[b, item]) == pytest.approx(weight, abs=1e-5)
        assert float(p[b, sorted(set(row))].sum()) == pytest.approx(1.0, abs=1e-5)
    torch.testing.assert_close(expl["repeat_share"], torch.ones(3))


def test_repeat_pointer_trains_and_is_off_in_old_configurations():
    from embsr_core.models.registry import stored_config

    split = _split_from_rows([[1, 5, 5, 5], [2, 1, 9, 4, 4], [7, 8]])  # the target, item 1, seen twice
    model = _model(repeat="pointer").train()
    batch = model.collate(split, np.arange(3))
    model.loss(batch).backward()
    assert model.repeat.query.weight.grad.abs().sum() > 0 and model.repeat.gate.weight.grad.abs().sum() > 0
    assert _model().repeat is not None and _model(repeat="off").repeat is None
    assert stored_config("EMBSR", {"embedding_dim": 16})["repeat"] == "off"
    with pytest.raises(ValueError, match="repeat"):
        _model(repeat="copy")


@pytest.mark.parametrize("name", ["EMBSR", "RNN-Self"])
def test_repeat_pointer_items_points_with_the_item_embeddings(name, monkeypatch):
    """``pointer-items``: the pointer's keys are e_v (+ e_o), not the GNN's (or the RNN's) outputs."""
    split = _split_from_rows([[3, 5, 5, 5], [2, 9, 9, 4, 4], [7]])
    model = _model(name, repeat="pointer-items")
    batch = model.collate(split, np.arange(3))
    seen: list[torch.Tensor] = []
    original = type(model.repeat).forward

    def spy(self, m, x_t, tokens, valid):
        seen.append(tokens)
        return original(self, m, x_t, tokens, valid)

    monkeypatch.setattr(type(model.repeat), "forward", spy)
    log_p = model.scores(batch)
    torch.testing.assert_close(torch.logsumexp(log_p, 1), torch.zeros(3), atol=1e-5, rtol=0)
    expected = model.item_emb(batch["items"]) + model.op_emb(batch["ops"])  # eval: no dropout
    torch.testing.assert_close(seen[0], expected)
    other = _model(name, repeat="pointer")
    other.load_state_dict(model.state_dict())
    seen.clear()
    other.scores(batch)
    assert not torch.allclose(seen[0], expected)  # the default points with the node vectors


def test_repeat_pointer_loss_is_the_nll_of_its_scores():
    split = _split_from_rows([[1, 5, 5, 5], [2, 1, 9, 4, 4], [7, 8]])
    model = _model(repeat="pointer")
    batch = model.collate(split, np.arange(3))
    nll = torch.nn.functional.nll_loss(model.scores(batch), batch["targets"])
    torch.testing.assert_close(model.loss(batch), nll)
    # the fused loss has its own backward: its gradients are those of the NLL of the mixture
    model.zero_grad(set_to_none=True)
    model.loss(batch).backward()
    fused = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    torch.nn.functional.nll_loss(model.scores(batch), batch["targets"]).backward()
    plain = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    assert fused.keys() == plain.keys() and "item_emb.weight" in fused
    for name, grad in fused.items():
        torch.testing.assert_close(grad, plain[name], atol=1e-6, rtol=1e-4, msg=name)
