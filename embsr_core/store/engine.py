"""Opening the store: URL resolution, SQLite pragmas, migrations applied on open.

Any SQLAlchemy URL works (PostgreSQL included). SQLite gets WAL, foreign keys and a busy timeout so
the GUI and the CLI can share one file.
"""

from __future__ import annotations

import hashlib
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

__all__ = ["Store", "StoreError", "connect_store", "data_dir", "default_url", "make_engine", "store_location"]

APP_NAME = "embsr-workbench"
ENV_URL = "EMBSR_DB_URL"
LOCK_WAIT_MS = 30_000  # how long a write waits for a lock held by another program (SQLite busy timeout,
# PostgreSQL lock_timeout of an import) before the user is told who holds it


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
    cursor.execute(f"PRAGMA busy_timeout={LOCK_WAIT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


EXPECTED_URL = "expected e.g. sqlite:///path/to/embsr.db or postgresql+psycopg://user:password@host/dbname"


def sqlite_file(database: str | None) -> Path:
    """The absolute database file of a SQLite URL's path; in-memory databases are refused.

    ``sqlite:///tmp/x.db`` is *relative* (``./tmp/x.db``); it is resolved here once, so the store is
    always named by its absolute file and a later change of folder cannot move it.
    """
    if not database or database == ":memory:" or "mode=memory" in database or database.startswith("file::memory:"):
        raise StoreError(
            f"the URL names an in-memory SQLite database ({'sqlite:///' + (database or '')!r}): everything would "
            f"be lost when the program exits; {EXPECTED_URL}"
        )
    return Path(database).expanduser().absolute()


def check_sqlite_location(path: Path) -> None:
    """Make sure SQLite can create and write ``path`` (and its -wal/-shm files beside it).

    Creates the file's own folder only, and only when that folder's parent exists and is writable: a
    mistyped ``sqlite:////nonexistent/a/b.db`` must not build a tree at the file-system root.
    """
    folder = path.parent
    if not folder.exists():
        parent = folder.parent
        if not parent.is_dir():
            raise StoreError(
                f"cannot create the store {path}: the folder {parent} does not exist; create it first or "
                "choose another path"
            )
        if not os.access(parent, os.W_OK | os.X_OK):
            raise StoreError(f"cannot create the folder {folder} for the store {path}: {parent} is read-only")
        try:
            folder.mkdir()
        except OSError as exc:
            raise StoreError(f"cannot create the folder {folder} for the store {path}: {exc.strerror}") from None
    if not folder.is_dir():
        raise StoreError(f"cannot use the store {path}: {folder} is not a folder")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise StoreError(
            f"the store file {path} is read-only (or not readable) for this user; make it writable "
            "(e.g. chmod u+rw) or choose another file"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        what = "create the store in" if not path.exists() else "write the journal files (-wal, -shm) of the store in"
        raise StoreError(f"cannot {what} the read-only folder {folder}; make it writable or choose another path")


def make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with a terse text
        raise StoreError(f"not a database URL: {url!r} ({exc})") from None
    kwargs: dict[str, Any] = {"future": True}
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_file(parsed.database)
        check_sqlite_location(path)
        parsed = parsed.set(database=str(path))
        kwargs["connect_args"] = {"timeout": LOCK_WAIT_MS / 1000, "check_same_thread": False}
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        raise StoreError(
            f"cannot use the database URL {parsed.render_as_string(hide_password=True)!r}: {exc}; {EXPECTED_URL}"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _set_sqlite_pragmas)
    return engine


def store_location(url: str) -> str:
    """Where a store lives, for people: the absolute file of a SQLite store, else the URL without password."""
    try:
        parsed = make_url(url)
    except Exception:
        return url
    if parsed.get_backend_name() == "sqlite":
        try:
            return str(sqlite_file(parsed.database))
        except StoreError:
            return "(in memory)"
    return parsed.render_as_string(hide_password=True)


@dataclass
class Store:
    """An open store: engine + session factory. Create with :func:`open_store`."""

    url: str
    engine: Engine
    session_factory: sessionmaker[Session]
    location: str = ""  # absolute database file (SQLite) or URL without password, fixed when opened

    def session(self) -> Session:
        return self.session_factory()

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @property
    def display_url(self) -> str:
        """The URL with any password hidden, for status bars and logs."""
        return make_url(self.url).render_as_string(hide_password=True)

    @property
    def identity(self) -> str:
        """What names this store in files kept beside it (checkpoint folders, tuning journals, cached
        preparations): the absolute SQLite file or the URL without password. Run and dataset ids are
        per store, so those files are keyed by this, never by an id alone."""
        return self.location or self.display_url

    def identity_digest(self, length: int = 16) -> str:
        """A short stable hex key of :attr:`identity`, for file names."""
        return hashlib.sha256(self.identity.encode()).hexdigest()[:length]


    def dispose(self) -> None:
        self.engine.dispose()


def connect_store(url: str | None = None, *, migrate: bool = True) -> Store:
    """Open (and by default migrate) the store at ``url`` (default: :func:`default_url`).

    Callers use :func:`embsr_core.store.open_store`, which also marks runs whose process died.
    """
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
            raise StoreError(f"cannot open the store at {store_location(url)}: {exc}") from exc
    return Store(url=url, engine=engine, session_factory=sessionmaker(engine, expire_on_commit=False),
                 location=store_location(url))
