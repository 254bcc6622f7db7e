"""Opening the store: URL resolution, SQLite pragmas, migrations applied on open.

Any SQLAlchemy URL works (PostgreSQL included). SQLite gets WAL, foreign keys and a busy timeout so
the GUI and the CLI can share one file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from embsr_core.store.errors import StoreError
from embsr_core.store.migrate import upgrade_to_head

__all__ = ["Store", "StoreError", "data_dir", "default_url", "make_engine", "open_store"]

APP_NAME = "embsr-workbench"
ENV_URL = "EMBSR_DB_URL"
SQLITE_BUSY_TIMEOUT_MS = 30_000


def data_dir() -> Path:
    """Where the user's database, checkpoints and caches live (never inside an app bundle)."""
    path = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_url() -> str:
    """The URL used when none is given: ``EMBSR_DB_URL`` or the embedded SQLite file."""
    env = os.environ.get(ENV_URL)
    if env:
        return env
    return f"sqlite:///{data_dir() / 'embsr.db'}"


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with a terse text
        raise StoreError(f"not a database URL: {url!r} ({exc})") from None
    kwargs: dict[str, Any] = {"future": True}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        raise StoreError(
            f"cannot use the database URL {parsed.render_as_string(hide_password=True)!r}: {exc}. "
            "Expected e.g. sqlite:///path/to/embsr.db or postgresql+psycopg://user:password@host/dbname"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _set_sqlite_pragmas)
    return engine


@dataclass
class Store:
    """An open store: engine + session factory. Create with :func:`open_store`."""

    url: str
    engine: Engine
    session_factory: sessionmaker[Session]

    def session(self) -> Session:
        return self.session_factory()

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @property
    def display_url(self) -> str:
        """The URL with any password hidden, for status bars and logs."""
        return make_url(self.url).render_as_string(hide_password=True)

    def dispose(self) -> None:
        self.engine.dispose()


def open_store(url: str | None = None, *, migrate: bool = True) -> Store:
    """Open (and by default migrate) the store at ``url`` (default: :func:`default_url`)."""
    url = url or default_url()
    engine = make_engine(url)
    if migrate:
        try:
            upgrade_to_head(engine)
        except StoreError:
            engine.dispose()
            raise
        except Exception as exc:
            engine.dispose()
            raise StoreError(f"cannot open the store at {make_url(url).render_as_string(True)}: {exc}") from exc
    return Store(url=url, engine=engine, session_factory=sessionmaker(engine, expire_on_commit=False))
