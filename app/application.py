"""Start-up wiring shared by ``python -m app`` and the tests: QApplication, store URL, context."""

from __future__ import annotations

import os
import sys

from PySide6.QtWidgets import QApplication

import embsr_core
from app import gc_guard
from app.context import AppContext
from app.preferences import APPLICATION, ORGANIZATION, Preferences
from app.resources import app_icon
from app.theme import PALETTES, theme_manager
from app.workers import JobManager
from embsr_core.store import StoreError, default_url, open_store
from embsr_core.store.engine import ENV_URL


def ensure_application(argv: list[str] | None = None) -> QApplication:
    """The QApplication, created once with organisation/application names (QSettings uses them)."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(argv if argv is not None else sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationVersion(embsr_core.__version__)
    app.setDesktopFileName("embsr-workbench")
    app.setWindowIcon(app_icon())
    gc_guard.install(app)  # cyclic GC only in this (the GUI) thread: see app/gc_guard.py
    return app


def resolve_store_url(cli_url: str | None, preferences: Preferences) -> tuple[str, str]:
    """(URL, source): ``--db`` wins, then ``EMBSR_DB_URL``, then the URL saved in Settings, then the default."""
    if cli_url:
        return cli_url, "--db"
    if os.environ.get(ENV_URL):
        return default_url(), ENV_URL
    if preferences.store_url:
        return preferences.store_url, "settings"
    return default_url(), "default"


def create_context(cli_url: str | None = None, theme: str | None = None) -> AppContext:
    """Open the store (a failure is kept as ``store_error``, not raised) and apply the theme."""
    preferences = Preferences()
    url, source = resolve_store_url(cli_url, preferences)
    store = None
    error = None
    try:
        store = open_store(url)
    except StoreError as exc:
        error = str(exc)
    except Exception as exc:  # e.g. an unknown dialect: the app must still open so Settings can fix it
        error = f"{type(exc).__name__}: {exc}"
    manager = theme_manager()
    chosen = theme or preferences.theme
    manager.apply(chosen if chosen in PALETTES else "light")
    return AppContext(
        store_url=url,
        store_url_source=source,
        store=store,
        store_error=error,
        preferences=preferences,
        runner=JobManager(),
        theme=manager,
        device="",  # resolved by the main window once it is shown (that imports PyTorch)
    )
