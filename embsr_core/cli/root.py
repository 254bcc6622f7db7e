"""The root `embsr` group: global options shared by every command (store URL)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from embsr_core import __version__
from embsr_core.store.errors import StoreError

if TYPE_CHECKING:
    from embsr_core.store import Store

# Errors shown as one line, by (module, class). Looked up only in modules already loaded: an exception
# of a module nobody imported cannot have been raised, and importing them here would load pandas and
# PyTorch for `embsr --help`.
_ONE_LINE_ERRORS = (
    ("embsr_core.data.from_store", "PreparationError"),  # a dataset that cannot be prepared
    ("embsr_core.training.checkpoints", "CheckpointError"),  # a damaged checkpoint
)


def _is_one_line_error(exc: BaseException) -> bool:
    if isinstance(exc, StoreError):
        return True
    for module_name, class_name in _ONE_LINE_ERRORS:
        module = sys.modules.get(module_name)
        cls = getattr(module, class_name, None) if module is not None else None
        if isinstance(cls, type) and isinstance(exc, cls):
            return True
    return False


class CliContext:
    """Lazily opens the store once per invocation, so `--help` never touches a database."""

    def __init__(self, db_url: str | None):
        self.db_url = db_url
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            from embsr_core.store import open_store  # (SQLAlchemy, alembic: not needed for --help)

            try:
                self._store = open_store(self.db_url)
            except StoreError as exc:
                raise click.ClickException(str(exc)) from None
        return self._store


pass_cli = click.make_pass_decorator(CliContext)


class StoreGroup(click.Group):
    """Every command's database failure (locked, read-only, a value the database refuses), dataset that
    cannot be prepared and damaged checkpoint becomes a one-line message instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if _is_one_line_error(exc):
                raise click.ClickException(str(exc)) from None
            from embsr_core.store.diagnose import explain_database_error, is_database_error

            if not is_database_error(exc):
                raise
            cli = ctx.find_object(CliContext)
            raise click.ClickException(explain_database_error(cli._store if cli else None, exc)) from None


@click.group(cls=StoreGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="embsr")
@click.option(
    "--db",
    "db_url",
    envvar="EMBSR_DB_URL",
    metavar="URL",
    help="SQLAlchemy URL of the store (default: the embedded SQLite file in the user data folder; "
    "env EMBSR_DB_URL). Example: postgresql+psycopg://user:pw@host/embsr",
)
@click.pass_context
def main(ctx: click.Context, db_url: str | None) -> None:
    """EMBSR Workbench command line: import micro-behavior data, train and compare recommenders.

    A DATASET argument is a dataset's name; write #ID (e.g. '#2') for its id, so a dataset named "2"
    is never taken for id 2. Runs are always given by id (embsr runs list).

    \b
    Examples:
      embsr db info
      embsr --db sqlite:///my.db db info
    """
    ctx.obj = CliContext(db_url)
