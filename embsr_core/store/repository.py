"""Dataset-level repository functions shared by the CLI and the GUI (portable SQL only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select

from embsr_core.store.engine import Store, StoreError
from embsr_core.store.migrate import current_revision
from embsr_core.store.run_details import delete_run_details
from embsr_core.store.models import (
    Dataset,
    EpochMetric,
    Event,
    Item,
    LossPoint,
    Operation,
    Run,
    RunRanks,
    SessionRow,
)

ACTIVE_RUN_STATUSES = ("queued", "running")


@dataclass(frozen=True)
class StoreInfo:
    url: str
    dialect: str
    schema_revision: str | None
    counts: dict[str, int]


def store_info(store: Store) -> StoreInfo:
    """URL, schema version and row counts, for `embsr db info` and the Settings page."""
    counts: dict[str, int] = {}
    with store.session() as session:
        for label, model in (
            ("datasets", Dataset),
            ("items", Item),
            ("sessions", SessionRow),
            ("events", Event),
            ("runs", Run),
            ("epoch_metrics", EpochMetric),
            ("loss_points", LossPoint),
        ):
            counts[label] = int(session.scalar(select(func.count()).select_from(model)) or 0)
    return StoreInfo(store.display_url, store.engine.dialect.name, current_revision(store.engine), counts)


def list_datasets(store: Store) -> list[Dataset]:
    with store.session() as session:
        return list(session.scalars(select(Dataset).order_by(Dataset.imported_at.desc(), Dataset.id.desc())))


def get_dataset(store: Store, name_or_id: str | int) -> Dataset:
    """The dataset by name (or numeric id), with its operations loaded; ``KeyError`` if absent."""
    with store.session() as session:
        query = select(Dataset)
        if isinstance(name_or_id, int) or (isinstance(name_or_id, str) and name_or_id.isdigit()):
            by_id = session.get(Dataset, int(name_or_id))
            if by_id is not None:
                _ = by_id.operations
                return by_id
        found = session.scalars(query.where(Dataset.name == str(name_or_id))).first()
        if found is None:
            raise KeyError(f"no dataset named {name_or_id!r} in the store")
        _ = found.operations
        return found


def dataset_exists(store: Store, name: str) -> bool:
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(Dataset).where(Dataset.name == name)) > 0


def operation_names(store: Store, dataset_id: int) -> list[str]:
    """Operation names ordered by code (code k is at index k-1)."""
    with store.session() as session:
        return list(
            session.scalars(
                select(Operation.name).where(Operation.dataset_id == dataset_id).order_by(Operation.code)
            )
        )


def delete_dataset(store: Store, name_or_id: str | int) -> dict[str, Any]:
    """Delete a dataset and everything of it (events, items, sessions, runs) in one transaction,
    then the checkpoint files of its runs.

    Refused while a run of it is queued or running. Returns what was deleted.
    """
    dataset = get_dataset(store, name_or_id)
    with store.session() as session, session.begin():
        active = session.scalar(
            select(func.count())
            .select_from(Run)
            .where(Run.dataset_id == dataset.id, Run.status.in_(ACTIVE_RUN_STATUSES))
        )
        if active:
            raise StoreError(
                f"dataset {dataset.name!r} is used by {active} queued or running run(s); stop them first"
            )
        runs = list(session.scalars(select(Run).where(Run.dataset_id == dataset.id)))
        # Big tables first, by the key prefix, so no cascade has to scan them.
        session.execute(delete(Event).where(Event.dataset_id == dataset.id))
        session.execute(delete(SessionRow).where(SessionRow.dataset_id == dataset.id))
        session.execute(delete(Item).where(Item.dataset_id == dataset.id))
        run_ids = select(Run.id).where(Run.dataset_id == dataset.id)
        session.execute(delete(EpochMetric).where(EpochMetric.run_id.in_(run_ids)))
        session.execute(delete(LossPoint).where(LossPoint.run_id.in_(run_ids)))
        session.execute(delete(RunRanks).where(RunRanks.run_id.in_(run_ids)))
        delete_run_details(session, run_ids)
        session.execute(delete(Run).where(Run.dataset_id == dataset.id))
        session.execute(delete(Operation).where(Operation.dataset_id == dataset.id))
        session.execute(delete(Dataset).where(Dataset.id == dataset.id))
    from embsr_core.store.runs_repo import remove_checkpoint_files  # runs_repo builds on this module

    for run in runs:
        remove_checkpoint_files(run)
    return {"dataset": dataset.name, "events": dataset.n_events, "runs": len(runs)}
