"""What the app runs on: compute devices and library versions (for the status bar and About box).

PyTorch is imported by the first question about devices, not with this module: the window opens
first and fills in its device afterwards.
"""

from __future__ import annotations

import platform
import sys

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import qVersion

import embsr_core


def cuda_devices() -> list[tuple[str, str]]:
    """(torch device string, human name) of each visible CUDA device; empty without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return []
    return [(f"cuda:{i}", torch.cuda.get_device_name(i)) for i in range(torch.cuda.device_count())]


def device_choices() -> list[tuple[str, str]]:
    """Choices for the device preference: auto, CPU, then each CUDA device."""
    choices = [("auto", "Auto (CUDA when available)"), ("cpu", "CPU")]
    choices += [(dev, f"{dev.upper()} · {name}") for dev, name in cuda_devices()]
    return choices


def resolve_device(preference: str) -> str:
    """The torch device string a preference means on this machine (unknown CUDA index → CPU)."""
    cuda = dict(cuda_devices())
    if preference == "auto":
        return next(iter(cuda), "cpu")
    if preference.startswith("cuda"):
        return preference if preference in cuda else "cpu"
    return "cpu"


def device_label(device: str) -> str:
    """Status-bar text: ``CPU`` or ``CUDA · <GPU name>``."""
    if device.startswith("cuda"):
        name = dict(cuda_devices()).get(device, device)
        return f"CUDA · {name}"
    return "CPU"


def versions() -> dict[str, str]:
    import torch

    frozen = " (frozen)" if getattr(sys, "frozen", False) else ""
    return {
        "EMBSR Workbench": embsr_core.__version__,
        "Python": platform.python_version(),
        "PyTorch": torch.__version__,
        "Qt": qVersion(),
        "PySide6": pyside_version,
        "Platform": f"{platform.system()} {platform.machine()}{frozen}",
    }
