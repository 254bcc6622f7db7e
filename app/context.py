"""What every page receives: the open store, preferences, the job manager and the theme manager."""

from __future__ import annotations

from dataclasses import dataclass

from app.preferences import Preferences
from app.theme import ThemeManager
from app.workers import JobManager
from embsr_core.store import Store


@dataclass
class AppContext:
    """Shared services, created once by the main window (GUI thread).

    ``store`` is None when the configured store could not be opened; ``store_error`` then says why,
    and pages should show that instead of their content (Settings lets the user pick another URL).
    """

    store_url: str
    store_url_source: str  # "--db", "EMBSR_DB_URL", "settings" or "default"
    store: Store | None
    store_error: str | None
    preferences: Preferences
    runner: JobManager  # .training: the training queue; .submit(): imports, exports… beside it
    theme: ThemeManager
    device: str  # torch device string the default device preference resolves to, e.g. "cpu"; "" until the
    # main window resolves it (MainWindow.ensure_device: resolving imports PyTorch, so not at start-up)
