"""``open_store``: connect, migrate, then tidy up after processes that died (kill -9, crash, power cut).

Kept apart from the engine so the engine does not depend on the run tables' repository.
"""

from __future__ import annotations

from embsr_core.store.engine import Store, connect_store
from embsr_core.store.runs_repo import mark_interrupted_runs


def open_store(url: str | None = None, *, migrate: bool = True) -> Store:
    """Open (and by default migrate) the store at ``url`` (default: ``EMBSR_DB_URL`` or the user's file).

    Every CLI command and the app open the store through here, so a run left ``running`` by a process
    that is gone becomes ``interrupted`` (and can be resumed) the next time anything opens the store.
    """
    store = connect_store(url, migrate=migrate)
    if migrate:
        mark_interrupted_runs(store)
    return store
