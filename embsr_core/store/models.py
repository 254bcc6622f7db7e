"""SQLAlchemy 2.0 ORM tables of the store.

Portable across SQLite and PostgreSQL: no dialect-only SQL here. The events table is the big one
(tens of millions of rows); it is keyed by (dataset, session, position) so a dataset reads back in
one ordered range scan, and on SQLite it is a WITHOUT ROWID table (clustered on that key).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    source_format: Mapped[str] = mapped_column(String(40))
    source_path: Mapped[str | None] = mapped_column(Text)
    imported_at: Mapped[datetime] = mapped_column(DateTime)
    n_sessions: Mapped[int] = mapped_column(Integer, default=0)
    n_items: Mapped[int] = mapped_column(Integer, default=0)
    n_operations: Mapped[int] = mapped_column(Integer, default=0)
    n_events: Mapped[int] = mapped_column(BigInteger, default=0)
    import_report: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    operations: Mapped[list[Operation]] = relationship(
        back_populates="dataset", cascade="all, delete-orphan", passive_deletes=True, order_by="Operation.code"
    )
    runs: Mapped[list[Run]] = relationship(back_populates="dataset", passive_deletes=True)


class Operation(Base):
    __tablename__ = "operations"
    __table_args__ = (
        UniqueConstraint("dataset_id", "code", name="uq_operations_dataset_code"),
        UniqueConstraint("dataset_id", "name", name="uq_operations_dataset_name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    code: Mapped[int] = mapped_column(Integer)  # dense 1..|O| within the dataset
    name: Mapped[str] = mapped_column(String(120))

    dataset: Mapped[Dataset] = relationship(back_populates="operations")


class Item(Base):
    __tablename__ = "items"
    __table_args__ = (UniqueConstraint("dataset_id", "external_id", name="uq_items_dataset_external"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(200))
    category: Mapped[str | None] = mapped_column(String(200))


class SessionRow(Base):
    """A user session (named SessionRow so it is not confused with SQLAlchemy's Session)."""

    __tablename__ = "sessions"
    __table_args__ = (UniqueConstraint("dataset_id", "external_id", name="uq_sessions_dataset_external"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(200))


class Event(Base):
    """One micro-behavior: (dataset, session, position) → item, operation, time, dwell."""

    __tablename__ = "events"
    __table_args__ = ({"sqlite_with_rowid": False},)

    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    )
    # session_id / item_id carry no FOREIGN KEY on purpose: on a 30 M-row table SQLite would check
    # (and on delete scan) them row by row. The importer guarantees them; deletes go by dataset_id,
    # the key's prefix, so removing a dataset is one range delete. On PostgreSQL dataset_id has no
    # FOREIGN KEY either (migration 0003: its per-row trigger was most of a COPY import's time).
    session_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(Integer)
    operation_code: Mapped[int] = mapped_column(Integer)  # Operation.code within the same dataset
    timestamp: Mapped[float] = mapped_column(Float)
    dwell: Mapped[float | None] = mapped_column(Float)


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    model_name: Mapped[str] = mapped_column(String(80), index=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)  # model, training and preprocessing settings
    status: Mapped[str] = mapped_column(String(20), index=True)  # queued/running/finished/stopped/failed/interrupted
    device: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    error_text: Mapped[str | None] = mapped_column(Text)
    epochs_done: Mapped[int] = mapped_column(Integer, default=0)
    best_epoch: Mapped[int | None] = mapped_column(Integer)
    checkpoint_path: Mapped[str | None] = mapped_column(Text)  # last checkpoint
    checkpoint_sha256: Mapped[str | None] = mapped_column(String(64))
    best_checkpoint_path: Mapped[str | None] = mapped_column(Text)
    best_checkpoint_sha256: Mapped[str | None] = mapped_column(String(64))
    prep_hash: Mapped[str | None] = mapped_column(String(64))  # which prepared split it was evaluated on
    search_group: Mapped[str | None] = mapped_column(String(80), index=True)  # grid-search trials share it
    is_best_trial: Mapped[bool] = mapped_column(Boolean, default=False)
    pid: Mapped[int | None] = mapped_column(Integer)  # process that owns a running run
    host: Mapped[str | None] = mapped_column(String(200))
    owner_start: Mapped[int | None] = mapped_column(BigInteger)  # owner's start, clock ticks since boot (0004)
    notes: Mapped[str | None] = mapped_column(Text)  # the analyst's free text (migration 0002)

    dataset: Mapped[Dataset] = relationship(back_populates="runs")


class EpochMetric(Base):
    __tablename__ = "epoch_metrics"
    __table_args__ = (
        UniqueConstraint("run_id", "epoch", "split", "target_op", "metric", "k", name="uq_epoch_metric"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    epoch: Mapped[int] = mapped_column(Integer)
    split: Mapped[str] = mapped_column(String(10))  # valid / test
    target_op: Mapped[str] = mapped_column(String(10), default="oracle")  # oracle / unknown
    metric: Mapped[str] = mapped_column(String(20))  # hit / mrr / ndcg / loss
    k: Mapped[int] = mapped_column(Integer, default=0)
    value: Mapped[float] = mapped_column(Float)
    wall_time: Mapped[float | None] = mapped_column(Float)  # seconds since the run started


class LossPoint(Base):
    __tablename__ = "loss_series"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer)
    loss: Mapped[float] = mapped_column(Float)
    wall_time: Mapped[float | None] = mapped_column(Float)


class RunRanks(Base):
    """Per-session target ranks of one evaluation, for paired significance tests between runs."""

    __tablename__ = "run_ranks"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    split: Mapped[str] = mapped_column(String(10), primary_key=True)
    target_op: Mapped[str] = mapped_column(String(10), primary_key=True)
    prep_hash: Mapped[str | None] = mapped_column(String(64))
    n: Mapped[int] = mapped_column(Integer)
    ranks: Mapped[bytes] = mapped_column(LargeBinary)  # little-endian int32, 1-based rank per session


class RunTag(Base):
    """A label the analyst puts on a run (filter the Runs page by it); migration 0002."""

    __tablename__ = "run_tags"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(80), primary_key=True, index=True)


class RunLogLine(Base):
    """One line of a run's training log, kept so the log survives a restart; migration 0002."""

    __tablename__ = "run_logs"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)  # 1, 2, … within the run
    time: Mapped[datetime] = mapped_column(DateTime)
    level: Mapped[str] = mapped_column(String(10))  # info / warning / error
    message: Mapped[str] = mapped_column(Text)
