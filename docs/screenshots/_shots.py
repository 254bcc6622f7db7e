"""What every capture script does first: a throwaway home (the user's settings stay untouched), the
window on a store showing only the store's file name (no folder of this machine in a picture), and
a way to let the event loop settle before a grab; for a one-page capture on generated data, the
options it shares (``shot_parser``) and the window on a throwaway store holding that data
(``open_on_synthetic``)."""

from __future__ import annotations

import argparse
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


def shot_parser(doc: str, png: str, size: str) -> argparse.ArgumentParser:
    """The options of a one-page capture: where the PNG goes (``png`` beside the scripts by default),
    the window size and the theme; the script adds its own."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / png)
    parser.add_argument("--size", default=size, help="window size, WIDTHxHEIGHT")
    parser.add_argument("--theme", default="light", choices=("light", "dark"))
    return parser


def open_on_synthetic(args: argparse.Namespace, name: str, **generator: Any) -> Any:
    """The window (``args.size``, ``args.theme``) on a throwaway home and store holding one generated
    dataset called ``name`` (``generator``: the arguments of ``import_synthetic``)."""
    home = isolate_home()
    width, height = (int(v) for v in args.size.lower().split("x"))
    from embsr_core.data.demo import import_synthetic

    return open_window(f"sqlite:///{home}/shots.db", args.theme, (width, height),
                       before=lambda context: import_synthetic(context.store, name, **generator))


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
