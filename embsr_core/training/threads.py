"""How many CPU threads PyTorch may use for one training process.

``threads = 0`` (the default) means automatic: the physical cores this process may run on, at most
:data:`AUTO_MAX_THREADS`, shared between the processes of one machine under DDP. The cap exists
because one EMBSR step (batch 512) is a chain of small matmuls and gathers: past a handful of threads
the fork/join cost of each operation eats the gain, and an analyst's machine keeps cores for the
window and the database. Hyper-threads are not counted: two threads on one core share its FPU and
slow each other's matmuls down.
"""

from __future__ import annotations

import os
from pathlib import Path

AUTO_THREADS = 0  # the setting's value meaning "choose for me"
AUTO_MAX_THREADS = 8


def _allowed_cpus() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        return None


def logical_cpus() -> int:
    """Logical CPUs this process may run on (its affinity where the system tells it)."""
    return _count(_allowed_cpus())


def _count(allowed: set[int] | None) -> int:
    return len(allowed) if allowed is not None else (os.cpu_count() or 1)


def physical_cores() -> int:
    """Physical cores among the CPUs this process may use (logical CPUs when that cannot be told)."""
    allowed = _allowed_cpus()
    logical = _count(allowed)
    cores: set[tuple[str, str]] = set()
    try:
        for cpu in allowed or range(os.cpu_count() or 1):
            topo = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
            cores.add(((topo / "physical_package_id").read_text().strip(), (topo / "core_id").read_text().strip()))
    except OSError:  # not Linux, or no sysfs: trust the logical count
        return max(1, logical)
    return max(1, min(len(cores), logical))


def auto_threads(processes_per_machine: int = 1) -> int:
    """The thread count ``threads = 0`` stands for: physical cores ÷ local processes, 1 … 8."""
    share = physical_cores() // max(1, processes_per_machine)
    return max(1, min(AUTO_MAX_THREADS, share))


def resolve_threads(setting: int, processes_per_machine: int = 1) -> int:
    """The setting as a thread count (an explicit value wins; 0 → :func:`auto_threads`)."""
    if setting < 0:
        raise ValueError(f"threads: expected 0 (automatic) or a positive count, got {setting}")
    return int(setting) if setting > 0 else auto_threads(processes_per_machine)


def apply_threads(setting: int, processes_per_machine: int = 1) -> int:
    """Set PyTorch's intra-op thread count for this process; returns the count now in use.

    Process-wide (it also holds for the GUI's other work while a run trains in it).
    """
    import torch  # (here, so that the CLI can import this module without loading PyTorch)

    n = resolve_threads(setting, processes_per_machine)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return torch.get_num_threads()
