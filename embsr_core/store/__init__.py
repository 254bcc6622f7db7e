"""The store: SQLAlchemy 2.0 models, engine factory, Alembic migrations, repository functions."""

from embsr_core.store.engine import Store, StoreError, data_dir, default_url, store_location
from embsr_core.store.opening import open_store

__all__ = ["Store", "StoreError", "data_dir", "default_url", "open_store", "store_location"]
