"""What an analyst adds to a run and what it leaves behind: notes, tags and the stored training log.

The log is written line by line while a run trains (the trainer's store recorder calls
:func:`append_run_log`), so the run detail view shows the whole history after a restart, and
``embsr runs show`` can print it. Portable SQL only (SQLite and PostgreSQL).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from embsr_core.store.engine import Store
from embsr_core.store.models import Run, RunLogLine, RunTag

LOG_LEVELS = ("info", "warning", "error")
MAX_TAG_LENGTH = 80


@dataclass(frozen=True)
class LogLine:
    seq: int
    time: datetime
    level: str
    message: str

    def render(self) -> str:
        """``2026-12-01 15:04:05  message`` (the level is shown only when it is not plain info)."""
        level = "" if self.level == "info" else f"{self.level.upper()}: "
        return f"{self.time:%Y-%m-%d %H:%M:%S}  {level}{self.message}"


@contextlib.contextmanager
def _writing(session_or_store: Session | Store) -> Iterator[Session]:
    """A session to write in: the caller's (joins its transaction) or a new one committed here."""
    if isinstance(session_or_store, Session):
        yield session_or_store
        return
    with session_or_store.session() as session, session.begin():
        yield session


@contextlib.contextmanager
def _reading(session_or_store: Session | Store) -> Iterator[Session]:
    if isinstance(session_or_store, Session):
        yield session_or_store
        return
    with session_or_store.session() as session:
        yield session


def _normalise(line: str | tuple[str, str]) -> tuple[str, str]:
    level, message = ("info", line) if isinstance(line, str) else line
    if level not in LOG_LEVELS:
        raise ValueError(f"log level: expected one of {LOG_LEVELS}, got {level!r}")
    return level, str(message)


# --- training log -----------------------------------------------------------------------------------


def append_run_log(
    session_or_store: Session | Store,
    run_id: int,
    lines: Iterable[str | tuple[str, str]],
    *,
    time: datetime | None = None,
) -> int:
    """Append lines (plain text = ``info``, or ``(level, message)``) to a run's log; returns how many.

    Each line gets the next sequence number of the run, so the log reads back in the order written.
    """
    rows = [_normalise(line) for line in lines]
    if not rows:
        return 0
    stamp = time or datetime.now()
    with _writing(session_or_store) as session:
        last = session.scalar(select(func.max(RunLogLine.seq)).where(RunLogLine.run_id == run_id)) or 0
        session.add_all(
            RunLogLine(run_id=run_id, seq=last + k, time=stamp, level=level, message=message)
            for k, (level, message) in enumerate(rows, start=1)
        )
    return len(rows)


def run_log(
    session_or_store: Session | Store, run_id: int, *, after_seq: int = 0, limit: int | None = None
) -> list[LogLine]:
    """A run's log lines in order; ``after_seq`` reads only what came after (for a live view)."""
    query = (
        select(RunLogLine.seq, RunLogLine.time, RunLogLine.level, RunLogLine.message)
        .where(RunLogLine.run_id == run_id, RunLogLine.seq > after_seq)
        .order_by(RunLogLine.seq)
    )
    if limit is not None:
        query = query.limit(limit)
    with _reading(session_or_store) as session:
        return [LogLine(*row) for row in session.execute(query).all()]


def run_log_text(session_or_store: Session | Store, run_id: int) -> str:
    """The whole log as text, one rendered line each (what the detail view and the CLI show)."""
    return "\n".join(line.render() for line in run_log(session_or_store, run_id))


# --- notes --------------------------------------------------------------------------------------------


def get_notes(session_or_store: Session | Store, run_id: int) -> str:
    with _reading(session_or_store) as session:
        return session.scalar(select(Run.notes).where(Run.id == run_id)) or ""


def set_notes(session_or_store: Session | Store, run_id: int, notes: str) -> None:
    """Replace a run's notes (empty text clears them)."""
    with _writing(session_or_store) as session:
        done = session.execute(update(Run).where(Run.id == run_id).values(notes=notes.strip() or None))
        if done.rowcount == 0:  # type: ignore[attr-defined]
            raise KeyError(f"no run with id {run_id} in the store")


# --- tags ---------------------------------------------------------------------------------------------


def clean_tags(tags: Iterable[str]) -> list[str]:
    """Trimmed, de-duplicated tags in the given order; empty ones dropped; too long ones refused."""
    out: list[str] = []
    for raw in tags:
        tag = " ".join(str(raw).split())
        if not tag:
            continue
        if len(tag) > MAX_TAG_LENGTH:
            raise ValueError(f"tag {tag[:20]!r}…: at most {MAX_TAG_LENGTH} characters, got {len(tag)}")
        if tag not in out:
            out.append(tag)
    return out


def parse_tags(text: str) -> list[str]:
    """``"baseline, jd  ,  lr sweep"`` → ``["baseline", "jd", "lr sweep"]`` (commas separate tags)."""
    return clean_tags(text.split(","))


def get_tags(session_or_store: Session | Store, run_id: int) -> list[str]:
    with _reading(session_or_store) as session:
        return list(session.scalars(select(RunTag.tag).where(RunTag.run_id == run_id).order_by(RunTag.tag)))


def set_tags(session_or_store: Session | Store, run_id: int, tags: Iterable[str]) -> list[str]:
    """Replace a run's tags; returns the cleaned tags stored."""
    cleaned = clean_tags(tags)
    with _writing(session_or_store) as session:
        if session.get(Run, run_id) is None:
            raise KeyError(f"no run with id {run_id} in the store")
        session.execute(delete(RunTag).where(RunTag.run_id == run_id))
        session.add_all(RunTag(run_id=run_id, tag=tag) for tag in cleaned)
    return sorted(cleaned)


def tags_by_run(session_or_store: Session | Store, run_ids: Sequence[int] | None = None) -> dict[int, list[str]]:
    """``run_id → sorted tags`` for the given runs (all runs when ``None``); untagged runs are absent."""
    query = select(RunTag.run_id, RunTag.tag).order_by(RunTag.run_id, RunTag.tag)
    if run_ids is not None:
        query = query.where(RunTag.run_id.in_(list(run_ids)))
    out: dict[int, list[str]] = {}
    with _reading(session_or_store) as session:
        for run_id, tag in session.execute(query).all():
            out.setdefault(int(run_id), []).append(tag)
    return out


def all_tags(session_or_store: Session | Store) -> list[str]:
    """Every tag in use, sorted (the Runs page's tag filter)."""
    with _reading(session_or_store) as session:
        return list(session.scalars(select(RunTag.tag).distinct().order_by(RunTag.tag)))


# --- deletion -----------------------------------------------------------------------------------------


def delete_run_details(session: Session, run_ids: Any) -> None:
    """Delete the logs and tags of runs (ids, or a ``select`` of ids) inside the caller's transaction.

    The foreign keys cascade too; deleting explicitly keeps it independent of the SQLite pragma.
    """
    session.execute(delete(RunLogLine).where(RunLogLine.run_id.in_(run_ids)))
    session.execute(delete(RunTag).where(RunTag.run_id.in_(run_ids)))


# --- files --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunFile:
    path: Path
    kind: str  # last checkpoint / best checkpoint / vocabulary / other file
    size: int | None  # bytes; None when the file is missing


def run_files(run: Run) -> list[RunFile]:
    """A run's files: its two checkpoints (flagged when missing) and whatever else its folder holds."""
    named = {run.checkpoint_path: "last checkpoint", run.best_checkpoint_path: "best checkpoint"}
    files: dict[Path, str] = {}
    for path, kind in named.items():
        if path:
            files[Path(path)] = kind if Path(path) not in files else files[Path(path)] + " + " + kind
    folders = {p.parent for p in files if p.parent.name == f"run_{run.id}" and p.parent.is_dir()}
    for folder in folders:
        for path in sorted(folder.iterdir()):
            if path.is_file() and path not in files:
                files[path] = "vocabulary" if path.name == "vocab.json" else "other file"
    out = []
    for path, kind in files.items():
        try:
            size: int | None = path.stat().st_size
        except OSError:
            size = None
        out.append(RunFile(path, kind, size))
    return out
