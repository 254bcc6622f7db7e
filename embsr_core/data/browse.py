"""Paged, filtered reads of a dataset's imported events and sessions (the Datasets page's data view).

A dataset can hold tens of millions of events, so nothing here loads it whole: each call returns one
page (``LIMIT``/``OFFSET`` over the events' primary key, which is the import order), and the match
count stops at ``count_cap`` so a filter over a huge dataset answers quickly ("more than 10,000").
Filters: session id and item id (text contained in the imported id, case-insensitive) and operation
(exact name). Portable SQL (SQLite and PostgreSQL), through SQLAlchemy Core.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Select, func, literal, select

from embsr_core.store.engine import Store
from embsr_core.store.models import Event, Item, Operation, SessionRow
from embsr_core.store.repository import get_dataset

DEFAULT_PAGE_ROWS = 100
MAX_PAGE_ROWS = 10_000
DEFAULT_COUNT_CAP = 10_000  # "more than 10,000" is all a browsing analyst needs; counting further costs a scan

EVENT_COLUMNS = ("session", "position", "item", "category", "operation", "timestamp", "dwell")
SESSION_COLUMNS = ("session", "events", "items", "operations", "first_timestamp", "last_timestamp")


@dataclass(frozen=True)
class BrowseFilter:
    """What to keep; empty fields keep everything."""

    session: str = ""  # part of the session's imported id
    item: str = ""  # part of the item's imported id
    operation: str = ""  # the operation's exact name

    def is_empty(self) -> bool:
        return not (self.session.strip() or self.item.strip() or self.operation.strip())


@dataclass(frozen=True)
class BrowsePage:
    rows: pd.DataFrame  # EVENT_COLUMNS or SESSION_COLUMNS
    offset: int  # index of the first row in the whole filtered result
    total: int  # rows matching the filter, counted up to ``count_cap``
    capped: bool  # True: more than ``total`` rows match

    @property
    def end(self) -> int:
        return self.offset + len(self.rows)

    def describe(self) -> str:
        """``"rows 101–200 of 57,332"`` (or ``"of more than 10,000"``); ``"no matching rows"``."""
        if self.total == 0:
            return "no matching rows"
        total = f"more than {self.total:,}" if self.capped else f"{self.total:,}"
        return f"rows {self.offset + 1:,}–{self.end:,} of {total}"


def _check_paging(offset: int, limit: int) -> None:
    if offset < 0:
        raise ValueError(f"offset: expected 0 or more, got {offset}")
    if not 1 <= limit <= MAX_PAGE_ROWS:
        raise ValueError(f"page size: expected 1 to {MAX_PAGE_ROWS:,} rows, got {limit}")


def _contains(column: object, text: str) -> object:
    """Case-insensitive "contains", with the LIKE wildcards in ``text`` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return func.lower(column).like(f"%{escaped.lower()}%", escape="\\")


def _event_filters(dataset_id: int, flt: BrowseFilter) -> list[object]:
    conditions: list[object] = [Event.dataset_id == dataset_id]
    if flt.session.strip():
        conditions.append(Event.session_id.in_(
            select(SessionRow.id).where(SessionRow.dataset_id == dataset_id,
                                        _contains(SessionRow.external_id, flt.session.strip()))))
    if flt.item.strip():
        conditions.append(Event.item_id.in_(
            select(Item.id).where(Item.dataset_id == dataset_id, _contains(Item.external_id, flt.item.strip()))))
    if flt.operation.strip():
        conditions.append(Event.operation_code.in_(
            select(Operation.code).where(Operation.dataset_id == dataset_id, Operation.name == flt.operation.strip())))
    return conditions


def _capped_count(store: Store, query: Select, cap: int) -> tuple[int, bool]:
    """How many rows ``query`` gives, counting at most ``cap + 1`` of them."""
    limited = query.limit(cap + 1).subquery()
    with store.session() as session:
        n = int(session.scalar(select(func.count()).select_from(limited)) or 0)
    return min(n, cap), n > cap


def browse_events(
    store: Store,
    dataset: str | int,
    flt: BrowseFilter | None = None,
    *,
    offset: int = 0,
    limit: int = DEFAULT_PAGE_ROWS,
    count_cap: int = DEFAULT_COUNT_CAP,
) -> BrowsePage:
    """One page of a dataset's events in import order (session, then position), with names resolved."""
    _check_paging(offset, limit)
    flt = flt or BrowseFilter()
    ds = get_dataset(store, dataset)
    conditions = _event_filters(ds.id, flt)
    keys = (
        select(Event.session_id, Event.position, Event.item_id, Event.operation_code, Event.timestamp, Event.dwell)
        .where(*conditions)
        .order_by(Event.session_id, Event.position)
        .offset(offset)
        .limit(limit)
        .subquery()
    )
    query = (
        select(SessionRow.external_id, keys.c.position, Item.external_id, Item.category, Operation.name,
               keys.c.timestamp, keys.c.dwell)
        .select_from(keys)
        .join(SessionRow, SessionRow.id == keys.c.session_id)
        .join(Item, Item.id == keys.c.item_id)
        .join(Operation, (Operation.dataset_id == ds.id) & (Operation.code == keys.c.operation_code))
        .order_by(keys.c.session_id, keys.c.position)
    )
    with store.session() as session:
        rows = session.execute(query).all()
    frame = pd.DataFrame(rows, columns=list(EVENT_COLUMNS))
    frame["position"] = frame["position"].astype("int64")
    if flt.is_empty():
        total, capped = int(ds.n_events), False  # stored at import: no scan for the unfiltered view
    else:
        total, capped = _total(store, select(literal(1)).select_from(Event).where(*conditions), offset, limit,
                               len(frame), count_cap)
    return BrowsePage(frame, offset, total, capped)


def _total(store: Store, query: Select, offset: int, limit: int, n_rows: int, cap: int) -> tuple[int, bool]:
    """The match count: known from the page itself when it is the last one (no second scan for a
    rare item), else counted up to ``cap``."""
    if n_rows < limit and (n_rows > 0 or offset == 0):
        return offset + n_rows, False
    return _capped_count(store, query, cap)


def browse_sessions(
    store: Store,
    dataset: str | int,
    flt: BrowseFilter | None = None,
    *,
    offset: int = 0,
    limit: int = DEFAULT_PAGE_ROWS,
    count_cap: int = DEFAULT_COUNT_CAP,
) -> BrowsePage:
    """One page of sessions holding matching events: their length, distinct items and operations, and
    first/last timestamp (over all their events, not only the matching ones)."""
    _check_paging(offset, limit)
    flt = flt or BrowseFilter()
    ds = get_dataset(store, dataset)
    matching = select(Event.session_id).where(*_event_filters(ds.id, flt)).distinct()
    if flt.is_empty():
        page_ids = select(SessionRow.id).where(SessionRow.dataset_id == ds.id)
    elif flt.item.strip() or flt.operation.strip():
        page_ids = matching
    else:  # a session filter alone needs no pass over the events
        page_ids = select(SessionRow.id).where(SessionRow.dataset_id == ds.id,
                                               _contains(SessionRow.external_id, flt.session.strip()))
    ids = page_ids.order_by(page_ids.selected_columns[0]).offset(offset).limit(limit).subquery()
    stats = (
        select(
            Event.session_id.label("sid"),
            func.count().label("n_events"),
            func.count(Event.item_id.distinct()).label("n_items"),
            func.count(Event.operation_code.distinct()).label("n_operations"),
            func.min(Event.timestamp).label("first_ts"),
            func.max(Event.timestamp).label("last_ts"),
        )
        .where(Event.dataset_id == ds.id, Event.session_id.in_(select(ids.c[0])))
        .group_by(Event.session_id)
        .subquery()
    )
    query = (
        select(SessionRow.external_id, stats.c.n_events, stats.c.n_items, stats.c.n_operations, stats.c.first_ts,
               stats.c.last_ts)
        .join(stats, stats.c.sid == SessionRow.id)
        .order_by(SessionRow.id)
    )
    with store.session() as session:
        rows = session.execute(query).all()
    frame = pd.DataFrame(rows, columns=list(SESSION_COLUMNS))
    for column in ("events", "items", "operations"):
        frame[column] = frame[column].astype("int64")
    if flt.is_empty():
        total, capped = int(ds.n_sessions), False
    else:
        total, capped = _total(store, page_ids, offset, limit, len(frame), count_cap)
    return BrowsePage(frame, offset, total, capped)


def operation_choices(store: Store, dataset: str | int) -> list[str]:
    """The dataset's operation names in code order (the operation filter's choices)."""
    ds = get_dataset(store, dataset)
    return [op.name for op in ds.operations]

