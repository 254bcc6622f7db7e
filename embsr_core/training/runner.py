"""Entry points the CLI, the GUI and ``torchrun`` call: train, resume, evaluate a stored checkpoint."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import torch.distributed as dist

from embsr_core.data.prepared import PreparedDataset
from embsr_core.store import runs_repo
from embsr_core.store.engine import Store
from embsr_core.training import distributed as ddp
from embsr_core.training.checkpoints import model_from_checkpoint, prepared_hash
from embsr_core.training.config import TrainConfig, resolve_device
from embsr_core.training.events import Callback, ControlToken
from embsr_core.training.metrics import EvalResult, evaluate
from embsr_core.training.trainer import RunOutcome, Trainer

RESUMABLE = ("stopped", "interrupted", "failed")


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
) -> RunOutcome:
    """Create a run and train it to the end; the one call behind ``embsr train``.

    ``distributed=True`` (under ``torchrun``): joins the process group (gloo on CPU, NCCL on CUDA),
    trains with DDP, and only rank 0 uses ``store`` (other ranks may pass ``None``) and the callback.
    Every rank returns the same :class:`RunOutcome`.
    """
    train_config = train_config or TrainConfig()
    options: dict[str, Any] = dict(
        run_name=run_name, search_group=search_group, checkpoint_root=checkpoint_root, dataset_id=dataset_id
    )
    if not distributed:
        return Trainer(store, prepared, model_name, model_overrides, train_config, callback, control, **options).run()
    created = not dist.is_initialized()
    ctx, device = ddp.init_distributed(train_config.device)
    try:
        trainer = Trainer(
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
) -> RunOutcome:
    """Continue a stopped / interrupted run from its last checkpoint with its stored settings.

    ``device`` may move it (e.g. to another GPU); ``max_epochs`` may extend it. A run without a
    checkpoint (killed before its first epoch ended) starts over under the same id.
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
    config = TrainConfig.from_dict({**run.config["train"], **changes})
    if changes:
        runs_repo.update_run(store, run_id, config={**run.config, "train": config.to_dict()})
    trainer = Trainer(
        store,
        prepared,
        run.model_name,
        run.config["model"],
        config,
        callback,
        control,
        run_id=run_id,
        dataset_id=run.dataset_id,
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
    if which not in ("best", "last"):
        raise ValueError(f"which: expected best or last, got {which!r}")
    run = runs_repo.get_run(store, run_id)
    path, sha = (
        (run.best_checkpoint_path, run.best_checkpoint_sha256)
        if which == "best"
        else (run.checkpoint_path, run.checkpoint_sha256)
    )
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
        amp=config.amp and target.type == "cuda",
    )
    if record_ranks:
        runs_repo.save_ranks(store, run_id, split, target_op, result.ranks, prep)
    return result
