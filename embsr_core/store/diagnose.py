"""Database errors turned into messages a user can act on: who holds a lock, what cannot be stored.

The CLI and the importer call :func:`explain_database_error` instead of showing a driver traceback.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from embsr_core.store import engine
from embsr_core.store.engine import Store
from embsr_core.store.models import Run


def driver_error(exc: BaseException) -> BaseException | None:
    """The DBAPI error inside ``exc`` (SQLAlchemy wraps it; raw cursors raise it bare), or None."""
    if isinstance(exc, DBAPIError):
        return exc.orig
    if isinstance(exc, sqlite3.Error):
        return exc
    try:
        import psycopg
    except ImportError:
        return None
    return exc if isinstance(exc, psycopg.Error) else None


def is_database_error(exc: BaseException) -> bool:
    return driver_error(exc) is not None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def explain_database_error(store: Store | None, exc: BaseException) -> str:
    """One clear sentence for a failed database operation (the driver's first line kept at the end)."""
    orig = driver_error(exc) or exc
    text = _first_line(orig)
    where = store.location if store is not None else "the store"
    lowered = text.lower()
    if "database is locked" in lowered or "database table is locked" in lowered or "lock timeout" in lowered:
        how = "retried with backoff" if store is None or store.is_sqlite else "waited"
        return (f"the store {where} stayed locked for writing for {engine.LOCK_WAIT_MS / 1000:g} s ({how}) by "
                f"{lock_holder(store)}; try again when it has finished, or stop it")
    if "readonly database" in lowered or "read-only" in lowered:
        return f"the store {where} is read-only for this user; make the file and its folder writable ({text})"
    if "unable to open database file" in lowered:
        return f"cannot open the store {where}: the file or its folder is missing or not writable ({text})"
    if "nul" in lowered and ("0x00" in lowered or "character" in lowered or "byte" in lowered):
        return (f"a value holds a NUL character (\\x00), which PostgreSQL cannot store in text; remove it from "
                f"the data and import again ({text})")
    if "disk is full" in lowered or "no space left" in lowered:
        return f"the disk of the store {where} is full; free some space and try again ({text})"
    return f"the store {where} refused the operation: {text}"


def lock_holder(store: Store | None) -> str:
    """Who has the SQLite file open besides us: a run's process, another process, or another program."""
    if store is None:
        return "another program"
    if not store.is_sqlite:
        return _postgresql_lock_holder(store)
    pids = _pids_with_file_open(Path(store.location))
    if not pids:
        return "another program (its process could not be identified)"
    with store.session() as session:
        runs = {r.pid: r.id for r in session.scalars(select(Run).where(Run.pid.in_(pids), Run.status == "running"))}
    names = []  # in WAL mode readers keep the file open too: the writer is one of them
    for pid in pids:
        command = _command_name(pid)
        if pid in runs:
            names.append(f"run {runs[pid]} (process {pid}, {command})")
        else:
            names.append(f"process {pid} ({command})")
    return names[0] if len(names) == 1 else "one of " + ", ".join(names)


def _postgresql_lock_holder(store: Store) -> str:
    """The other sessions holding locks on the import's tables, from ``pg_locks`` / ``pg_stat_activity``."""
    try:
        with store.engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT DISTINCT a.pid, a.application_name, a.client_addr, a.state FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.granted AND a.pid <> pg_backend_pid() AND "
                "l.relation IN ('sessions'::regclass, 'items'::regclass, 'events'::regclass) ORDER BY a.pid"
            ).all()
    except Exception:  # the diagnosis must never hide the original error
        return "another program"
    if not rows:
        return "another program (it has finished meanwhile)"
    names = [f"server process {pid} ({app or 'unnamed client'}{' from ' + str(addr) if addr else ''}, {state})"
             for pid, app, addr, state in rows]
    return names[0] if len(names) == 1 else "one of " + ", ".join(names)


def _pids_with_file_open(path: Path) -> list[int]:
    """Processes (not this one) with the database or its -wal/-shm file open; Linux ``/proc`` only."""
    targets = {str(path), f"{path}-wal", f"{path}-shm", f"{path}-journal"}
    found = []
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in targets:
                    found.append(int(entry.name))
                    break
            except OSError:
                continue
    return sorted(found)


def _command_name(pid: int) -> str:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        words = [w.decode(errors="replace") for w in cmdline if w]
    except OSError:
        return "unknown program"
    if not words:
        return "unknown program"
    shown = [Path(words[0]).name, *words[1:4]]
    return " ".join(shown)
