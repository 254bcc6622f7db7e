"""`embsr import ...` and `embsr datasets list|show|delete`: bring micro-behavior data into the store."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from embsr_core.cli.lazy import LazyChoice, LazyOption, lazy_value
from embsr_core.cli.root import CliContext, main, pass_cli
from embsr_core.cli.runs_cmds import _table
from embsr_core.data.errors import DataFormatError, ImportCancelled
from embsr_core.store import StoreError

if TYPE_CHECKING:
    from embsr_core.data.importers import ColumnMapping, Source
    from embsr_core.data.store_io import ImportReport
    from embsr_core.store.models import Dataset

# The importers (pandas, pyarrow) are imported by `embsr import` itself, the store's modules (SQLAlchemy)
# by the commands that open it: `embsr --help` does not wait for them, `embsr datasets list` not for pandas.
_IMPORTERS = "embsr_core.data.importers"

EXIT_CANCELLED = 130


@contextmanager
def cancel_on_interrupt() -> Iterator[threading.Event]:
    """The first Ctrl-C sets the token (the import stops at the next chunk and rolls back);
    a second one interrupts at once (the transaction still rolls back)."""
    token = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield token
        return

    def handler(_signum: int, _frame: FrameType | None) -> None:
        if token.is_set():
            raise KeyboardInterrupt
        token.set()
        click.echo("\nCancelling: rolling back, nothing will be stored (Ctrl-C again to force)...", err=True)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield token
    finally:
        signal.signal(signal.SIGINT, previous)


class Progress:
    """Feeds a click progress bar (on stderr) with bytes read and shows the rows read."""

    def __init__(self, bar: Any):
        self.bar = bar
        self.done = 0

    def __call__(self, rows: int, bytes_read: int, total_bytes: int) -> None:
        step = max(0, min(bytes_read, total_bytes) - self.done)
        self.done += step
        self.bar.update(step, current_item=rows)


def _mapping(session: str | None, item: str | None, operation: str | None, timestamp: str | None,
             category: str | None, dwell: str | None, delimiter: str | None, user: str | None = None,
             gap_minutes: float | None = None, header: bool = True,
             numeric_ids: bool = False, skip_cut_last_line: bool = False) -> ColumnMapping | None:
    from embsr_core.data.importers import ColumnMapping

    values = (session, item, operation, timestamp, category, dwell, delimiter, user)
    if not any(values) and gap_minutes is None and header and not numeric_ids and not skip_cut_last_line:
        return None
    if delimiter == "\\t":
        delimiter = "\t"
    if gap_minutes is not None and not user:
        raise click.BadParameter("the session gap cuts sessions from a user column; give --user-col too",
                                 param_hint="--session-gap")
    gap = None if gap_minutes is None else 60.0 * gap_minutes
    return ColumnMapping(session, item, operation, timestamp, category, dwell, delimiter, user=user,
                         session_gap=gap, header=header, numeric_ids=numeric_ids,
                         skip_cut_last_line=skip_cut_last_line)


def _warn_ignored_mapping(paths: Sequence[Path], fmt: str, mapping: ColumnMapping | None) -> None:
    """Column options only shape generic tables: say so when the file is of another format."""
    from embsr_core.data.importers import detect_format, ignored_mapping

    if mapping is None:
        return
    try:
        resolved = fmt if fmt != "auto" else detect_format(paths[0])
    except DataFormatError:
        return  # the import itself reports the unreadable file
    message = ignored_mapping(resolved, mapping)
    if message:
        click.echo(f"Warning: {message}.", err=True)


def _sources(paths: Sequence[Path], operations: Sequence[str]) -> list[Source]:
    from embsr_core.data.importers import Source

    if operations and len(operations) != len(paths):
        raise click.BadParameter(
            f"{len(operations)} --operation value(s) for {len(paths)} path(s); give one per path, in the "
            "same order ('-' for a file that has an operation column)",
            param_hint="--operation",
        )
    ops = list(operations) or [None] * len(paths)
    return [Source(p, None if op in (None, "-", "") else op) for p, op in zip(paths, ops, strict=True)]


@main.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--format", "fmt", type=LazyChoice(lazy_value(_IMPORTERS, "FORMATS", lambda found: ["auto", *found])),
              default="auto", show_default=True,
              help="Source format; auto sniffs the content.")
@click.option("--name", help="Dataset name in the store (default: the first file's name without extension).")
@click.option("--session-col", help="generic: column of the session id.")
@click.option("--item-col", help="generic: column of the item id.")
@click.option("--operation-col", help="generic: column of the operation name.")
@click.option("--timestamp-col", help="generic: column of the time (seconds or ISO dates).")
@click.option("--category-col", help="generic: optional column of the item category.")
@click.option("--dwell-col", help="generic: optional column of the dwell time (seconds).")
@click.option("--delimiter", help="generic: field delimiter (default: sniffed; '\\t' for tab).")
@click.option("--user-col", help="generic: column of the user id; without --session-col, sessions are cut per user "
              "at inactivity gaps (see --session-gap).")
@click.option("--session-gap", "session_gap", type=click.FloatRange(min=0, min_open=True), metavar="MINUTES",
              help="generic with --user-col: minutes without an event that end a session  [default: 30]")
@click.option("--no-header", "no_header", is_flag=True,
              help="generic: the first line is data; give the columns by position (1, 2, ...).")
@click.option("--numeric-ids", is_flag=True,
              help="generic: ids that are whole numbers are numbers ('007' and '7' are one item); "
                   "by default ids are text and differ.")
@click.option("--skip-cut-last-line", is_flag=True,
              help="generic, trivago: when the file ends inside its last line (fields missing or a quote "
                   "open: a cut download), skip that line and count it in the report instead of refusing "
                   "the file.")
@click.option("--operation", "operations", multiple=True, metavar="NAME",
              help="A fixed operation for every row of a file; repeat once per path, in order ('-' = none).")
@click.option("--chunk-rows", type=click.IntRange(min=1), cls=LazyOption,
              lazy_default=lazy_value(_IMPORTERS, "DEFAULT_CHUNK_ROWS"), hidden=True)
@pass_cli
def import_cmd(cli: CliContext, paths: tuple[Path, ...], fmt: str, name: str | None, session_col: str | None,
               item_col: str | None, operation_col: str | None, timestamp_col: str | None,
               category_col: str | None, dwell_col: str | None, delimiter: str | None, user_col: str | None,
               session_gap: float | None, no_header: bool, numeric_ids: bool, skip_cut_last_line: bool,
               operations: tuple[str, ...], chunk_rows: int) -> None:
    """Import micro-behavior files as a new dataset (one transaction: an error or Ctrl-C stores nothing).

    \b
    Formats: jd (one session per line, sku+behavior_type+category+time_interval+dwell_time),
    trivago (train.csv / .parquet, gzip ok), generic (CSV / TSV / Parquet with mapped columns).
    \b
    Examples:
      embsr import JD_Appliances_sample.txt --name jd-appliances
      embsr import train.csv.gz --format trivago --name trivago
      embsr import views.csv purchases.csv --format generic --name diginetica \\
          --session-col session_id --item-col item_id --timestamp-col timeframe \\
          --operation view --operation purchase
      embsr import log.tsv --format generic --session-col sid --item-col sku \\
          --operation-col action --timestamp-col time
      embsr import UserBehavior.csv --format generic --no-header --user-col 1 --item-col 2 \\
          --category-col 3 --operation-col 4 --timestamp-col 5 --session-gap 30
    \b
    A user log without session ids (--user-col, no --session-col) is cut into sessions per user at
    gaps of more than --session-gap minutes; that mode holds the file's rows in memory while cutting.
    Lines longer than 16 MiB are refused.
    """
    from embsr_core.data.store_io import import_into_store

    sources = _sources(paths, operations)
    mapping = _mapping(session_col, item_col, operation_col, timestamp_col, category_col, dwell_col, delimiter,
                       user_col, session_gap, not no_header, numeric_ids, skip_cut_last_line)
    _warn_ignored_mapping(paths, fmt, mapping)
    store = cli.store
    total = sum(p.stat().st_size for p in paths if p.is_file())
    try:
        with cancel_on_interrupt() as token, click.progressbar(
            length=max(total, 1), label="Importing", file=sys.stderr,
            item_show_func=lambda rows: None if rows is None else f"{rows:,} rows",
        ) as bar:
            report = import_into_store(store, sources, fmt, name, mapping, progress=Progress(bar), cancel=token,
                                       chunk_rows=chunk_rows)
    except ImportCancelled as exc:
        click.echo(f"Cancelled: {exc}", err=True)
        raise SystemExit(EXIT_CANCELLED) from None
    except KeyboardInterrupt:
        click.echo("Interrupted: the import was rolled back; nothing was stored.", err=True)
        raise SystemExit(EXIT_CANCELLED) from None
    except (DataFormatError, StoreError) as exc:
        raise click.ClickException(str(exc)) from None
    _print_report(report)


def _print_report(report: ImportReport) -> None:
    click.echo(f"Imported {report.dataset_name!r} (id {report.dataset_id}, format {report.format}) "
               f"in {report.seconds:.1f} s ({report.rows_per_second:,.0f} rows/s)")
    click.echo(f"  rows read {report.rows_read:,}, kept {report.rows_kept:,}, skipped {report.rows_skipped:,}")
    for reason, n in sorted(report.skipped.items()):
        click.echo(f"    skipped: {reason}: {n:,}")
    click.echo(f"  sessions {report.n_sessions:,}, items {report.n_items:,}, operations {report.n_operations}")


@main.group()
def datasets() -> None:
    """List, inspect and delete imported datasets.

    A dataset is named by its name; write #ID (e.g. #2) for its id. A bare 2 is always the dataset
    named "2", never id 2.

    \b
    Examples:
      embsr datasets list
      embsr datasets show jd-appliances
      embsr datasets show '#2'
      embsr datasets delete jd-appliances --yes
    """


@datasets.command("list")
@pass_cli
def datasets_list(cli: CliContext) -> None:
    """List the datasets in the store, newest first.

    \b
    Example:
      embsr datasets list
    """
    from embsr_core.store.repository import list_datasets, printable

    rows = [
        [f"#{d.id}", printable(d.name), d.source_format, f"{d.n_sessions:,}", f"{d.n_items:,}",
         str(d.n_operations), f"{d.n_events:,}", d.imported_at.strftime("%Y-%m-%d %H:%M")]
        for d in list_datasets(cli.store)
    ]
    if not rows:
        click.echo("No datasets yet. Import one with: embsr import PATH --name NAME")
        return
    click.echo(_table(["id", "name", "format", "sessions", "items", "ops", "events", "imported"], rows))


def _dataset(cli: CliContext, ref: str) -> Dataset:
    from embsr_core.store.repository import get_dataset

    try:
        return get_dataset(cli.store, ref)
    except KeyError as exc:
        raise click.ClickException(f"{exc.args[0]}; see `embsr datasets list`") from None


def _operation_counts(cli: CliContext, ds: Dataset) -> dict[str, int]:
    """From the import report; counted in the events table when the report lacks them."""
    from sqlalchemy import func, select

    from embsr_core.store.models import Event
    from embsr_core.store.repository import operation_names

    names = operation_names(cli.store, ds.id)
    stored = (ds.import_report or {}).get("operation_counts")
    if stored is not None:
        return {n: int(stored.get(n, 0)) for n in names}
    with cli.store.session() as session:
        counts = dict(session.execute(
            select(Event.operation_code, func.count()).where(Event.dataset_id == ds.id).group_by(Event.operation_code)
        ).all())
    return {n: int(counts.get(code, 0)) for code, n in enumerate(names, start=1)}


@datasets.command("show")
@click.argument("name", metavar="NAME|#ID")
@pass_cli
def datasets_show(cli: CliContext, name: str) -> None:
    """Counts, import report and operation distribution of one dataset (by name, or #ID for its id).

    \b
    Examples:
      embsr datasets show jd-appliances
      embsr datasets show '#3'
    """
    ds = _dataset(cli, name)
    report = ds.import_report or {}
    click.echo(f"Dataset {ds.name!r} (id #{ds.id})")
    click.echo(f"  format:     {ds.source_format}")
    click.echo(f"  source:     {ds.source_path}")
    click.echo(f"  imported:   {ds.imported_at:%Y-%m-%d %H:%M:%S}")
    click.echo(f"  sessions:   {ds.n_sessions:,}")
    click.echo(f"  items:      {ds.n_items:,}")
    click.echo(f"  events:     {ds.n_events:,} micro-behaviors "
               f"({ds.n_events / max(ds.n_sessions, 1):.1f} per session)")
    if report:
        skipped = sum(report.get("skipped", {}).values())
        click.echo(f"  rows read:  {report.get('rows_read', 0):,} (skipped {skipped:,})")
        for reason, n in sorted(report.get("skipped", {}).items()):
            click.echo(f"    skipped: {reason}: {n:,}")
    counts = _operation_counts(cli, ds)
    click.echo(f"  operations: {len(counts)}")
    total = max(sum(counts.values()), 1)
    rows = [[str(code), op, f"{n:,}", f"{100 * n / total:.1f}%"] for code, (op, n) in enumerate(counts.items(), 1)]
    click.echo(_table(["code", "operation", "events", "share"], rows))


@datasets.command("delete")
@click.argument("name", metavar="NAME|#ID")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_cli
def datasets_delete(cli: CliContext, name: str, yes: bool) -> None:
    """Delete a dataset with its events, items, sessions and runs (refused while a run of it is active).

    NAME is the dataset's name; write #ID for its id (a bare 3 is the dataset named "3").

    \b
    Examples:
      embsr datasets delete jd-appliances
      embsr datasets delete '#3' --yes
    """
    from embsr_core.store.repository import delete_dataset

    ds = _dataset(cli, name)
    if not yes:
        click.confirm(f"Delete dataset {ds.name!r} ({ds.n_events:,} events) and its runs?", abort=True)
    try:
        deleted = delete_dataset(cli.store, ds.id)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Deleted {deleted['dataset']!r}: {deleted['events']:,} events, {deleted['runs']} run(s).")
