"""Runs page over runs made by the real engine: table, sort/filter, curves, Table III, export, refresh."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from app.pages.runs_models import RUN_ID_ROLE
from app.widgets.run_detail import format_size
from embsr_core import reports
from embsr_core.store import run_details, runs_repo

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
        assert _cell(page, row, "H@20 % (test)") == f"{100 * final['hit@20']:.2f}"
        assert _cell(page, row, "M@20 % (test)") == f"{100 * final['mrr@20']:.2f}"

    # sorting by a metric column uses the numbers, filtering matches words anywhere in the row
    page.table.sortByColumn(_column(page, "H@20 % (test)"), Qt.SortOrder.DescendingOrder)
    values = [float(_cell(page, r, "H@20 % (test)")) for r in range(2)]
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
    assert x.tolist() == sel["epoch"].astype(float).tolist()
    assert y.tolist() == pytest.approx((100 * sel["value"]).tolist())  # drawn in percent
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
    assert page.cmp_legend.text().startswith("Scores in percent on the test split")
    p_col = 1 + len(table.columns)
    other_row = [i.id for i in table.runs].index(other)
    assert page.comparison_cell(other_row, p_col)[0] == f"{p:.3g}"


def test_export_both_csv_files_round_trip(page, real_runs, tmp_path):
    ids = list(real_runs.run_ids)
    page.select_runs(ids)
    metrics_path, comparison_path = page.export_selected(path=str(tmp_path / "my comparison"))
    assert comparison_path == tmp_path / "my comparison.csv"
    assert metrics_path == tmp_path / "my comparison_per_epoch.csv"
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
    assert x.tolist() == [1.0] and y.tolist() == [25.0]

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


def _row_rect(page, run_id: int):
    row = next(r for r in range(page.proxy.rowCount()) if page.proxy.index(r, 0).data(RUN_ID_ROLE) == run_id)
    return page.table.visualRect(page.proxy.index(row, 1))


def _double_click_run(page, qtbot, run_id: int) -> None:
    """Press-release then double-click, as a mouse does (Qt opens only on the row that was pressed)."""
    centre = _row_rect(page, run_id).center()
    qtbot.mouseClick(page.table.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    qtbot.mouseDClick(page.table.viewport(), Qt.MouseButton.LeftButton, pos=centre)


def test_double_click_shows_details_and_notes_and_tags_are_stored(page, real_runs, qtbot):
    embsr, sgnn = real_runs.run_ids
    _double_click_run(page, qtbot, embsr)
    dialog = page.detail
    assert dialog is not None and dialog.isVisible() and dialog.run_id == embsr
    groups = [dialog.settings.topLevelItem(i).text(0) for i in range(dialog.settings.topLevelItemCount())]
    assert groups[:4] == ["Run", "Dataset and preprocessing", "Model settings", "Training settings"]
    prep = dialog.settings.topLevelItem(1)
    assert prep.child(0).text(1) == "tiny-demo"
    rows = {prep.child(i).text(0): (prep.child(i).text(1), prep.child(i).text(2)) for i in range(prep.childCount())}
    stored_prep = runs_repo.get_run(real_runs.store, embsr).config["prep"]
    assert rows["Steps kept per session"][0] == str(stored_prep["max_len"])
    # the log is the one stored while the run trained
    stored = run_details.run_log(real_runs.store, embsr)
    assert stored and dialog.log.toPlainText().splitlines() == [line.render() for line in stored]
    assert "finished after 2 epochs" in dialog.log.toPlainText()
    # files: both checkpoints with their sizes on disk
    run = runs_repo.get_run(real_runs.store, embsr)
    names = {dialog.files.item(r, 0).text(): dialog.files.item(r, 2).text() for r in range(dialog.files.rowCount())}
    best = Path(run.best_checkpoint_path)
    assert names[best.name] == format_size(best.stat().st_size) and "vocab.json" in names
    assert set(dialog.curves.items) == {embsr}

    # type a note and tags, click Save, close, reopen by double-click: they are back
    dialog.tabs.setCurrentIndex(4)
    assert not dialog.save_button.isEnabled()
    qtbot.mouseClick(dialog.notes.viewport(), Qt.MouseButton.LeftButton)
    dialog.notes.selectAll()  # the session's runs are shared: another test may have noted or tagged this one
    qtbot.keyClicks(dialog.notes, "dropout 0.1 looks best")
    dialog.tags.setFocus()
    dialog.tags.selectAll()
    qtbot.keyClicks(dialog.tags, "baseline, tiny ,baseline")
    assert dialog.save_button.isEnabled()
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert dialog.save_state.text() == "Saved" and dialog.tags.text() == "baseline, tiny"
    qtbot.mouseClick(dialog.close_button, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()
    _double_click_run(page, qtbot, embsr)
    again = page.detail
    assert again is not dialog and again.notes.toPlainText() == "dropout 0.1 looks best"
    assert again.tags.text() == "baseline, tiny"
    again.close()

    # the Runs page lists the tags and filters by tag, model and dataset
    assert _cell(page, [page.proxy.index(r, 0).data(RUN_ID_ROLE) for r in range(2)].index(embsr), "Tags") == (
        "baseline, tiny")
    page.tag_filter.setCurrentIndex(page.tag_filter.findData("tiny"))
    assert page.proxy.rowCount() == 1 and page.proxy.index(0, 0).data(RUN_ID_ROLE) == embsr
    page.tag_filter.setCurrentIndex(0)
    page.model_filter.setCurrentIndex(page.model_filter.findData("SGNN-Self"))
    assert page.proxy.rowCount() == 1 and page.proxy.index(0, 0).data(RUN_ID_ROLE) == sgnn
    page.model_filter.setCurrentIndex(0)
    page.dataset_filter.setCurrentIndex(page.dataset_filter.findData("tiny-demo"))
    assert page.proxy.rowCount() == 2
    page.dataset_filter.setCurrentIndex(0)
    run_details.set_tags(real_runs.store, embsr, [])
    run_details.set_notes(real_runs.store, embsr, "")


def test_table_split_is_chosen_and_named_in_the_headers(page, real_runs, qtbot):
    embsr, _sgnn = real_runs.run_ids
    assert "H@20 % (test)" in page.model.headers()
    page.table_split.setCurrentIndex(page.table_split.findData("valid"))
    assert "H@20 % (validation)" in page.model.headers() and "M@20 % (validation)" in page.model.headers()
    run = runs_repo.get_run(real_runs.store, embsr)
    frame = runs_repo.metrics_frame(real_runs.store, [embsr])
    at_best = frame[(frame.split == "valid") & (frame.epoch == run.best_epoch) & (frame.target_op == "oracle")
                    & (frame.name == "hit@20")]["value"].iloc[0]
    row = [page.proxy.index(r, 0).data(RUN_ID_ROLE) for r in range(2)].index(embsr)
    assert _cell(page, row, "H@20 % (validation)") == f"{100 * at_best:.2f}"
    page.col_agg.setCurrentIndex(page.col_agg.findData("max"))
    assert "H@20 % (validation, max over epochs)" in page.model.headers()
    page.col_agg.setCurrentIndex(page.col_agg.findData("best"))
    page.table_split.setCurrentIndex(page.table_split.findData("test"))


def test_runs_of_another_dataset_are_flagged_not_compared(page, real_runs, qtbot):
    from embsr_core.data.demo import import_synthetic
    from embsr_core.store.repository import delete_dataset, get_dataset

    store = real_runs.store
    embsr, _sgnn = real_runs.run_ids
    import_synthetic(store, "other-demo", n_sessions=60, n_items=40, n_categories=4, seed=3)
    other_dataset = get_dataset(store, "other-demo").id
    other = runs_repo.create_run(store, dataset_id=other_dataset, model_name="EMBSR", config={}, name="elsewhere",
                                 prep_hash="another")
    runs_repo.add_epoch_metrics(store, other, 1, "test", "oracle", {"hit@20": 0.9, "mrr@20": 0.5})
    runs_repo.update_run(store, other, epochs_done=1, best_epoch=1)
    runs_repo.mark_ended(store, other, "finished")
    try:
        page.reload()
        page.select_runs([embsr, other])
        table = page.cmp_model.table
        assert table is not None and not table.comparable
        assert page.cmp_model.rowCount() == 2  # no Imp. row
        assert "Not comparable" in page.p_label.text() and "different datasets" in page.p_label.text()
        assert not page.cmp_chosen.isEnabled()
        assert not any(page.comparison_cell(r, c)[1] for r in range(2) for c in range(1, 11))  # nothing bold
    finally:
        runs_repo.delete_run(store, other)
        delete_dataset(store, "other-demo")
        page.reload()
    page.select_runs(list(real_runs.run_ids))
    assert page.cmp_chosen.isEnabled() and page.cmp_model.table.comparable


def test_a_live_runs_detail_follows_its_stored_log(page, real_runs, qtbot):
    store = real_runs.store
    dataset_id = runs_repo.get_run(store, real_runs.run_ids[0]).dataset_id
    run_id = runs_repo.create_run(store, dataset_id=dataset_id, model_name="EMBSR", config={}, name="live log")
    runs_repo.mark_started(store, run_id, "cpu")
    try:
        run_details.append_run_log(store, run_id, ["run started"])
        page.reload()
        page.select_runs([run_id])
        qtbot.mouseClick(page.details_button, Qt.MouseButton.LeftButton)
        dialog = page.detail
        assert dialog.isVisible() and dialog.run_id == run_id
        assert dialog.log.toPlainText().endswith("run started") and dialog.files.rowCount() == 0
        run_details.append_run_log(store, run_id, ["epoch 1, validation: H@20 12.00 %"])
        qtbot.waitUntil(lambda: dialog.log.toPlainText().endswith("H@20 12.00 %"), timeout=6000)  # its 2 s poll
        assert len(dialog.log.toPlainText().splitlines()) == 2
        dialog.close()
    finally:
        runs_repo.mark_ended(store, run_id, "stopped")
        runs_repo.delete_run(store, run_id)
        page.reload()


def test_export_button_asks_for_a_file_name(page, real_runs, qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    asked = []

    def save_dialog(parent, title, start, filters):
        asked.append((title, start, filters))
        return str(tmp_path / "table3"), filters

    monkeypatch.setattr(QFileDialog, "getSaveFileName", save_dialog)
    page.select_runs(list(real_runs.run_ids))
    qtbot.mouseClick(page.export_button, Qt.MouseButton.LeftButton)
    assert asked and asked[0][1].endswith(".csv") and "CSV" in asked[0][2]
    assert (tmp_path / "table3.csv").is_file() and (tmp_path / "table3_per_epoch.csv").is_file()
    assert "fractions" in page.message.text()
    page.select_runs([])


def test_the_page_and_the_detail_window_speak_to_an_analyst(page, real_runs, qtbot):
    from _gui_text import CLI_SPEAK, cli_speak, visible_texts

    for old in ("choose another name (--name)", "No runs yet (or `embsr train`).", "run embsr datasets delete x"):
        assert CLI_SPEAK.search(old)  # what the check looks for
    assert not CLI_SPEAK.search("H@20 % (test) – 41.23")
    page.select_runs(list(real_runs.run_ids))
    for tab in range(page.tabs.count()):
        page.tabs.setCurrentIndex(tab)
    dialog = page.open_details(real_runs.run_ids[0])
    assert len(visible_texts(page)) > 40 and len(visible_texts(dialog)) > 20
    assert cli_speak(page) == [] and cli_speak(dialog) == []
    dialog.close()
    page.select_runs([])
