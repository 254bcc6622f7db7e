"""`embsr model export|info`, `embsr score`, `embsr report` and `embsr runs export|import`: sharing results.

Each command calls one function of :mod:`embsr_core.sharing` (the GUI calls the same ones).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from embsr_core.cli.root import CliContext, main, pass_cli
from embsr_core.cli.runs_cmds import _run_ids, runs

OUT_FILE = click.Path(dir_okay=False, path_type=Path)
IN_FILE = click.Path(dir_okay=False, path_type=Path)


@main.group()
def model() -> None:
    """Portable model files: export a trained run, describe a file.

    \b
    Examples:
      embsr model export 3 -o appliances.embsr
      embsr model info appliances.embsr
    """


@model.command("export")
@click.argument("run_id", type=int)
@click.option("-o", "--output", type=OUT_FILE, required=True, help="Model file to write (.embsr).")
@click.option("--which", type=click.Choice(["best", "last"]), default="best", show_default=True,
              help="The checkpoint of the best validation epoch, or the last one.")
@pass_cli
def model_export(cli: CliContext, run_id: int, output: Path, which: str) -> None:
    """Write RUN_ID's trained model as one file that scores sessions without the store.

    \b
    Examples:
      embsr model export 3 -o appliances.embsr
      embsr model export 3 -o last.embsr --which last
    """
    from embsr_core.sharing.model_file import export_model

    try:
        info = export_model(cli.store, run_id, output, which=which)
    except (KeyError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc.args[0] if isinstance(exc, KeyError) else exc)) from None
    size = output.stat().st_size
    click.echo(f"Wrote {info.model_name} of run {run_id} to {output} ({size / 2**20:.1f} MiB).")


@model.command("info")
@click.argument("path", type=IN_FILE)
def model_info(path: Path) -> None:
    """Describe a model file: model, vocabulary, preprocessing, where it came from, versions.

    \b
    Examples:
      embsr model info appliances.embsr
    """
    from embsr_core.sharing.model_file import read_info

    for line in read_info(path).summary_lines():
        click.echo(line)


@main.command("score")
@click.argument("model_path", metavar="MODEL_FILE", type=IN_FILE)
@click.argument("sessions", metavar="SESSIONS_FILE", type=IN_FILE)
@click.option("-o", "--output", type=OUT_FILE, required=True, help="Predictions CSV to write.")
@click.option("--top-k", type=click.IntRange(1, 1000), default=20, show_default=True, help="Items per session.")
@click.option("--target-op", default="unknown", show_default=True, metavar="unknown|NAME",
              help="The next operation: unknown, or an operation name to ask e.g. what they will buy.")
@click.option("--exclude-seen", is_flag=True, help="Never recommend an item already in the session.")
@click.option("--format", "file_format", type=click.Choice(["auto", "jd", "trivago", "generic"]), default="auto",
              show_default=True, help="Format of SESSIONS_FILE (auto: detected from its content).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, or auto.")
def score(model_path: Path, sessions: Path, output: Path, top_k: int, target_op: str, exclude_seen: bool,
          file_format: str, device: str) -> None:
    """Score every session of SESSIONS_FILE with MODEL_FILE: one CSV row per session and rank
    (session_id, rank, item_id, score). Unknown items and operations are skipped and counted.

    \b
    Examples:
      embsr score appliances.embsr new_sessions.txt -o predictions.csv
      embsr score appliances.embsr sessions.csv -o buy.csv --top-k 10 --target-op Order --exclude-seen
    """
    from embsr_core.data.errors import DataFormatError
    from embsr_core.inference import Predictor
    from embsr_core.sharing.scoring import ScoreProgress, score_file

    predictor = Predictor.from_model_file(model_path, device=device)
    with click.progressbar(length=1000, label="Scoring", file=sys.stderr) as bar:
        shown = [0]

        def progress(event: object) -> None:
            if isinstance(event, ScoreProgress):
                step = int(event.fraction * 1000)
                bar.update(step - shown[0])
                shown[0] = step

        try:
            report = score_file(predictor, sessions, output, top_k=top_k, target_op=target_op,
                                exclude_seen=exclude_seen, file_format=file_format, progress=progress)
        except (DataFormatError, ValueError, OSError) as exc:
            raise click.ClickException(str(exc)) from None
    for line in report.summary_lines():
        click.echo(line)


@main.command("report")
@click.argument("run_ids", nargs=-1, required=True)
@click.option("-o", "--output", type=OUT_FILE, required=True, help="HTML file to write (self-contained).")
@click.option("--pdf", is_flag=True, help="Also print a PDF beside it when Chromium or wkhtmltopdf is installed.")
@click.option("--agg", type=click.Choice(["best", "last", "max", "min"]), default="best", show_default=True,
              help="Value per run in the comparison: at the best validation epoch, the last, or the max / min.")
@click.option("--split", type=click.Choice(["test", "valid"]), default=None,
              help="Split of the comparison (default: test when every run has it).")
@pass_cli
def report(cli: CliContext, run_ids: tuple[str, ...], output: Path, pdf: bool, agg: str, split: str | None) -> None:
    """One HTML page on RUN_IDS a manager can open anywhere: the reading in plain words, the Table III
    comparison with significance, curves, the dataset's Table II and every run's settings.

    \b
    Examples:
      embsr report 3 4 -o report.html
      embsr report 3 4 5 -o report.html --pdf
    """
    from embsr_core.sharing.report import write_report

    try:
        result = write_report(cli.store, _run_ids(run_ids), output, pdf=pdf, aggregation=agg, split=split)
    except (KeyError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc.args[0] if isinstance(exc, KeyError) else exc)) from None
    click.echo(f"Wrote the report of {len(run_ids)} run(s) to {output}.")
    for sentence in result.reading:
        click.echo("  " + sentence)
    if pdf:
        click.echo(f"PDF: {result.pdf_path}" if result.pdf_path else f"No PDF: {result.pdf_note}.")


@runs.command("export")
@click.argument("run_ids", nargs=-1, required=True)
@click.option("-o", "--output", type=OUT_FILE, required=True, help="Zip archive to write.")
@pass_cli
def runs_export(cli: CliContext, run_ids: tuple[str, ...], output: Path) -> None:
    """Pack RUN_IDS (settings, metrics, curves, ranks, notes, tags, log, checkpoints) into one zip that
    `embsr runs import` adds to another store.

    \b
    Examples:
      embsr runs export 3 4 -o runs.zip
    """
    from embsr_core.sharing.runs_transfer import export_runs

    ids = _run_ids(run_ids)
    try:
        export_runs(cli.store, ids, output)
    except (KeyError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc.args[0] if isinstance(exc, KeyError) else exc)) from None
    click.echo(f"Wrote {len(ids)} run(s) to {output} ({output.stat().st_size / 2**20:.1f} MiB).")


@runs.command("import")
@click.argument("archive", type=IN_FILE)
@pass_cli
def runs_import(cli: CliContext, archive: Path) -> None:
    """Add the runs of ARCHIVE (from `embsr runs export`) to this store. Each run attaches to the dataset
    of the same name and content; runs already here are skipped, so importing twice adds nothing.

    \b
    Examples:
      embsr runs import runs.zip
      embsr --db sqlite:///colleague.db runs import runs.zip
    """
    from embsr_core.sharing.runs_transfer import import_runs

    try:
        result = import_runs(cli.store, archive)
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    for line in result.summary_lines():
        click.echo(line)
    if result.problems and not result.imported and not result.skipped:
        raise SystemExit(1)
