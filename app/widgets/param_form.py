"""A form built from a list of :class:`embsr_core.models.registry.Param` (model and training schemas).

Each parameter gets the widget its type asks for, a tooltip with its help, range and default, and is
validated with ``Param.validate`` itself, so the form accepts exactly what the CLI accepts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from app.widgets.setting_labels import ANALYST_HELP, setting_label
from embsr_core.models.registry import Param

INT_LIMIT = 2**31 - 1


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def tooltip(param: Param) -> str:
    help_text = param.help[:1].upper() + param.help[1:]
    parts = [ANALYST_HELP[param.name], f"Details: {param.help}"] if param.name in ANALYST_HELP else [help_text]
    if param.low is not None or param.high is not None:
        low = "−∞" if param.low is None else _number(param.low)
        high = "∞" if param.high is None else _number(param.high)
        parts.append(f"Range: {low} … {high}")
    if param.choices:
        parts.append("Choices: " + ", ".join(str(c) for c in param.choices))
    parts.append(f"Paper default: {_number(param.default)}")
    return "\n".join(parts)


class ParamForm(QWidget):
    """``values()`` → validated dict (``ValueError`` listing every bad field), ``reset()`` → defaults.

    ``choices`` turns a ``str`` parameter into an editable combo (e.g. the device: auto / cpu / cuda:0).
    ``changed`` fires on every edit; ``errors()`` says which fields are invalid right now.
    """

    changed = Signal()

    def __init__(
        self,
        params: Sequence[Param],
        parent: QWidget | None = None,
        *,
        choices: dict[str, list[tuple[str, str]]] | None = None,
        initial: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(parent)
        self.params = tuple(params)
        self._choices = choices or {}
        self.widgets: dict[str, QWidget] = {}
        self._error_labels: dict[str, QLabel] = {}
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.setHorizontalSpacing(14)
        form.setVerticalSpacing(7)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        for p in self.params:
            widget = self._make(p)
            widget.setObjectName(f"param_{p.name}")
            widget.setToolTip(tooltip(p))
            label = QLabel(setting_label(p.name, p.help), self)
            label.setToolTip(tooltip(p))
            form.addRow(label, widget)
            error = QLabel(self)
            error.setObjectName("ErrorText")
            error.setWordWrap(True)
            error.hide()
            form.addRow("", error)
            self.widgets[p.name] = widget
            self._error_labels[p.name] = error
        self.set_values({p.name: p.default for p in self.params} | dict(initial or {}))

    # building --------------------------------------------------------------------------------------
    def _make(self, p: Param) -> QWidget:
        if p.type == "bool":
            box = QCheckBox(self)
            box.toggled.connect(self._on_edit)
            return box
        if p.type == "choice":
            combo = QComboBox(self)
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)
            for c in p.choices:
                combo.addItem(str(c), c)
            combo.currentIndexChanged.connect(self._on_edit)
            return combo
        if p.type == "int" and (p.high is None or p.high <= INT_LIMIT):
            spin = QSpinBox(self)
            low = int(p.low) if p.low is not None else -INT_LIMIT
            spin.setRange(low, int(p.high) if p.high is not None else INT_LIMIT)
            spin.setAccelerated(True)
            spin.valueChanged.connect(self._on_edit)
            return spin
        if p.name in self._choices:
            combo = QComboBox(self)
            combo.setEditable(True)
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)
            for value, text in self._choices[p.name]:
                combo.addItem(text, value)
            combo.currentTextChanged.connect(self._on_edit)
            return combo
        edit = QLineEdit(self)  # floats (lr 1e-3 reads better than a spin box) and strings
        edit.textChanged.connect(self._on_edit)
        return edit

    # values ----------------------------------------------------------------------------------------
    def _raw(self, p: Param) -> Any:
        w = self.widgets[p.name]
        if isinstance(w, QCheckBox):
            return w.isChecked()
        if isinstance(w, QSpinBox):
            return w.value()
        if isinstance(w, QComboBox):
            if w.isEditable():
                index = w.findText(w.currentText())
                return w.itemData(index) if index >= 0 else w.currentText().strip()
            return w.currentData()
        assert isinstance(w, QLineEdit)
        return w.text().strip()

    def set_values(self, values: dict[str, Any]) -> None:
        for p in self.params:
            if p.name not in values:
                continue
            value, w = values[p.name], self.widgets[p.name]
            w.blockSignals(True)
            if isinstance(w, QCheckBox):
                w.setChecked(bool(value))
            elif isinstance(w, QSpinBox):
                w.setValue(int(value))
            elif isinstance(w, QComboBox):
                index = w.findData(value)
                if index < 0:
                    index = w.findText(str(value))
                if index >= 0:
                    w.setCurrentIndex(index)
                elif w.isEditable():
                    w.setEditText(str(value))
            elif isinstance(w, QLineEdit):
                w.setText(_number(value))
            w.blockSignals(False)
        self._on_edit()

    def reset(self) -> None:
        """Back to the schema's defaults (the paper's settings)."""
        self.set_values({p.name: p.default for p in self.params})

    def errors(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for p in self.params:
            try:
                p.validate(self._raw(p))
            except ValueError as exc:
                out[p.name] = str(exc)
        return out

    def values(self) -> dict[str, Any]:
        """Validated values; raises ``ValueError`` naming every invalid field."""
        errors = self.errors()
        if errors:
            raise ValueError("; ".join(errors.values()))
        return {p.name: p.validate(self._raw(p)) for p in self.params}

    def changed_values(self) -> dict[str, Any]:
        """Only the values that differ from the defaults (what ``-p NAME=VALUE`` would carry)."""
        return {k: v for k, v in self.values().items() if v != next(p.default for p in self.params if p.name == k)}

    @Slot()
    def _on_edit(self, *_args: object) -> None:
        errors = self.errors()
        for name, label in self._error_labels.items():
            text = errors.get(name, "")
            label.setText(text)
            label.setVisible(bool(text))
            widget = self.widgets[name]
            widget.setProperty("invalid", bool(text))
        self.changed.emit()
