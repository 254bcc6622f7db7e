"""The paper's baselines (§V-A): every one builds, scores, trains, ignores padding and batch-mates,
and shows the property that defines it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from _model_helpers import random_split
from _training_helpers import tiny_prepared, tiny_store

from embsr_core.data.prepared import SplitArrays
from embsr_core.models.baselines.sknn import SKNN
from embsr_core.models.layers.readouts import segment_attention_pool
from embsr_core.models.layers.session_graph import normalised_edges
from embsr_core.models.registry import build_model, get_spec, list_specs
from embsr_core.store import runs_repo
from embsr_core.training import TrainConfig
from embsr_core.training.search import grid_search

N_ITEMS, N_OPS = 40, 4
MACRO = ["S-POP", "SKNN", "NARM", "STAMP", "SR-GNN", "GC-SAN", "BERT4Rec", "SGNN-HN"]
MICRO = ["RIB", "HUP", "MKM-SR"]
NEURAL = [name for name in MACRO + MICRO if name not in ("S-POP", "SKNN")]


def _build(name: str, **overrides: object) -> torch.nn.Module:
    names = {p.name for p in get_spec(name).params}
    small = {"embedding_dim": 16, "dropout": 0.0, "k": 5, "sample_size": 50}
    model = build_model(name, N_ITEMS, N_OPS, {k: v for k, v in {**small, **overrides}.items() if k in names})
    torch.manual_seed(0)
    if hasattr(model, "reset_parameters"):
        model.reset_parameters()
    return model


def _split(n: int = 24, max_len: int = 10, seed: int = 0, dwell: bool = False) -> SplitArrays:
    split = random_split(n, max_len, N_ITEMS, N_OPS, seed)
    split.end_times = np.arange(n, dtype=np.float64)
    if dwell:
        rng = np.random.default_rng(seed)
        split.dwell = (rng.exponential(30, split.items.shape) * (split.items > 0)).astype(np.float32)
    return split


def _fitted(name: str, split: SplitArrays, **overrides: object) -> torch.nn.Module:
    model = _build(name, **overrides)
    model.fit(split)
    return model.eval()


def _scores(model: torch.nn.Module, split: SplitArrays, index: np.ndarray | None = None) -> torch.Tensor:
    index = np.arange(len(split)) if index is None else index
    with torch.no_grad():
        return model.scores(model.collate(split, index))


def test_registered_names_and_families() -> None:
    specs = {s.name: s for s in list_specs() if s.family.startswith("baseline")}
    assert set(MACRO + MICRO) <= set(specs)
    for name in MACRO:
        assert specs[name].family == "baseline-macro" and not specs[name].uses_operations
    for name in MICRO:
        assert specs[name].family == "baseline-micro" and specs[name].uses_operations
    for name in NEURAL:
        assert specs[name].param("embedding_dim").default == 100
        assert 0.0 <= specs[name].param("dropout").default <= 0.5
    assert {p.name for p in specs["SKNN"].params} == {"k", "sample_size"}
    assert {"layers", "heads", "mask_prob", "max_len"} <= {p.name for p in specs["BERT4Rec"].params}
    assert {"blocks", "omega"} <= {p.name for p in specs["GC-SAN"].params}


@pytest.mark.parametrize("name", MACRO + MICRO)
def test_builds_and_scores_every_item(name: str) -> None:
    split = _split(dwell=True)
    model = _fitted(name, split)
    scores = _scores(model, split)
    assert scores.shape == (len(split), N_ITEMS + 1)
    assert torch.isneginf(scores[:, 0]).all() and torch.isfinite(scores[:, 1:]).all()
    assert model.trainable == (name in NEURAL)


@pytest.mark.parametrize("name", NEURAL)
def test_loss_decreases(name: str) -> None:
    split = _split(n=32, seed=1)
    model = _build(name).train()
    batch = model.collate(split, np.arange(len(split)))
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    torch.manual_seed(0)
    losses = []
    for _ in range(12):
        optimiser.zero_grad()
        loss = model.loss(batch)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert np.isfinite(losses).all()
    assert np.mean(losses[-3:]) < 0.97 * losses[0] and losses[-1] < losses[0], losses


@pytest.mark.parametrize("name", MACRO + MICRO)
def test_padding_and_batch_mates_change_nothing(name: str) -> None:
    split = _split(dwell=True)
    model = _fitted(name, split)
    full = _scores(model, split)
    padded = replace(split, items=np.pad(split.items, ((0, 0), (0, 5))), ops=np.pad(split.ops, ((0, 0), (0, 5))),
                     dwell=np.pad(split.dwell, ((0, 0), (0, 5))))
    torch.testing.assert_close(_scores(model, padded), full, atol=1e-5, rtol=1e-5)
    for row in (0, 5):
        alone = _scores(model, split, np.array([row]))
        torch.testing.assert_close(alone[0], full[row], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", MACRO + MICRO)
def test_only_micro_models_read_operations(name: str) -> None:
    split = _split(dwell=True)
    model = _fitted(name, split)
    other_ops = replace(split, ops=np.where(split.items > 0, (split.ops % N_OPS) + 1, 0).astype(np.int32))
    changed = not torch.allclose(_scores(model, other_ops), _scores(model, split))
    assert changed == (name in MICRO)


@pytest.mark.parametrize("name", ["RIB", "HUP"])
def test_dwell_is_used_when_present(name: str) -> None:
    split = _split(dwell=True)
    model = _fitted(name, split)
    assert not torch.allclose(_scores(model, split), _scores(model, replace(split, dwell=None)))


def _sessions(rows: list[list[int]], targets: list[int]) -> SplitArrays:
    width = max(len(r) for r in rows)
    items = np.array([r + [0] * (width - len(r)) for r in rows], dtype=np.int32)
    n = len(rows)
    return SplitArrays(items=items, ops=(items > 0).astype(np.int32), lengths=(items > 0).sum(1).astype(np.int32),
                       targets=np.array(targets, dtype=np.int64), target_ops=np.ones(n, dtype=np.int32),
                       session_ids=np.array([f"s{i}" for i in range(n)]), end_times=np.arange(n, dtype=np.float64))


def test_spop_ranks_session_repeats_first_then_global_popularity() -> None:
    train = _sessions([[7, 8, 7], [7, 9], [3, 7]], [3, 3])  # popularity: 7 ×4, 3 ×3, 8/9 ×1
    model = _fitted("S-POP", train)
    query = _sessions([[5, 6, 5, 2, 5], [8, 9], [1, 2]], [1, 1, 1])
    scores = _scores(model, query)
    order = torch.argsort(scores, dim=1, descending=True)
    assert order[0, 0] == 5  # 5 occurs twice as a macro-item (its runs are merged only when consecutive)
    assert set(order[0, 1:3].tolist()) == {2, 6} and order[0, 3] == 7  # then the rest by popularity
    assert scores[1, 8] == scores[1, 9]  # 8 and 9: once in the session, equally popular
    assert order[2, 0] in (1, 2) and order[2, 2] == 7 and order[2, 3] == 3  # unseen items by popularity


def test_spop_counts_macro_items_not_micro_behaviors() -> None:
    model = _fitted("S-POP", _sessions([[1, 2]], [3]))
    scores = _scores(model, _sessions([[4, 4, 4, 5, 6, 5]], [1]))
    assert scores[0, 5] > scores[0, 4]  # 4 is one macro-item (three micro-behaviors), 5 is two


def test_sknn_scores_only_items_of_neighbour_sessions() -> None:
    # training sessions (with their targets): {1,2,3}, {4,5}, {1,6}; the last is the most recent
    train = _sessions([[1, 2], [4], [1]], [3, 5, 6])
    query = _sessions([[1, 2]], [3])
    both = _scores(_fitted("SKNN", train, k=2, sample_size=10), query)[0]
    assert torch.nonzero(both[1:] > 0)[:, 0].add(1).tolist() == [1, 2, 3, 6]  # {4,5} shares nothing
    sim_a, sim_b = 2 / np.sqrt(2 * 3), 1 / np.sqrt(2 * 2)
    assert both[1].item() == pytest.approx(sim_a + sim_b) and both[3].item() == pytest.approx(sim_a)
    nearest = _scores(_fitted("SKNN", train, k=1, sample_size=10), query)[0]
    assert torch.nonzero(nearest[1:] > 0)[:, 0].add(1).tolist() == [1, 2, 3]
    recent = _scores(_fitted("SKNN", train, k=5, sample_size=1), query)[0]
    assert torch.nonzero(recent[1:] > 0)[:, 0].add(1).tolist() == [1, 6]  # only the most recent overlap


def test_sknn_is_vectorised_over_a_larger_batch_and_reloads() -> None:
    split = _split(n=200, seed=3)
    model = _fitted("SKNN", split, k=10, sample_size=30)
    neighbours = model.neighbours(model.collate(split, np.arange(200))["items"].numpy())
    assert (np.diff(neighbours.indptr) <= 10).all()
    fresh = _build("SKNN", k=10, sample_size=30)
    fresh.load_state_dict(model.state_dict())
    assert isinstance(fresh, SKNN)
    torch.testing.assert_close(_scores(fresh.eval(), split), _scores(model, split))


def test_srgnn_adjacency_normalisation_hand_example() -> None:
    # SR-GNN Fig. 2-style session v1 v2 v3 v2 v4 (nodes 0..3): edges 0→1, 1→2, 2→1, 1→3
    src, dst, w_in, w_out = normalised_edges(np.array([0, 1, 2, 1, 1]), np.array([1, 2, 1, 3, 3]), 4)
    a_in, a_out = np.zeros((4, 4)), np.zeros((4, 4))
    a_in[dst, src] = w_in  # row = receiving node
    a_out[src, dst] = w_out  # row = sending node
    np.testing.assert_allclose(a_out, [[0, 1, 0, 0], [0, 0, 0.5, 0.5], [0, 1, 0, 0], [0, 0, 0, 0]])
    np.testing.assert_allclose(a_in, [[0, 0, 0, 0], [0.5, 0, 0.5, 0], [0, 1, 0, 0], [0, 1, 0, 0]])
    assert len(src) == 4  # the repeated transition 1→3 is one edge


def test_stamp_depends_on_order_only_through_the_last_item() -> None:
    model = _fitted("STAMP", _split())
    base = _sessions([[3, 9, 14, 22, 5]], [1])
    shuffled = _sessions([[22, 14, 3, 9, 5]], [1])
    other_last = _sessions([[3, 9, 14, 5, 22]], [1])
    torch.testing.assert_close(_scores(model, shuffled), _scores(model, base))
    assert not torch.allclose(_scores(model, other_last), _scores(model, base))


def test_bert4rec_predicts_from_an_appended_mask_never_scored() -> None:
    split = _split()
    model = _fitted("BERT4Rec", split)
    assert model.item_embedding.num_embeddings == N_ITEMS + 2 and model.mask_token == N_ITEMS + 1
    seen: list[torch.Tensor] = []
    encode = model._encode
    model._encode = lambda seq, lengths: seen.append(seq) or encode(seq, lengths)  # type: ignore[method-assign]
    batch = model.collate(split, np.arange(len(split)))
    scores = model.scores(batch)
    assert scores.shape[1] == N_ITEMS + 1  # the mask token has no output column
    seq, rows = seen[0], torch.arange(len(split))
    assert (seq[rows, batch["lengths"]] == model.mask_token).all()
    assert (batch["items"] != model.mask_token).all()
    model.train()
    model.loss(batch)
    masked_input = seen[1]
    assert (masked_input[rows, batch["lengths"]] == model.mask_token).all()  # the target is always hidden


def test_segment_attention_pools_within_macro_runs() -> None:
    values = torch.tensor([[[1.0], [3.0], [10.0], [0.0]]])  # one session, runs [0, 0, 1], one pad
    pooled = segment_attention_pool(torch.zeros(1, 4), values, torch.tensor([[0, 0, 1, -1]]), 2)
    torch.testing.assert_close(pooled, torch.tensor([[[2.0], [10.0]]]))


@pytest.mark.parametrize(("name", "grid"), [("NARM", {"lr": [0.01], "dropout": [0.1]}), ("SKNN", {"k": [10]})])
def test_grid_search_trains_a_baseline(tmp_path: Path, name: str, grid: dict[str, list[object]]) -> None:
    store = tiny_store(tmp_path)
    cfg = TrainConfig(batch_size=32, max_epochs=1, device="cpu", eval_batch_size=64)
    overrides = {"embedding_dim": 16} if name == "NARM" else {}
    result = grid_search(store, tiny_prepared(), name, grid, model_overrides=overrides, train_config=cfg,
                         checkpoint_root=tmp_path)
    assert [t.status for t in result.trials] == ["finished"] and result.best_run_id == result.trials[0].run_id
    metrics = runs_repo.final_metrics(store, result.best_run_id)["oracle"]
    assert 0.0 < metrics["hit@20"] <= 1.0
