"""Store fixtures shared by the store / import tests: a fresh SQLite store, and PostgreSQL when
EMBSR_TEST_PG_URL points at a reachable server (otherwise those cases skip with the reason)."""

from __future__ import annotations

import os
import uuid
from functools import cache
from pathlib import Path

import pytest

from embsr_core.store import Store, open_store

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PG_ENV = "EMBSR_TEST_PG_URL"


@cache
def pg_unavailable_reason() -> str | None:
    """None when the PostgreSQL test server answers; else why its tests are skipped."""
    url = os.environ.get(PG_ENV)
    if not url:
        return f"{PG_ENV} is not set (e.g. postgresql+psycopg://postgres@127.0.0.1:55432/postgres)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e '.[postgres]')"
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any connection failure means: skip with the reason
        return f"PostgreSQL at {PG_ENV} is not reachable: {exc.__class__.__name__}: {str(exc).splitlines()[0]}"
    return None


def open_test_store(kind: str, tmp_path: Path) -> Store:
    if kind == "sqlite":
        return open_store(f"sqlite:///{tmp_path / 'store.db'}")
    reason = pg_unavailable_reason()
    if reason:
        pytest.skip(reason)
    return open_store(os.environ[PG_ENV])


def unique_name(prefix: str) -> str:
    """Dataset names unique per test, so a shared PostgreSQL database needs no cleanup between tests."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def real_sample(relative: str) -> Path:
    """A real sample under ../shared/data, or skip this test with the reason (a clone may not have them;
    the tests on generated files cover the same paths)."""
    path = DATA / relative
    if not path.exists():
        pytest.skip(f"real sample not found at {path} (the tests on generated files cover the same path)")
    return path
