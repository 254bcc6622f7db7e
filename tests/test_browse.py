"""The data view's core: paged, filtered events and sessions, checked against the whole dataset read back."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from _store_helpers import open_test_store, unique_name

from embsr_core.data.browse import BrowseFilter, browse_events, browse_sessions, operation_choices
from embsr_core.data.demo import import_synthetic
from embsr_core.data.store_io import load_events
from embsr_core.store import Store
from embsr_core.store.repository import delete_dataset

NAME = unique_name("browse-demo")  # unique: a shared PostgreSQL database needs no cleanup


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Store:
    st = open_test_store(request.param, tmp_path_factory.mktemp("browse"))
    import_synthetic(st, NAME, n_sessions=150, n_items=60, n_categories=4, seed=5)
    yield st
    delete_dataset(st, NAME)
    st.dispose()


@pytest.fixture(scope="module")
def events(store: Store) -> pd.DataFrame:
    """Every event, in import order, as the importer's own read-back gives it."""
    return load_events(store, NAME, categorical=False)


def _key(frame: pd.DataFrame) -> list[tuple[str, str, str]]:
    return list(zip(frame["session"].astype(str), frame["item"].astype(str), frame["operation"].astype(str),
                    strict=True))


def _expected(events: pd.DataFrame) -> pd.DataFrame:
    return events[["session", "item", "operation"]].reset_index(drop=True)


def test_pages_of_events_cover_the_dataset_in_order(store: Store, events: pd.DataFrame) -> None:
    pages, offset = [], 0
    while True:
        page = browse_events(store, NAME, offset=offset, limit=400)
        pages.append(page.rows)
        assert page.total == len(events) and not page.capped
        offset = page.end
        if offset >= page.total:
            break
    assert _key(pd.concat(pages)) == _key(_expected(events))
    second = browse_events(store, NAME, offset=10, limit=5)
    assert second.describe() == f"rows 11–15 of {len(events):,}"
    assert second.rows["position"].tolist() == [int(p) for p in load_positions(events)[10:15]]


def load_positions(events: pd.DataFrame) -> list[int]:
    """Position of each event within its session (0-based), in import order."""
    return events.groupby("session", sort=False).cumcount().tolist()


@pytest.mark.parametrize("field", ["session", "item", "operation"])
def test_each_filter_matches_exactly_what_the_data_holds(store: Store, events: pd.DataFrame, field: str) -> None:
    expected = _expected(events)
    if field == "operation":
        value = operation_choices(store, NAME)[1]
        keep = expected["operation"] == value
    else:
        value = str(expected[field].iloc[7])[-2:]  # part of an id: "contains", case-insensitive
        keep = expected[field].astype(str).str.lower().str.contains(value.lower(), regex=False)
    flt = BrowseFilter(**{field: value})
    page = browse_events(store, NAME, flt, limit=10_000)
    assert page.total == int(keep.sum()) > 0 and not page.capped
    assert _key(page.rows) == _key(expected[keep])
    small = browse_events(store, NAME, flt, limit=2)  # a full page: the count comes from its own query
    assert small.total == page.total and _key(small.rows) == _key(expected[keep])[:2]
    beyond = browse_events(store, NAME, flt, offset=10**6, limit=5)
    assert beyond.rows.empty and beyond.total == page.total
    sessions = browse_sessions(store, NAME, flt, limit=10_000)
    assert sessions.rows["session"].tolist() == list(dict.fromkeys(expected[keep]["session"]))
    assert sessions.total == len(sessions.rows)


def test_sessions_page_counts_each_sessions_events(store: Store, events: pd.DataFrame) -> None:
    page = browse_sessions(store, NAME, offset=3, limit=4)
    first_sessions = list(dict.fromkeys(events["session"]))[3:7]
    assert page.rows["session"].tolist() == first_sessions and page.total == len(dict.fromkeys(events["session"]))
    for row in page.rows.itertuples(index=False):
        mine = events[events["session"] == row.session]
        assert row.events == len(mine) and row.items == mine["item"].nunique()
        assert row.operations == mine["operation"].nunique()
        assert row.first_timestamp == mine["timestamp"].min() and row.last_timestamp == mine["timestamp"].max()


def test_filters_combine_and_count_stops_at_the_cap(store: Store, events: pd.DataFrame) -> None:
    op = operation_choices(store, NAME)[0]
    capped = browse_events(store, NAME, BrowseFilter(operation=op), limit=5, count_cap=3)
    assert capped.capped and capped.total == 3 and "more than 3" in capped.describe()
    session = str(events["session"].iloc[0])
    both = browse_events(store, NAME, BrowseFilter(session=session, operation=op), limit=10_000)
    assert set(both.rows["operation"]) <= {op} and all(session in s for s in both.rows["session"])
    none = browse_events(store, NAME, BrowseFilter(item="no such item %_"), limit=10)
    assert none.total == 0 and none.rows.empty and none.describe() == "no matching rows"


def test_bad_paging_and_unknown_dataset_are_refused(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="page size"):
        browse_events(store, NAME, limit=0)
    with pytest.raises(ValueError, match="offset"):
        browse_sessions(store, NAME, offset=-1)
    with pytest.raises(KeyError, match="no dataset named"):
        browse_events(store, "nope")
