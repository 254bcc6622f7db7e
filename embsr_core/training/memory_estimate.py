"""Will a training run fit in memory? Estimate the peak of a step and of evaluation before training.

A run that does not fit makes the machine swap to a halt (issue 18: 7.9 GB resident before the
first epoch ended), so :func:`fit_to_memory` checks first and then either keeps the settings,
lowers the batch size, or refuses with the estimate and what to change.

How the estimate is made (model-aware, no per-model formula to keep in step): a *measured dry run*.
The real model is built on the real vocabulary sizes and runs one training step (loss, backward)
and one evaluation block on two small batches (b = 8 and 32: the data's longest session and random
others, so the padded length is the data's); every tensor storage allocated meanwhile is counted
by a dispatch-mode tracker (CPU and CUDA alike, no RSS noise), which gives the peak bytes of each.
Activations, the B×items score block and the graph all grow linearly with the batch, so two
points extrapolate to the chosen batch sizes. Parameters, their gradients and Adam's two moments
(three with AMSGrad) are counted from the parameter sizes. On CPU the peak resident memory is that
sum times :data:`CPU_OVERHEAD` (allocator and library overhead).

Measured by ``benchmarks/many_ops.py`` (one epoch, 30,000 sessions, CPU): estimated 0.41 GB,
the run added 0.42 GB at 200 operations; 0.18 GB against 0.24 GB at 10.

Free memory: CUDA ``torch.cuda.mem_get_info`` (plus what this process's cache holds unused); CPU
``MemAvailable`` of /proc/meminfo, capped by a cgroup limit when there is one, else
``os.sysconf`` free pages (psutil is not a dependency).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import weakref
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from embsr_core.data.prepared import PreparedDataset, SplitArrays
from embsr_core.models.base import SessionRecommender, batch_to
from embsr_core.models.registry import build_model
from embsr_core.training.config import TrainConfig, resolve_device
from embsr_core.training.metrics import compute_ranks, rows_per_block
from embsr_core.training.precision import precision_for

log = logging.getLogger(__name__)

PROBE_BATCHES = (8, 32)  # the two dry-run batch sizes the line is fitted through
SAFETY = 0.85  # use at most this share of the free memory (the OS, the GUI and other programs need some)
# Peak RSS / counted tensor bytes on CPU: glibc keeps freed blocks, kernels use scratch buffers the
# tracker cannot see. Measured 1.85 (200 operations) and 2.24 (10) for EMBSR steps at batch 512, L = 50
# (train_step.py's synthetic batches); benchmarks/many_ops.py prints estimate and measurement per epoch.
CPU_OVERHEAD = 2.0
MIN_BATCH_FRACTION = 8  # lower the batch at most to 1/8 of the chosen one; below that, refuse
GB = 1e9


class MemoryBudgetError(ValueError):
    """The chosen settings would not fit in memory (the message gives the estimate and what to change)."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Estimated peak bytes of one training step and of one evaluation block, and the free memory."""

    device: str
    batch_size: int
    eval_rows: int  # sessions per evaluation score block (eval batch size capped by eval_memory_mb)
    state_bytes: float  # parameters + gradients + optimizer moments (held for the whole run)
    step_fixed: float  # step activations/temporaries = step_fixed + step_per_session × batch
    step_per_session: float
    eval_fixed: float  # evaluation block = eval_fixed + eval_per_row × rows
    eval_per_row: float
    overhead: float  # multiplies the tensor bytes (CPU_OVERHEAD on CPU, 1 on CUDA)
    available_bytes: float | None  # free memory now (None = unknown: never refuse)

    def train_bytes(self, batch_size: int | None = None) -> float:
        b = self.batch_size if batch_size is None else batch_size
        return self.overhead * (self.state_bytes + self.step_fixed + self.step_per_session * b)

    def eval_bytes(self, rows: int | None = None) -> float:
        r = self.eval_rows if rows is None else rows
        return self.overhead * (self.state_bytes + self.eval_fixed + self.eval_per_row * r)

    @property
    def budget_bytes(self) -> float | None:
        return None if self.available_bytes is None else SAFETY * self.available_bytes

    def fits(self) -> bool:
        budget = self.budget_bytes
        return budget is None or max(self.train_bytes(), self.eval_bytes()) <= budget

    def max_batch_size(self) -> int:
        """The largest training batch whose step fits the budget (0: not even one session)."""
        return _largest(self.budget_bytes, self.overhead, self.state_bytes + self.step_fixed, self.step_per_session)

    def max_eval_rows(self) -> int:
        return _largest(self.budget_bytes, self.overhead, self.state_bytes + self.eval_fixed, self.eval_per_row)

    def plan(self) -> dict[str, int]:
        """The settings to lower so the run fits ({} when it fits as chosen): the evaluation batch
        (same results), the training batch down to 1/``MIN_BATCH_FRACTION`` of the chosen one.
        Raises :class:`MemoryBudgetError` (estimate and what to change) when that is not enough."""
        if self.fits():
            return {}
        budget = float(self.budget_bytes)  # type: ignore[arg-type]
        changes: dict[str, int] = {}
        if self.eval_bytes() > budget:
            if self.max_eval_rows() < 1:
                raise MemoryBudgetError(self._advice("evaluating even one session"))
            changes["eval_batch_size"] = self.max_eval_rows()
        if self.batch_size and self.train_bytes() > budget:
            best = _tidy(self.max_batch_size())
            if best < max(1, math.ceil(self.batch_size / MIN_BATCH_FRACTION)):
                raise MemoryBudgetError(self._advice(f"training with batch size {self.batch_size}"))
            changes["batch_size"] = best
        return changes

    def verdict(self) -> str:
        """What :func:`fit_to_memory` will do, in one or two sentences for an analyst (the Train page)."""
        try:
            changes = self.plan()
        except MemoryBudgetError:
            best = _tidy(self.max_batch_size()) if self.batch_size else 0
            limit = f"a batch size of at most {best}, " if best else ""
            return f"{self.summary()} Training would not start: choose {limit}a smaller embedding size or fewer items."
        text = {"batch_size": "the training batch size will be lowered to {}",
                "eval_batch_size": "evaluation will score {} sessions at a time"}
        if not changes:
            return self.summary()
        return f"{self.summary()} To fit, {' and '.join(text[k].format(v) for k, v in changes.items())}."

    def _advice(self, what: str) -> str:
        need = max(self.train_bytes(), self.eval_bytes())
        best = _tidy(self.max_batch_size())
        batch = f"a training batch size of at most {best}, " if best and self.batch_size else ""
        return (f"{what} needs about {_gb(need)} (model and optimizer state "
                f"{_gb(self.overhead * self.state_bytes)}), but only {_gb(self.budget_bytes or 0.0)} of the "
                f"{_gb(self.available_bytes or 0.0)} free can be used. Choose {batch}a smaller embedding size, "
                "a shorter maximum session length or fewer items (a higher minimum item support), "
                "or close other programs.")

    def summary(self) -> str:
        """One line for an analyst: both peaks and the free memory."""
        where = "GPU memory" if self.device.startswith("cuda") else "memory"
        free = "unknown" if self.available_bytes is None else f"{_gb(self.available_bytes)} free"
        train = (f"training {_gb(self.train_bytes())} (batch {self.batch_size})" if self.batch_size
                 else "no training steps")
        return f"Estimated peak {where}: {train}, evaluation {_gb(self.eval_bytes())}; {free}."


def _largest(budget: float | None, overhead: float, fixed: float, per: float) -> int:
    if budget is None:
        return 1 << 30
    room = budget / overhead - fixed
    if room < per:
        return 0
    return int(room // per) if per > 0 else 1 << 30


def _tidy(batch: int) -> int:
    """A lowered batch size rounded down to a multiple of 8 (when ≥ 8)."""
    return batch - batch % 8 if batch >= 8 else batch


def _gb(n: float) -> str:
    """Bytes as the analyst reads them: 12 MB, 0.85 GB, 12.3 GB."""
    if n < 0.1 * GB:
        return f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{n / 1e6:.1f} MB"
    return f"{n / GB:.2f} GB" if n < 10 * GB else f"{n / GB:.1f} GB"


# --- free memory -------------------------------------------------------------------------------------


def available_bytes(device: torch.device) -> float | None:
    """Memory a new allocation can get without swapping (see the module docstring); None if unknown."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return float(free + max(0, cached))
    values = [v for v in (_meminfo_available(), _cgroup_available()) if v is not None]
    if values:
        return float(min(values))
    with contextlib.suppress(ValueError, OSError, AttributeError):
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    return None


def _meminfo_available(path: Path = Path("/proc/meminfo")) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        for line in path.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return None


def _cgroup_available(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """cgroup v2 limit minus usage (a container may allow far less than the machine has)."""
    with contextlib.suppress(OSError, ValueError):
        limit = (root / "memory.max").read_text().strip()
        if limit != "max":
            return max(0, int(limit) - int((root / "memory.current").read_text()))
    return None


# --- measuring a dry run -----------------------------------------------------------------------------


class TensorBytesPeak(TorchDispatchMode):
    """Counts the bytes of every tensor storage created inside the ``with`` block, live and peak.

    Each new storage is registered once (by address) with a finaliser that subtracts it when freed;
    views and in-place results reuse a storage and add nothing. Works on every device and inside
    autograd's backward (the dispatch mode travels with the autograd thread-local state).
    """

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._sizes: dict[int, int] = {}

    def _freed(self, key: int) -> None:
        self.live -= self._sizes.pop(key, 0)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                storage = t.untyped_storage()
                key = storage.data_ptr()
                if key and key not in self._sizes:
                    self._sizes[key] = storage.nbytes()
                    self.live += storage.nbytes()
                    self.peak = max(self.peak, self.live)
                    weakref.finalize(storage, self._freed, key)
        return out


def _probe_split(split: SplitArrays, n: int, rng: np.random.Generator) -> SplitArrays:
    """``n`` sessions: the longest one (so batches have the data's full length) and random others."""
    longest = int(np.argmax(split.lengths))
    others = rng.choice(len(split), size=min(n, len(split)), replace=len(split) < n)
    return split.subset(np.r_[longest, others[: n - 1]])


def _step_peak(model: SessionRecommender, split: SplitArrays, device: torch.device, amp: bool) -> int:
    batch = batch_to(model.collate(split, np.arange(len(split)), "oracle"), device)
    with TensorBytesPeak() as meter:
        with precision_for(amp, device).autocast():
            loss = model.loss(batch)
        loss.backward()  # gradients already exist (accumulated into): only the step's own memory counts
        del loss
    return meter.peak


def _eval_peak(model: SessionRecommender, split: SplitArrays, device: torch.device, cfg: TrainConfig,
               amp: bool) -> int:
    with TensorBytesPeak() as meter:
        compute_ranks(model, split, "oracle", device=device, batch_size=len(split),
                      exclude_seen=cfg.exclude_seen_items, memory_mb=cfg.eval_memory_mb, amp=amp)
    return meter.peak


def _line(points: list[tuple[int, int]]) -> tuple[float, float]:
    """(intercept, slope ≥ 0) through two (batch, bytes) points."""
    (b1, y1), (b2, y2) = points
    slope = max(0.0, (y2 - y1) / (b2 - b1))
    return max(0.0, y1 - slope * b1), slope


def estimate_memory(split: SplitArrays, n_items: int, n_ops: int, model_name: str,
                    model_overrides: dict[str, Any] | None, config: TrainConfig,
                    device: torch.device | None = None, available: float | None = None,
                    *, n_eval: int | None = None) -> MemoryEstimate:
    """Dry-run ``model_name`` on sessions of ``split`` (see the module docstring).

    ``available`` overrides the measured free memory (tests, the GUI's "what if"). An automatic
    batch size is resolved for ``len(split)`` training samples; ``n_eval`` (the larger evaluation
    split) caps the rows of an evaluation block.
    """
    config = config.resolved_for(len(split))  # the automatic batch size, as the trainer resolves it
    device = device or resolve_device(config.device)
    amp = config.amp
    rng = np.random.default_rng(0)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)
        model = build_model(model_name, n_items, n_ops, dict(model_overrides or {})).to(device)
        params = [p for p in model.parameters() if p.requires_grad]
        param_bytes = sum(p.numel() * p.element_size() for p in params)
        trainable = bool(model.trainable and params)
        steps: list[tuple[int, int]] = []
        evals: list[tuple[int, int]] = []
        if not trainable:
            model.fit(_probe_split(split, max(PROBE_BATCHES), rng))  # S-POP, SKNN: fitted, not stepped
        for b in PROBE_BATCHES:
            probe = _probe_split(split, b, rng)
            if trainable:
                model.train()
                if not steps:
                    _step_peak(model, probe, device, amp)  # warm-up: allocates the gradients once
                steps.append((b, _step_peak(model, probe, device, amp)))
            evals.append((b, _eval_peak(model, probe, device, config, amp)))
        del model, params
    moments = (3 if config.amsgrad else 2) if trainable else 0
    # params + grads + moments, and Adam's per-step temporaries (about one more copy)
    state = param_bytes * (1 + (1 + moments + 1 if trainable else 0))
    step_fixed, step_per = _line(steps) if trainable else (0.0, 0.0)
    eval_fixed, eval_per = _line(evals)
    free = available if available is not None else available_bytes(device)
    return MemoryEstimate(
        device=str(device), batch_size=config.batch_size if trainable else 0,
        eval_rows=min(rows_per_block(n_items, config.eval_batch_size, config.eval_memory_mb), n_eval or 1 << 30),
        state_bytes=float(state), step_fixed=step_fixed, step_per_session=step_per,
        eval_fixed=eval_fixed, eval_per_row=eval_per,
        overhead=CPU_OVERHEAD if device.type != "cuda" else 1.0, available_bytes=free,
    )


def estimate_for_prepared(prepared: PreparedDataset, model_name: str, model_overrides: dict[str, Any] | None,
                          config: TrainConfig, available: float | None = None) -> MemoryEstimate:
    """:func:`estimate_memory` on the training split of a prepared dataset."""
    return estimate_memory(prepared.train, prepared.n_items, prepared.n_ops, model_name, model_overrides,
                           config.resolved_for(len(prepared.train)), available=available,
                           n_eval=max(len(prepared.valid), len(prepared.test), 1))


def worst_case_split(n_items: int, n_ops: int, max_len: int, n: int = max(PROBE_BATCHES),
                     seed: int = 0) -> SplitArrays:
    """``n`` sessions of ``max_len`` micro-behaviors (runs on one item, random operations): the
    estimate's input when only the dataset's sizes are known (the Train page, before preparing)."""
    rng = np.random.default_rng(seed)
    items = rng.integers(1, n_items + 1, (n, max_len))
    stay = rng.random((n, max_len)) < 0.5
    for j in range(1, max_len):
        items[:, j] = np.where(stay[:, j], items[:, j - 1], items[:, j])
    return SplitArrays(
        items=items.astype(np.int32), ops=rng.integers(1, n_ops + 1, (n, max_len)).astype(np.int32),
        lengths=np.full(n, max_len, np.int32), targets=rng.integers(1, n_items + 1, n).astype(np.int64),
        target_ops=rng.integers(1, n_ops + 1, n).astype(np.int32),
        session_ids=np.arange(n).astype(str), end_times=np.zeros(n),
    )


def estimate_for_shape(n_items: int, n_ops: int, max_len: int, n_train_samples: int, model_name: str,
                       model_overrides: dict[str, Any] | None, config: TrainConfig) -> MemoryEstimate:
    """The estimate from the dataset's sizes only (every session ``max_len`` long: an upper bound)."""
    split = worst_case_split(n_items, n_ops, max_len)
    return estimate_memory(split, n_items, n_ops, model_name, model_overrides,
                           config.resolved_for(max(1, n_train_samples)))


# --- the check before training -----------------------------------------------------------------------


def fit_to_memory(prepared: PreparedDataset, model_name: str, model_overrides: dict[str, Any] | None,
                  config: TrainConfig, *, available: float | None = None) -> TrainConfig:
    """``config`` unchanged when the run fits, else with the lowered settings of
    :meth:`MemoryEstimate.plan` (logged); :class:`MemoryBudgetError` when lowering is not enough."""
    try:
        est = estimate_for_prepared(prepared, model_name, model_overrides, config, available)
    except Exception as exc:  # noqa: BLE001 - bad settings, a model the dry run cannot drive: the trainer
        log.warning("memory estimate skipped for %s: %s", model_name, exc)  # reports them as before
        return config
    try:
        changes = est.plan()
    except MemoryBudgetError as exc:
        raise MemoryBudgetError(f"Not enough memory for {model_name}: {exc}") from None
    if not changes:
        log.info("%s", est.summary())
        return config
    log.warning("%s Lowered to fit: %s.", est.summary(),
                ", ".join(f"{k.replace('_', ' ')} → {v}" for k, v in changes.items()))
    return replace(config.resolved_for(len(prepared.train)), **changes)
