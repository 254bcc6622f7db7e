"""Training batches collated ahead of the step, in worker processes (a ``torch.utils.data.DataLoader``).

Collation builds each batch's multigraph in numpy; in the training thread that work waits for the step
and the step waits for it. With ``loader_workers`` > 0 it runs in worker processes, a few batches
ahead (``prefetch_factor`` per worker), pinned for the GPU by the loader's pin-memory thread, so on a
GPU the numpy work overlaps the kernels.

Results do not depend on the number of workers: collation is deterministic numpy (no RNG), the
loader yields the batches in the epoch's order, and it draws its workers' seeds from a generator of
its own, so the global RNG stream (dropout masks, resume) is the same with 0 workers and with N.

Start method: ``fork`` (fast, nothing pickled) where the process has no Qt loaded, ``forkserver``
(or ``spawn`` where there is none) otherwise: the desktop app trains in a worker thread of a Qt
process, and a forked copy of a multi-threaded Qt process can deadlock. The workers then receive a
copy of the split and a parameter-free copy of the model (collation reads only the model's
settings), never its weights.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
import traceback
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from embsr_core.data.prepared import SplitArrays
from embsr_core.models.base import Batch, SessionRecommender
from embsr_core.training.threads import logical_cpus

AUTO_WORKERS = "auto"
CUDA_AUTO_WORKERS = 2  # what "auto" means on a GPU: the numpy build of two batches keeps ahead of a step
PREFETCH_FACTOR = 2  # batches each worker keeps ready (torch's default)
_QT_MODULES = ("PySide6.QtCore", "PyQt6.QtCore", "PySide2.QtCore", "PyQt5.QtCore")


def resolve_workers(setting: int | str, device: torch.device) -> int:
    """Worker processes for ``setting``: a number as given; ``auto`` = 2 on CUDA (at most the cores
    but one), 0 elsewhere (on the CPU the step already uses every core: a worker would only compete)."""
    if setting != AUTO_WORKERS:
        return int(setting)
    if device.type != "cuda":
        return 0
    return max(0, min(CUDA_AUTO_WORKERS, logical_cpus() - 1))


def start_method() -> str:
    """``fork`` where it is safe (available, no Qt in this process), else ``forkserver``, else ``spawn``."""
    methods = multiprocessing.get_all_start_methods()
    qt_loaded = any(name in sys.modules for name in _QT_MODULES)
    if "fork" in methods and not qt_loaded:
        return "fork"
    return "forkserver" if "forkserver" in methods else "spawn"


def collate_only(model: SessionRecommender) -> SessionRecommender:
    """A shallow copy of ``model`` without parameters, buffers or submodules (what a worker needs).

    ``collate`` reads only plain settings (``n_items``, ``graph``, …); sending the weights (possibly
    on a GPU) to every worker would cost memory and, for CUDA tensors, a CUDA context per worker.
    """
    clone = object.__new__(type(model))
    clone.__dict__.update(model.__dict__)
    clone.__dict__.update(_parameters={}, _buffers={}, _modules={})
    return clone


class _EpochBatches(Dataset):
    """Item ``i`` = batch ``i`` of the epoch (from the cursor on), collated by the model."""

    def __init__(self, model: SessionRecommender, split: SplitArrays, batches: Sequence[np.ndarray], target_op: Any):
        self.model, self.split, self.batches, self.target_op = model, split, batches, target_op

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> Batch | _Failure:
        try:
            return self.model.collate(self.split, self.batches[i], self.target_op)
        except Exception as exc:  # sent back as it is: the loader would re-raise it wrapped in its traceback text
            return _Failure(exc, traceback.format_exc())


class _Failure:
    """A collation error in a worker, re-raised as itself in the training process."""

    def __init__(self, exc: Exception, text: str):
        self.exc, self.text = exc, text

    def raise_it(self) -> None:
        self.exc.add_note(f"(in a batch-collating worker process)\n{self.text}")
        raise self.exc


def _as_is(batch: Batch) -> Batch:
    """The loader's collate_fn: a batch is already a dict of tensors (default_convert would walk it)."""
    return batch


def _worker_init(_worker_id: int) -> None:
    """Ctrl-C reaches the whole process group: the workers leave it to the trainer (a clean cancel,
    between batches) instead of dying under the loader."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def collated_batches(
    model: SessionRecommender,
    split: SplitArrays,
    batches: Sequence[np.ndarray],
    target_op: Any,
    *,
    workers: int = 0,
    pin_memory: bool = False,
) -> Iterator[Batch]:
    """The collated ``batches`` in order (CPU tensors; pinned when ``pin_memory`` and workers > 0).

    ``workers`` = 0 collates each batch when it is asked for, in the calling thread. Close the
    iterator (``contextlib.closing``) when stopping early: that ends the worker processes at once.
    """
    if workers <= 0:
        for idx in batches:
            yield model.collate(split, idx, target_op)
        return
    method = start_method()
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        # Loaded once, in the server (single-threaded, no QApplication): torch and numpy through this module, and
        # the main module, so a worker forked from it need not import the app again (spawn.prepare skips it).
        context.set_forkserver_preload(["__main__", __name__])
    loader = DataLoader(
        _EpochBatches(collate_only(model), split, batches, target_op),
        batch_size=None,
        shuffle=False,
        num_workers=workers,
        collate_fn=_as_is,
        pin_memory=pin_memory,
        prefetch_factor=PREFETCH_FACTOR,
        persistent_workers=False,
        multiprocessing_context=context,
        worker_init_fn=_worker_init,
        generator=torch.Generator(),  # the workers' seeds: never drawn from the global RNG
    )
    iterator = iter(loader)
    try:
        for batch in iterator:
            if isinstance(batch, _Failure):
                batch.raise_it()
            yield batch
    finally:
        shutdown = getattr(iterator, "_shutdown_workers", None)  # what its __del__ does, but now
        if shutdown is not None:
            shutdown()
