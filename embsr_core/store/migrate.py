"""Alembic migrations run programmatically on open; a newer schema is refused with a clear error.

Opening a store that is already at the newest schema (nearly every open) reads its revision with one
plain query and does not import Alembic: Alembic's import alone takes longer than the rest of
`embsr datasets list`. :data:`HEAD_REVISION` names that newest schema; a test pins it to Alembic's own
head, so a new migration without it fails the tests instead of being skipped at open.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

from embsr_core.store.errors import StoreError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
HEAD_REVISION = "0004"  # the newest file in migrations/versions (tests/test_startup.py checks it)
VERSION_TABLE = "alembic_version"  # Alembic's default; migrations/env.py keeps it


def alembic_config(engine: Engine | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if engine is not None:
        config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    """The newest schema as Alembic computes it from the migration files (imports Alembic)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The schema revision stored in the database; None for a database Alembic never touched."""
    with engine.connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return None
        versions = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    if len(versions) > 1:
        raise StoreError(f"the store records several schema versions ({', '.join(versions)}); expected one")
    return versions[0] if versions else None


def upgrade_to_head(engine: Engine) -> None:
    current = current_revision(engine)
    if current == HEAD_REVISION:
        return  # the usual open: nothing to migrate, no Alembic to import
    from alembic import command
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    known = {rev.revision for rev in script.walk_revisions()}
    if current is not None and current not in known:
        raise StoreError(
            f"this database was written by a newer version of EMBSR Workbench (schema {current}); "
            f"this version knows schemas up to {script.get_current_head()}. Upgrade the application "
            "or point it at another database."
        )
    if current != script.get_current_head():
        command.upgrade(alembic_config(engine), "head")
