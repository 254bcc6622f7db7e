"""Dataset-level repository functions shared by the CLI and the GUI (portable SQL only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select

from embsr_core.store.engine import Store, StoreError
from embsr_core.store.migrate import current_revision
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
from embsr_core.store.run_details import delete_run_details

ACTIVE_RUN_STATUSES = ("queued", "running")


@dataclass(frozen=True)
class StoreInfo:
    url: str
    dialect: str
    schema_revision: str | None
    counts: dict[str, int]
    location: str = ""  # the absolute database file (SQLite) or the URL without password


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
    return StoreInfo(store.display_url, store.engine.dialect.name, current_revision(store.engine), counts,
                     store.location)


def list_datasets(store: Store) -> list[Dataset]:
    with store.session() as session:
        return list(session.scalars(select(Dataset).order_by(Dataset.imported_at.desc(), Dataset.id.desc())))


ID_PREFIX = "#"  # `#2` is the dataset with id 2; a bare `2` is always the dataset *named* "2"
MAX_NAME_CHARS = 200  # the column's width


def parse_dataset_ref(ref: str | int) -> tuple[str, int | str]:
    """``("id", 2)`` for ``2`` or ``"#2"``; ``("name", "2")`` for ``"2"``; never guesses between them."""
    if isinstance(ref, int):
        return "id", int(ref)
    text = str(ref)
    if text.startswith(ID_PREFIX):
        digits = text[len(ID_PREFIX):].strip()
        if not digits.isdigit():
            raise KeyError(f"{text!r} is not a dataset id; expected #N with N a whole number, e.g. #2")
        return "id", int(digits)
    return "name", text


def describe_ref(ref: str | int) -> str:
    kind, value = parse_dataset_ref(ref)
    return f"with id {ID_PREFIX}{value}" if kind == "id" else f"named {printable(str(value))!r}"


def get_dataset(store: Store, ref: str | int) -> Dataset:
    """The dataset by name, or by id when given an int or ``"#N"``; its operations loaded. ``KeyError`` if absent.

    A string of digits is a *name*: taking it for an id once deleted the wrong dataset.
    """
    kind, value = parse_dataset_ref(ref)
    with store.session() as session:
        if kind == "id":
            found = session.get(Dataset, value)
        else:
            found = session.scalars(select(Dataset).where(Dataset.name == value)).first()
        if found is None:
            hint = f"; for the dataset with id {value} write {ID_PREFIX}{value}" if kind == "name" and str(
                value).isdigit() else ""
            raise KeyError(f"no dataset {describe_ref(ref)} in the store{hint}")
        _ = found.operations
        return found


def printable(text: str) -> str:
    """``text`` with control characters (ANSI escapes, newlines) shown as escapes, for terminals and logs."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def check_dataset_name(name: str) -> str:
    """The name a new dataset may have (stripped), or ``ValueError`` saying what is expected.

    Refused: empty, longer than the column, control characters (ANSI escapes, newlines would rewrite
    the terminal when listed), and a leading ``#`` (that means an id on the command line).
    """
    stripped = name.strip()
    if not stripped:
        raise ValueError("the dataset name is empty; expected a name of printable characters")
    if not stripped.isprintable():
        raise ValueError(
            f"the dataset name {printable(stripped)!r} holds control characters (escape codes, tabs or line "
            "breaks); expected printable characters only"
        )
    if stripped.startswith(ID_PREFIX):
        raise ValueError(
            f"the dataset name {stripped!r} starts with {ID_PREFIX!r}, which marks a dataset id on the command "
            "line (#2 = id 2); expected a name that does not start with it"
        )
    if len(stripped) > MAX_NAME_CHARS:
        raise ValueError(f"the dataset name has {len(stripped)} characters; expected at most {MAX_NAME_CHARS}")
    return stripped


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


def delete_dataset(store: Store, ref: str | int) -> dict[str, Any]:
    """Delete a dataset and everything of it (events, items, sessions, runs) in one transaction,
    then the checkpoint files of its runs.

    Refused while a run of it is queued or running. Returns what was deleted.
    """
    dataset = get_dataset(store, ref)
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
