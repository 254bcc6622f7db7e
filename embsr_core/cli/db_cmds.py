"""`embsr db ...`: inspect the store."""

from __future__ import annotations

import click

from embsr_core.cli.root import CliContext, main, pass_cli


@main.group()
def db() -> None:
    """Inspect the store (database)."""


@db.command("info")
@pass_cli
def db_info(cli: CliContext) -> None:
    """Show the store URL, its database file (absolute path), its schema version and row counts.

    \b
    Example:
      embsr db info
    """
    from embsr_core.store.migrate import head_revision
    from embsr_core.store.repository import store_info

    info = store_info(cli.store)
    click.echo(f"URL:            {info.url}")
    if info.dialect == "sqlite":
        click.echo(f"File:           {info.location}")
    click.echo(f"Dialect:        {info.dialect}")
    click.echo(f"Schema version: {info.schema_revision} (this program: {head_revision()})")
    for name, count in info.counts.items():
        click.echo(f"{name + ':':<16}{count:,}")
