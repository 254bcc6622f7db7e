"""The store: SQLAlchemy 2.0 models, engine factory, Alembic migrations, repository functions."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from embsr_core.store.errors import StoreError

# The engine (SQLAlchemy, alembic) loads on first use (PEP 562): `embsr --help` and modules that only
# need StoreError do not pay for it.
_HOME = {
    **dict.fromkeys(("Store", "data_dir", "default_url", "store_location"), "embsr_core.store.engine"),
    "open_store": "embsr_core.store.opening",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from embsr_core.store.engine import Store, data_dir, default_url, store_location
    from embsr_core.store.opening import open_store

__all__ = ["Store", "StoreError", "data_dir", "default_url", "open_store", "store_location"]
