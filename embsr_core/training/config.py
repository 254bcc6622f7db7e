"""Training settings: one frozen dataclass plus a :class:`Param` schema (the GUI's form, the CLI's flags).

The schema reuses the model registry's :class:`Param`, so training knobs and model knobs are shown,
validated and serialised the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from embsr_core.models.registry import Param

if TYPE_CHECKING:
    import torch

K_VALUES = (1, 3, 5, 10, 20)  # cut-offs of every ranking metric
METRIC_NAMES = ("hit", "mrr", "ndcg")
AUTHORS_CRITERION = "authors"  # relative gain of hit@20 plus relative gain of mrr@20 > 0
CRITERIA = (AUTHORS_CRITERION,) + tuple(f"{m}@{k}" for m in METRIC_NAMES for k in K_VALUES)

AUTO_BATCH = 0  # batch_size value meaning "fit it to the data" (auto_batch_size)
PAPER_BATCH_SIZE = 512  # §V-A-4: the paper's mini-batch, the rule's cap
MIN_BATCH_SIZE = 32  # the rule's floor: smaller batches make Adam's steps noisy and epochs slow
MIN_STEPS_PER_EPOCH = 20


def auto_batch_size(n_train_samples: int) -> int:
    """The batch size used when none is given: an epoch of at least ~20 optimiser steps.

    The largest power of two ≤ n / 20, capped at the paper's 512 and floored at 32. A 700-session
    dataset (≈ 490 one-target samples) then trains with batch 32 (16 steps) instead of 512 (1 step);
    once an epoch has ≥ 10,240 samples (e.g. 5,000 planted sessions with prefix training) it is 512.
    """
    target = max(int(n_train_samples) // MIN_STEPS_PER_EPOCH, 1)
    power = 1 << (target.bit_length() - 1)  # largest power of two ≤ target
    return int(min(PAPER_BATCH_SIZE, max(MIN_BATCH_SIZE, power)))


# The settings that say how a run executes, not what is trained and compared: a leaderboard continues
# across them (started on the command line with --threads 1, continued in the window with automatic threads).
EXECUTION_SETTINGS = frozenset({"device", "threads", "loader_workers", "eval_batch_size", "eval_memory_mb",
                                "loss_points_per_epoch"})


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained and evaluated. Defaults follow the paper (Adam, lr 1e-3) except the batch
    size, which fits the data (:func:`auto_batch_size`; 512 from ~10k training samples on)."""

    lr: float = 0.001
    weight_decay: float = 0.0
    amsgrad: bool = False
    batch_size: int = AUTO_BATCH  # 0 = auto_batch_size(training samples); an explicit value wins
    max_epochs: int = 50
    patience: int = 10
    criterion: str = AUTHORS_CRITERION
    grad_clip: float = 0.0  # max global L2 norm; 0 = off
    seed: int = 42
    device: str = "auto"  # auto (CUDA → MPS → CPU), cpu, cuda, cuda:1, mps
    amp: bool = False  # mixed precision where the hardware pays it back (training/precision.py), else fp32
    eval_batch_size: int = 1024
    exclude_seen_items: bool = False  # off, as in the paper
    train_target_op: str = "oracle"  # how o_{t+1} is given during training (and model selection)
    eval_memory_mb: int = 512  # budget for one evaluation score block (rows × items × 4 bytes)
    loss_points_per_epoch: int = 50  # the stored loss series is downsampled to about this many
    threads: int = 0  # CPU threads of PyTorch; 0 = automatic (training/threads.py: physical cores, ≤ 8)
    loader_workers: int | str = "auto"  # batch-collating processes; auto = 2 on CUDA, 0 elsewhere (loader.py)

    def __post_init__(self) -> None:
        for p in TRAIN_PARAMS:
            object.__setattr__(self, p.name, p.validate(getattr(self, p.name)))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> TrainConfig:
        """Build from a plain mapping (CLI flags, a form, a stored run); unknown keys are an error."""
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training setting(s) {unknown}; known: {sorted(known)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def resolved_for(self, n_train_samples: int) -> TrainConfig:
        """This config with an automatic batch size replaced by :func:`auto_batch_size` (idempotent)."""
        if self.batch_size != AUTO_BATCH:
            return self
        return replace(self, batch_size=auto_batch_size(n_train_samples))

    def with_(self, **changes: Any) -> TrainConfig:
        return replace(self, **changes)


TRAIN_PARAMS: tuple[Param, ...] = (
    Param("lr", "float", 0.001, "Adam learning rate", low=1e-7, high=10.0,
          search=(0.001, 0.003, 0.005, 0.008, 0.01)),  # the paper's grid (§V-A-4)
    Param("weight_decay", "float", 0.0, "L2 weight decay (Adam)", low=0.0, high=1.0),
    Param("amsgrad", "bool", False, "Use the AMSGrad variant of Adam"),
    Param("batch_size", "int", AUTO_BATCH,
          "Training samples per batch; 0 = automatic: at least 20 steps per epoch, between 32 and the "
          "paper's 512", low=0, high=1_000_000),
    Param("max_epochs", "int", 50, "Maximum number of epochs", low=1, high=100_000),
    Param("patience", "int", 10, "Stop after this many epochs without improvement", low=1, high=100_000),
    Param(
        "criterion",
        "choice",
        AUTHORS_CRITERION,
        "Validation rule for the best epoch: 'authors' = relative gain of H@20 plus relative gain of "
        "M@20 > 0, or a single metric such as hit@20, mrr@10, ndcg@20",
        choices=CRITERIA,
    ),
    Param("grad_clip", "float", 0.0, "Clip the gradient's global L2 norm to this (0 = off)", low=0.0, high=1e6),
    Param("seed", "int", 42, "Random seed (initialisation, shuffling, dropout)", low=0, high=2**31 - 1),
    Param("device", "str", "auto", "auto (CUDA → MPS → CPU), cpu, cuda, cuda:N or mps"),
    Param("amp", "bool", False, "Mixed precision where it pays: bf16 (or fp16) on CUDA, bf16 on CPUs with AMX; "
          "elsewhere the run stays fp32 and its log says so"),
    Param("eval_batch_size", "int", 1024, "Sessions per evaluation batch", low=1, high=1_000_000),
    Param("exclude_seen_items", "bool", False, "Never recommend items already in the session (off in the paper)"),
    Param(
        "train_target_op",
        "choice",
        "oracle",
        "How the target operation is given when training and selecting the best epoch",
        choices=("oracle", "unknown"),
    ),
    Param("eval_memory_mb", "int", 512, "Memory budget of one evaluation score block (MiB)", low=1, high=1_000_000),
    Param("loss_points_per_epoch", "int", 50, "Stored loss points per epoch (downsampled)", low=1, high=100_000),
    Param("threads", "int", 0,
          "Processor threads used for training; 0 = automatic (the physical cores, at most 8)", low=0, high=1024),
    Param("loader_workers", "choice", "auto",
          "Processes that prepare the next training batches while the model trains; 0 = prepare them in the "
          "training process; auto = 2 on a CUDA GPU (the preparation then overlaps the GPU's work), 0 on the "
          "processor (the training already uses every core). Results are the same for every choice. In the "
          "desktop app the processes are started fresh ('forkserver'), never as copies of the app",
          choices=("auto", 0, 1, 2, 3, 4, 6, 8)),
)

assert [p.name for p in TRAIN_PARAMS] == [f.name for f in fields(TrainConfig)], "schema and dataclass differ"


def resolve_device(spec: str) -> torch.device:
    """``auto`` → CUDA, else MPS, else CPU; an explicit device is checked to exist."""
    import torch  # (here: the settings schema is read by `embsr --help`, which must not wait for PyTorch)

    spec = spec.strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ValueError(f"device: expected auto, cpu, cuda, cuda:N or mps, got {spec!r}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device: CUDA was asked for but no CUDA GPU is available to PyTorch")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device: {spec} does not exist ({torch.cuda.device_count()} CUDA device(s))")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device: MPS was asked for but is not available")
    return device
