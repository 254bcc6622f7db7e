"""Datasets page as a user drives it: the import wizard (real JD sample, a mapped generic table, a bad
file), statistics and charts of the selected dataset, synthetic generation, delete, the demo offer."""

from __future__ import annotations

from pathlib import Path

import _gui_helpers
import pytest
from _gui_helpers import JD_SAMPLE, message_boxes
from PySide6.QtWidgets import QMessageBox

from app.jobs import Problem
from app.main_window import MainWindow
from embsr_core.store import runs_repo
from embsr_core.store.repository import get_dataset, list_datasets

pytestmark = pytest.mark.gui
context = _gui_helpers.context  # fixtures
window = _gui_helpers.window
IMPORT_TIMEOUT_MS = 60_000


def _close_boxes(parent) -> list[str]:
    texts = []
    for box in message_boxes(parent):
        texts.append(box.text())
        box.done(QMessageBox.StandardButton.Ok)
    return texts


def _table_csv(path: Path, rows: int, bad_line: int | None = None) -> Path:
    """A generic table whose column names the importer cannot guess (sid, sku, act, when)."""
    lines = ["sid;sku;act;when"]
    for k in range(rows):
        when = f"2020-01-{1 + k % 28:02d}T10:{k % 60:02d}:00"
        if bad_line is not None and k + 2 == bad_line:
            when = "not-a-time"
        lines.append(f"s{k // 4};p{k % 7};{'view' if k % 3 else 'cart'};{when}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _pages_open_and_wizard_imports_jd(qtbot, window: MainWindow, context, path: Path, sessions: int,
                                      events: int) -> None:
    """Every page opens on an empty store; the wizard imports a JD file; its statistics arrive."""
    for page_id in window.page_ids():  # every page opens (renders offscreen) with an empty store
        window.show_page(page_id)
        assert not window.current_page().grab().isNull()
    page = window.page("datasets")
    window.show_page("datasets")
    assert page.model.rowCount() == 0 and page.empty_label.isVisible() or page.empty_label.isVisibleTo(page)

    wizard = page.open_import_wizard()
    wizard.set_files([path])
    files = wizard.files_page
    assert files.detected == "jd" and "jd" in files.detected_label.text()
    assert files.name_edit.text() == path.stem and files.isComplete()
    assert files.preview_table.rowCount() > 0 and files.preview_table.columnCount() >= 4
    assert files.nextId() == wizard.RUN  # no column mapping for a native format
    with qtbot.waitSignal(wizard.imported, timeout=IMPORT_TIMEOUT_MS) as blocker:
        wizard.next()
    report = blocker.args[0]
    ds = get_dataset(context.store, path.stem)
    assert (ds.n_sessions, ds.n_events, ds.source_format) == (sessions, events, "jd")
    assert report.n_sessions == sessions and report.rows_kept == events
    assert f"{events:,}" in wizard.run_page.result_label.text() and wizard.run_page.bar.value() == 1000
    assert "rows/s" in wizard.run_page.rate.text()
    wizard.accept()

    # the table shows it, selected, and its statistics arrive from the reader worker
    assert page.model.rowCount() == 1 and page.selected_id() == ds.id
    qtbot.waitUntil(lambda: page.overview() is not None, timeout=30_000)
    overview = page.overview()
    t2 = overview.stats["table2"]
    assert t2["train"] + t2["valid"] + t2["test"] > 0
    assert "Train" in page.summary.text() and f"{t2['items']:,}" in page.summary.text()
    assert sum(dict(page.op_chart.bars()).values()) == t2["micro_behaviors"]
    assert len(page.timeline.operation_names()) > 1 and overview.preview["session"].nunique() == 5
    assert page.model.data(page.model.index(0, 5)) == f"{events:,}"


def test_pages_open_and_wizard_imports_the_jd_sample(qtbot, window: MainWindow, context):
    if not JD_SAMPLE.exists():
        pytest.skip(f"the real JD sample is not beside this clone ({JD_SAMPLE.name} under ../shared/data/jd); "
                    "test_pages_open_and_wizard_imports_a_jd_file covers the same path on a generated file")
    _pages_open_and_wizard_imports_jd(qtbot, window, context, JD_SAMPLE, 1_000, 57_332)
    assert window.page("datasets").overview().preset == "sample"


def test_pages_open_and_wizard_imports_a_jd_file(qtbot, window: MainWindow, context, tmp_path):
    """The same path as the real-sample test on a JD-format file the test writes (runs on any clone)."""
    from native_fixtures import write_jd

    written = write_jd(tmp_path / "jd_appliances_like.txt", n_sessions=120, seed=3)
    _pages_open_and_wizard_imports_jd(qtbot, window, context, written.path, written.sessions, written.kept)


def test_generic_table_needs_a_mapping_with_a_live_preview(qtbot, window: MainWindow, context, tmp_path):
    page = window.page("datasets")
    wizard = page.open_import_wizard()
    wizard.set_files([_table_csv(tmp_path / "clicks.csv", 40)])
    assert wizard.files_page.detected == "generic" and wizard.files_page.nextId() == wizard.MAPPING
    wizard.next()
    mapping = wizard.mapping_page
    assert mapping.columns == ["sid", "sku", "act", "when"]
    assert mapping.preview is not None and mapping.raw_table.rowCount() == 20
    assert not mapping.isComplete() and "session" in mapping.status.text()  # sid / act / when not guessed
    for fld, col in (("session", "sid"), ("item", "sku"), ("operation", "act"), ("timestamp", "when")):
        mapping.combos[fld].setCurrentIndex(mapping.combos[fld].findData(col))
    mapping.refresh_preview()  # the debounce timer would do it 150 ms later
    assert mapping.isComplete() and "first 20 rows" in mapping.status.text()
    assert mapping.mapped_table.rowCount() == 20
    assert [mapping.mapped_table.horizontalHeaderItem(c).text() for c in range(4)] == [
        "session", "item", "operation", "timestamp"]
    with qtbot.waitSignal(wizard.imported, timeout=IMPORT_TIMEOUT_MS) as blocker:
        wizard.next()
    assert blocker.args[0].n_sessions == 10 and get_dataset(context.store, "clicks").n_events == 40
    wizard.accept()


def test_a_bad_file_shows_file_line_problem_and_stores_nothing(qtbot, window: MainWindow, context, tmp_path):
    page = window.page("datasets")
    bad = _table_csv(tmp_path / "broken.csv", 60, bad_line=45)  # past the 20 previewed rows
    wizard = page.open_import_wizard()
    wizard.set_files([bad])
    wizard.next()
    mapping = wizard.mapping_page
    for fld, col in (("session", "sid"), ("item", "sku"), ("operation", "act"), ("timestamp", "when")):
        mapping.combos[fld].setCurrentIndex(mapping.combos[fld].findData(col))
    mapping.refresh_preview()
    assert mapping.isComplete()
    with qtbot.waitSignal(wizard.failed, timeout=IMPORT_TIMEOUT_MS) as blocker:
        wizard.next()
    problem = blocker.args[0]
    assert isinstance(problem, Problem) and problem.line == 45 and problem.column == "when"
    texts = _close_boxes(wizard)
    assert any("File: " in t and str(bad) in t and "Line: 45" in t and "not-a-time" in t for t in texts), texts
    assert "Nothing was stored" in wizard.run_page.result_label.text()
    assert list_datasets(context.store) == [] and not wizard.run_page.isComplete()

    # an error inside the previewed rows is shown on the mapping page, before any import
    wizard.back()
    wizard.set_files([_table_csv(tmp_path / "early.csv", 30, bad_line=5)])
    wizard.next()
    for fld, col in (("session", "sid"), ("item", "sku"), ("operation", "act"), ("timestamp", "when")):
        mapping.combos[fld].setCurrentIndex(mapping.combos[fld].findData(col))
    mapping.refresh_preview()
    assert not mapping.isComplete() and "line 5" in mapping.status.text()
    wizard.reject()


def test_generate_then_delete_refused_while_a_run_uses_it(qtbot, window: MainWindow, context):
    page = window.page("datasets")
    params = {"name": "Tiny synthetic", "n_sessions": 300, "n_items": 80, "n_categories": 4, "signal": 0.8,
              "seed": 3, "operations": None}
    task = page.generate_synthetic(params)
    with qtbot.waitSignal(task.done, timeout=IMPORT_TIMEOUT_MS):
        pass
    ds = get_dataset(context.store, "Tiny synthetic")
    assert ds.source_format == "synthetic" and ds.n_sessions == 300
    assert page.selected_id() == ds.id
    qtbot.waitUntil(lambda: page.overview() is not None, timeout=30_000)
    assert page.overview().preset == "synthetic"

    run_id = runs_repo.create_run(context.store, dataset_id=ds.id, model_name="EMBSR", config={})  # queued
    page.ask = lambda *_args: True
    task = page.delete_selected()
    with qtbot.waitSignal(task.done, timeout=10_000):
        pass
    assert isinstance(task.result, Problem) and "queued or running" in task.result.message
    assert any("queued or running" in t for t in _close_boxes(page))
    assert get_dataset(context.store, ds.id).name == "Tiny synthetic"

    runs_repo.mark_ended(context.store, run_id, "stopped")
    page.ask = lambda *_args: False  # "No" deletes nothing
    assert page.delete_selected() is None
    page.ask = lambda *_args: True
    task = page.delete_selected()
    with qtbot.waitSignal(task.done, timeout=10_000):
        pass
    assert task.result["runs"] == 1 and list_datasets(context.store) == [] and page.model.rowCount() == 0


def test_first_launch_demo_dataset_end_to_end_refreshes_pages(qtbot, window: MainWindow, context):
    task = window.generate_demo_dataset()  # the real core function, through the shared runner
    assert task is not None
    with qtbot.waitSignal(task.done, timeout=IMPORT_TIMEOUT_MS):
        pass
    assert task.state == "finished", task.error
    ds = get_dataset(context.store, "Demo (synthetic)")
    assert ds.n_sessions == 8_000
    datasets, train = window.page("datasets"), window.page("train")
    assert window.current_page() is datasets and datasets.model.dataset(0).name == "Demo (synthetic)"
    assert train.dataset_combo.count() == 1 and train.dataset_combo.currentData() == ds.id
    assert train.preset_combo.currentData() == "synthetic"


def test_data_view_pages_and_filters_the_imported_micro_behaviors(qtbot, window: MainWindow, context):
    from PySide6.QtCore import Qt

    from embsr_core.data.demo import import_synthetic
    from embsr_core.data.store_io import load_events

    import_synthetic(context.store, "Browse me", n_sessions=260, n_items=50, n_categories=4, seed=2)
    events = load_events(context.store, "Browse me", categorical=False)
    window.show_page("datasets")
    page = window.page("datasets")
    page.reload()
    browser = page.browser
    tabs = page.views.tabBar()
    qtbot.mouseClick(tabs, Qt.MouseButton.LeftButton, pos=tabs.tabRect(1).center())
    assert browser.isVisible()
    qtbot.waitUntil(lambda: browser.page is not None, timeout=10_000)
    assert browser.model.rowCount() == 100 and browser.status.text() == (
        f"Micro-behaviors: rows 1–100 of {len(events):,}")
    first = [browser.model.index(r, browser.model.column("item")).data() for r in range(100)]
    assert first == events["item"].astype(str).tolist()[:100]
    assert browser.model.index(0, browser.model.column("position")).data() == "1"  # steps counted from 1

    # next page, then back
    qtbot.mouseClick(browser.next_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: browser.page is not None and browser.page.offset == 100, timeout=10_000)
    assert browser.model.index(0, browser.model.column("item")).data() == str(events["item"].iloc[100])
    assert browser.model.headerData(0, Qt.Orientation.Vertical) == "101"
    qtbot.mouseClick(browser.prev_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: browser.page.offset == 0, timeout=10_000)
    assert not browser.prev_button.isEnabled()

    # filter by item (typed) and operation (chosen), applied with the button
    item = str(events["item"].iloc[5])
    operation = str(events["operation"].iloc[5])
    qtbot.mouseClick(browser.item_edit, Qt.MouseButton.LeftButton)
    qtbot.keyClicks(browser.item_edit, item)
    browser.operation.setCurrentIndex(browser.operation.findData(operation))
    qtbot.mouseClick(browser.apply_button, Qt.MouseButton.LeftButton)
    keep = events["item"].astype(str).str.contains(item, regex=False) & (events["operation"] == operation)
    qtbot.waitUntil(lambda: browser.page is not None and browser.page.total == int(keep.sum()), timeout=10_000)
    item_col, op_col = browser.model.column("item"), browser.model.column("operation")
    shown = [(browser.model.index(r, item_col).data(), browser.model.index(r, op_col).data())
             for r in range(browser.model.rowCount())]
    assert shown == list(zip(events[keep]["item"].astype(str), events[keep]["operation"], strict=True))[:100]

    # sessions view of the same filter; double-click a session → its micro-behaviors
    browser.mode.setCurrentIndex(browser.mode.findData("sessions"))
    qtbot.waitUntil(lambda: browser.status.text().startswith("Sessions"), timeout=10_000)
    sessions = list(dict.fromkeys(events[keep]["session"]))
    assert browser.page.total == len(sessions)
    browser.item_edit.clear()
    browser.operation.setCurrentIndex(0)
    qtbot.waitUntil(lambda: browser.page is not None and browser.page.total == events["session"].nunique(),
                    timeout=10_000)
    rect = browser.table.visualRect(browser.model.index(2, 0))
    qtbot.mouseClick(browser.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(browser.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    target = list(dict.fromkeys(events["session"]))[2]
    qtbot.waitUntil(lambda: browser.status.text().startswith("Micro-behaviors") and browser.page is not None
                    and browser.session_edit.text() == target, timeout=10_000)
    got = {browser.model.index(r, 0).data() for r in range(browser.model.rowCount())}
    assert got and all(target in s for s in got)


def test_the_datasets_page_speaks_to_an_analyst(qtbot, window: MainWindow, context):
    from _gui_text import cli_speak, visible_texts

    from embsr_core.data.demo import import_synthetic

    import_synthetic(context.store, "Plain words", n_sessions=80, n_items=30, n_categories=3, seed=1)
    window.show_page("datasets")
    page = window.page("datasets")
    page.reload()
    page.views.setCurrentIndex(1)
    qtbot.waitUntil(lambda: page.browser.page is not None, timeout=10_000)
    assert len(visible_texts(page)) > 30 and cli_speak(page) == []
