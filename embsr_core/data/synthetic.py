"""Planted synthetic micro-behavior sessions: the product's built-in demo data.

The generative story (intents, operation templates, next-item rules, and why a macro-only model
cannot recover the signal) is written down in ``docs/synthetic.md``; keep the two in step.
Everything is vectorised over sessions: one loop iteration per macro-item *position* (≤ 50).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from embsr_core.data.events import JD_OPERATIONS, validate_events

# Operation *roles* follow the JD layout (behavior_type - 1); a custom vocabulary is mapped onto them.
HOME, SHOPLIST, SALE, CART2P, SEARCH, COMMENTS, SPEC, BOTTOM, CART, ORDER = range(10)

# Intents: what the user does with the current macro-item, which decides the next item.
BROWSE, STUDY, CART_IT, IMPULSE, ORDER_IT = range(5)
INTENT_NAMES = ("browse", "study", "cart", "impulse", "order")
INTENT_PROBS = np.array([0.45, 0.18, 0.15, 0.10, 0.12])
P_RETURN = 0.6  # browse while an anchor (a studied item) is pending → go back to it
P_RETURN_SAME_ITEM = 0.5  # ... to the anchor itself, else to an item of the anchor's category

# Operation templates per intent (role sequences). Single operations are shared across intents
# (Cart: cart vs impulse; Detail_comments: cart vs study; Home2Product: browse vs order), so
# only *pairs* such as ⟨Detail_comments, Cart⟩ or ⟨Home2Product, Order⟩ identify the intent.
TEMPLATES: tuple[tuple[tuple[int, ...], ...], ...] = (
    ((HOME,), (SEARCH,), (SHOPLIST,), (SALE,), (SEARCH, SEARCH), (HOME, BOTTOM), (SEARCH, SPEC), (SHOPLIST, BOTTOM)),
    (
        (SEARCH, COMMENTS, SPEC),
        (HOME, SPEC, COMMENTS),
        (SHOPLIST, COMMENTS, BOTTOM, SPEC),
        (SEARCH, SPEC, COMMENTS, COMMENTS),
    ),
    ((SEARCH, COMMENTS, CART), (HOME, COMMENTS, SPEC, CART), (SHOPLIST, COMMENTS, CART)),
    ((HOME, CART), (SALE, CART), (SALE, BOTTOM, CART)),
    ((HOME, ORDER), (CART2P, ORDER), (CART2P, SPEC, ORDER)),
)
DEEP_ROLES = (COMMENTS, SPEC, BOTTOM)
MAX_MICRO = 50  # JD-like session lengths: 5..50 micro-behaviors


# How often a macro-item's operations reveal the user's intent. At 0.9 the planted benchmark shows
# EMBSR ≥ 10 % above the macro-only SGNN-Self (benchmarks/planted.py; at 0.8: +5 % / +7 %).
DEFAULT_SIGNAL = 0.9


def generate_synthetic(
    n_sessions: int = 20_000,
    n_items: int = 2_000,
    n_categories: int = 40,
    operations: Sequence[str] = JD_OPERATIONS,
    signal: float = DEFAULT_SIGNAL,
    seed: int = 0,
    start_time: float = 1_546_300_800.0,  # 2019-01-01 UTC; sessions spread over 30 days
) -> pd.DataFrame:
    """A canonical events frame (with category and dwell) with planted micro-behavior patterns.

    ``signal`` is the probability that a macro-item's operations reveal the user's intent; with
    probability ``1 - signal`` they are drawn from the same marginal mix independently of it, so
    at 0 operations carry no information about the next item. Deterministic per ``seed``.
    """
    if not 0.0 <= signal <= 1.0:
        raise ValueError(f"signal must be in [0, 1], got {signal}")
    if n_sessions < 1 or n_categories < 1 or n_items < 2 * n_categories:
        raise ValueError(
            f"need n_sessions ≥ 1 and n_items ≥ 2 × n_categories; got {n_sessions}, {n_items}, {n_categories}"
        )
    ops = list(operations)
    if len(ops) < 2 or len(set(ops)) != len(ops):
        raise ValueError(f"operations must be ≥ 2 distinct names, got {ops}")
    rng = np.random.default_rng(seed)
    cat = _Catalogue(n_items, n_categories, rng)
    tmpl_intent = np.concatenate([np.full(len(t), k) for k, t in enumerate(TEMPLATES)])
    tmpl_len = np.array([len(t) for group in TEMPLATES for t in group])
    tmpl_roles = np.concatenate([np.array(t) for group in TEMPLATES for t in group])
    tmpl_off = np.r_[0, np.cumsum(tmpl_len)[:-1]]
    per_intent = [np.flatnonzero(tmpl_intent == k) for k in range(len(TEMPLATES))]

    # session micro-lengths T: lognormal around 14, clipped to 5..50
    target_len = np.clip(np.round(rng.lognormal(np.log(14.0), 0.65, n_sessions)), 5, MAX_MICRO).astype(np.int64)
    sess = np.arange(n_sessions)
    c0 = rng.choice(n_categories, size=n_sessions, p=cat.cat_p)
    item = cat.sample_in(c0, rng)
    anchor = np.full(n_sessions, -1)
    prev = np.full(n_sessions, -1)  # the macro-item before the current one
    filled = np.zeros(n_sessions, np.int64)
    rec_sess, rec_item, rec_tmpl = [], [], []
    active = sess
    while len(active):
        m = len(active)
        intent = rng.choice(len(INTENT_PROBS), size=m, p=INTENT_PROBS)
        shown = np.where(rng.random(m) < signal, intent, rng.choice(len(INTENT_PROBS), size=m, p=INTENT_PROBS))
        tmpl = _pick(per_intent, shown, rng)
        cur = item[active]
        prev_before = prev[active]
        rec_sess.append(active)
        rec_item.append(cur)
        rec_tmpl.append(tmpl)
        anchor[active] = _update_anchor(anchor[active], cur, intent)
        prev[active] = cur
        item[active], anchor[active] = _next_items(cat, cur, prev_before, intent, anchor[active], rng)
        filled[active] += tmpl_len[tmpl]
        active = active[filled[active] < target_len[active]]

    m_sess = np.concatenate(rec_sess)
    order = np.argsort(m_sess, kind="stable")  # session-major, macro positions in order
    m_sess, m_item, m_tmpl = m_sess[order], np.concatenate(rec_item)[order], np.concatenate(rec_tmpl)[order]
    lens = tmpl_len[m_tmpl]
    row_macro = np.repeat(np.arange(len(m_tmpl)), lens)
    within = np.arange(len(row_macro)) - np.repeat(np.cumsum(lens) - lens, lens)
    roles = tmpl_roles[tmpl_off[m_tmpl][row_macro] + within]
    r_sess = m_sess[row_macro]
    counts = np.bincount(r_sess, minlength=n_sessions)
    pos = np.arange(len(r_sess)) - np.repeat(np.cumsum(counts) - counts, counts)  # step within session
    keep = pos < MAX_MICRO
    row_macro, roles, r_sess = row_macro[keep], roles[keep], r_sess[keep]

    # time: session starts over 30 days (session ids in start order); deep reads take longer
    starts = np.sort(rng.uniform(0, 30 * 86_400, n_sessions)) + start_time
    mean_gap = np.where(np.isin(roles, DEEP_ROLES), 35.0, 9.0)
    gap = np.round(rng.lognormal(np.log(mean_gap), 0.6)) + 1
    first = np.r_[True, r_sess[1:] != r_sess[:-1]]
    csum = np.cumsum(gap)
    base = np.maximum.accumulate(np.where(first, csum - gap, 0))
    timestamp = starts[r_sess] + (csum - gap - base)
    dwell = np.bincount(row_macro, weights=gap, minlength=len(m_tmpl))[row_macro]

    role_to_op = [ops[r * len(ops) // 10] for r in range(10)]
    items = m_item[row_macro]
    frame = pd.DataFrame(
        {
            "session": _labels(np.arange(1, n_sessions + 1).astype(str), r_sess),
            "item": _labels(np.arange(1, n_items + 1).astype(str), items),
            "operation": _labels(np.array(role_to_op), roles),
            "timestamp": timestamp,
            "category": _labels(np.arange(1, n_categories + 1).astype(str), cat.item_cat[items]),
            "dwell": dwell,
        }
    )
    return validate_events(frame, source="synthetic")


def _labels(names: np.ndarray, codes: np.ndarray) -> pd.Series:
    """``names[codes]`` as a string column, built by Arrow (30× faster than ``astype(str)``)."""
    return pd.Series(pa.array(names).take(pa.array(codes)), dtype="str")


class _Catalogue:
    """Items with categories, Zipf popularity within a category, and category relations."""

    def __init__(self, n_items: int, n_categories: int, rng: np.random.Generator):
        size_w = 1.0 / np.arange(1, n_categories + 1) ** 0.5
        cats = rng.choice(n_categories, size=n_items - 2 * n_categories, p=size_w / size_w.sum())
        self.item_cat = rng.permutation(np.r_[np.repeat(np.arange(n_categories), 2), cats])  # ≥ 2 per category
        by_cat = np.argsort(self.item_cat, kind="stable")  # items grouped by category, rank = popularity
        self.sizes = np.bincount(self.item_cat, minlength=n_categories)
        self.offset = np.r_[0, np.cumsum(self.sizes)[:-1]]
        self.items = by_cat
        rank = np.arange(n_items) - np.repeat(self.offset, self.sizes)
        w = 1.0 / (rank + 1.0) ** 1.0
        cum = np.cumsum(w)
        seg_total = np.add.reduceat(w, self.offset)
        seg_start = np.repeat(np.r_[0, np.cumsum(seg_total)[:-1]], self.sizes)
        # cumulative probability within the category, shifted by the category index: one searchsorted
        self.cum = (cum - seg_start) / np.repeat(seg_total, self.sizes) + np.repeat(np.arange(n_categories), self.sizes)
        self.cum[np.cumsum(self.sizes) - 1] = np.arange(1, n_categories + 1)  # exact segment ends
        self.pos = np.empty(n_items, np.int64)
        self.pos[by_cat] = np.arange(n_items)
        cat_w = 1.0 / np.arange(1, n_categories + 1) ** 1.0
        self.cat_p = cat_w / cat_w.sum()
        perm = rng.permutation(n_categories)
        self.comp = np.empty(n_categories, np.int64)  # accessory category of c
        self.comp[perm] = np.roll(perm, 1)
        perm = rng.permutation(n_categories)
        self.alt = np.empty(n_categories, np.int64)  # the next need after buying in c
        self.alt[perm] = np.roll(perm, 2 if n_categories > 2 else 1)

    def sample_in(self, cats: np.ndarray, rng: np.random.Generator, avoid: np.ndarray | None = None) -> np.ndarray:
        """One popularity-weighted item per category in ``cats``; never equal to ``avoid``."""
        idx = np.searchsorted(self.cum, cats + rng.random(len(cats)), side="right")
        item = self.items[idx]
        if avoid is not None:
            same = item == avoid
            c = cats[same]
            nxt = self.offset[c] + (self.pos[item[same]] - self.offset[c] + 1) % self.sizes[c]
            item[same] = self.items[nxt]
        return item


def _pick(per_intent: list[np.ndarray], shown: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A template id uniformly among those of each row's shown intent."""
    counts = np.array([len(p) for p in per_intent])
    flat = np.concatenate(per_intent)
    off = np.r_[0, np.cumsum(counts)[:-1]]
    return flat[off[shown] + (rng.random(len(shown)) * counts[shown]).astype(np.int64)]


def _update_anchor(anchor: np.ndarray, cur: np.ndarray, intent: np.ndarray) -> np.ndarray:
    """Studying an item makes it the anchor; carting or ordering the anchor settles it."""
    anchor = np.where(intent == STUDY, cur, anchor)
    settled = ((intent == CART_IT) | (intent == ORDER_IT)) & (anchor == cur)
    return np.where(settled, -1, anchor)


def _next_items(
    cat: _Catalogue,
    cur: np.ndarray,
    prev: np.ndarray,
    intent: np.ndarray,
    anchor: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """The next macro-item per the intent's rule (docs/synthetic.md), and the updated anchor.

    A return to the anchor needs at least two other items since it was studied (``anchor`` is
    neither the current nor the previous item): compare alternatives, then come back.
    """
    c = cat.item_cat[cur]
    target_cat = c.copy()
    target_cat[intent == CART_IT] = cat.comp[c[intent == CART_IT]]
    target_cat[intent == ORDER_IT] = cat.alt[c[intent == ORDER_IT]]
    ret = (intent == BROWSE) & (anchor >= 0) & (anchor != cur) & (anchor != prev) & (rng.random(len(cur)) < P_RETURN)
    target_cat[ret] = cat.item_cat[anchor[ret]]
    nxt = cat.sample_in(target_cat, rng, avoid=cur)
    exact = ret & (rng.random(len(cur)) < P_RETURN_SAME_ITEM)
    nxt[exact] = anchor[exact]
    return nxt, np.where(ret, -1, anchor)
