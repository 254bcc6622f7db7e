"""`embsr model export|info`, `embsr score`, `embsr report` and `embsr runs export|import`: sharing results.

Each command calls one function of :mod:`embsr_core.sharing` (the GUI calls the same ones).
"""

from __future__ import annotations

from pathlib import Path

import click

from embsr_core.cli.root import CliContext, main, pass_cli

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
