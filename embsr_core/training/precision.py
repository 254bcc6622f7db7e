"""What a run's ``amp`` setting means on the device it runs on, decided in one place.

Reduced precision pays only where the hardware multiplies reduced-precision matrices natively:
CUDA GPUs (bf16 where the GPU has it, else fp16 with loss scaling) and CPUs with AMX tiles (Intel
Xeon from Sapphire Rapids on: bf16). On a CPU without AMX — AVX-512 BF16 alone, as on the machines
this project is measured on — bf16 autocast took 1.5–1.7× the fp32 step (`benchmarks/train_step.py
--precision bf16`), so there ``amp`` leaves the run in fp32 and the run's log says why. The layers
that need fp32 (the cosine scoring and its softmax over every item) switch autocast off themselves.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch


def cpu_has_bf16_tiles() -> bool:
    """Whether this CPU multiplies bf16 matrices in AMX tiles (where CPU bf16 pays)."""
    check = getattr(torch.cpu, "_is_amx_tile_supported", None)
    try:
        return bool(check()) if check is not None else False
    except RuntimeError:
        return False


@dataclass(frozen=True)
class Precision:
    """The arithmetic of a run's matrix products: fp32, or autocast to ``dtype`` on ``device_type``."""

    enabled: bool
    device_type: str
    dtype: torch.dtype = torch.float32
    scaled: bool = False  # fp16: gradients need the loss scaler
    note: str = ""  # why ``amp`` was not applied, for the run's log

    @property
    def label(self) -> str:
        return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.dtype, "fp32") if self.enabled else "fp32"

    def autocast(self) -> contextlib.AbstractContextManager[object]:
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)


def precision_for(amp: bool, device: torch.device, *, bf16_tiles: bool | None = None) -> Precision:
    """The precision ``amp`` gives on ``device`` (``bf16_tiles`` overrides the CPU check, for tests)."""
    kind = device.type
    if not amp:
        return Precision(False, kind)
    if kind == "cuda":
        if torch.cuda.is_bf16_supported():
            return Precision(True, kind, torch.bfloat16)
        return Precision(True, kind, torch.float16, scaled=True)
    if kind == "cpu":
        if cpu_has_bf16_tiles() if bf16_tiles is None else bf16_tiles:
            return Precision(True, kind, torch.bfloat16)
        return Precision(False, kind, note="mixed precision is off: this processor has no bf16 matrix unit (AMX), "
                                           "where bf16 runs slower than fp32")
    return Precision(False, kind, note=f"mixed precision is off: not supported on {kind}")
