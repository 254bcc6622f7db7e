"""How runs look everywhere in the GUI: status colours and metric values in percent.

Shared by the Runs page's tables and the run detail window (one convention: the store holds
fractions, the GUI shows percent with two decimals).
"""

from __future__ import annotations

import math

STATUS_COLORS = {  # readable on light and dark surfaces
    "running": "#2f7de1",
    "queued": "#8a8f99",
    "finished": "#2e9d57",
    "stopped": "#c98a12",
    "interrupted": "#d9731c",
    "failed": "#d64545",
}


def fmt_metric(value: float | None) -> str:
    """A stored fraction as a percentage with two decimals (``0.41234`` → ``"41.23"``); "–" when missing."""
    return "–" if value is None or not math.isfinite(value) else f"{100 * value:.2f}"
