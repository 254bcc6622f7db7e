"""Python's cyclic garbage collection only in the GUI thread.

Automatic collection runs in whichever thread happens to allocate. When that is a worker thread (an
import, a training run) and the garbage holds Qt wrappers, their destructors disconnect signals under
Qt's connection mutex and then wait for the GIL, while the GUI thread, holding the GIL, waits for the
same mutex inside a widget call: the window freezes for good (seen while a page was built during a
dataset overview). So automatic collection is switched off and a timer collects in the GUI thread,
generation by generation against the usual thresholds — pyqtgraph's ``GarbageCollector`` recipe,
written out here because importing pyqtgraph would slow the window's start.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

INTERVAL_MS = 1000


class GuiThreadCollector(QObject):
    """Collects every ``INTERVAL_MS`` in the thread it was created in (the GUI thread)."""

    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        self.thresholds = gc.get_threshold()
        gc.disable()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.collect)
        self.timer.start(INTERVAL_MS)

    def collect(self) -> None:
        collect_due(self.thresholds)


def collect_due(thresholds: tuple[int, ...]) -> None:
    """What automatic collection would have done by now: the generations whose counts passed their threshold."""
    counts = gc.get_count()
    for generation in range(3):
        if counts[generation] <= thresholds[generation]:
            break
        gc.collect(generation)


def install(app: QObject) -> GuiThreadCollector:
    """The application's collector (created once, owned by ``app``)."""
    existing = app.findChild(GuiThreadCollector)
    return existing if existing is not None else GuiThreadCollector(app)
