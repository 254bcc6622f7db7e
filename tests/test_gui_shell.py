"""Main window shell: pages, navigation, shortcuts, persisted state, themes, settings, smoke mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PySide6.QtCore import QEvent, QSettings, Qt
from PySide6.QtWidgets import QApplication

import embsr_core
from app.application import create_context, ensure_application, resolve_store_url
from app.main_window import MainWindow
from app.pages import PAGE_CLASSES, Page
from app.preferences import APPLICATION, ORGANIZATION, Preferences
from app.theme import DARK, LIGHT, render_qss

pytestmark = pytest.mark.gui
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def context(qapp, isolated_user_dirs):
    ensure_application()
    ctx = create_context(theme="light")
    yield ctx
    ctx.runner.shutdown()
    if ctx.store is not None:
        ctx.store.dispose()
    ctx.theme.apply("light")


def dispose(*windows: MainWindow) -> None:
    """Delete windows now: live leftovers would be restyled by every later theme change."""
    for win in windows:
        win.close()
        win.deleteLater()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)


@pytest.fixture
def window(qtbot, context):
    win = MainWindow(context)
    win.show()
    qtbot.waitExposed(win)
    yield win
    dispose(win)


def test_settings_live_in_the_temporary_config_dir(context, isolated_user_dirs):
    assert QApplication.organizationName() == ORGANIZATION
    assert QApplication.applicationName() == APPLICATION
    assert Path(Preferences().file_name()).is_relative_to(isolated_user_dirs)
    assert context.store is not None and str(isolated_user_dirs) in context.store.url


def test_window_opens_with_every_page_and_status_bar(window, context):
    assert window.page_ids() == ["datasets", "train", "runs", "leaderboard", "playground", "settings", "help"]
    assert window.nav.count() == len(PAGE_CLASSES) == window.stack.count()
    for page in window.pages:
        assert isinstance(page, Page) and page.title and not page.grab().isNull()
        assert not window.nav.item(window.pages.index(page)).icon().isNull()
    assert window.store_label.text() == f"Store: {context.store.location}"
    assert window.device_label.text() in ("Device: CPU",) or window.device_label.text().startswith("Device: CUDA · ")


def test_sidebar_and_shortcuts_switch_pages(qtbot, window):
    for row, page in enumerate(window.pages):
        window.nav.setCurrentRow(row)
        assert window.stack.currentIndex() == row and window.current_page() is page
        assert page.isVisible()
    window.activateWindow()
    for number in range(1, 6):
        qtbot.keyClick(window, Qt.Key(Qt.Key.Key_0.value + number), Qt.KeyboardModifier.ControlModifier)
        assert window.stack.currentIndex() == number - 1
    window.show_page("datasets")
    qtbot.keyClick(window, Qt.Key.Key_Comma, Qt.KeyboardModifier.ControlModifier)
    assert window.current_page().page_id == "settings"
    shortcuts = {a.shortcut().toString() for a in window.actions()}
    assert {"Ctrl+Q", "F1", "Ctrl+Shift+T", "Ctrl+/", "F11"} <= shortcuts
    with pytest.raises(IndexError):
        window.show_page(9)


def test_geometry_and_last_page_are_restored(qtbot, context):
    first = MainWindow(context)
    first.show()
    qtbot.waitExposed(first)
    first.resize(720, 520)  # the offscreen screen is 800×600; stay inside it
    first.show_page("runs")
    first.close()
    second = MainWindow(context)
    assert second.current_page().page_id == "runs"
    assert (second.width(), second.height()) == (720, 520)
    assert QSettings(ORGANIZATION, APPLICATION).value("window/last_page") == "runs"
    dispose(first, second)


def test_theme_switch_restyles_app_and_is_remembered(qtbot, window, context):
    app = QApplication.instance()
    assert LIGHT.window in app.styleSheet()
    with qtbot.waitSignal(context.theme.changed, timeout=1000) as blocker:
        window.theme_action.trigger()
    assert blocker.args == ["dark"]
    assert DARK.window in app.styleSheet() and LIGHT.window not in app.styleSheet()
    assert app.palette().window().color().name() == DARK.window
    assert window.theme_action.isChecked()
    assert Preferences().theme == "dark"
    settings_page = window.page("settings")
    assert settings_page.theme_combo.currentData() == "dark"
    settings_page.theme_combo.setCurrentIndex(settings_page.theme_combo.findData("light"))
    assert context.theme.name == "light" and Preferences().theme == "light"


def test_qss_template_reports_unknown_tokens_with_position():
    assert "#ffffff" in render_qss("QWidget { background: @surface; }", LIGHT)
    with pytest.raises(ValueError, match=r"x\.qss:2:15: unknown colour token @nope"):
        render_qss("/* a\n*/ QWidget { c: @nope; }", LIGHT, "x.qss")


def test_settings_page_saves_a_store_url_for_next_start(window, context):
    page = window.page("settings")
    window.show_page("settings")
    assert "0 datasets" in page.store_status.text()
    page.url_edit.setText("not a url at all")
    page.save_url_button.click()
    assert "Not a database URL" in page.url_message.text()
    assert Preferences().store_url is None
    page.url_edit.setText("postgresql+psycopg://analyst@db.example/embsr")
    page.save_url_button.click()
    assert "next time it starts" in page.url_message.text()
    assert Preferences().store_url == "postgresql+psycopg://analyst@db.example/embsr"
    # EMBSR_DB_URL (set by conftest) still wins over the saved URL; --db wins over both
    assert resolve_store_url(None, Preferences())[1] == "EMBSR_DB_URL"
    assert resolve_store_url("sqlite:///x.db", Preferences()) == ("sqlite:///x.db", "--db")
    page.reset_url_button.click()
    assert Preferences().store_url is None
    device = page.device_combo
    device.setCurrentIndex(device.findData("cpu"))
    assert Preferences().default_device == "cpu"
    assert Path(page.data_dir_edit.text()).is_dir()


def test_saved_url_is_used_without_env(monkeypatch, qapp, tmp_path):
    monkeypatch.delenv("EMBSR_DB_URL")
    prefs = Preferences()
    prefs.store_url = f"sqlite:///{tmp_path / 'chosen.db'}"
    assert resolve_store_url(None, prefs) == (prefs.store_url, "settings")
    prefs.store_url = None
    url, source = resolve_store_url(None, prefs)
    assert source == "default" and url.endswith("embsr.db")


def test_unopenable_store_shows_an_error_instead_of_crashing(qtbot, qapp, isolated_user_dirs):
    ensure_application()
    ctx = create_context("nonsense://///", theme="light")
    try:
        assert ctx.store is None and ctx.store_error
        win = MainWindow(ctx, persist=False)
        assert win.store_label.text().startswith("Store unavailable")
        win.show_page("settings")
        assert "Not open" in win.page("settings").store_status.text()
        dispose(win)
    finally:
        ctx.runner.shutdown()


def test_about_box_names_versions(window):
    text = window.about_text()
    assert f"EMBSR Workbench {embsr_core.__version__}" in text
    assert torch.__version__ in text and "Qt" in text
    box = window.show_about()
    assert box.isVisible()
    box.close()
    assert "Ctrl+Q" in window.shortcuts_text()


def test_demo_offer_only_when_the_core_provides_it(window, monkeypatch):
    import app.main_window as mw

    monkeypatch.setattr(mw, "demo_generator", lambda: None)
    assert window.offer_demo_dataset_if_empty() is False
    assert window.store_is_empty()


def test_first_launch_offer_generates_the_real_demo_dataset(qtbot, window, context, monkeypatch):
    assert window.store_is_empty()
    monkeypatch.setattr(window, "ask_generate_demo", lambda: (True, False))
    with qtbot.waitSignal(context.runner.taskDone, timeout=60_000) as blocker:
        assert window.offer_demo_dataset_if_empty() is True
    task = blocker.args[0]
    assert task.state == "finished", task.error
    assert not window.store_is_empty()
    assert window.current_page().page_id == "datasets"
    # once the store has data, no more offers
    monkeypatch.setattr(window, "ask_generate_demo", lambda: pytest.fail("offered again"))
    assert window.offer_demo_dataset_if_empty() is False


def test_declined_offer_can_be_silenced(window, monkeypatch):
    monkeypatch.setattr(window, "ask_generate_demo", lambda: (False, True))
    assert window.offer_demo_dataset_if_empty() is True
    assert Preferences().demo_offer_dismissed
    assert window.offer_demo_dataset_if_empty() is False


def test_generate_demo_dataset_runs_the_core_function_in_the_runner(qtbot, window, context, monkeypatch):
    import app.main_window as mw

    calls = []

    def fake_generate(store, *, progress, cancel):
        calls.append(store)
        progress(0.5)
        return "demo"

    monkeypatch.setattr(mw, "demo_generator", lambda: fake_generate)
    task = window.generate_demo_dataset()
    assert task is not None
    with qtbot.waitSignal(task.done, timeout=5000):
        pass
    assert calls == [context.store] and task.result == "demo"
    assert window.current_page().page_id == "datasets"


def test_smoke_mode_exits_zero_and_writes_screenshots(tmp_path, isolated_user_dirs):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    shots = tmp_path / "shots"
    proc = subprocess.run(
        [sys.executable, "-m", "app", "--smoke", "--screenshots", str(shots)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.stem for p in shots.glob("*.png")) == sorted(
        ["datasets", "train", "runs", "leaderboard", "playground", "settings", "help"]
    )
    assert "smoke: rendered settings (1280x800)" in proc.stdout
    # smoke mode must not persist window state
    assert not (isolated_user_dirs / "config" / ORGANIZATION).exists()


def _click_nav(qtbot, window: MainWindow, page_id: str) -> None:
    row = window.page_ids().index(page_id)
    rect = window.nav.visualItemRect(window.nav.item(row))
    qtbot.mouseClick(window.nav.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert window.current_page().page_id == page_id


def test_settings_counts_follow_the_store_and_name_the_database_file(qtbot, window, context):
    from embsr_core.data.demo import import_synthetic
    from embsr_core.store import runs_repo

    _click_nav(qtbot, window, "settings")
    page = window.page("settings")
    assert "0 datasets, 0 runs" in page.store_status.text()
    location = Path(page.location_edit.text())
    assert location.is_absolute() and location.name == "embsr-test.db" and location.exists()
    _click_nav(qtbot, window, "datasets")
    first = import_synthetic(context.store, "one", n_sessions=60, n_items=20, n_categories=2, seed=1)
    import_synthetic(context.store, "two", n_sessions=60, n_items=20, n_categories=2, seed=2)
    runs_repo.create_run(context.store, dataset_id=first.dataset_id, model_name="EMBSR", config={})
    _click_nav(qtbot, window, "settings")
    assert "2 datasets, 1 run" in page.store_status.text()


def test_f1_opens_help_at_the_part_about_the_current_page(qtbot, window):
    window.show_page("playground")
    window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_F1)
    assert window.current_page().page_id == "help"
    browser = window.page("help").browser
    text = browser.toPlainText()
    for words in ("H@K", "M@K", "NDCG@K", "oracle", "unknown", "First steps", "Reading the Playground", "Attention"):
        assert words in text
    assert "eq." not in text and "--" not in text  # written for an analyst, not for the command line
    at_playground = browser.verticalScrollBar().value()
    assert at_playground > 0  # scrolled to the Playground part
    window.show_page("datasets")
    window.help_action.trigger()
    assert window.current_page().page_id == "help" and browser.verticalScrollBar().value() < at_playground
    assert not window.current_page().grab().isNull()


def test_f1_on_the_leaderboard_opens_how_to_find_the_best_model(qtbot, window):
    window.show_page("leaderboard")
    window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_F1)
    browser = window.page("help").browser
    text = browser.toPlainText()
    for words in ("Finding the best model for your data", "Compare all models", "Seeds", "Wilcoxon", "S-POP"):
        assert words in text
    assert browser.verticalScrollBar().value() > 0  # at that part, not at the top


@pytest.mark.parametrize("size", [(1280, 800), (1440, 870)])
def test_toggling_the_theme_twice_keeps_the_train_page_inside_the_window(qtbot, window, context, size):
    from embsr_core.data.demo import import_synthetic

    import_synthetic(context.store, "small", n_sessions=60, n_items=20, n_categories=2, seed=1)
    window.resize(*size)
    window.show_page("train")
    page = window.page("train")
    scroll = window.stack.currentWidget()

    def settle() -> None:
        for _ in range(3):
            QApplication.processEvents()

    def bottoms() -> tuple[int, int, int]:
        queue_card = page.queue.parentWidget()
        log = page.monitor.log
        return (page.height(), queue_card.mapTo(page, queue_card.rect().bottomLeft()).y(),
                log.mapTo(page, log.rect().bottomLeft()).y())

    settle()
    # the page's memory estimate (a torch dry run in a worker) is left to finish first: a theme change
    # during it crashed the process once (segfault in setStyleSheet), reported, not understood yet
    qtbot.waitUntil(lambda: not page._memory_runner.is_busy() and not page._memory_timer.isActive(), timeout=60_000)
    before = bottoms()
    assert before[0] <= scroll.viewport().height() and max(before[1:]) < scroll.viewport().height()
    for _ in range(2):
        window.activateWindow()
        qtbot.keyClick(window, Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
        settle()
    assert context.theme.name == "light"  # toggled twice
    assert bottoms() == before and scroll.verticalScrollBar().maximum() == 0
