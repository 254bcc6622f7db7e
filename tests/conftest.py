"""Shared test set-up: every test runs with temporary HOME / XDG dirs and a temporary store URL,
so nothing touches the real user's settings, data or database."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point HOME, XDG_* and EMBSR_DB_URL at a fresh temporary folder; returns that folder.

    Qt caches the QSettings folder on first use in a process, so once QtCore is loaded the user-scope
    path is also redirected with ``QSettings.setPath`` (a test that first loads Qt gets the env var).
    """
    root = tmp_path_factory.mktemp("user")
    dirs = {
        "HOME": root / "home",
        "XDG_CONFIG_HOME": root / "config",
        "XDG_DATA_HOME": root / "data",
        "XDG_CACHE_HOME": root / "cache",
        "XDG_STATE_HOME": root / "state",
    }
    for name, path in dirs.items():
        path.mkdir(parents=True)
        monkeypatch.setenv(name, str(path))
    monkeypatch.setenv("EMBSR_DB_URL", f"sqlite:///{root / 'data' / 'embsr-test.db'}")
    qtcore = sys.modules.get("PySide6.QtCore")
    if qtcore is not None:
        settings = qtcore.QSettings
        for fmt in (settings.Format.NativeFormat, settings.Format.IniFormat):
            settings.setPath(fmt, settings.Scope.UserScope, str(dirs["XDG_CONFIG_HOME"]))
    return root


@pytest.fixture(scope="session")
def real_runs(tmp_path_factory: pytest.TempPathFactory):
    """Two tiny runs (EMBSR, SGNN-Self) trained once per test session by the real engine."""
    from _real_runs import train_real_runs

    root = tmp_path_factory.mktemp("real_runs")
    with pytest.MonkeyPatch.context() as mp:  # session scope: keep the user's data dir out of reach
        mp.setenv("HOME", str(root / "home"))
        mp.setenv("XDG_DATA_HOME", str(root / "data"))
        runs = train_real_runs(root)
    yield runs
    runs.store.dispose()


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    """Once a Qt test has switched automatic garbage collection off (app/gc_guard.py collects on the GUI
    thread's timer, which only runs while a test spins the event loop), collect what is due after
    every test, in this (the main) thread, so the suite's memory stays bounded."""
    import gc

    guard = sys.modules.get("app.gc_guard")
    if guard is not None and not gc.isenabled():
        guard.collect_due(gc.get_threshold())
