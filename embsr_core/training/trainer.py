"""The trainer: one run from start (or its last checkpoint) to finished / stopped / failed.

It knows no store. Events go out to a list of recorders (:class:`~embsr_core.training.events.Recorder`
or plain callables), cancel and pause come in through a :class:`ControlToken` checked between
batches. What is kept about a run is the recorders' business: the store recorder
(:mod:`embsr_core.training.recorders`) writes runs, loss points, metrics, ranks, checkpoint records
and the run log from the events; the console and the GUI show them. A resume asks the recorders
where the run stands (:meth:`~embsr_core.training.events.Recorder.resume_point`).

Exact resume: shuffling draws a fresh permutation per epoch from ``(seed, epoch)``, the checkpoint
holds the model, optimiser, AMP scaler and every RNG state plus the position inside the epoch, so a
run stopped anywhere (between two batches) and resumed takes exactly the steps an uninterrupted run
takes (bit-for-bit on CPU).
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from embsr_core.data.prepared import PreparedDataset, SplitArrays
from embsr_core.models.base import Batch, SessionRecommender, batch_to
from embsr_core.models.registry import build_model, get_spec, resolve_config
from embsr_core.training import distributed as ddp
from embsr_core.training.checkpoints import (
    FORMAT_VERSION,
    capture_rng,
    checkpoint_slots,
    from_json,
    load_checkpoint,
    prepared_hash,
    restore_rng,
    save_checkpoint,
    save_vocab,
    to_json,
)
from embsr_core.training.config import TrainConfig, resolve_device
from embsr_core.training.events import (
    BatchEnd,
    Callback,
    Cancelled,
    CheckpointSaved,
    ControlToken,
    EpochStarted,
    EvaluationEnd,
    Failed,
    Finished,
    Recorder,
    ResumePoint,
    RunStarted,
    TrainEvent,
)
from embsr_core.training.loader import collated_batches, resolve_workers
from embsr_core.training.metrics import (
    EvalResult,
    compute_ranks,
    criterion_improved,
    metrics_from_ranks,
    rows_per_block,
)
from embsr_core.training.precision import precision_for
from embsr_core.training.threads import apply_threads


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite."""


class _Stop(Exception):
    """Internal: a cancel request was seen between batches."""


class _FinishNow(Exception):
    """Internal: a request to end training early (keep the best epoch, score the test split)."""


@dataclass
class RunOutcome:
    """What :meth:`Trainer.run` returns (the same facts went to the recorders)."""

    run_id: int
    status: str  # finished / stopped / failed
    best_epoch: int | None = None
    epochs_done: int = 0
    test_metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # target_op → metrics
    error: str | None = None


@dataclass
class _Progress:
    """Trainer bookkeeping that a checkpoint must carry for an exact resume."""

    epochs_done: int = 0
    cursor: int = 0  # batches already done in epoch epochs_done + 1
    global_step: int = 0
    epoch_loss_sum: float = 0.0
    epoch_batches: int = 0
    best_epoch: int | None = None
    best_metrics: dict[str, float] | None = None
    bad_epochs: int = 0
    elapsed: float = 0.0  # wall seconds spent in earlier processes


@dataclass
class _StepWindow:
    """Steps taken but not yet read back from the device (their losses stay there until a read)."""

    t_start: float
    first: int  # the epoch's first batch in this process (a resume starts mid-epoch)
    n_batches: int
    samples: int = 0
    pending: list[tuple[int, int, torch.Tensor]] = field(default_factory=list)  # (batch, rows, loss ())


def run_settings(prepared: PreparedDataset, model_config: dict[str, Any], train_config: TrainConfig) -> dict[str, Any]:
    """Everything a run is trained with (the store recorder keeps it; a resume reads it back)."""
    return {
        "model": model_config,
        "train": train_config.resolved_for(len(prepared.train)).to_dict(),
        "prep": prepared.config,
        "dataset_name": prepared.dataset_name,
        "n_items": prepared.n_items,
        "n_ops": prepared.n_ops,
    }


class _CallbackRecorder(Recorder):
    """A plain ``callback(event)`` as a recorder."""

    def __init__(self, callback: Callback):
        self.callback = callback

    def __call__(self, event: TrainEvent) -> None:
        self.callback(event)


class Trainer:
    """Train ``model_name`` on ``prepared`` and report every step to ``recorders``.

    ``run_id`` names the run in the events (the store recorder creates it; under DDP rank 0's id is
    broadcast). ``checkpoint_dir`` is where the best and last checkpoints (two alternating files each)
    and ``vocab.json`` go (a fresh temporary folder when not given). A recorder whose
    ``resume_point`` names a checkpoint makes the run continue from it, exactly.
    ``embsr_core.training.runner.make_trainer`` builds one that keeps its run in a store.
    """

    def __init__(
        self,
        prepared: PreparedDataset,
        model_name: str,
        model_overrides: dict[str, Any] | None = None,
        train_config: TrainConfig | None = None,
        control: ControlToken | None = None,
        recorders: Sequence[Recorder | Callback] = (),
        *,
        run_id: int | None = None,
        checkpoint_dir: Path | None = None,
        prep_hash: str | None = None,
        dist_ctx: ddp.DistContext | None = None,
        device: torch.device | None = None,
    ):
        if not isinstance(prepared, PreparedDataset):
            raise TypeError(
                "Trainer(prepared, model_name, …) takes no store; for a run kept in a store use "
                "embsr_core.training.make_trainer(store, prepared, model_name, …)"
            )
        self.prepared = prepared
        self.model_name = model_name
        self.spec = get_spec(model_name)
        self.model_config = resolve_config(model_name, model_overrides)
        self.config = (train_config or TrainConfig()).resolved_for(len(prepared.train))  # batch size rule
        self.control = control or ControlToken()
        self.recorders: list[Recorder] = [r if isinstance(r, Recorder) else _CallbackRecorder(r) for r in recorders]
        self.dist = dist_ctx
        self.is_main = dist_ctx is None or dist_ctx.is_main
        self._device_override = device
        self.prep_hash = prep_hash or prepared_hash(prepared)
        if dist_ctx is not None:
            run_id = ddp.broadcast_int(run_id, dist_ctx)
        self.run_id = int(run_id or 0)
        if not self.is_main:
            checkpoint_dir = Path(".")  # only rank 0 writes checkpoints
        elif checkpoint_dir is None:
            checkpoint_dir = Path(tempfile.mkdtemp(prefix=f"embsr-run-{self.run_id}-"))
        self.checkpoint_dir = Path(checkpoint_dir)
        self.progress = _Progress()
        self._best: tuple[str, str | None] | None = None  # (path, sha256) of the best checkpoint
        self._recorded: dict[str, Path] = {}  # kind → the checkpoint file the recorders point at

    # --- public ------------------------------------------------------------------------------------

    def run(self) -> RunOutcome:
        """Train to the end (or a cancel / failure); never raises for training errors."""
        self._t0 = time.monotonic()
        try:
            resumed = self._setup()
            self._emit(
                RunStarted(
                    self.run_id,
                    self.model_name,
                    str(self.device),
                    len(self.prepared.train),
                    len(self.prepared.valid),
                    len(self.prepared.test),
                    self.config.max_epochs,
                    self.progress.epochs_done + 1,
                    resumed,
                    1 if self.dist is None else self.dist.world_size,
                    start_step=self.progress.global_step,
                    work_before_s=self.progress.elapsed,
                    threads=self.threads,
                    precision=self.precision.label,
                    precision_note=self.precision.note,
                )
            )
            stopped_early = self._train_loop() if self.model.trainable else self._fit_once()
            return self._finish(stopped_early)
        except _FinishNow:
            if self.progress.best_epoch is None:  # no validated epoch to keep: as a cancel
                return self._stopped(clean=True)
            return self._finish(stopped_early=True)
        except (_Stop, KeyboardInterrupt) as exc:
            return self._stopped(clean=isinstance(exc, _Stop))
        except Exception as exc:
            return self._failed(exc)

    # --- set-up ------------------------------------------------------------------------------------

    def _resume_point(self) -> ResumePoint | None:
        """The first recorder that knows where this run stands decides (main rank only)."""
        if not self.is_main:
            return None
        for recorder in self.recorders:
            point = recorder.resume_point(self.run_id)
            if point is not None:
                return point
        return None

    def _setup(self) -> bool:
        """Device, seeds, model, optimiser; restore the last checkpoint if the run has one."""
        cfg = self.config
        self.device = self._device_override or resolve_device(cfg.device)
        local_procs = int(os.environ.get("LOCAL_WORLD_SIZE", "1")) if self.dist is not None else 1
        self.threads = apply_threads(cfg.threads, local_procs)  # before any work: it is process-wide
        self.loader_workers = resolve_workers(cfg.loader_workers, self.device)
        self.precision = precision_for(cfg.amp, self.device)  # bf16 / fp16 where the hardware pays it back
        for name, split in (("training", self.prepared.train), ("validation", self.prepared.valid)):
            if len(split) == 0:
                raise ValueError(f"the {name} split of dataset {self.prepared.dataset_name!r} has no sessions")
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        model: SessionRecommender = build_model(
            self.model_name, self.prepared.n_items, self.prepared.n_ops, self.model_config
        )
        if model.n_items != self.prepared.n_items:
            raise ValueError(
                f"model {self.model_name} was built for {model.n_items} items, the data has {self.prepared.n_items}"
            )
        self.model = model.to(self.device)
        self.eval_modes = ("oracle", "unknown") if model.uses_operations else ("oracle",)
        self.select_mode = cfg.train_target_op if cfg.train_target_op in self.eval_modes else "oracle"
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = (
            torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, amsgrad=cfg.amsgrad,
                             fused=self.device.type in ("cpu", "cuda") or None)  # one kernel: 4.7× faster on CPU
            if model.trainable and params
            else None
        )
        if model.trainable and self.optimizer is None:
            raise ValueError(f"model {self.model_name} is trainable but has no trainable parameters")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.precision.scaled)
        distributed = self.dist is not None and model.trainable
        self.train_module = ddp.wrap_ddp(self.model, self.device) if distributed else ddp.LossModule(self.model)
        if self.dist is not None:  # different dropout masks per rank; identical weights come from DDP's broadcast
            torch.manual_seed(cfg.seed + self.dist.rank)

        point = self._resume_point()
        if point is not None:
            if self.dist is not None:
                raise ValueError("resuming a run under --distributed is not supported; resume it in one process")
            self._restore(load_checkpoint(point.checkpoint_path, point.checkpoint_sha256))
            self._recorded["last"] = Path(point.checkpoint_path)
            if point.best_path:
                self._best = (point.best_path, point.best_sha256)
                self._recorded["best"] = Path(point.best_path)
        if self.is_main:
            self.vocab_path, self.vocab_sha = save_vocab(self.checkpoint_dir, self.prepared)
        else:
            self.vocab_path, self.vocab_sha = Path("."), ""
        return point is not None

    # --- checkpoints -------------------------------------------------------------------------------

    def _state(self, kind: str) -> dict[str, Any]:
        p = self.progress
        meta = {
            "kind": kind,
            "run_id": self.run_id,
            "model_name": self.model_name,
            "model_config": self.model_config,
            "train_config": self.config.to_dict(),
            "n_items": self.prepared.n_items,
            "n_ops": self.prepared.n_ops,
            "max_len": self.prepared.train.max_len,
            "uses_operations": bool(self.model.uses_operations),
            "trainable": bool(self.model.trainable),
            "prep_hash": self.prep_hash,
            "vocab_file": self.vocab_path.name,
            "vocab_sha256": self.vocab_sha,
            "epochs_done": p.epochs_done,
            "cursor": p.cursor,
            "global_step": p.global_step,
            "epoch_loss_sum": p.epoch_loss_sum,
            "epoch_batches": p.epoch_batches,
            "best_epoch": p.best_epoch,
            "best_metrics": p.best_metrics,
            "bad_epochs": p.bad_epochs,
            "elapsed": self._wall(),
        }
        state: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "meta": to_json(meta),
            "model": self.model.state_dict(),
            **capture_rng(),
        }
        if self.optimizer is not None:
            state["optimizer"] = self.optimizer.state_dict()
        if self.scaler.is_enabled():
            state["scaler"] = self.scaler.state_dict()
        return state

    def _restore(self, state: dict[str, Any]) -> None:
        meta = from_json(state["meta"])
        if meta["prep_hash"] != self.prep_hash:
            raise ValueError(
                f"run {self.run_id} was trained on different prepared data (hash {meta['prep_hash'][:12]}…, "
                f"given {self.prep_hash[:12]}…); resume it with the same dataset and preprocessing"
            )
        self.model.load_state_dict(state["model"])
        if self.optimizer is not None and "optimizer" in state:
            self.optimizer.load_state_dict(state["optimizer"])
        if "scaler" in state and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
        restore_rng(state)
        self.progress = _Progress(
            epochs_done=meta["epochs_done"],
            cursor=meta["cursor"],
            global_step=meta["global_step"],
            epoch_loss_sum=meta["epoch_loss_sum"],
            epoch_batches=meta["epoch_batches"],
            best_epoch=meta["best_epoch"],
            best_metrics=meta["best_metrics"],
            bad_epochs=meta["bad_epochs"],
            elapsed=meta["elapsed"],
        )

    def _save(self, kind: str) -> None:
        """Write the best or last checkpoint (rank 0) and report its path and hash."""
        if self.is_main:
            recorded = self._recorded.get(kind)
            path = next(slot for slot in checkpoint_slots(self.checkpoint_dir, kind) if slot != recorded)
            sha = save_checkpoint(path, self._state(kind))
            if kind == "best":
                self._best = (str(path), sha)
            p = self.progress
            self._emit(CheckpointSaved(self.run_id, p.epochs_done, kind, str(path), sha, p.best_epoch))
            self._recorded[kind] = path  # the recorders now point at the new file: the old one can go
            if recorded is not None and recorded != path:
                recorded.unlink(missing_ok=True)
        if self.dist is not None:
            ddp.barrier()

    # --- training ----------------------------------------------------------------------------------

    def _train_loop(self) -> bool:
        """Epochs until max_epochs or early stopping; returns whether it stopped early."""
        cfg = self.config
        train = self.prepared.train
        p = self.progress
        while p.epochs_done < cfg.max_epochs:
            epoch = p.epochs_done + 1
            batches = self._epoch_batches(len(train), epoch)
            self._emit(EpochStarted(self.run_id, epoch, cfg.max_epochs, len(batches)))
            self._run_batches(train, batches, epoch)
            train_loss = p.epoch_loss_sum / max(1, p.epoch_batches)
            # A cancel inside the validation stops before the epoch counts as done: the checkpoint then
            # holds the epoch's last batch as its position, and a resume validates that epoch first.
            improved = self._validate(epoch, train_loss)
            p.epochs_done, p.cursor, p.epoch_loss_sum, p.epoch_batches = epoch, 0, 0.0, 0
            if improved:
                self._save("best")
            self._save("last")  # the recorders learn epochs_done / best_epoch from it
            if p.bad_epochs >= cfg.patience:
                return True
        return False

    def _epoch_batches(self, n: int, epoch: int) -> list[np.ndarray]:
        perm = np.random.default_rng([self.config.seed, epoch]).permutation(n)
        bs = self.config.batch_size
        batches = [perm[i : i + bs] for i in range(0, n, bs)]
        if self.dist is not None:
            batches = [ddp.shard_rows(b, self.dist) for b in batches]
        return batches

    def _sync_interval(self, n_batches: int) -> int:
        """Steps between two reads of the loss on the host (and, under DDP, two cancel checks).

        On the CPU reading a loss costs nothing, so every step is read and reported at once (today's
        behaviour, bit for bit). On a GPU each read waits for the queued kernels: the losses stay on the
        device and are read once per stored loss point (``loss_points_per_epoch``), at most 64 steps apart.
        """
        if self.device.type == "cpu":
            return 1
        return max(1, min(64, n_batches // max(1, self.config.loss_points_per_epoch)))

    def _run_batches(self, split: SplitArrays, batches: list[np.ndarray], epoch: int) -> None:
        cfg, p = self.config, self.progress
        n_batches = len(batches)
        first = p.cursor
        every = self._sync_interval(n_batches)
        window = _StepWindow(time.monotonic(), first, n_batches)
        self.model.train()
        stream = collated_batches(self.model, split, batches[first:], cfg.train_target_op,
                                  workers=self.loader_workers, pin_memory=self.device.type == "cuda")
        with contextlib.closing(stream):  # a cancel or failure ends the loader's workers at once
            self._step_batches(stream, batches, epoch, window, every)

    def _step_batches(self, stream: Iterator[Batch], batches: list[np.ndarray], epoch: int, window: _StepWindow,
                      every: int) -> None:
        """One optimiser step per collated batch of ``stream`` (batches ``window.first`` … the last)."""
        cfg, n_batches = self.config, window.n_batches
        for b in range(window.first, n_batches):
            if self.dist is None or not window.pending:  # a DDP check is a collective: only at a read
                self._check_control(before_stop=lambda: self._account(window, self._read_losses(window), epoch))
            idx = batches[b]
            batch = batch_to(next(stream), self.device)
            assert self.optimizer is not None
            self.optimizer.zero_grad(set_to_none=True)
            with self.precision.autocast():
                loss = self.train_module(batch)
            window.pending.append((b, len(idx), loss.detach()))
            due = len(window.pending) >= every or b + 1 == n_batches
            values = self._read_losses(window) if due else None  # before the step: a bad loss takes none
            self.scaler.scale(loss).backward()
            if cfg.grad_clip > 0:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if values is not None:
                self._account(window, values, epoch)

    def _read_losses(self, window: _StepWindow) -> list[float]:
        """The pending steps' losses on the host (one device sync; under DDP one all-reduce: the mean
        over ranks, non-finite on every rank when it is on any). Raises on the first non-finite loss."""
        if not window.pending:
            return []
        losses = torch.stack([loss.float() for _, _, loss in window.pending])  # K, on the device
        if self.dist is not None:
            losses = ddp.mean_tensor_across(losses, self.dist)
        values = [float(v) for v in losses.cpu().tolist()]
        for k, value in enumerate(values):
            if not math.isfinite(value):
                b = window.pending[k][0]
                step = self.progress.global_step + k + 1
                raise NonFiniteLoss(
                    f"the training loss became {value} at epoch {self.progress.epochs_done + 1}, batch {b + 1} "
                    f"(step {step}); try a lower learning rate or gradient clipping"
                )
        return values

    def _account(self, window: _StepWindow, values: list[float], epoch: int) -> None:
        """Book the pending (stepped) batches into the progress and report each as a BatchEnd."""
        cfg, p = self.config, self.progress
        world = 1 if self.dist is None else self.dist.world_size
        n_batches = window.n_batches
        for (b, rows, _), value in zip(window.pending, values, strict=True):
            p.cursor, p.global_step = b + 1, p.global_step + 1
            p.epoch_loss_sum += value
            p.epoch_batches += 1
            window.samples += rows * world
            elapsed = time.monotonic() - window.t_start
            per_batch = elapsed / (b + 1 - window.first)
            epoch_eta = per_batch * (n_batches - b - 1)
            self._emit(
                BatchEnd(
                    self.run_id,
                    epoch,
                    b + 1,
                    n_batches,
                    p.global_step,
                    value,
                    window.samples / elapsed if elapsed > 0 else 0.0,
                    epoch_eta,
                    epoch_eta + per_batch * n_batches * (cfg.max_epochs - epoch),
                    self._wall(),
                )
            )
        window.pending.clear()

    def _check_control(self, before_stop: Callable[[], None] | None = None) -> None:
        stop = not self.control.wait_if_paused()
        finish = self.control.finish_requested
        if self.dist is not None:  # one collective agrees both: a cancel on any rank wins over a finish
            stop, finish = ddp.any_flags((stop, finish), self.device)
        if stop or finish:
            if before_stop is not None:
                before_stop()  # book steps already taken, so the checkpoint's position is exact
            raise _Stop if stop else _FinishNow

    # --- evaluation --------------------------------------------------------------------------------

    def _ranks(self, split: SplitArrays, mode: str, interruptible: bool = False) -> np.ndarray:
        """``interruptible``: pause / cancel are checked between evaluation blocks (one process only:
        under DDP a check is a collective, and the ranks' shards need not have equal block counts)."""
        cfg = self.config
        kwargs = dict(
            device=self.device,
            batch_size=cfg.eval_batch_size,
            exclude_seen=cfg.exclude_seen_items,
            memory_mb=cfg.eval_memory_mb,
            amp=self.precision.enabled,
        )
        if self.dist is None:
            check = self._check_control if interruptible else None
            return compute_ranks(self.model, split, mode, check=check, **kwargs)  # type: ignore[arg-type]
        block = rows_per_block(self.model.n_items, cfg.eval_batch_size, cfg.eval_memory_mb)
        index = ddp.eval_rows(len(split), self.dist, block)
        local = compute_ranks(self.model, split, mode, index=index, **kwargs)  # type: ignore[arg-type]
        return ddp.gather_ranks(local, len(split), self.dist, self.device, block)

    def _evaluate(self, split_name: str, mode: str) -> EvalResult:
        # validation can be paused or cancelled; the test split, scored once at the end, cannot
        ranks = self._ranks(self.prepared.split(split_name), mode, interruptible=split_name == "valid")
        return EvalResult(metrics_from_ranks(ranks), ranks)

    def _validate(self, epoch: int, train_loss: float | None) -> bool:
        """Evaluate the validation split in every mode, record it, update early stopping."""
        p = self.progress
        improved = False
        results = {mode: self._evaluate("valid", mode) for mode in self.eval_modes}
        selected = results[self.select_mode].metrics
        if criterion_improved(self.config.criterion, selected, p.best_metrics):
            p.best_epoch, p.best_metrics, p.bad_epochs, improved = epoch, selected, 0, True
        else:
            p.bad_epochs += 1
        wall = self._wall()
        for mode, result in results.items():
            self._emit(
                EvaluationEnd(
                    self.run_id,
                    epoch,
                    "valid",
                    mode,
                    result.metrics,
                    improved if mode == self.select_mode else None,
                    train_loss,
                    wall,
                    result.ranks if improved else None,  # a new best epoch's ranks are kept
                )
            )
        return improved

    def _fit_once(self) -> bool:
        """Non-trainable models: fit on the training split, then one evaluation (epoch 1)."""
        self.model.fit(self.prepared.train)
        self.model.to(self.device)
        self.progress.epochs_done = 1
        self._validate(1, None)
        self._save("best")
        self._save("last")
        return False

    # --- endings -----------------------------------------------------------------------------------

    def _finish(self, stopped_early: bool) -> RunOutcome:
        """Best weights → test metrics in every mode; status finished."""
        p = self.progress
        best_epoch = p.best_epoch or p.epochs_done
        if self.is_main and self._best is not None:
            state = load_checkpoint(*self._best)
            self.model.load_state_dict(state["model"])
        if self.dist is not None:  # every rank evaluates its shard with rank 0's best weights
            for tensor in self.model.state_dict().values():
                torch.distributed.broadcast(tensor, src=0)
        test: dict[str, dict[str, float]] = {}
        for mode in self.eval_modes:
            result = self._evaluate("test", mode)
            test[mode] = result.metrics
            self._emit(
                EvaluationEnd(
                    self.run_id, best_epoch, "test", mode, result.metrics, wall_time=self._wall(), ranks=result.ranks
                )
            )
        self._emit(Finished(self.run_id, best_epoch, p.epochs_done, stopped_early, test))
        return RunOutcome(self.run_id, "finished", best_epoch, p.epochs_done, test)

    def _stopped(self, clean: bool) -> RunOutcome:
        """Cancel (or Ctrl-C): save the last checkpoint so the run can be resumed, status stopped."""
        path: str | None = None
        note = None if clean else "interrupted by Ctrl-C inside a batch; the last checkpoint may not resume exactly"
        try:
            if hasattr(self, "model"):  # set-up finished: there is a state worth saving
                self._save("last")
                path = str(self._recorded["last"]) if self.is_main else None  # only rank 0 writes it
        finally:
            self._emit_safely(Cancelled(self.run_id, self.progress.epochs_done, path, note))
        return RunOutcome(self.run_id, "stopped", self.progress.best_epoch, self.progress.epochs_done, error=note)

    def _failed(self, exc: BaseException) -> RunOutcome:
        text = traceback.format_exc()
        reason = str(exc) if isinstance(exc, NonFiniteLoss) else f"{type(exc).__name__}: {exc}"
        self._emit_safely(Failed(self.run_id, reason, text))
        return RunOutcome(self.run_id, "failed", self.progress.best_epoch, self.progress.epochs_done, error=reason)

    # --- helpers -----------------------------------------------------------------------------------

    def _wall(self) -> float:
        return self.progress.elapsed + (time.monotonic() - self._t0)

    def _emit(self, event: TrainEvent) -> None:
        """Every recorder, in order; an exception (the store failing, Ctrl-C in a callback) ends the run."""
        if self.is_main:
            for recorder in self.recorders:
                recorder(event)

    def _emit_safely(self, event: TrainEvent) -> None:
        """For endings: each recorder hears it even when another one (or the store) is broken."""
        if self.is_main:
            for recorder in self.recorders:
                with contextlib.suppress(Exception):  # must not hide the original failure
                    recorder(event)
