"""The store's guard rails (issue 13): URLs that would lose data, unwritable places, locks held by
others, ids never taken for names, dead owners of running runs; and no import cycle in the store."""

from __future__ import annotations

import grimp


def test_engine_and_migrate_do_not_import_each_other() -> None:
    graph = grimp.build_graph("embsr_core")
    assert graph.find_shortest_chain("embsr_core.store.migrate", "embsr_core.store.engine") is None
    assert graph.find_shortest_chain("embsr_core.store.errors", "embsr_core.store.engine") is None
