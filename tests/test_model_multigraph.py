"""Multigraph + operation trie construction (§IV-B-1, Fig. 3)."""

import numpy as np

from embsr_core.models.layers.multigraph import build_multigraph

# Fig. 3: macro items v1 v2 v3 v2 v3 v4 with operation lists (o1)(o1)(o1)(o1,o2)(o1,o2,o3)(o1)
FIG3_ITEMS = [1, 2, 3, 2, 2, 3, 3, 3, 4]
FIG3_OPS = [1, 1, 1, 1, 2, 1, 2, 3, 1]


def _fig3_batch(pad: int = 0):
    items = np.array([FIG3_ITEMS + [0] * pad, [7, 7, 8] + [0] * (6 + pad)])
    ops = np.array([FIG3_OPS + [0] * pad, [2, 3, 2] + [0] * (6 + pad)])
    return items, ops, np.array([9, 3])


def test_fig3_multigraph_edges_and_op_sequences():
    g = build_multigraph(*_fig3_batch())
    # nodes: distinct items per session in first-occurrence order; session 1 follows session 0
    assert g.node_items.tolist() == [1, 2, 3, 4, 7, 8]
    assert g.node_session.tolist() == [0, 0, 0, 0, 1, 1]
    # the macro-item sequence v1 v2 v3 v2 v3 v4 (then 7 8)
    assert g.node_items[g.macro_node].tolist() == [1, 2, 3, 2, 3, 4, 7, 8]
    assert g.macro_session.tolist() == [0, 0, 0, 0, 0, 0, 1, 1]
    # one ordered edge per transition, repeats kept: v1→v2, v2→v3, v3→v2, v2→v3, v3→v4
    edges = list(zip(g.node_items[g.edge_src].tolist(), g.node_items[g.edge_dst].tolist(), strict=True))
    assert edges == [(1, 2), (2, 3), (3, 2), (2, 3), (3, 4), (7, 8)]
    assert g.edge_src_pos.tolist() == [0, 1, 2, 3, 4, 6]
    assert g.edge_dst_pos.tolist() == [1, 2, 3, 4, 5, 7]
    assert g.op_sequences() == [(1,), (1,), (1,), (1, 2), (1, 2, 3), (1,), (2, 3), (2,)]
    # every micro-behavior points at its item's node; padding at the dummy row Nn
    assert g.node_items[g.micro_node[0]].tolist() == FIG3_ITEMS
    assert g.micro_node[1, 3:].tolist() == [len(g.node_items)] * 6


def test_trie_holds_each_distinct_prefix_once():
    g = build_multigraph(*_fig3_batch())
    # prefixes: depth 1 {(1), (2)}, depth 2 {(1,2), (2,3)}, depth 3 {(1,2,3)}
    assert g.trie_level_ptr.tolist() == [0, 2, 4, 5]
    assert len(g.trie_op) == 5


def test_extra_padding_changes_nothing():
    a, b = build_multigraph(*_fig3_batch()), build_multigraph(*_fig3_batch(pad=5))
    for name in ("node_items", "node_session", "macro_node", "macro_prefix", "edge_src", "edge_dst",
                 "edge_src_pos", "edge_dst_pos", "trie_op", "trie_parent", "trie_level_ptr"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def test_single_micro_behavior_session():
    g = build_multigraph(np.array([[5]]), np.array([[3]]), np.array([1]))
    assert g.node_items.tolist() == [5] and len(g.edge_src) == 0
    assert g.op_sequences() == [(3,)]
