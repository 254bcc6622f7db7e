"""The planted generator's exact next-item law: what the best possible model would predict.

``generate_synthetic`` is a hidden Markov model (``docs/synthetic.md``): per macro-item an intent is
drawn, the operations show it with probability ``signal``, and the next item follows from the
intent, the category relations and a pending *anchor* (a studied item). Knowing the generator (its
catalogue is the first draw of the generator's random stream), :func:`next_item_law` filters the
anchor's posterior along a session's macro-items and returns the exact probability of every item
being next. Ranking by it maximises the expected H@K and M@K, so it is the ceiling of every model
on planted data (``benchmarks/planted_ceiling.py``). Keep it in step with ``synthetic.py``: the
tests check the law against the generator's own sessions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from embsr_core.data import synthetic as gen

Macro = tuple[int, tuple[int, ...]]  # (raw item index, the macro-item's operation roles in order)


def planted_catalogue(n_items: int, n_categories: int, seed: int) -> gen._Catalogue:
    """The catalogue ``generate_synthetic(..., seed=seed)`` builds: its first use of the random stream."""
    return gen._Catalogue(n_items, n_categories, np.random.default_rng(seed))


def template_likelihood(signal: float) -> dict[tuple[int, ...], np.ndarray]:
    """P(shown role sequence | true intent) for every template, as a vector over the intents."""
    like: dict[tuple[int, ...], np.ndarray] = {}
    for shown, group in enumerate(gen.TEMPLATES):
        for tmpl in group:
            v = np.full(len(gen.TEMPLATES), (1 - signal) * gen.INTENT_PROBS[shown] / len(group))
            v[shown] += signal / len(group)
            like[tmpl] = like.get(tmpl, 0) + v
    return like


class NextItemLaw:
    """P(next item | current, previous, intent, anchor) over the raw items, as the generator draws it."""

    def __init__(self, cat: gen._Catalogue, signal: float):
        self.cat = cat
        self.likelihood = template_likelihood(signal)
        n = len(cat.item_cat)
        p = np.empty(n)
        for c in range(len(cat.sizes)):
            members = cat.items[cat.offset[c]:cat.offset[c] + cat.sizes[c]]
            w = 1.0 / (np.arange(len(members)) + 1.0)  # Zipf by rank within the category, as _Catalogue
            p[members] = w / w.sum()
        self.p_in_cat = p
        self._cache: dict[tuple[int, int], np.ndarray] = {}

    def in_category(self, c: int, avoid: int) -> np.ndarray:
        """``sample_in(c, avoid)``: popularity within c, with ``avoid`` moved to its successor."""
        key = (c, avoid)
        if key not in self._cache:
            cat = self.cat
            dist = np.zeros(len(cat.item_cat))
            members = cat.items[cat.offset[c]:cat.offset[c] + cat.sizes[c]]
            dist[members] = self.p_in_cat[members]
            if cat.item_cat[avoid] == c:
                nxt = cat.items[cat.offset[c] + (cat.pos[avoid] - cat.offset[c] + 1) % cat.sizes[c]]
                dist[nxt] += dist[avoid]
                dist[avoid] = 0.0
            self._cache[key] = dist
        return self._cache[key]

    def branches(self, cur: int, prev: int, intent: int, anchor: int) -> list[tuple[float, np.ndarray, int]]:
        """(probability, next-item distribution, anchor afterwards) for each way one step can go."""
        cat = self.cat
        c = int(cat.item_cat[cur])
        if intent == gen.STUDY:
            anchor = cur
        elif intent in (gen.CART_IT, gen.ORDER_IT) and anchor == cur:
            anchor = -1
        if intent == gen.CART_IT:
            return [(1.0, self.in_category(int(cat.comp[c]), cur), anchor)]
        if intent == gen.ORDER_IT:
            return [(1.0, self.in_category(int(cat.alt[c]), cur), anchor)]
        stay = self.in_category(c, cur)
        if intent == gen.BROWSE and anchor >= 0 and anchor != cur and anchor != prev:
            exact = np.zeros(len(cat.item_cat))
            exact[anchor] = 1.0
            back = (gen.P_RETURN_SAME_ITEM * exact
                    + (1 - gen.P_RETURN_SAME_ITEM) * self.in_category(int(cat.item_cat[anchor]), cur))
            return [(gen.P_RETURN, back, -1), (1 - gen.P_RETURN, stay, anchor)]
        return [(1.0, stay, anchor)]

    def predict(self, macros: list[Macro]) -> np.ndarray:
        """Exact P(item after the last macro-item | all macro-items so far), a vector over raw items."""
        if not macros:
            raise ValueError("a session needs at least one macro-item")
        belief = {-1: 1.0}  # anchor → posterior probability before the current macro-item's step
        prev = -1
        for t, (cur, roles) in enumerate(macros):
            w_intent = gen.INTENT_PROBS * self.likelihood[roles]
            if t == len(macros) - 1:  # the last macro-item: mix the next-item laws under the belief
                out = np.zeros(len(self.cat.item_cat))
                for anchor, pa in belief.items():
                    for intent, wi in enumerate(w_intent):
                        for pb, dist, _ in self.branches(cur, prev, intent, anchor):
                            out += pa * wi * pb * dist
                return out / out.sum()
            new_belief: dict[int, float] = {}  # otherwise: condition on the item that came next
            for anchor, pa in belief.items():
                for intent, wi in enumerate(w_intent):
                    for pb, dist, after in self.branches(cur, prev, intent, anchor):
                        if (w := pa * wi * pb * dist[macros[t + 1][0]]) > 0:
                            new_belief[after] = new_belief.get(after, 0.0) + w
            z = sum(new_belief.values())
            if z == 0:
                raise ValueError(f"macro-item {t + 2} is impossible under the planted law")
            belief = {a: v / z for a, v in new_belief.items()}
            prev = cur
        raise AssertionError("unreachable")


def raw_macros(events: pd.DataFrame) -> dict[str, list[Macro]]:
    """Each session of a generated frame (JD operation names) as its macro-items, in order."""
    role_of = {name: r for r, name in enumerate(gen.JD_OPERATIONS)}
    items = events["item"].astype(int).to_numpy() - 1
    roles = events["operation"].map(role_of).to_numpy()
    out: dict[str, list[Macro]] = {}
    for sess, idx in events.groupby("session", sort=False).indices.items():
        macros: list[tuple[int, list[int]]] = []
        for i in idx:
            if macros and macros[-1][0] == items[i]:
                macros[-1][1].append(int(roles[i]))
            else:
                macros.append((int(items[i]), [int(roles[i])]))
        out[str(sess)] = [(v, tuple(r)) for v, r in macros]
    return out
