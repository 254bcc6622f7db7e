"""The built-in demo dataset: planted synthetic micro-behaviors imported into the store.

A new user sees something real within a minute: the GUI's first-launch offer and `embsr demo` call this.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import update

from embsr_core.data.importers.base import ColumnMapping
from embsr_core.data.store_io import CancelToken, ImportReport, ProgressCallback, import_into_store
from embsr_core.data.synthetic import DEFAULT_SIGNAL, generate_synthetic
from embsr_core.store.engine import Store
from embsr_core.store.models import Dataset
from embsr_core.store.repository import dataset_exists

if TYPE_CHECKING:
    import pandas as pd

DEMO_NAME = "Demo (synthetic)"
SYNTHETIC_MAPPING = ColumnMapping(
    session="session", item="item", operation="operation", timestamp="timestamp", category="category", dwell="dwell"
)


def free_name(store: Store, base: str) -> str:
    """``base``, or ``base (2)``, ``base (3)``… whichever is not taken yet."""
    name, n = base, 1
    while dataset_exists(store, name):
        n += 1
        name = f"{base} ({n})"
    return name


def import_synthetic(
    store: Store,
    name: str,
    *,
    n_sessions: int = 20_000,
    n_items: int = 2_000,
    n_categories: int = 40,
    signal: float = DEFAULT_SIGNAL,
    seed: int = 0,
    operations: list[str] | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> ImportReport:
    """Generate a synthetic dataset and import it like any file (one transaction, cancellable)."""
    kwargs = {} if operations is None else {"operations": operations}
    events = generate_synthetic(
        n_sessions=n_sessions, n_items=n_items, n_categories=n_categories, signal=signal, seed=seed, **kwargs
    )
    source = f"synthetic: sessions={n_sessions} items={n_items} categories={n_categories} signal={signal} seed={seed}"
    return import_synthetic_events(store, name, events, source, progress=progress, cancel=cancel)


def import_synthetic_events(
    store: Store,
    name: str,
    events: pd.DataFrame,
    source: str,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> ImportReport:
    """Import generated ``events`` like any file (one transaction, cancellable), recorded as ``source``."""
    with tempfile.TemporaryDirectory(prefix="embsr-synthetic-") as tmp:
        path = Path(tmp) / "synthetic.parquet"
        events.to_parquet(path, index=False)
        report = import_into_store(
            store, path, "generic", name, SYNTHETIC_MAPPING, progress=progress, cancel=cancel
        )
    # Record what it really is (the temporary parquet file is gone) so presets and the GUI can tell.
    with store.session() as session, session.begin():
        session.execute(
            update(Dataset).where(Dataset.id == report.dataset_id).values(source_format="synthetic", source_path=source)
        )
    report.format = "synthetic"
    return report


def generate_demo_dataset(
    store: Store,
    *,
    n_sessions: int = 8_000,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> ImportReport:
    """The demo dataset (default planted signal), small enough to train on a laptop CPU in minutes."""
    return import_synthetic(
        store, free_name(store, DEMO_NAME), n_sessions=n_sessions, n_items=1_000, n_categories=25,
        progress=progress, cancel=cancel,
    )
