"""Generate-synthetic-dataset dialog: every parameter of ``embsr_core.data.demo.import_synthetic``."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from embsr_core.data.events import JD_OPERATIONS
from embsr_core.data.synthetic import DEFAULT_SIGNAL

TIPS = {
    "name": "Dataset name in the store; a suffix such as (2) is added when the name is taken",
    "n_sessions": "How many sessions to generate (JD-like lengths: 5–50 micro-behaviors each)",
    "n_items": "Catalogue size; must be at least twice the number of categories",
    "n_categories": "Item categories; each intent moves within or across categories",
    "signal": "Probability that a macro-item's operations reveal the user's intent, which decides the next "
              "item. 0 = operations carry no information; 1 = always informative",
    "seed": "Random seed: the same parameters and seed give the same dataset",
    "operations": "Operation names, comma-separated (at least 2, distinct), mapped onto the JD operation roles "
                  "in order; empty = the ten JD operations",
}


class SyntheticDialog(QDialog):
    """``parameters()`` gives the keyword arguments of ``import_synthetic`` (plus ``name``)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Generate synthetic dataset")
        layout = QVBoxLayout(self)
        intro = QLabel("Synthetic sessions with a planted micro-behavior signal (see docs/synthetic.md): "
                       "the next item depends on the user's intent, which only <i>pairs</i> of operations "
                       "reveal. Hover a field for details.", self)
        intro.setWordWrap(True)
        intro.setObjectName("Muted")
        layout.addWidget(intro)
        form = QFormLayout()
        self.name = QLineEdit("Synthetic", self)
        self.n_sessions = self._spin(1, 5_000_000, 20_000, 1_000)
        self.n_items = self._spin(2, 10_000_000, 2_000, 100)
        self.n_categories = self._spin(1, 1_000_000, 40, 1)
        self.signal = QDoubleSpinBox(self)
        self.signal.setRange(0.0, 1.0)
        self.signal.setSingleStep(0.05)
        self.signal.setDecimals(2)
        self.signal.setValue(DEFAULT_SIGNAL)
        self.seed = self._spin(0, 2**31 - 1, 0, 1)
        self.operations = QLineEdit(self)
        self.operations.setPlaceholderText(", ".join(JD_OPERATIONS[:3]) + ", …  (empty = JD operations)")
        rows = (("Name", "name", self.name), ("Sessions", "n_sessions", self.n_sessions),
                ("Items", "n_items", self.n_items), ("Categories", "n_categories", self.n_categories),
                ("Signal", "signal", self.signal), ("Seed", "seed", self.seed),
                ("Operations", "operations", self.operations))
        for label, key, widget in rows:
            widget.setObjectName(f"synthetic_{key}")
            widget.setToolTip(TIPS[key])
            form.addRow(label, widget)
            form.labelForField(widget).setToolTip(TIPS[key])
        layout.addLayout(form)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Generate")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(460, self.sizeHint().height())

    def _spin(self, low: int, high: int, value: int, step: int) -> QSpinBox:
        spin = QSpinBox(self)
        spin.setRange(low, high)
        spin.setValue(value)
        spin.setSingleStep(step)
        spin.setGroupSeparatorShown(True)
        return spin

    def parameters(self) -> dict[str, Any]:
        ops = [o.strip() for o in self.operations.text().split(",") if o.strip()]
        return {
            "name": self.name.text().strip() or "Synthetic",
            "n_sessions": self.n_sessions.value(),
            "n_items": self.n_items.value(),
            "n_categories": self.n_categories.value(),
            "signal": self.signal.value(),
            "seed": self.seed.value(),
            "operations": ops or None,
        }
