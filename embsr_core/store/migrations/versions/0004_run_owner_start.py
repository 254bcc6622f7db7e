"""Runs: the start token of the owning process (with pid and host), to tell a dead owner from a reused pid.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

A run left ``running`` by a killed process is marked ``interrupted`` when its pid is gone; a pid the
system has since given to another process is caught by this token (the process's start, in clock
ticks since boot: unaffected by changes of the wall clock).
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("owner_start", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("owner_start")
