"""Session → directed multigraph with ordered edges + operation prefix trie (§IV-B-1, Fig. 3).

Everything here is vectorised numpy over a whole batch: no Python loop per session. The only loop
is over the *depth* of the operation trie (the longest run of micro-behaviors on one item).

Layout (all flat over the batch, sessions concatenated in row order):

* nodes      the distinct items of each session, in first-occurrence order (``node_items``,
             ``node_session``); the star node is implicit (one per session, linked to all of its
             satellites) and handled by :mod:`star_gnn`.
* macro      the macro-item sequence: consecutive micro-behaviors on the same item merged; macro
             position k has node ``macro_node[k]`` and operation run ``macro_prefix[k]`` (a trie node).
* edges      one per transition macro k → k+1 inside a session, repeats kept, in time order; each
             edge remembers both endpoint *positions* so that messages can use the op-GRU state of
             the right occurrence (eq. 5).
* trie       every distinct operation prefix of every run in the batch, level by level (depth 1
             first). ``trie_op[p]`` is the last operation of prefix p and ``trie_parent[p]`` the
             index of its parent *within the previous level*. A GRU over the trie (``op_gru``) gives
             the GRU state of every run while evaluating each distinct prefix once.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch


@dataclass
class Multigraph:
    """A batch of sessions as multigraphs (numpy, int64)."""

    node_items: np.ndarray  # Nn: item id of each node
    node_session: np.ndarray  # Nn: session (row) of each node
    micro_node: np.ndarray  # B×L: node of each micro-behavior; padding → Nn (a dummy zero row)
    macro_node: np.ndarray  # M: node of each macro position
    macro_session: np.ndarray  # M: session of each macro position
    macro_prefix: np.ndarray  # M: trie node holding the full operation run of each macro position
    edge_src: np.ndarray  # Ne: source node of transition k → k+1
    edge_dst: np.ndarray  # Ne: target node
    edge_src_pos: np.ndarray  # Ne: macro position of the source occurrence (k)
    edge_dst_pos: np.ndarray  # Ne: macro position of the target occurrence (k+1)
    trie_op: np.ndarray  # P: last operation of each prefix
    trie_parent: np.ndarray  # P: parent's index within the previous level (0 at depth 1)
    trie_level_ptr: np.ndarray  # depth+1: prefixes of depth k+1 are trie_level_ptr[k]:trie_level_ptr[k+1]

    def to_tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """Every field as an int64 CPU tensor, keys prefixed with ``prefix``."""
        return {prefix + f.name: torch.from_numpy(np.ascontiguousarray(getattr(self, f.name), dtype=np.int64))
                for f in fields(self)}

    def op_sequences(self) -> list[tuple[int, ...]]:
        """The operation run of every macro position, decoded from the trie (for tests and display)."""
        ptr = self.trie_level_ptr
        depth_of = np.searchsorted(ptr, np.arange(len(self.trie_op)), side="right") - 1
        out = []
        for p in self.macro_prefix.tolist():
            seq = []
            while True:
                seq.append(int(self.trie_op[p]))
                d = depth_of[p]
                if d == 0:
                    break
                p = int(ptr[d - 1] + self.trie_parent[p])
            out.append(tuple(reversed(seq)))
        return out


def build_multigraph(items: np.ndarray, ops: np.ndarray, lengths: np.ndarray) -> Multigraph:
    """Multigraphs of a batch of left-aligned sessions.

    items, ops: B×L int (0 = padding after ``lengths`` valid steps); lengths: B (each ≥ 1).
    """
    items = np.asarray(items, dtype=np.int64)
    ops = np.asarray(ops, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    B, L = items.shape
    col = np.arange(L)
    valid = col[None, :] < lengths[:, None]  # B×L
    prev = np.empty_like(items)
    prev[:, 0] = -1
    prev[:, 1:] = items[:, :-1]
    starts = valid & (items != prev)  # B×L: first micro-behavior of a macro run
    vb, vj = np.nonzero(valid)  # valid micro-behaviors, session-major, time order
    v_items = items[vb, vj]
    v_ops = ops[vb, vj]
    nv = len(vb)

    # nodes: distinct (session, item), numbered in first-occurrence order
    key = vb * (int(v_items.max(initial=0)) + 1) + v_items
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    v_node = rank[inverse.reshape(-1)]
    node_items = v_items[first[order]]
    node_session = vb[first[order]]
    n_nodes = len(node_items)
    micro_node = np.full((B, L), n_nodes, dtype=np.int64)
    micro_node[vb, vj] = v_node

    # macro positions and their runs
    v_start = starts[vb, vj]
    macro_first = np.nonzero(v_start)[0]  # index (in the valid list) of each run's first micro
    macro_last = np.empty_like(macro_first)
    macro_last[:-1] = macro_first[1:] - 1
    if len(macro_last):
        macro_last[-1] = nv - 1
    v_macro = np.cumsum(v_start) - 1  # macro position of each valid micro
    macro_node = v_node[macro_first]
    macro_session = vb[macro_first]

    same = macro_session[:-1] == macro_session[1:]
    src_pos = np.nonzero(same)[0]
    dst_pos = src_pos + 1

    # operation prefix trie, level by level (offset within the run = depth - 1)
    offset = np.arange(nv) - macro_first[v_macro]
    by_depth = np.argsort(offset, kind="stable")
    counts = np.bincount(offset, minlength=1) if nv else np.zeros(0, dtype=np.int64)
    base = int(v_ops.max(initial=0)) + 1
    prefix = np.empty(nv, dtype=np.int64)
    trie_op, trie_parent, level_ptr = [], [], [0]
    lo = 0
    for depth, n in enumerate(counts.tolist()):
        sel = by_depth[lo : lo + n]
        lo += n
        parent = prefix[sel - 1] - level_ptr[depth - 1] if depth else np.zeros(n, dtype=np.int64)
        uniq, inv = np.unique(parent * base + v_ops[sel], return_inverse=True)
        prefix[sel] = level_ptr[depth] + inv.reshape(-1)
        trie_op.append(uniq % base)
        trie_parent.append(uniq // base)
        level_ptr.append(level_ptr[depth] + len(uniq))
    cat = (lambda parts: np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64))
    return Multigraph(
        node_items=node_items,
        node_session=node_session,
        micro_node=micro_node,
        macro_node=macro_node,
        macro_session=macro_session,
        macro_prefix=prefix[macro_last],
        edge_src=macro_node[src_pos],
        edge_dst=macro_node[dst_pos],
        edge_src_pos=src_pos,
        edge_dst_pos=dst_pos,
        trie_op=cat(trie_op),
        trie_parent=cat(trie_parent),
        trie_level_ptr=np.asarray(level_ptr, dtype=np.int64),
    )
