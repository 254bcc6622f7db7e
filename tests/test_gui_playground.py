"""Playground over runs trained by the real engine: build a session by clicking, predictions equal the
core Predictor's, explanation views render, compare two runs, test-set and random sessions."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from embsr_core.inference import Predictor
from embsr_core.session_builder import sample_test_session

pytestmark = pytest.mark.gui
WAIT_MS = 30_000


@pytest.fixture()
def page(real_runs, qtbot):
    from app.application import create_context
    from app.pages.playground import PlaygroundPage

    context = create_context(cli_url=real_runs.url, theme="light")
    widget = PlaygroundPage(context)
    qtbot.addWidget(widget)
    widget.resize(1100, 700)
    widget.show()
    embsr = real_runs.run_ids[0]
    widget.run_combo.setCurrentIndex(widget.run_combo.findData(embsr))
    qtbot.waitUntil(lambda: widget.predictor is not None and widget.predictor.run_id == embsr, timeout=WAIT_MS)
    yield widget
    widget.runner.shutdown()
    context.runner.shutdown()


def _idle(page, qtbot) -> None:
    qtbot.waitUntil(page.is_idle, timeout=WAIT_MS)


def _table(page, t: int = 0) -> list[tuple[str, str, str]]:
    table = page.pred_tables[t]
    return [(table.item(r, 1).text(), table.item(r, 3).text(), table.item(r, 4).text())
            for r in range(table.rowCount())]


def _expected(predictor, session, k, target_op="unknown") -> list[tuple[str, str, str]]:
    return [(p.item_id, f"{p.score:.4f}", "✓" if p.in_session else "")
            for p in predictor.predict(session, k=k, target_op=target_op)]


def test_build_session_by_clicking_matches_predictor(page, real_runs, qtbot):
    predictor = Predictor.from_run(real_runs.store, real_runs.run_ids[0])
    steps = sample_test_session(real_runs.prepared, row=1).session[:3]
    for item, op in steps:
        page.search_edit.setText(item)
        qtbot.waitUntil(lambda item=item: page.search_results.count() > 0
                        and page.search_results.item(0).data(Qt.ItemDataRole.UserRole) == item, timeout=5000)
        qtbot.mouseClick(page.op_buttons[op], Qt.MouseButton.LeftButton)
    assert page.session == steps and page.steps.count() == 3
    _idle(page, qtbot)
    assert _table(page) == _expected(predictor, steps, 10)
    assert any(flag for _i, _s, flag in _table(page)) == any(
        p.in_session for p in predictor.predict(steps, k=10))

    # explanation views: attention over steps + star node, dyadic term, star gate per step, β
    n = len(steps)
    assert page.attention_view.matrix.shape == (n + 1, n + 1)
    assert np.allclose(page.attention_view.matrix[-1].sum(), 1.0, atol=1e-4)
    assert page.dyadic_view.matrix.shape == (n + 1, n + 1)
    assert page.star_view.values.shape == (n,)
    assert "β = " in page.beta_label.text() and page.explanation_missing == []
    expl = predictor.explain(steps)
    kept = f"{100 * float(expl['recent_keep_mean'][0]):.0f}% kept"  # EMBSR's default last-item GRU step
    assert kept in page.beta_label.text()
    copied = f"Seen again: {100 * float(expl['repeat_share'][0]):.0f}%"  # the default copy of seen items
    assert copied in page.beta_label.text()
    assert np.allclose(page.attention_view.matrix, expl["attention"][0].numpy(), atol=1e-6)

    # K, target operation (query mode), reorder and remove all re-predict
    page.k_spin.setValue(5)
    _idle(page, qtbot)
    assert _table(page) == _expected(predictor, steps, 5)
    query = predictor.vocab.op_names[-1]
    page.target_combo.setCurrentIndex(page.target_combo.findData(query))
    _idle(page, qtbot)
    assert _table(page) == _expected(predictor, steps, 5, query)
    page.target_combo.setCurrentIndex(0)
    page.steps.setCurrentRow(0)
    qtbot.mouseClick(page.down_button, Qt.MouseButton.LeftButton)
    swapped = [steps[1], steps[0], steps[2]]
    assert page.session == swapped
    _idle(page, qtbot)
    assert _table(page) == _expected(predictor, swapped, 5)
    page.steps.setCurrentRow(2)
    qtbot.mouseClick(page.remove_button, Qt.MouseButton.LeftButton)
    _idle(page, qtbot)
    assert page.session == swapped[:2] and _table(page) == _expected(predictor, swapped[:2], 5)
    assert page.star_view.values.shape == (2,)


def test_compare_runs_test_sample_and_random(page, real_runs, qtbot):
    embsr, sgnn = real_runs.run_ids
    page.sample_test(row=0)
    _idle(page, qtbot)
    sample = sample_test_session(real_runs.prepared, row=0)
    assert page.session == sample.session
    assert sample.next_item in page.true_label.text()

    page.compare_combo.setCurrentIndex(page.compare_combo.findData(sgnn))
    qtbot.waitUntil(lambda: page.other is not None, timeout=WAIT_MS)
    _idle(page, qtbot)
    assert not page.pred_tables[1].isHidden()
    a = Predictor.from_run(real_runs.store, embsr)
    b = Predictor.from_run(real_runs.store, sgnn)
    k = page.k_spin.value()
    assert _table(page, 0) == _expected(a, sample.session, k)
    assert _table(page, 1) == _expected(b, sample.session, k)
    assert "SGNN-Self" in page.pred_titles[1].text()

    qtbot.mouseClick(page.random_button, Qt.MouseButton.LeftButton)
    _idle(page, qtbot)
    assert page.session and all(item in page.catalogue for item, _op in page.session)
    assert page.true_label.text() == ""
    assert _table(page, 0) == _expected(a, page.session, k)
    qtbot.mouseClick(page.clear_button, Qt.MouseButton.LeftButton)
    assert page.session == [] and page.pred_tables[0].rowCount() == 0


def test_sample_from_test_set_button_loads_a_held_out_session(page, real_runs, qtbot):
    """The real button: ``clicked(bool)`` must not reach the slot as a row number."""
    page._prepared = None  # the split is loaded by the click, as on a fresh page
    qtbot.mouseClick(page.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.true_next is not None, timeout=WAIT_MS)
    _idle(page, qtbot)
    assert page.session and "True next item" in page.true_label.text()
    assert "Loading the test split" not in page.status.text()
    assert page.pred_tables[0].rowCount() == page.k_spin.value()


def test_fifteen_steps_keep_readable_charts_and_whole_item_ids(page, real_runs, qtbot):
    item, op = sample_test_session(real_runs.prepared, row=0).session[0]
    page.search_edit.setText(item)
    qtbot.waitUntil(lambda: page.search_results.count() > 0, timeout=5000)
    for _ in range(15):
        qtbot.mouseClick(page.op_buttons[op], Qt.MouseButton.LeftButton)
    assert len(page.session) == 15
    page.why_tabs.setCurrentWidget(page.attention_view)
    _idle(page, qtbot)
    view = page.attention_view
    assert view.matrix.shape == (16, 16)
    # an absolute scale (from 0), and the plot says when attention is nearly uniform
    assert view.levels[0] == 0.0 and view.levels[1] == pytest.approx(float(view.matrix.max()))
    lo, hi = float(view.matrix.min()), float(view.matrix.max())
    assert ("nearly uniform" in view.note) == (hi - lo < 0.25 * hi)
    # the step labels on each axis do not overlap
    plot = view.getPlotItem()
    box = plot.getViewBox().sceneBoundingRect()
    metrics = view.fontMetrics()
    bottom = plot.getAxis("bottom")._tickLevels[0]
    left = plot.getAxis("left")._tickLevels[0]
    assert len(bottom) * max(metrics.horizontalAdvance(t) for _, t in bottom) <= box.width()
    assert len(left) * metrics.height() <= box.height()
    # item ids are shown whole in the predictions table
    table = page.pred_tables[0]
    for r in range(table.rowCount()):
        text = table.item(r, 1).text()
        assert table.columnWidth(1) >= table.fontMetrics().horizontalAdvance(text)
        assert table.item(r, 1).toolTip() == text


def test_long_run_names_do_not_widen_the_page_past_the_window(page, real_runs, qtbot):
    """A leaderboard's runs have long names; the choosers, the table titles and the verdict line shorten
    or wrap them so the page still fits a 1280-pixel window beside the sidebar."""
    from embsr_core.store import runs_repo

    long_names = {r: f"board 85abcd0bd3 {'EMBSR' if k == 0 else 'SGNN-Self'} #{k} lr=0.001 dropout=0.1 w_k=12.0 "
                     "mask_prob=0.2 a name as long as a tuned trial gets" for k, r in enumerate(real_runs.run_ids)}
    for run_id, name in long_names.items():
        runs_repo.update_run(real_runs.store, run_id, name=name)
    page.reload_runs()
    embsr, sgnn = real_runs.run_ids
    page.compare_combo.setCurrentIndex(page.compare_combo.findData(sgnn))
    qtbot.waitUntil(lambda: page.other is not None, timeout=WAIT_MS)
    page.sample_test(row=0)
    _idle(page, qtbot)
    assert page.minimumSizeHint().width() <= 1280 - 220, page.minimumSizeHint()
    title = page.pred_titles[1]
    assert title.full_text().startswith(f"#{sgnn} {long_names[sgnn]}") and title.toolTip() == title.full_text()
    page.resize(1060, 760)
    _idle(page, qtbot)
    assert title.shown_text().endswith("…") and len(title.shown_text()) < len(title.full_text())
