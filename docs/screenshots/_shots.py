"""What every capture script does first: a throwaway home (the user's settings stay untouched), the
window on a store showing only the store's file name (no folder of this machine in a picture), and
a way to let the event loop settle before a grab."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def isolate_home() -> str:
    """Offscreen Qt and a fresh temporary home for settings, data and caches; returns that folder."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    home = tempfile.mkdtemp(prefix="embsr-shots-")
    for name in ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        os.environ[name] = home
    return home


def open_window(url: str, theme: str = "light", size: tuple[int, int] | None = None,
                before: Callable[[Any], None] | None = None) -> Any:
    """The main window on the store at ``url`` (``before(context)`` runs first, e.g. to add data), shown."""
    from app.application import create_context, ensure_application
    from app.main_window import DEFAULT_SIZE, MainWindow

    ensure_application()
    context = create_context(cli_url=url, theme=theme)
    if before is not None:
        before(context)
    window = MainWindow(context, persist=False)
    window.resize(*size) if size else window.resize(DEFAULT_SIZE)
    window.store_label.setText(f"Store: {Path(context.store.engine.url.database or 'store').name}")
    window.show()
    return window


def settle(condition: Callable[[], bool] = lambda: True, timeout: float = 60.0, rounds: int = 10) -> None:
    """Process events until ``condition()`` (or ``timeout`` s), then a few more rounds for repaints."""
    from PySide6.QtWidgets import QApplication

    end = time.time() + timeout
    while time.time() < end:
        QApplication.processEvents()
        if condition():
            break
        time.sleep(0.02)
    for _ in range(rounds):
        QApplication.processEvents()
        time.sleep(0.02)
