"""The planted generator's exact law (the ceiling of benchmarks/planted_ceiling.py) must be the generator's."""

from __future__ import annotations

import numpy as np
import pytest

from embsr_core.data import synthetic as gen
from embsr_core.data.planted_law import NextItemLaw, planted_catalogue, raw_macros
from embsr_core.data.synthetic import generate_synthetic

N_ITEMS, N_CATS = 400, 10


@pytest.fixture(scope="module")
def planted():
    events = generate_synthetic(n_sessions=1_500, n_items=N_ITEMS, n_categories=N_CATS, seed=7)
    cat = planted_catalogue(N_ITEMS, N_CATS, seed=7)
    return events, cat, raw_macros(events)


def test_catalogue_is_the_generators(planted):
    events, cat, _ = planted
    items = events["item"].astype(int).to_numpy() - 1
    assert np.array_equal(cat.item_cat[items] + 1, events["category"].astype(int).to_numpy())


def test_law_never_rules_out_what_the_generator_did(planted):
    _, cat, sessions = planted
    law = NextItemLaw(cat, signal=gen.DEFAULT_SIGNAL)
    checked = 0
    for macros in list(sessions.values())[:300]:
        for k in range(1, len(macros)):
            p = law.predict(macros[:k])
            assert p.min() >= 0 and p.sum() == pytest.approx(1.0)
            assert p[macros[k][0]] > 0, f"the law gives 0 to the item that came next after {macros[:k]}"
            checked += 1
    assert checked > 1_000


def test_law_expects_the_hit_rate_it_gets(planted):
    """Calibration: the top-20 mass the law predicts is the hit rate it measures (within 4 sd)."""
    _, cat, sessions = planted
    law = NextItemLaw(cat, signal=gen.DEFAULT_SIGNAL)
    expected, hits = [], []
    for macros in sessions.values():
        p = law.predict(macros[:-1])
        top = np.argsort(-p)[:20]
        expected.append(p[top].sum())
        hits.append(macros[-1][0] in top)
    e, h = float(np.mean(expected)), float(np.mean(hits))
    assert abs(e - h) < 4 * np.sqrt(e * (1 - e) / len(hits)), (e, h)


def test_order_at_full_signal_points_to_the_next_need_category():
    cat = planted_catalogue(N_ITEMS, N_CATS, seed=3)
    item = int(cat.items[0])
    p = NextItemLaw(cat, signal=1.0).predict([(item, (gen.HOME, gen.ORDER))])
    need = cat.alt[cat.item_cat[item]]
    assert p[cat.item_cat == need].sum() == pytest.approx(1.0)


def test_operations_say_nothing_at_signal_zero():
    cat = planted_catalogue(N_ITEMS, N_CATS, seed=3)
    law = NextItemLaw(cat, signal=0.0)
    a, b = int(cat.items[0]), int(cat.items[-1])
    studied = law.predict([(a, (gen.SEARCH, gen.COMMENTS, gen.SPEC)), (b, (gen.HOME,))])
    ordered = law.predict([(a, (gen.HOME, gen.ORDER)), (b, (gen.SALE, gen.CART))])
    assert np.allclose(studied, ordered)
