"""Cyclic garbage is collected in the GUI thread only (a worker-thread collection of Qt wrappers can deadlock)."""

from __future__ import annotations

import gc
import threading
import weakref

from app import gc_guard
from app.application import ensure_application


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_the_application_switches_automatic_collection_off_and_collects_on_its_timer(qtbot) -> None:
    app = ensure_application()
    collector = app.findChild(gc_guard.GuiThreadCollector)
    assert collector is not None and gc_guard.install(app) is collector  # one per application
    assert not gc.isenabled()
    assert collector.timer.isActive()

    gc.collect()
    threads: list[int] = []
    original = gc.collect

    def spy(generation: int = 2) -> int:
        threads.append(threading.get_ident())
        return original(generation)

    node = _Node()
    gone = weakref.ref(node)
    del node
    junk = [_Node() for _ in range(gc.get_threshold()[0] + 10)]  # cycles past generation 0's threshold
    del junk
    qtbot.wait(0)
    gc.collect = spy
    try:
        qtbot.waitUntil(lambda: gone() is None, timeout=5 * gc_guard.INTERVAL_MS)
    finally:
        gc.collect = original
    assert threads and set(threads) == {threading.main_thread().ident}
