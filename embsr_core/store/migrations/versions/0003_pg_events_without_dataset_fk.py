"""PostgreSQL: the events table keeps no foreign key to datasets (SQLite keeps it).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

PostgreSQL checks a foreign key with a trigger per inserted row; importing 1 M events spent ~8 s of
~10 s in those checks, which capped COPY at ~100 k rows/s. The same guarantee holds without it: events
are only written by the importer, in the transaction that creates their dataset row, and only deleted
by ``delete_dataset``, in the transaction that deletes that row (events first). session_id and item_id
carry no foreign key for the same reason since the first schema. SQLite's check is cheap and stays.
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _dataset_fks(bind: sa.engine.Connection) -> list[str]:
    return [fk["name"] for fk in sa.inspect(bind).get_foreign_keys("events")
            if fk["referred_table"] == "datasets" and fk.get("name")]


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for name in _dataset_fks(bind):
        op.drop_constraint(name, "events", type_="foreignkey")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql" or _dataset_fks(bind):
        return
    op.create_foreign_key("events_dataset_id_fkey", "events", "datasets", ["dataset_id"], ["id"], ondelete="CASCADE")
