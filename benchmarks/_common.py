"""Helpers shared by the benchmark scripts: throw-away stores, the real samples, memory, the header line.

The dataset table, the sample loader and the store's dataset row are ``table3``'s (imported, not
copied); this module adds what the other scripts need on top: a preset other than the default,
the paper's Table II row, peak-memory readings and the machine/date line the README quotes.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import platform
import resource
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from table3 import DATASETS, METRICS, add_dataset_row, load_dataset, read_sample  # noqa: E402

from embsr_core.data.prepared import PreparedDataset  # noqa: E402
from embsr_core.data.preprocess import prepare, preset  # noqa: E402
from embsr_core.models.registry import get_spec  # noqa: E402
from embsr_core.store import open_store  # noqa: E402
from embsr_core.store.engine import Store  # noqa: E402

__all__ = ["DATASETS", "METRICS", "PeakMemory", "add_dataset_row", "default_preset", "machine_line",
           "markdown_table", "mean_std", "paper_overrides", "prepare_sample", "table2_row", "throwaway_store",
           "training_pool"]


def default_preset(name: str) -> str:
    """The preprocessing preset ``table3`` uses for dataset ``name``."""
    return DATASETS[name][2]


def prepare_sample(name: str, preset_name: str | None = None, synthetic_sessions: int = 20_000,
                   augment: bool = True) -> PreparedDataset:
    """A real sample (or the synthetic set) prepared with ``preset_name`` (default: ``table3``'s)."""
    if preset_name is None or preset_name == default_preset(name):
        return load_dataset(name, synthetic_sessions=synthetic_sessions, augment=augment)
    if DATASETS[name][0] is None:
        raise ValueError(f"{name}: only its default preset {default_preset(name)!r} is supported here")
    return prepare(read_sample(name), preset(preset_name, augment=augment), dataset_name=name)


def table2_row(prepared: PreparedDataset, preset_name: str) -> str:
    """The paper's Table II row (sessions, items, micro-behaviors, operations) plus the protocol used."""
    t2 = prepared.stats.get("table2", {})
    n_train = t2.get("train", len(prepared.train))
    n_sessions = n_train + len(prepared.valid) + len(prepared.test)
    cfg = prepared.config
    samples = f", {len(prepared.train):,} prefix training samples" if cfg.get("augment") else ""
    return (f"{prepared.dataset_name} (preset {preset_name!r}: min support {cfg.get('min_item_support')}, "
            f"L = {cfg.get('max_len')}, {cfg.get('split')} split): {n_sessions:,} sessions "
            f"({n_train:,}/{len(prepared.valid):,}/{len(prepared.test):,} train/valid/test{samples}), "
            f"{prepared.n_items:,} items, {t2.get('micro_behaviors', 0):,} micro-behaviors, "
            f"{prepared.n_ops} operations, mean session length {prepared.stats.get('mean_session_length', 0):.1f}")


@contextlib.contextmanager
def throwaway_store(prefix: str) -> Iterator[tuple[Store, Path]]:
    """A SQLite store and a checkpoint folder in a temp directory, both gone afterwards."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'store.db'}")
        try:
            yield store, Path(tmp) / "ckpt"
        finally:
            store.engine.dispose()


def training_pool(jobs: int, device: str, initializer: Callable[..., None],
                  initargs: tuple) -> ProcessPoolExecutor:
    """Processes for training runs, each given the parent's prepared data by ``initializer``.

    Forked children share that data for free, but a forked child cannot use CUDA once the parent has
    touched it ("Cannot re-initialize CUDA in forked subprocess"), so runs that may go to a CUDA GPU
    get spawned children instead, which receive the data pickled.
    """
    cuda = not device.startswith(("cpu", "mps")) and torch.cuda.is_available()
    return ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn" if cuda else "fork"),
                               initializer=initializer, initargs=initargs)


def paper_overrides(model: str, embedding_dim: int = 100) -> dict[str, int]:
    """The paper's d = 100 for models that have an embedding size (registered defaults otherwise)."""
    names = {p.name for p in get_spec(model).params}
    return {"embedding_dim": embedding_dim} if "embedding_dim" in names else {}


class PeakMemory:
    """Peak memory of one measured stretch: the process's peak RSS, and CUDA's peak allocation.

    Peak RSS is ``VmHWM`` from /proc/self/status, reset at :meth:`reset` by writing 5 to
    /proc/self/clear_refs (Linux), so each model gets its own peak; where that is unavailable it
    falls back to ``resource.getrusage(RUSAGE_SELF).ru_maxrss``, the peak over the whole process
    (then later models read at least the earlier ones' peak). :attr:`method` says which was used.
    tracemalloc is not used: it misses torch's native allocations.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.method = "ru_maxrss (process lifetime peak)"

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        try:
            Path("/proc/self/clear_refs").write_text("5")
            if _vm_hwm_kib() is not None:
                self.method = "VmHWM (peak RSS, reset per model via /proc/self/clear_refs)"
        except OSError:
            self.method = "ru_maxrss (process lifetime peak)"

    def peak_rss_mb(self) -> float:
        kib = _vm_hwm_kib() if self.method.startswith("VmHWM") else None
        if kib is None:
            kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        return kib / 1024

    def peak_cuda_mb(self) -> float | None:
        return torch.cuda.max_memory_allocated(self.device) / 2**20 if self.device.type == "cuda" else None


def _vm_hwm_kib() -> int | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def machine_line() -> str:
    """One line naming the machine, the software and the date (the README's table header)."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return (f"Machine: {cpu}, {cores} cores{gpu}, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, torch {torch.__version__} (threads {torch.get_num_threads()}) "
            f"· date {datetime.now():%Y-%m-%d %H:%M}")


def mean_std(values: Sequence[float], scale: float = 1.0, digits: int = 2) -> str:
    """"mean ± std" (sample std, ddof = 1) of the finite values; just the mean for one value."""
    arr = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float) * scale
    if arr.size == 0:
        return "–"
    if arr.size == 1:
        return f"{arr[0]:.{digits}f}"
    return f"{arr.mean():.{digits}f} ± {arr.std(ddof=1):.{digits}f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
