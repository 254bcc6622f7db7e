"""`embsr tune | leaderboard`: tuning on the validation split and the all-models comparison."""

from __future__ import annotations

import math
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from embsr_core.cli.lazy import LazyChoice, lazy_value
from embsr_core.cli.root import CliContext, main, pass_cli
from embsr_core.cli.runs_cmds import _table, runs_compare
from embsr_core.cli.train_cmds import (
    _model_overrides,
    _prepared_from_options,
    _train_config,
    prep_options,
    train_options,
)
from embsr_core.models.registry import get_spec, list_specs
from embsr_core.store import runs_repo
from embsr_core.training.events import ControlToken, EvaluationEnd, TrainEvent, cancel_on_sigint

if TYPE_CHECKING:
    from embsr_core.training.board_seeds import SeedTable
    from embsr_core.training.leaderboard import BoardProgress
    from embsr_core.training.tuning import TuneProgress, TuneResult

# The tuner (optuna, PyTorch) and the reports (pandas) are imported by the commands that use them, so
# `embsr --help` does not wait for them.
PRUNERS = lazy_value("embsr_core.training.tuning", "PRUNERS")


def _budget(budget: str | None, trials: int | None, default: str | None) -> tuple[float | None, int | None]:
    if budget is None and trials is None:
        budget = default
    from embsr_core.training.tuning import parse_duration

    try:
        return (None if budget is None else parse_duration(budget)), trials
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--budget") from None


def _parse_space(items: tuple[str, ...]) -> dict[str, list[str]] | None:
    if not items:
        return None
    space: dict[str, list[str]] = {}
    for item in items:
        if "=" not in item:
            raise click.BadParameter(f"{item!r}: expected NAME=V1,V2,... (e.g. lr=0.001,0.003)", param_hint="--space")
        key, values = item.split("=", 1)
        space[key.strip().replace("-", "_")] = [v.strip() for v in values.split(",") if v.strip()]
    return space


class EpochLine:
    """Trainer callback for tuning: one indented line per validated epoch (the trial lines say the rest)."""

    def __call__(self, event: TrainEvent) -> None:
        if isinstance(event, EvaluationEnd) and event.split == "valid" and event.is_best is not None:
            click.echo(f"    epoch {event.epoch}: valid H@20 {_pct(event.metrics, 'hit@20')} "
                       f"M@20 {_pct(event.metrics, 'mrr@20')}" + (" (best)" if event.is_best else ""))


def _pct(metrics: dict[str, float] | None, name: str) -> str:
    return "-" if not metrics or name not in metrics else f"{100 * metrics[name]:.2f}"


def train_command_line(dataset: str, model_name: str, config: dict[str, Any], prep_flags: list[str]) -> str:
    """The ``embsr train`` command that trains ``config`` (a run's stored settings) again: every model
    and training setting that differs from the defaults, how to run (device, threads) left out."""
    from embsr_core.training.config import EXECUTION_SETTINGS, TrainConfig

    defaults_model = get_spec(model_name).defaults()
    defaults_train = TrainConfig().to_dict()
    parts = ["embsr", "train", shlex.quote(dataset), "-m", shlex.quote(model_name), *prep_flags]
    for key, value in config.get("model", {}).items():
        if key in defaults_model and value != defaults_model[key]:
            parts += ["-p", shlex.quote(f"{key}={value}")]
    for key, value in config.get("train", {}).items():
        if key in defaults_train and key not in EXECUTION_SETTINGS and value != defaults_train[key]:
            parts += ["--" + key.replace("_", "-"), shlex.quote(str(value))]
    return " ".join(parts)


def _prep_flags(preset: str | None, min_support: int | None, max_len: int | None, split: str | None) -> list[str]:
    """The preprocessing flags as given on this command line (so the printed command prepares the same data)."""
    flags = [] if preset is None else ["--preset", preset]
    flags += [] if min_support is None else ["--min-support", str(min_support)]
    flags += [] if max_len is None else ["--max-len", str(max_len)]
    flags += [] if split is None else ["--split", split]
    if click.get_current_context().meta.get("embsr.augment") is False:
        flags.append("--no-augment")
    return flags


def _summary(result: TuneResult) -> None:
    from embsr_core.training.tuning import epochs_text

    trained = [t for t in result.trials if not t.duplicate]
    n = {s: sum(t.state == s for t in trained) for s in ("complete", "pruned", "failed")}
    repeats = len(result.trials) - len(trained)
    again = f"; {repeats} re-proposed known settings, not trained again" if repeats else ""
    n_cut = sum(t.cut for t in trained)
    cut = f" ({n_cut} of them cut by the time budget, scored at their best epoch)" if n_cut else ""
    click.echo(f"study {result.study_name!r}: {len(trained)} trials ({n['complete']} complete{cut}, "
               f"{n['pruned']} pruned, {n['failed']} failed{again}) in {result.elapsed_s / 60:.1f} min; "
               f"stopped: {result.stop_reason}")
    if result.best is None:
        return
    for label, trial in (("defaults", result.default), ("best", result.best)):
        if trial is not None:
            cut_note = f"  (cut by the time budget after {epochs_text(trial.epochs)})"
            click.echo(f"  {label:<8} trial {trial.number:<3} valid H@20 {_pct(trial.valid, 'hit@20'):>6}  "
                       f"M@20 {_pct(trial.valid, 'mrr@20'):>6}  {trial.label}" + (cut_note if trial.cut else ""))
    click.echo(f"best configuration: run {result.best_run_id} (see `embsr runs show {result.best_run_id}`)")


@main.command("tune")
@click.argument("dataset")
@click.option("--model", "-m", "model", default="EMBSR", show_default=True, help="A name from `embsr models list`")
@click.option("--budget", default=None, metavar="DURATION",
              help="Search time, e.g. 90s, 15m, 1h30m (default 15m unless --trials is given); a trial still "
                   "training when it runs out is scored and tested at its best epoch so far")
@click.option("--trials", type=click.IntRange(1), default=None,
              help="Number of trials (with --budget: whichever ends first)")
@click.option("--space", "space_items", multiple=True, metavar="NAME=V1,V2,...",
              help="Search these values instead of the model's own search space (repeatable)")
@click.option("--sampler", type=click.Choice(["tpe", "random", "grid"]), default="tpe", show_default=True,
              help="tpe = Optuna's Bayesian sampler; grid = every combination")
@click.option("--pruner", type=LazyChoice(PRUNERS), default="median", show_default=True,
              help="Stop trials that fall behind: median rule, successive halving, or none")
@click.option("--param", "-p", "params", multiple=True, metavar="NAME=VALUE", help="Fixed model hyperparameter")
@click.option("--study", "study_name", default=None, help="Name of the study (default: a new one)")
@click.option("--resume", is_flag=True, help="Continue the study given by --study (its budget counts time spent)")
@prep_options
@train_options
@pass_cli
def tune_command(cli: CliContext, dataset: str, model: str, budget: str | None, trials: int | None,
                 space_items: tuple[str, ...], sampler: str, pruner: str, params: tuple[str, ...],
                 study_name: str | None, resume: bool, preset: str | None, min_support: int | None,
                 max_len: int | None, split: str | None, **train_values: Any) -> None:
    """Tune MODEL on DATASET's validation split; the best trial is recorded as an ordinary run.

    Trial 0 is always the default configuration, so the result is at least as good as the defaults
    on validation. Every trial is a run in the store; Ctrl-C stops cleanly (resume with --resume).

    \b
    Examples:
      embsr tune "Demo (synthetic)" -m EMBSR --budget 15m
      embsr tune jd-sample -m BERT4Rec --trials 20 --max-epochs 20
      embsr tune jd-sample -m NARM --space lr=0.001,0.005 --space dropout=0,0.2 --sampler grid
      embsr tune jd-sample -m EMBSR --study "tune EMBSR 1a2b3c4d" --resume --budget 30m
    """
    from embsr_core.training.leaderboard import trial_line
    from embsr_core.training.tuning import search_space, tune

    if resume and not study_name:
        raise click.UsageError("--resume needs --study NAME (the study to continue)")
    try:
        get_spec(model)
    except KeyError as exc:
        raise click.BadParameter(str(exc.args[0]), param_hint="--model") from None
    budget_s, n_trials = _budget(budget, trials, "15m")
    space = _parse_space(space_items)
    overrides = _model_overrides(model, params)
    config = _train_config(train_values)
    store = cli.store
    ds, prepared = _prepared_from_options(store, dataset, preset, min_support, max_len, split)
    shown = space if space is not None else search_space(model)
    click.echo(f"tuning {model} on {ds.name!r}: " + (", ".join(f"{k} ∈ {list(v)}" for k, v in shown.items())
                                                       or "nothing to tune (one trial)"))

    def on_progress(p: TuneProgress) -> None:
        if p.trial.duplicate:
            return  # the sampler re-proposed a configuration already tried: nothing was trained
        eta = "" if p.eta_s is None else f"  [ETA ≤ {p.eta_s / 60:.1f} min]"
        click.echo(trial_line(p) + eta)

    control = ControlToken()
    with cancel_on_sigint(control):
        try:
            result = tune(store, prepared, model, budget_s=budget_s, n_trials=n_trials, space=space,
                          sampler=sampler, pruner=pruner, model_overrides=overrides, train_config=config,
                          study_name=study_name, resume=resume, dataset_id=ds.id,
                          callback=EpochLine(), on_progress=on_progress, control=control)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    _summary(result)
    best = None if result.best_run_id is None else runs_repo.get_run(store, result.best_run_id)
    if best is not None:
        name = f"#{ds.id}" if ds.name.startswith("#") else ds.name
        click.echo("train with these settings: "
                   + train_command_line(name, model, best.config, _prep_flags(preset, min_support, max_len, split)))
    if result.cancelled:
        click.echo(f"cancelled; continue with --study {result.study_name!r} --resume", err=True)
        sys.exit(130)
    if result.best is None:
        raise click.ClickException("no trial finished (see the failed runs with `embsr runs list`)")


@main.command("leaderboard")
@click.argument("dataset")
@click.option("--budget", default=None, metavar="DURATION",
              help="Total tuning time, shared equally by the models, e.g. 30m, 2h (default 30m unless --trials)")
@click.option("--trials", type=click.IntRange(1), default=None,
              help="Trials per model (with --budget: whichever ends first)")
@click.option("--models", "models_text", default=None, metavar="A,B,...",
              help="Models to compare (default: the paper's Table III: the baselines and EMBSR); 'all' = every one")
@click.option("--pruner", type=LazyChoice(PRUNERS), default="median", show_default=True)
@click.option("--name", "board", default=None,
              help="Name of the board (default: fixed by the data and settings, so a rerun continues it)")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the table (every metric, Wilcoxon p-values) to this CSV file")
@click.option("--seeds", type=click.IntRange(1, 100), default=1, show_default=True,
              help="Train each model's tuned configuration with this many seeds (the --seed, then the next "
                   "ones) and show mean ± sd over them; tuning stays on the first, so a finished board gains "
                   "seeds without being tuned again")
@prep_options
@train_options
@pass_cli
def leaderboard_command(cli: CliContext, dataset: str, budget: str | None, trials: int | None,
                        models_text: str | None, pruner: str, board: str | None, csv_path: Path | None,
                        seeds: int, preset: str | None,
                        min_support: int | None, max_len: int | None, split: str | None,
                        **train_values: Any) -> None:
    """Compare all models on DATASET: same tuning budget and seed each, then Table III on test with
    Wilcoxon p-values against the strongest model. Every cell is a stored run.

    A rerun with the same settings continues where it stopped (finished models are kept; a model
    whose every trial failed is tried again), also with other --threads, --device or evaluation
    sizes, and from the window's Leaderboard page. Each model's default configuration always trains
    to the end, even past the model's share of the time.

    \b
    Examples:
      embsr leaderboard "Demo (synthetic)" --budget 30m
      embsr leaderboard jd-sample --trials 5 --models EMBSR,SGNN-HN,BERT4Rec,S-POP --max-epochs 20
      embsr leaderboard jd-sample --budget 30m --seeds 3      # mean ± sd over seeds 42, 43, 44
    """
    from embsr_core.training.leaderboard import board_progress_line, export_board_csv, leaderboard, table3_models

    if models_text is None:
        models = table3_models()
    elif models_text.strip().lower() == "all":
        models = [s.name for s in list_specs() if not s.name.startswith("_")]
    else:
        models = [m.strip() for m in models_text.split(",") if m.strip()]
        for m in models:
            try:
                get_spec(m)
            except KeyError as exc:
                raise click.BadParameter(str(exc.args[0]), param_hint="--models") from None
    budget_s, n_trials = _budget(budget, trials, "30m")
    config = _train_config(train_values)
    store = cli.store
    ds, prepared = _prepared_from_options(store, dataset, preset, min_support, max_len, split)
    share = "" if budget_s is None else f", {budget_s / len(models) / 60:.1f} min each"
    click.echo(f"leaderboard on {ds.name!r}: {len(models)} model{'' if len(models) == 1 else 's'}{share}")

    def on_progress(p: BoardProgress) -> None:
        click.echo(board_progress_line(p))

    control = ControlToken()
    with cancel_on_sigint(control):
        try:
            result = leaderboard(store, prepared, models, budget_s=budget_s, n_trials=n_trials, train_config=config,
                                 name=board, pruner=pruner, dataset_id=ds.id, callback=EpochLine(),
                                 on_progress=on_progress, control=control, seeds=seeds)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    if result.run_ids:
        click.echo(f"board {result.name!r}:")
        click.get_current_context().invoke(runs_compare, run_ids=tuple(str(r) for r in result.run_ids),
                                           significance=len(result.run_ids) > 1)
        if result.seed_table is not None:
            _print_seed_table(result.seed_table)
        if csv_path is not None:
            try:
                written = export_board_csv(store, result, csv_path)
            except (OSError, ValueError) as exc:
                raise click.ClickException(str(exc)) from None
            click.echo(f"table written to {written}")
    if result.cancelled:
        click.echo(f"cancelled; run the same command again to continue board {result.name!r}", err=True)
        sys.exit(130)


def _print_seed_table(table: SeedTable) -> None:
    """Mean ± sd in % over each model's seeds; p = Wilcoxon of the per-session metric (mean over seeds)."""
    from embsr_core.reports import metric_label
    shown = [c for c in table.columns if c[1] in (5, 10, 20)]
    metric = metric_label(*table.significance_metric)
    click.echo(f"over seeds (test, % mean ± sd, * best, + second best; p = Wilcoxon of per-session {metric}, "
               f"averaged over seeds, against {table.chosen}):")
    labels = [table.labels[table.columns.index(c)] for c in shown]
    rows = []
    for i, model in enumerate(table.models):
        cells = []
        for column in shown:
            mean, sd = table.value(model, column)
            j = table.columns.index(column)
            mark = "*" if table.best[i, j] else ("+" if table.second[i, j] else "")
            cells.append(f"{100 * mean:.2f}" + ("" if math.isnan(sd) else f" ± {100 * sd:.2f}") + mark)
        p = table.p_values.get(model)
        rows.append([model, str(len(table.runs[model])), *cells,
                     "(best)" if model == table.chosen else ("–" if p is None else f"{p:.3g}")])
    click.echo(_table(["Model", "seeds", *labels, "p"], rows))
