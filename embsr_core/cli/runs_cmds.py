"""`embsr runs ...` (list, show, compare, delete) and `embsr export` (CSV reports of runs)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import click

from embsr_core.cli.lazy import LazyChoice, LazyModule
from embsr_core.cli.root import CliContext, main, pass_cli

reports = LazyModule("embsr_core.reports")  # pandas: loaded by the commands that read metrics, not by --help
summary = LazyModule("embsr_core.run_summary")  # the store (SQLAlchemy) without pandas: for `embsr runs list`
AGG_CHOICE = LazyChoice(lambda: list(summary.AGGREGATIONS))
SPLIT_CHOICE = click.Choice(["test", "valid"])
TARGET_OP_CHOICE = click.Choice(["oracle", "unknown"])


def _table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], styles: dict[tuple[int, int], dict] | None = None
) -> str:
    """Plain aligned text table; ``styles[(row, col)]`` are click.style keywords for one cell."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for r, row in enumerate(rows):
        cells = []
        for c, (cell, w) in enumerate(zip(row, widths, strict=True)):
            text = cell.rjust(w) if _numeric(cell) else cell.ljust(w)
            style = (styles or {}).get((r, c))
            cells.append(click.style(text, **style) if style else text)
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _numeric(text: str) -> bool:
    """A number, maybe marked (``*``, ``+``, ``%``) or with its spread (``64.53 ± 0.50``): aligned right."""
    try:
        float(text.rstrip("*+% ").split(" ± ")[0])
    except ValueError:
        return False
    return True


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.{digits}f}"


def _run_ids(values: Sequence[str]) -> list[int]:
    ids = []
    for value in values:
        if not value.isdigit():
            raise click.BadParameter(f"{value!r} is not a run id (a whole number; see `embsr runs list`)")
        ids.append(int(value))
    return ids


@main.group()
def runs() -> None:
    """List, inspect, compare and delete training runs.

    \b
    Examples:
      embsr runs list
      embsr runs show 3
      embsr runs compare 3 4 --agg best --significance
      embsr runs delete 5 --yes
    """


@runs.command("list")
@click.option("--status", help="Only runs with this status (running, finished, stopped, failed, interrupted).")
@click.option("--dataset", help="Only runs on this dataset (name).")
@pass_cli
def runs_list(cli: CliContext, status: str | None, dataset: str | None) -> None:
    """One line per run: status, model, dataset, key hyperparameters, best-epoch test H@20 / M@20.

    \b
    Examples:
      embsr runs list
      embsr runs list --status finished --dataset demo
    """
    infos = summary.run_infos(cli.store)
    if status:
        infos = [i for i in infos if i.status == status]
    if dataset:
        infos = [i for i in infos if i.dataset == dataset]
    if not infos:
        click.echo("No runs." + ("" if status or dataset else " Train one with `embsr train`."))
        return
    rows = []
    for info in infos:
        (values,), split = summary.summary_rows(cli.store, [info], [("hit", 20), ("mrr", 20)], "best")
        rows.append([
            str(info.id), info.status, info.name or "", info.model, info.dataset,
            summary.format_hyperparameters(info.config), f"{info.epochs_done}",
            _fmt(values[0]), _fmt(values[1]), split,
            summary.format_duration(info.duration_s()), info.device,
        ])
    headers = ["ID", "Status", "Name", "Model", "Dataset", "Hyperparameters", "Epochs", "H@20", "M@20", "Split",
               "Duration", "Device"]
    click.echo(_table(headers, rows))


@runs.command("show")
@click.argument("run_id", type=int)
@click.option("--log", "show_log", is_flag=True, help="Also print the run's stored training log.")
@pass_cli
def runs_show(cli: CliContext, run_id: int, show_log: bool) -> None:
    """Everything about one run: settings, status, notes, tags, best / last / max metrics (and its log).

    \b
    Examples:
      embsr runs show 3
      embsr runs show 3 --log
    """
    from embsr_core.store import run_details

    try:
        (info,) = reports.run_infos(cli.store, [run_id])
    except KeyError as exc:
        raise click.ClickException(str(exc.args[0])) from None
    click.echo(f"Run {info.id}: {info.display_name}")
    click.echo(f"  status:      {info.status}")
    click.echo(f"  model:       {info.model}")
    click.echo(f"  dataset:     {info.dataset}")
    click.echo(f"  device:      {info.device or '-'}")
    click.echo(f"  created:     {info.created_at:%Y-%m-%d %H:%M:%S}" if info.created_at else "  created:     -")
    click.echo(f"  duration:    {reports.format_duration(info.duration_s()) or '-'}")
    click.echo(f"  epochs:      {info.epochs_done} (best {info.best_epoch if info.best_epoch is not None else '-'})")
    if info.error_text:
        click.echo("  error:       " + info.error_text.strip().splitlines()[-1])
    tags = run_details.get_tags(cli.store, run_id)
    if tags:
        click.echo("  tags:        " + ", ".join(tags))
    notes = run_details.get_notes(cli.store, run_id)
    if notes:
        click.echo("  notes:       " + notes.replace("\n", "\n               "))
    click.echo("  config:")
    for key, value in sorted(reports.flatten_config(info.config).items()):
        click.echo(f"    {key} = {value}")
    for split in ("valid", "test"):
        rows = []
        for agg in reports.AGGREGATIONS:
            table = reports.comparison_table(cli.store, [run_id], aggregation=agg, split=split)
            if all(math.isnan(v) for v in table.values[0]):
                continue
            rows.append([agg] + [_fmt(v) for v in table.values[0]])
        if rows:
            click.echo(f"\n{split} (oracle target operation):")
            click.echo(_table(["agg"] + table.labels, rows))
    if show_log:
        text = run_details.run_log_text(cli.store, run_id)
        click.echo("\ntraining log:\n" + (text or "(no log stored for this run)"))


@runs.command("compare")
@click.argument("run_ids", nargs=-1, required=True)
@click.option("--metric", "metrics", multiple=True, type=click.Choice(["hit", "mrr", "ndcg", "H", "M", "N"]),
              help="Metric families to show (repeatable; default: hit and mrr, as in the paper's Table III).")
@click.option("--agg", type=AGG_CHOICE, default="best", show_default=True,
              help="Value per run: at the best validation epoch, the last epoch, or the max / min over epochs.")
@click.option("--split", type=SPLIT_CHOICE, default=None, help="Split to report (default: test when every run has it).")
@click.option("--target-op", type=TARGET_OP_CHOICE, default="oracle", show_default=True,
              help="Evaluation mode of the target operation.")
@click.option("--chosen", type=int, default=None, help="Run whose Imp. is shown (default: best in most columns).")
@click.option("--significance", is_flag=True,
              help="Wilcoxon signed-rank p-value of each run against the chosen one (per-session M@20).")
@pass_cli
def runs_compare(
    cli: CliContext,
    run_ids: tuple[str, ...],
    metrics: tuple[str, ...],
    agg: str,
    split: str | None,
    target_op: str,
    chosen: int | None,
    significance: bool,
) -> None:
    """The paper's Table III for RUN_IDS: best value marked *, second best +, and the Imp. row.

    \b
    Examples:
      embsr runs compare 3 4
      embsr runs compare 3 4 5 --metric hit --metric ndcg --agg max --split valid
      embsr runs compare 4 3 --significance
    """
    ids = _run_ids(run_ids)
    families = [{"H": "hit", "M": "mrr", "N": "ndcg"}.get(m, m) for m in metrics] or ["hit", "mrr"]
    try:
        table = reports.comparison_table(
            cli.store, ids, metrics=list(dict.fromkeys(families)), aggregation=agg, split=split,  # type: ignore[arg-type]
            target_op=target_op, chosen_run_id=chosen, significance=significance,
        )
    except (KeyError, ValueError) as exc:
        raise click.ClickException(str(exc.args[0])) from None
    headers = ["ID", "Run"] + table.labels
    rows: list[list[str]] = []
    styles: dict[tuple[int, int], dict] = {}
    for i, info in enumerate(table.runs):
        row = [str(info.id), info.display_name]
        for j, value in enumerate(table.values[i]):
            mark = "*" if table.best[i, j] else "+" if table.second[i, j] else ""
            row.append(_fmt(value) + mark)
            if mark == "*":
                styles[(i, j + 2)] = {"bold": True}
            elif mark == "+":
                styles[(i, j + 2)] = {"underline": True}
        if significance:
            p = table.p_values.get(info.id)
            row.append("(chosen)" if info.id == table.chosen_run_id else ("-" if p is None else f"{p:.3g}"))
        rows.append(row)
    if significance:
        headers.append("Wilcoxon p")
    if table.improvement is not None:
        imp = ["", f"Imp. % (run {table.chosen_run_id})"] + [
            "-" if not math.isfinite(v) else f"{v:+.2f}%" for v in table.improvement
        ]
        rows.append(imp + ([""] if significance else []))
    click.echo(f"{agg} values on {table.split} ({target_op} target operation); * best, + second best")
    click.echo(_table(headers, rows, styles))
    if table.mismatch:
        click.echo(f"Not comparable: {table.mismatch}.", err=True)


@runs.command("delete")
@click.argument("run_id", type=int)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_cli
def runs_delete(cli: CliContext, run_id: int, yes: bool) -> None:
    """Delete a run, its metrics and its checkpoint files.

    \b
    Examples:
      embsr runs delete 5
      embsr runs delete 5 --yes
    """
    from embsr_core.store import runs_repo

    try:
        (info,) = reports.run_infos(cli.store, [run_id])
    except KeyError as exc:
        raise click.ClickException(str(exc.args[0])) from None
    if not yes:
        click.confirm(f"Delete run {info.id} ({info.display_name}, {info.status}) and its checkpoints?", abort=True)
    try:
        runs_repo.delete_run(cli.store, run_id)
    except Exception as exc:  # StoreError (e.g. still running) and file errors
        raise click.ClickException(str(exc)) from None
    click.echo(f"Deleted run {run_id}.")


@main.command("export")
@click.argument("run_ids", nargs=-1, required=True)
@click.option("--metrics-csv", type=click.Path(dir_okay=False, path_type=Path),
              help="Write per-epoch metrics (long format: one row per run/epoch/split/metric/K).")
@click.option("--comparison-csv", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the comparison table (wide format: one row per run, one column per metric@K).")
@click.option("--agg", type=AGG_CHOICE, default="best", show_default=True, help="Aggregation for the comparison.")
@click.option("--split", type=SPLIT_CHOICE, default=None, help="Split of the comparison (default: test if present).")
@click.option("--target-op", type=TARGET_OP_CHOICE, default="oracle", show_default=True)
@click.option("--chosen", type=int, default=None,
              help="Run whose Imp. row and p-values are computed (default: best in most columns).")
@pass_cli
def export(
    cli: CliContext,
    run_ids: tuple[str, ...],
    metrics_csv: Path | None,
    comparison_csv: Path | None,
    agg: str,
    split: str | None,
    target_op: str,
    chosen: int | None,
) -> None:
    """Export RUN_IDS to CSV (UTF-8, header row, full-precision numbers that round-trip).

    \b
    Examples:
      embsr export 3 4 --metrics-csv metrics.csv --comparison-csv table3.csv
      embsr export 3 --metrics-csv run3.csv
      embsr export 3 4 --comparison-csv t.csv --agg max --split valid
    """
    if metrics_csv is None and comparison_csv is None:
        raise click.UsageError("give --metrics-csv PATH and/or --comparison-csv PATH")
    ids = _run_ids(run_ids)
    try:
        if metrics_csv is not None:
            reports.export_metrics_csv(cli.store, ids, metrics_csv)
            click.echo(f"Wrote per-epoch metrics of {len(ids)} run(s) to {metrics_csv}")
        if comparison_csv is not None:
            reports.export_comparison_csv(
                cli.store, ids, comparison_csv, aggregation=agg, split=split,  # type: ignore[arg-type]
                target_op=target_op, chosen_run_id=chosen,
            )
            click.echo(f"Wrote the comparison table of {len(ids)} run(s) to {comparison_csv}")
    except (KeyError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc.args[0] if isinstance(exc, KeyError) else exc)) from None
