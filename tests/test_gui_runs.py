"""Runs page over runs made by the real engine: table, sort/filter, curves, Table III, export, refresh."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from embsr_core import reports
from embsr_core.store import runs_repo

pytestmark = pytest.mark.gui


@pytest.fixture()
def page(real_runs, qtbot):
    from app.application import create_context
    from app.pages.runs import RunsPage

    context = create_context(cli_url=real_runs.url, theme="light")
    widget = RunsPage(context)
    qtbot.addWidget(widget)
    widget.resize(1100, 700)
    widget.show()
    yield widget
    context.runner.shutdown()


def _column(page, header: str) -> int:
    return page.model.headers().index(header)


def _cell(page, row: int, header: str) -> str:
    return page.proxy.index(row, _column(page, header)).data()


def test_lists_sorts_filters_and_compares(page, real_runs):
    embsr, sgnn = real_runs.run_ids
    assert page.proxy.rowCount() == 2
    by_id = {int(_cell(page, r, "ID")): r for r in range(2)}
    assert _cell(page, by_id[embsr], "Model") == "EMBSR" and _cell(page, by_id[sgnn], "Model") == "SGNN-Self"
    assert {_cell(page, r, "Status") for r in range(2)} == {"finished"}
    assert "d=16" in _cell(page, 0, "Hyperparameters") and _cell(page, 0, "Dataset") == "tiny-demo"
    # best-epoch test H@20 / M@20 are the engine's final test metrics
    for run_id, row in by_id.items():
        final = runs_repo.final_metrics(real_runs.store, run_id)["oracle"]
        assert _cell(page, row, "H@20 best") == f"{final['hit@20']:.4f}"
        assert _cell(page, row, "M@20 best") == f"{final['mrr@20']:.4f}"

    # sorting by a metric column uses the numbers, filtering matches words anywhere in the row
    page.table.sortByColumn(_column(page, "H@20 best"), Qt.SortOrder.DescendingOrder)
    values = [float(_cell(page, r, "H@20 best")) for r in range(2)]
    assert values == sorted(values, reverse=True)
    page.filter_edit.setText("sgnn tiny")
    assert page.proxy.rowCount() == 1 and _cell(page, 0, "Model") == "SGNN-Self"
    page.filter_edit.setText("")
    page.status_filter.setCurrentIndex(page.status_filter.findData("failed"))
    assert page.proxy.rowCount() == 0
    page.status_filter.setCurrentIndex(0)

    # select both: one curve per run, its points are the stored validation values
    page.select_runs([embsr, sgnn])
    assert set(page.curves.items) == {embsr, sgnn}
    frame = runs_repo.metrics_frame(real_runs.store, [embsr])
    sel = frame[(frame["split"] == "valid") & (frame["metric"] == "hit") & (frame["k"] == 20)
                & (frame["target_op"] == "oracle")].sort_values("epoch")
    x, y = page.curves.series(embsr)
    assert x.tolist() == sel["epoch"].astype(float).tolist() and y.tolist() == sel["value"].tolist()
    page.curves.x_axis.setCurrentIndex(page.curves.x_axis.findData("wall"))
    x_wall, _ = page.curves.series(embsr)
    assert x_wall.tolist() == sel["wall_time"].tolist()
    page.curves.x_axis.setCurrentIndex(page.curves.x_axis.findData("epoch"))
    page.curves.metric.setCurrentIndex(page.curves.metric.findText("training loss"))
    losses = runs_repo.loss_frame(real_runs.store, [embsr]).sort_values("step")
    assert len(losses) > 0 and page.curves.series(embsr)[1].tolist() == losses["loss"].tolist()
    x_loss = page.curves.series(embsr)[0]
    assert np.all(np.diff(x_loss) > 0) and x_loss[-1] == losses["epoch"].max()  # epoch e ends at x = e
    page.curves.metric.setCurrentIndex(page.curves.metric.findText("H@20"))
    page.curves.smoothing.setValue(60)
    raw, smooth, _best = page.curves.items[embsr]
    assert smooth.isVisible() and raw.opts["pen"].color().alpha() < 255

    # Table III: bold = column max, underlined = the other value, Imp. row, Wilcoxon p from the engine
    table = page.cmp_model.table
    assert table is not None and [i.id for i in table.runs] == page._selected_ids
    for j in range(len(table.columns)):
        col = table.values[:, j]
        for i in range(len(table.runs)):
            _text, bold, underlined = page.comparison_cell(i, j + 1)
            if col[0] != col[1]:
                assert bold == (col[i] == col.max()) and underlined == (col[i] == col.min())
    imp_row = len(table.runs)
    assert page.comparison_cell(imp_row, 0)[0] == "Imp. %"
    other = next(i.id for i in table.runs if i.id != table.chosen_run_id)
    from embsr_core.training.significance import compare_runs

    p = compare_runs(real_runs.store, table.chosen_run_id, other, split="test", measure="mrr", k=20).p_value
    assert table.p_values[other] == p
    assert f"p = {p:.3g}" in page.p_label.text()
    p_col = 1 + len(table.columns)
    other_row = [i.id for i in table.runs].index(other)
    assert page.comparison_cell(other_row, p_col)[0] == f"{p:.3g}"


def test_export_both_csv_files_round_trip(page, real_runs, tmp_path):
    ids = list(real_runs.run_ids)
    page.select_runs(ids)
    metrics_path, comparison_path = page.export_selected(folder=str(tmp_path))
    assert metrics_path.exists() and comparison_path.exists()
    back = reports.read_metrics_csv(metrics_path)
    stored = runs_repo.metrics_frame(real_runs.store, ids)
    assert len(back) == len(stored) > 0
    key = ["run_id", "epoch", "split", "target_op", "metric", "k"]
    merged = back.merge(stored, on=key, suffixes=("_csv", "_db"), how="outer", indicator=True)
    assert (merged["_merge"] == "both").all()
    assert (merged["value_csv"] == merged["value_db"]).all()  # exact: every value round-trips
    same_wall = (merged["wall_time_csv"] == merged["wall_time_db"]) | (
        merged["wall_time_csv"].isna() & merged["wall_time_db"].isna())
    assert same_wall.all()
    assert set(back["model"]) == {"EMBSR", "SGNN-Self"} and set(back["dataset"]) == {"tiny-demo"}

    wide = pd.read_csv(comparison_path, encoding="utf-8")
    table = page.cmp_model.table
    for i, info in enumerate(table.runs):
        row = wide[wide["run_id"] == info.id].iloc[0]
        for j, label in enumerate(table.labels):
            assert row[label] == table.values[i, j] or (math.isnan(row[label]) and math.isnan(table.values[i, j]))


def test_live_run_refresh_resume_and_delete(page, real_runs, qtbot, monkeypatch):
    store = real_runs.store
    dataset_id = runs_repo.get_run(store, real_runs.run_ids[0]).dataset_id
    run_id = runs_repo.create_run(store, dataset_id=dataset_id, model_name="EMBSR", config={"train": {"lr": 0.002}},
                                  name="live one")
    runs_repo.mark_started(store, run_id, "cpu")
    qtbot.waitUntil(lambda: page.proxy.rowCount() == 3, timeout=5000)  # the page's own 2 s poll
    page.select_runs([run_id])
    assert _cell(page, page.table.selectionModel().selectedRows()[0].row(), "Status") == "running"
    assert not page.delete_button.isEnabled() and not page.resume_button.isEnabled()
    runs_repo.add_epoch_metrics(store, run_id, 1, "valid", "oracle", {"hit@20": 0.25, "mrr@20": 0.125}, 1.5)
    runs_repo.update_run(store, run_id, epochs_done=1, best_epoch=1)
    runs_repo.mark_ended(store, run_id, "stopped")
    page.poll()
    assert page.selected_infos()[0].status == "stopped" and page.resume_button.isEnabled()
    x, y = page.curves.series(run_id)
    assert x.tolist() == [1.0] and y.tolist() == [0.25]

    # resume goes through the shell's task runner into the engine; this run has no settings or
    # checkpoint, so it fails with a readable message and the page survives
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *args: shown.append(args[2]))
    task = page.resume_selected()
    qtbot.waitUntil(task.is_done, timeout=30000)
    assert task.state == "failed" and shown == [
        f"run {run_id} has no stored prep / model settings, so it cannot be resumed"]

    # a real stopped run resumes from its last checkpoint and ends finished
    sgnn = real_runs.run_ids[1]
    runs_repo.update_run(store, sgnn, status="stopped")
    page.poll()
    page.select_runs([sgnn])
    assert page.resume_button.isEnabled()
    task = page.resume_selected()
    qtbot.waitUntil(task.is_done, timeout=60000)
    assert task.state == "finished", task.error
    assert runs_repo.get_run(store, sgnn).status == "finished"
    page.poll()
    assert page.selected_infos()[0].status == "finished" and not page.resume_button.isEnabled()

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Cancel)
    assert not page.delete_selected()
    assert page.proxy.rowCount() == 3
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    page.select_runs([run_id])
    assert page.delete_selected()
    assert page.proxy.rowCount() == 2
    with pytest.raises(KeyError):
        runs_repo.get_run(store, run_id)
