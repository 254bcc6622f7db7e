"""`embsr generate | models | train | resume | evaluate | search | demo`: the training side of the CLI."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from embsr_core.cli.lazy import LazyChoice, LazyOption, lazy_value
from embsr_core.cli.root import CliContext, main, pass_cli
from embsr_core.models.registry import get_spec, list_specs, resolve_config
from embsr_core.training.config import TRAIN_PARAMS, TrainConfig
from embsr_core.training.events import (
    BatchEnd,
    Cancelled,
    ControlToken,
    EpochStarted,
    EvaluationEnd,
    Failed,
    Finished,
    Recorder,
    RunStarted,
    TrainEvent,
    cancel_on_sigint,
)

if TYPE_CHECKING:
    from embsr_core.training.trainer import RunOutcome

# Data preparation (pandas), the trainer (PyTorch) and the search (optuna) are imported inside the
# commands that use them: `embsr --help`, `embsr datasets list` and `embsr runs list` start in well under
# a second instead of waiting seconds for PyTorch.

SHOWN_METRICS = ("hit@5", "hit@10", "hit@20", "mrr@5", "mrr@10", "mrr@20")


# -- shared option groups -------------------------------------------------------------------------
def _click_type(param: Any) -> Any:
    if param.type == "int":
        return int
    if param.type == "float":
        return float
    if param.type == "bool":
        return click.BOOL
    if param.type == "choice":
        return click.Choice([str(c) for c in param.choices])
    return str


def train_options(func: Any) -> Any:
    """One flag per training setting, generated from the schema the GUI builds its form from."""
    for param in reversed(TRAIN_PARAMS):
        flag = "--" + param.name.replace("_", "-")
        func = click.option(
            flag, param.name, type=_click_type(param), default=None, show_default=False,
            help=f"{param.help} [default: {param.default}]",
        )(func)
    return func


def threads_option(func: Any) -> Any:
    """``--threads`` alone (for commands that take no other training flag, e.g. ``resume``)."""
    param = next(p for p in TRAIN_PARAMS if p.name == "threads")
    return click.option("--threads", "threads", type=click.IntRange(0), default=None,
                        help=f"{param.help} [default: the run's own setting]")(func)


def _remember_augment(ctx: click.Context, _param: click.Parameter, value: bool | None) -> bool | None:
    ctx.meta["embsr.augment"] = value
    return value


def prep_options(func: Any) -> Any:
    """The preprocessing flags. ``--augment/--no-augment`` reaches :func:`_prepared_from_options`
    through the click context (not the command's arguments), so every command that takes these
    flags gets it without listing it."""
    func = click.option("--augment/--no-augment", default=None, expose_value=False, callback=_remember_augment,
                        help="Train on every prefix of each training session (default) or, with "
                             "--no-augment, on one target per session as in the paper")(func)
    presets = LazyChoice(lazy_value("embsr_core.data.preprocess", "PRESETS", sorted))
    func = click.option("--preset", type=presets, default=None,
                        help="Preprocessing preset (default: chosen from the dataset's source and size)")(func)
    func = click.option("--min-support", type=click.IntRange(min=1), default=None,
                        help="Drop items seen fewer times than this (1 keeps every item)")(func)
    func = click.option("--max-len", type=click.IntRange(min=1), default=None,
                        help="Keep the last L micro-behaviors of a session")(func)
    func = click.option("--split", type=click.Choice(["time", "random", "order"]), default=None,
                        help="70/10/20 split by session end time, at random (seeded) or in file order")(func)
    return func


def _prep_overrides(min_support: int | None, max_len: int | None, split: str | None,
                    augment: bool | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if augment is not None:
        out["augment"] = augment
    if min_support is not None:
        out["min_item_support"] = min_support
    if max_len is not None:
        out["max_len"] = max_len
    if split is not None:
        out["split"] = split
    return out


def _prepared_from_options(store: Any, dataset: str, preset: str | None, min_support: int | None,
                           max_len: int | None, split: str | None) -> tuple[Any, Any]:
    """The dataset row and its prepared split, from the shared preprocessing flags."""
    from embsr_core.store.repository import get_dataset

    try:
        ds = get_dataset(store, dataset)
    except KeyError as exc:
        raise click.ClickException(str(exc).strip("'\"")) from None
    ctx = click.get_current_context(silent=True)
    augment = ctx.find_root().meta.get("embsr.augment") if ctx is not None else None
    overrides = _prep_overrides(min_support, max_len, split, augment)
    from embsr_core.data.from_store import prepare_dataset

    return ds, prepare_dataset(store, ds, preset, overrides=overrides)


def _model_overrides(model: str, params: tuple[str, ...]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for item in params:
        if "=" not in item:
            raise click.BadParameter(f"{item!r}: expected NAME=VALUE (see `embsr models show {model}`)")
        key, value = item.split("=", 1)
        overrides[key.strip().replace("-", "_")] = value.strip()
    try:
        return resolve_config(model, overrides)
    except (KeyError, ValueError) as exc:
        raise click.BadParameter(str(exc).strip("'\"")) from None


def _train_config(values: dict[str, Any], base: dict[str, Any] | None = None) -> TrainConfig:
    chosen = {k: v for k, v in values.items() if k in {p.name for p in TRAIN_PARAMS} and v is not None}
    try:
        return TrainConfig.from_dict({**(base or {}), **chosen})
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _fmt_metrics(metrics: dict[str, float]) -> str:
    return "  ".join(f"{m.replace('hit', 'H').replace('mrr', 'M')}={100 * metrics[m]:.2f}"
                     for m in SHOWN_METRICS if m in metrics)


class ProgressPrinter(Recorder):
    """The console's recorder: trainer events as a terminal progress bar with loss, samples/s and ETA."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.bar: Any = None

    def _close_bar(self) -> None:
        if self.bar is not None:
            self.bar.render_finish()
            self.bar = None

    def __call__(self, event: TrainEvent) -> None:
        if isinstance(event, RunStarted):
            what = "resumed" if event.resumed else "started"
            threads = f" ({event.threads} threads)" if event.threads else ""
            click.echo(f"run {event.run_id} {what}: {event.model_name} on {event.device}{threads}, "
                       f"{event.n_train:,} train / {event.n_valid:,} valid / {event.n_test:,} test sessions")
        elif isinstance(event, EpochStarted) and not self.quiet:
            self._close_bar()
            self.bar = click.progressbar(length=event.n_batches, label=f"epoch {event.epoch}/{event.max_epochs}",
                                         show_eta=True, file=sys.stderr)
            self.bar.render_progress()
        elif isinstance(event, BatchEnd) and self.bar is not None:
            self.bar.label = (f"epoch {event.epoch} loss {event.loss:.4f} {event.samples_per_s:,.0f}/s "
                              f"run ETA ≤{event.run_eta_s / 60:.1f} min")
            self.bar.update(1)
        elif isinstance(event, EvaluationEnd):
            self._close_bar()
            best = " (best)" if event.is_best else ""
            click.echo(f"  epoch {event.epoch} {event.split}/{event.target_op}: {_fmt_metrics(event.metrics)}{best}")
        elif isinstance(event, Finished):
            self._close_bar()
            click.echo(f"run {event.run_id} finished: best epoch {event.best_epoch} of {event.epochs_done}"
                       + (" (early stop)" if event.stopped_early else ""))
            for mode, metrics in event.test_metrics.items():
                click.echo(f"  test/{mode}: {_fmt_metrics(metrics)}")
        elif isinstance(event, Cancelled):
            self._close_bar()
            click.echo(f"run {event.run_id} stopped at epoch {event.epoch}; resume with `embsr resume {event.run_id}`")
        elif isinstance(event, Failed):
            self._close_bar()
            click.echo(f"run {event.run_id} failed: {event.reason}", err=True)


def _exit_for(outcome: RunOutcome) -> None:
    if outcome.status == "failed":
        raise click.ClickException(f"run {outcome.run_id} failed: {outcome.error}")
    if outcome.status == "stopped":
        sys.exit(130)


# -- commands -------------------------------------------------------------------------------------
@main.command()
@click.option("--name", default="Synthetic", show_default=True, help="Dataset name (a free one is picked)")
@click.option("--sessions", default=20_000, show_default=True, type=click.IntRange(1))
@click.option("--items", default=2_000, show_default=True, type=click.IntRange(2))
@click.option("--categories", default=40, show_default=True, type=click.IntRange(1))
@click.option("--signal", cls=LazyOption, lazy_default=lazy_value("embsr_core.data.synthetic", "DEFAULT_SIGNAL"),
              show_default=True, type=click.FloatRange(0, 1),
              help="How strongly operations reveal the next item (0 = not at all)")
@click.option("--seed", default=0, show_default=True, type=int)
@pass_cli
def generate(cli: CliContext, name: str, sessions: int, items: int, categories: int, signal: float,
             seed: int) -> None:
    """Generate a synthetic micro-behavior dataset with planted patterns into the store.

    \b
    Examples:
      embsr generate --sessions 20000 --signal 0.9
      embsr generate --name "No signal" --signal 0
    """
    from embsr_core.data.demo import free_name, import_synthetic

    store = cli.store
    report = import_synthetic(store, free_name(store, name), n_sessions=sessions, n_items=items,
                              n_categories=categories, signal=signal, seed=seed)
    click.echo(f"dataset {report.dataset_name!r}: {report.n_sessions:,} sessions, {report.rows_kept:,} "
               f"micro-behaviors, {report.n_items:,} items, {report.n_operations} operations")


@main.group()
def models() -> None:
    """List the registered models and their hyperparameters."""


@models.command("list")
def models_list() -> None:
    """All registered models (EMBSR, its ablations and variants, the baselines)."""
    for spec in list_specs():
        click.echo(f"{spec.name:<16} {spec.family:<15} {spec.description.splitlines()[0]}")


@models.command("show")
@click.argument("name")
def models_show(name: str) -> None:
    """Hyperparameters of model NAME (set them with `embsr train -p NAME=VALUE`).

    \b
    Example:
      embsr models show EMBSR
    """
    try:
        spec = get_spec(name)
    except KeyError as exc:
        raise click.ClickException(str(exc).strip("'\"")) from None
    click.echo(f"{spec.name} ({spec.family}): {spec.description}")
    for p in spec.params:
        bounds = f" in [{p.low}, {p.high}]" if p.low is not None or p.high is not None else ""
        choices = f" one of {list(p.choices)}" if p.choices else ""
        click.echo(f"  {p.name:<20} {p.type:<6} default {p.default!r}{bounds}{choices}\n      {p.help}")


@main.command()
@click.argument("dataset")
@click.option("--model", "-m", "model", default="EMBSR", show_default=True, help="A name from `embsr models list`")
@click.option("--param", "-p", "params", multiple=True, metavar="NAME=VALUE",
              help="Model hyperparameter (repeatable; see `embsr models show MODEL`)")
@click.option("--name", "run_name", default=None, help="A name for the run")
@click.option("--distributed", is_flag=True, help="Train with PyTorch DDP under torchrun (gloo on CPU, NCCL on CUDA)")
@prep_options
@train_options
@pass_cli
def train(cli: CliContext, dataset: str, model: str, params: tuple[str, ...], run_name: str | None,
          distributed: bool, preset: str | None, min_support: int | None, max_len: int | None,
          split: str | None, **train_values: Any) -> None:
    """Train MODEL on DATASET (its name, or #ID for its id); Ctrl-C stops cleanly with a checkpoint.

    \b
    Examples:
      embsr train "Demo (synthetic)" --max-epochs 5
      embsr train jd-sample -m SGNN-Self -p dropout=0.2 --lr 0.003 --device cuda
      torchrun --nproc-per-node 2 -m embsr_core.cli train jd-sample --distributed
    """
    overrides = _model_overrides(model, params)
    from embsr_core.training.runner import run_training

    config = _train_config(train_values)
    store = cli.store
    ds, prepared = _prepared_from_options(store, dataset, preset, min_support, max_len, split)
    control = ControlToken()
    rank0 = not distributed or _is_rank0()
    with cancel_on_sigint(control):
        outcome = run_training(
            store, prepared, model, overrides, config, callback=ProgressPrinter(quiet=not rank0),
            control=control, run_name=run_name, dataset_id=ds.id, distributed=distributed,
        )
    _exit_for(outcome)


def _is_rank0() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


@main.command()
@click.argument("run_id", type=int)
@click.option("--device", default=None, help="Continue on another device (cpu, cuda, cuda:1, mps)")
@click.option("--max-epochs", type=click.IntRange(1), default=None, help="Extend the run to this many epochs")
@threads_option
@pass_cli
def resume(cli: CliContext, run_id: int, device: str | None, max_epochs: int | None, threads: int | None) -> None:
    """Continue a stopped or interrupted run from its last checkpoint.

    \b
    Example:
      embsr resume 7
    """
    from embsr_core.data.from_store import prepared_for_run
    from embsr_core.training.runner import resume_run

    store = cli.store
    run = _get_run(store, run_id)
    prepared = prepared_for_run(store, run.config, run.dataset_id)
    control = ControlToken()
    with cancel_on_sigint(control):
        try:
            outcome = resume_run(store, run_id, prepared, ProgressPrinter(), control, device=device,
                                 max_epochs=max_epochs, threads=threads)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    _exit_for(outcome)


def _get_run(store: Any, run_id: int) -> Any:
    try:
        from embsr_core.store import runs_repo

        return runs_repo.get_run(store, run_id)
    except KeyError as exc:
        raise click.ClickException(str(exc).strip("'\"")) from None


@main.command()
@click.argument("run_id", type=int)
@click.option("--split", type=click.Choice(["valid", "test"]), default="test", show_default=True)
@click.option("--target-op", type=click.Choice(["oracle", "unknown", "both"]), default="both", show_default=True,
              help="oracle = the paper's protocol (the true target operation is given); unknown = live setting")
@click.option("--which", type=click.Choice(["best", "last"]), default="best", show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--exclude-seen", is_flag=True, help="Never rank items already in the session")
@click.option("--record-ranks", is_flag=True, help="Store per-session ranks for significance tests")
@pass_cli
def evaluate(cli: CliContext, run_id: int, split: str, target_op: str, which: str, device: str,
             exclude_seen: bool, record_ranks: bool) -> None:
    """Evaluate a run's checkpoint: H@K, M@K, NDCG@K for K = 1, 3, 5, 10, 20 (full ranking).

    \b
    Example:
      embsr evaluate 7 --split test --target-op both
    """
    from embsr_core.data.from_store import prepared_for_run
    from embsr_core.training.runner import evaluate_checkpoint

    store = cli.store
    run = _get_run(store, run_id)
    prepared = prepared_for_run(store, run.config, run.dataset_id)
    modes = ("oracle", "unknown") if target_op == "both" else (target_op,)
    for mode in modes:
        result = evaluate_checkpoint(store, run_id, split, mode, prepared=prepared, which=which, device=device,
                                     exclude_seen_items=exclude_seen or None, record_ranks=record_ranks)
        click.echo(f"run {run_id} {split}/{mode} ({which} checkpoint):")
        for name, value in sorted(result.metrics.items()):
            click.echo(f"  {name:<9} {100 * value:6.2f} %")


def _parse_grid(items: tuple[str, ...]) -> dict[str, list[str]] | None:
    if not items:
        return None
    grid: dict[str, list[str]] = {}
    for item in items:
        if "=" not in item:
            raise click.BadParameter(f"{item!r}: expected NAME=V1,V2,... (e.g. lr=0.001,0.003)")
        key, values = item.split("=", 1)
        grid[key.strip().replace("-", "_")] = [v.strip() for v in values.split(",") if v.strip()]
    return grid


@main.command()
@click.argument("dataset")
@click.option("--model", "-m", "model", default="EMBSR", show_default=True)
@click.option("--grid", "grid_items", multiple=True, metavar="NAME=V1,V2,...", cls=LazyOption,
              lazy_help=lazy_value("embsr_core.training.search", "PAPER_GRID", lambda grid: "A grid axis "
                                   f"(repeatable); model or training settings. Default: the paper's grid {dict(grid)}"))
@click.option("--param", "-p", "params", multiple=True, metavar="NAME=VALUE", help="Fixed model hyperparameter")
@prep_options
@train_options
@pass_cli
def search(cli: CliContext, dataset: str, model: str, grid_items: tuple[str, ...], params: tuple[str, ...],
           preset: str | None, min_support: int | None, max_len: int | None, split: str | None,
           **train_values: Any) -> None:
    """Grid search on the validation split; every trial is a run, the best one is marked.

    \b
    Examples:
      embsr search "Demo (synthetic)" -m EMBSR --max-epochs 10
      embsr search jd-sample -m NARM --grid lr=0.001,0.005 --grid dropout=0,0.2
    """
    from embsr_core.training.search import grid_search

    store = cli.store
    ds, prepared = _prepared_from_options(store, dataset, preset, min_support, max_len, split)
    control = ControlToken()

    def on_trial(trial: Any, index: int, total: int) -> None:
        click.echo(f"trial {index + 1}/{total}: run {trial.run_id} {trial.params} -> {trial.status}")

    with cancel_on_sigint(control):
        try:
            result = grid_search(store, prepared, model, _parse_grid(grid_items),
                                 model_overrides=_model_overrides(model, params),
                                 train_config=_train_config(train_values),
                                 callback=ProgressPrinter(quiet=True), control=control, dataset_id=ds.id,
                                 on_trial=on_trial)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    if result.best_run_id is None:
        raise click.ClickException("no trial finished")
    click.echo(f"best trial: run {result.best_run_id}")


@main.command()
@click.option("--epochs", default=3, show_default=True, type=click.IntRange(1))
@click.option("--sessions", default=4_000, show_default=True, type=click.IntRange(100))
@click.option("--model", "-m", "model", default="EMBSR", show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the exported CSV files (default: a new temporary folder)")
@click.option("--device", default="auto", show_default=True)
@pass_cli
def demo(cli: CliContext, epochs: int, sessions: int, model: str, out_dir: Path | None, device: str) -> None:
    """End to end without a window: generate → train a few epochs → evaluate → export CSV.

    \b
    Example:
      embsr demo --epochs 3
    """
    from embsr_core.data.demo import free_name, import_synthetic
    from embsr_core.data.from_store import prepare_dataset
    from embsr_core.reports import export_comparison_csv, export_metrics_csv
    from embsr_core.training.runner import evaluate_checkpoint, run_training

    started = time.perf_counter()
    store = cli.store
    report = import_synthetic(store, free_name(store, "Demo (synthetic)"), n_sessions=sessions, n_items=800,
                              n_categories=20)
    click.echo(f"1/4 generated {report.dataset_name!r}: {report.n_sessions:,} sessions, "
               f"{report.rows_kept:,} micro-behaviors")
    prepared = prepare_dataset(store, report.dataset_id)
    config = TrainConfig(max_epochs=epochs, device=device, patience=epochs)  # batch size: the data-size rule
    control = ControlToken()
    with cancel_on_sigint(control):
        outcome = run_training(store, prepared, model, None, config, callback=ProgressPrinter(), control=control,
                               run_name="demo", dataset_id=report.dataset_id)
    _exit_for(outcome)
    click.echo(f"2/4 trained run {outcome.run_id} ({outcome.epochs_done} epochs)")
    for mode in ("oracle", "unknown"):
        result = evaluate_checkpoint(store, outcome.run_id, "test", mode, prepared=prepared, record_ranks=True)
        click.echo(f"3/4 test/{mode}: {_fmt_metrics(result.metrics)}")
    out_dir = out_dir or Path(tempfile.mkdtemp(prefix="embsr-demo-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = export_metrics_csv(store, [outcome.run_id], out_dir / "metrics.csv")
    comparison_path = export_comparison_csv(store, [outcome.run_id], out_dir / "comparison.csv")
    click.echo(f"4/4 exported {metrics_path} and {comparison_path}")
    click.echo(f"demo finished in {time.perf_counter() - started:.0f} s")


@main.command()
@click.argument("run_id", type=int)
@click.argument("steps", nargs=-1, required=True, metavar="ITEM:OPERATION...")
@click.option("-k", "--top", "k", default=20, show_default=True, type=click.IntRange(1), help="How many items")
@click.option("--target-op", default="unknown", show_default=True,
              help="'unknown' (live setting) or an operation name to ask about, e.g. Cart")
@click.option("--which", type=click.Choice(["best", "last"]), default="best", show_default=True)
@click.option("--exclude-seen", is_flag=True, help="Leave out items already in the session")
@click.option("--skip-unknown", is_flag=True, help="Drop steps whose item the model never saw instead of failing")
@pass_cli
def predict(cli: CliContext, run_id: int, steps: tuple[str, ...], k: int, target_op: str, which: str,
            exclude_seen: bool, skip_unknown: bool) -> None:
    """Top-K next items for a session given as ITEM:OPERATION steps, oldest first.

    \b
    Examples:
      embsr predict 7 879089:Home2Product 879089:Detail_comments 100321:Cart
      embsr predict 7 i12:Home2Product i40:Cart --target-op Order -k 10
    """
    from embsr_core.inference import Predictor, UnknownInputError

    session = []
    for step in steps:
        item, sep, op = step.rpartition(":")
        if not sep or not item or not op:
            raise click.BadParameter(f"{step!r}: expected ITEM:OPERATION, e.g. 879089:Cart", param_hint="STEPS")
        session.append((item, op))
    try:
        predictor = Predictor.from_run(cli.store, run_id, which)
        recommendations = predictor.predict(session, k, target_op, exclude_seen=exclude_seen,
                                            skip_unknown=skip_unknown)
    except (UnknownInputError, ValueError, KeyError) as exc:
        raise click.ClickException(str(exc).strip("'\"")) from None
    click.echo(f"{'rank':>4}  {'item':<16} {'score':>8}  {'category':<14} in session")
    for rank, rec in enumerate(recommendations, 1):
        click.echo(f"{rank:>4}  {rec.item_id:<16} {rec.score:8.3f}  {rec.category or '':<14} "
                   f"{'yes' if rec.in_session else ''}")
