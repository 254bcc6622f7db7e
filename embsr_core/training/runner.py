"""Entry points the CLI, the GUI and ``torchrun`` call: train, resume, evaluate a stored checkpoint.

Here the store-free trainer meets the store: :func:`make_trainer` gives it a
:class:`~embsr_core.training.recorders.StoreRecorder` (first, so consumers that read the store on an
event find it written), then the caller's callback and recorders.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from embsr_core.data.prepared import PreparedDataset
from embsr_core.models.registry import resolve_config, stored_config
from embsr_core.store import runs_repo
from embsr_core.store.engine import Store
from embsr_core.training import distributed as ddp
from embsr_core.training.checkpoints import model_from_checkpoint, prepared_hash
from embsr_core.training.config import TrainConfig, resolve_device
from embsr_core.training.events import Callback, ControlToken, Recorder
from embsr_core.training.memory_estimate import fit_to_memory
from embsr_core.training.metrics import EvalResult, evaluate
from embsr_core.training.recorders import StoreRecorder
from embsr_core.training.trainer import RunOutcome, Trainer, run_settings

RESUMABLE = ("stopped", "interrupted", "failed")


def make_trainer(
    store: Store | None,
    prepared: PreparedDataset,
    model_name: str,
    model_overrides: dict[str, Any] | None = None,
    train_config: TrainConfig | None = None,
    callback: Callback | None = None,
    control: ControlToken | None = None,
    run_id: int | None = None,
    *,
    run_name: str | None = None,
    search_group: str | None = None,
    checkpoint_root: Path | None = None,
    dataset_id: int | None = None,
    dist_ctx: ddp.DistContext | None = None,
    device: torch.device | None = None,
    recorders: Sequence[Recorder | Callback] = (),
    settings_on_start: dict[str, Any] | None = None,
) -> Trainer:
    """A trainer whose run is kept in ``store``.

    ``run_id=None`` creates a new run (status ``queued``) right away, so ``trainer.run_id`` is known
    before ``run()``; an existing ``run_id`` continues from its last checkpoint when it has one.
    Under DDP only rank 0 passes a store (the other ranks ``None``: they record nothing).
    """
    config = train_config or TrainConfig()
    is_main = dist_ctx is None or dist_ctx.is_main
    if is_main and store is None:
        raise ValueError("the trainer needs a store (only non-zero distributed ranks run without one)")
    listeners: list[Recorder | Callback] = ([callback] if callback is not None else []) + list(recorders)
    options: dict[str, Any] = dict(dist_ctx=dist_ctx, device=device)
    if is_main:
        assert store is not None
        prep = prepared_hash(prepared)
        if run_id is None:
            settings = run_settings(prepared, resolve_config(model_name, model_overrides), config)
            keeper = StoreRecorder.new_run(store, prepared, model_name, settings, config, prep, run_name=run_name,
                                           search_group=search_group, dataset_id=dataset_id)
        else:
            keeper = StoreRecorder.existing_run(store, run_id, config, settings_on_start=settings_on_start)
        listeners.insert(0, keeper)
        options.update(run_id=keeper.run_id, checkpoint_dir=keeper.checkpoint_dir(checkpoint_root), prep_hash=prep)
    return Trainer(prepared, model_name, model_overrides, config, control, listeners, **options)


def run_training(
    store: Store | None,
    prepared: PreparedDataset,
    model_name: str,
    model_overrides: dict[str, Any] | None = None,
    train_config: TrainConfig | None = None,
    *,
    callback: Callback | None = None,
    control: ControlToken | None = None,
    run_name: str | None = None,
    search_group: str | None = None,
    checkpoint_root: Path | None = None,
    dataset_id: int | None = None,
    distributed: bool = False,
    recorders: Sequence[Recorder | Callback] = (),
) -> RunOutcome:
    """Create a run and train it to the end; the one call behind ``embsr train``.

    ``distributed=True`` (under ``torchrun``): joins the process group (gloo on CPU, NCCL on CUDA),
    trains with DDP, and only rank 0 uses ``store`` (other ranks may pass ``None``), the callback and
    ``recorders`` (more listeners after the store's). Every rank returns the same :class:`RunOutcome`.
    """
    train_config = train_config or TrainConfig()
    options: dict[str, Any] = dict(
        run_name=run_name, search_group=search_group, checkpoint_root=checkpoint_root, dataset_id=dataset_id,
        recorders=recorders,
    )
    if not distributed:  # (DDP ranks must agree on the batch size: no per-rank lowering there)
        train_config = fit_to_memory(prepared, model_name, model_overrides, train_config)  # refuse / lower
        return make_trainer(store, prepared, model_name, model_overrides, train_config, callback, control,
                            **options).run()
    created = not dist.is_initialized()
    ctx, device = ddp.init_distributed(train_config.device)
    try:
        trainer = make_trainer(
            store if ctx.is_main else None,
            prepared,
            model_name,
            model_overrides,
            train_config,
            callback,
            control,
            dist_ctx=ctx,
            device=device,
            **options,
        )
        return trainer.run()
    finally:
        if created and dist.is_initialized():
            # Leave together: a rank that tears gloo down while a peer is still in its last
            # collective makes the peer abort ("terminate called without an active exception").
            with contextlib.suppress(RuntimeError):
                dist.barrier()
            dist.destroy_process_group()


def resume_run(
    store: Store,
    run_id: int,
    prepared: PreparedDataset,
    callback: Callback | None = None,
    control: ControlToken | None = None,
    *,
    device: str | None = None,
    max_epochs: int | None = None,
    threads: int | None = None,
    recorders: Sequence[Recorder | Callback] = (),
) -> RunOutcome:
    """Continue a stopped / interrupted run from its last checkpoint with its stored settings.

    ``device`` may move it (e.g. to another GPU); ``max_epochs`` may extend it; ``threads`` changes the
    CPU thread count (it changes no result beyond float rounding). A run without a
    checkpoint (killed before its first epoch ended) starts over under the same id. A resume that
    fails before training restarts (e.g. a corrupted checkpoint) leaves the run as it was: the new
    settings are stored only once it runs.
    """
    run = runs_repo.get_run(store, run_id)
    if run.status not in RESUMABLE and not (run.status == "finished" and max_epochs is not None):
        raise ValueError(
            f"run {run_id} is {run.status}; only {', '.join(RESUMABLE)} runs can be resumed "
            "(a finished one only with a larger max_epochs)"
        )
    if run.prep_hash is not None and run.prep_hash != prepared_hash(prepared):
        raise ValueError(
            f"run {run_id} was trained on other prepared data than the dataset given; resume it with the same "
            "dataset and preprocessing settings"
        )
    changes: dict[str, Any] = {}
    if device is not None:
        changes["device"] = device
    if max_epochs is not None:
        changes["max_epochs"] = max_epochs
    if threads is not None:
        changes["threads"] = threads
    config = TrainConfig.from_dict({**run.config["train"], **changes})
    trainer = make_trainer(
        store,
        prepared,
        run.model_name,
        stored_config(run.model_name, run.config["model"]),  # as it was meant when saved
        config,
        callback,
        control,
        run_id=run_id,
        dataset_id=run.dataset_id,
        recorders=recorders,
        settings_on_start={**run.config, "train": config.to_dict()} if changes else None,
    )
    return trainer.run()


def evaluate_checkpoint(
    store: Store,
    run_id: int,
    split: str = "test",
    target_op: str = "oracle",
    *,
    prepared: PreparedDataset,
    which: str = "best",
    device: str = "auto",
    exclude_seen_items: bool | None = None,
    record_ranks: bool = False,
) -> EvalResult:
    """Evaluate a run's stored checkpoint (hash verified) on ``split`` of ``prepared``.

    ``record_ranks`` stores the per-session ranks (replacing earlier ones) for significance tests.
    """
    run, path, sha = runs_repo.run_checkpoint(store, run_id, which)
    if not path:
        raise ValueError(f"run {run_id} has no {which} checkpoint yet")
    prep = prepared_hash(prepared)
    if run.prep_hash is not None and run.prep_hash != prep:
        raise ValueError(f"run {run_id} was trained on other prepared data than the dataset given")
    config = TrainConfig.from_dict(run.config["train"])
    target = resolve_device(device)
    model, _ = model_from_checkpoint(path, sha, target)
    result = evaluate(
        model,
        prepared.split(split),
        target_op,  # type: ignore[arg-type]
        device=target,
        batch_size=config.eval_batch_size,
        exclude_seen=config.exclude_seen_items if exclude_seen_items is None else exclude_seen_items,
        memory_mb=config.eval_memory_mb,
        amp=config.amp,  # compute_ranks applies it where the device pays it back (training/precision.py)
    )
    if record_ranks:
        runs_repo.save_ranks(store, run_id, split, target_op, result.ranks, prep)
    return result
