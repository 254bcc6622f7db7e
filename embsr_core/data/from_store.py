"""From a dataset in the store to the model-ready :class:`PreparedDataset` (cached on disk).

The CLI, the GUI and resume all go through here, so a run is always trained and re-evaluated on
exactly the split its stored preprocessing config describes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from embsr_core.data.prepared import PreparedDataset
from embsr_core.data.preprocess import PreprocessConfig, load_or_prepare, preset
from embsr_core.data.store_io import load_events
from embsr_core.store.engine import Store, data_dir
from embsr_core.store.models import Dataset
from embsr_core.store.repository import get_dataset

SMALL_DATASET_EVENTS = 1_000_000  # below this the paper's support thresholds would leave almost nothing


class PreparationError(ValueError):
    """The dataset cannot be prepared as asked (too small, settings out of range); the message says why."""


def default_preset(dataset: Dataset) -> str:
    """The preprocessing preset that fits a dataset by its source and size."""
    if dataset.source_format == "synthetic":
        return "synthetic"
    if dataset.n_events < SMALL_DATASET_EVENTS:
        return "sample"
    return {"jd": "jd-appliances", "trivago": "trivago"}.get(dataset.source_format, "sample")


def cache_dir() -> Path:
    return data_dir() / "cache" / "prepared"


def dataset_fingerprint(store: Store, dataset: Dataset) -> str:
    """Identifies the dataset's content without reading it: a re-import gets a new fingerprint.

    The store is named by its absolute file, so ``sqlite:///x.db`` opened from two folders (two stores)
    never shares a cache entry.
    """
    key = f"{store.identity}|{dataset.id}|{dataset.name}|{dataset.imported_at.isoformat()}|{dataset.n_events}"
    return hashlib.sha256(key.encode()).hexdigest()


def prepare_dataset(
    store: Store,
    dataset: str | int | Dataset,
    config: PreprocessConfig | str | None = None,
    *,
    overrides: dict[str, Any] | None = None,
    cache: Path | None = None,
) -> PreparedDataset:
    """The dataset prepared with ``config`` (a config, a preset name, or None for the default preset)."""
    if not isinstance(dataset, Dataset):
        dataset = get_dataset(store, dataset)
    if config is None:
        config = default_preset(dataset)
    ds = dataset
    try:
        if isinstance(config, str):
            config = preset(config)
        if overrides:
            config = config.replace(**overrides)
        return load_or_prepare(
            lambda: load_events(store, ds),
            config,
            ds.name,
            cache or cache_dir(),
            fingerprint=dataset_fingerprint(store, ds),
        )
    except PreparationError:
        raise
    except (ValueError, KeyError) as exc:  # e.g. a 1-event dataset: nothing left to train on
        text = str(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc)
        raise PreparationError(f"dataset {ds.name!r} cannot be prepared for training: {text}") from exc


def prepared_for_run(store: Store, run_config: dict[str, Any], dataset_id: int) -> PreparedDataset:
    """Rebuild (or reload) the exact prepared split a stored run was trained on."""
    return prepare_dataset(store, dataset_id, PreprocessConfig.from_dict(run_config["prep"]))
