"""A setting has one label everywhere an analyst meets it: the Train form, the Tune dialog, a run's details."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QFormLayout, QLabel

from app.widgets.param_form import ParamForm
from app.widgets.setting_labels import setting_label
from app.widgets.tune_dialog import knob_label
from embsr_core.models.registry import get_spec, list_specs
from embsr_core.training.config import TRAIN_PARAMS


def _form_labels(form: ParamForm) -> list[str]:
    layout = form.layout()
    assert isinstance(layout, QFormLayout)
    out = []
    for row in range(layout.rowCount()):
        item = layout.itemAt(row, QFormLayout.ItemRole.LabelRole)
        if item is not None and isinstance(item.widget(), QLabel):
            out.append(item.widget().text())
    return out


@pytest.mark.parametrize("model", [s.name for s in list_specs()])
def test_tune_dialog_and_train_form_use_the_same_labels(qtbot, model: str) -> None:
    params = get_spec(model).params
    form = ParamForm(params)
    qtbot.addWidget(form)
    expected = [setting_label(p.name, p.help) for p in params]
    assert _form_labels(form) == expected
    assert [knob_label(p.name, model) for p in params] == expected


def test_training_settings_have_analyst_labels_not_cli_names() -> None:
    for p in TRAIN_PARAMS:
        label = knob_label(p.name, "EMBSR")
        assert "_" not in label and label[:1].isupper(), (p.name, label)
    assert knob_label("lr", "EMBSR") == "Learning rate"
    assert setting_label("min_item_support") == "Min item support"  # no help text: the name made readable
    assert setting_label("x", "Adam learning rate (paper grid)") == "Adam learning rate"
