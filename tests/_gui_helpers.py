"""Fixtures and helpers shared by the Datasets / Train page tests (import the fixtures by name)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from app.application import create_context, ensure_application
from app.context import AppContext
from app.main_window import MainWindow

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
JD_SAMPLE = DATA / "jd" / "JD_Appliances_sample.txt"


@pytest.fixture
def context(qapp, isolated_user_dirs) -> Iterator[AppContext]:
    ensure_application()
    ctx = create_context(theme="light")
    yield ctx
    ctx.runner.shutdown()
    if ctx.store is not None:
        ctx.store.dispose()
    ctx.theme.apply("light")


@pytest.fixture
def window(qtbot, context) -> Iterator[MainWindow]:
    win = MainWindow(context, persist=False)
    win.resize(1280, 800)
    win.show()
    qtbot.waitExposed(win)
    yield win
    context.runner.shutdown()  # a run left by a failed test stops first: closing would ask to confirm
    win.close()  # pages stop their workers in can_close, the runner in closeEvent
    win.deleteLater()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)


def message_boxes(parent: QWidget) -> list[QMessageBox]:
    """Open message boxes under ``parent`` (error_box opens them non-blocking)."""
    return [w for w in parent.findChildren(QMessageBox) if w.isVisible()]


def wait_until(qtbot, condition: Callable[[], bool], timeout_ms: int = 10_000) -> None:
    qtbot.waitUntil(condition, timeout=timeout_ms)
