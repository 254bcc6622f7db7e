"""Two tiny runs trained by the real engine on a small synthetic dataset (session-scoped in conftest).

Used by the Runs page, Playground and report tests so they exercise exactly what a user gets: the
trainer's own metrics, ranks, checkpoints and vocabulary. Everything lives under one temporary folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from embsr_core.data.demo import import_synthetic
from embsr_core.data.from_store import prepare_dataset
from embsr_core.data.prepared import PreparedDataset
from embsr_core.store import Store, open_store
from embsr_core.training import TrainConfig, run_training

DATASET = "tiny-demo"
MODELS = (("EMBSR", "EMBSR tiny"), ("SGNN-Self", "SGNN-Self tiny"))


@dataclass
class RealRuns:
    url: str
    store: Store
    prepared: PreparedDataset
    run_ids: list[int]  # [EMBSR, SGNN-Self]
    root: Path


def train_real_runs(root: Path, *, n_sessions: int = 300, epochs: int = 2) -> RealRuns:
    url = f"sqlite:///{root / 'runs.db'}"
    store = open_store(url)
    import_synthetic(store, DATASET, n_sessions=n_sessions, n_items=120, n_categories=6, seed=1)
    prepared = prepare_dataset(store, DATASET, "synthetic", cache=root / "cache")
    run_ids = []
    for model, name in MODELS:
        outcome = run_training(
            store, prepared, model, {"embedding_dim": 16},
            TrainConfig(batch_size=128, max_epochs=epochs, device="cpu", seed=1),
            checkpoint_root=root / "checkpoints", run_name=name,
        )
        assert outcome.status == "finished", outcome.error
        run_ids.append(outcome.run_id)
    return RealRuns(url, store, prepared, run_ids, root)
