"""Tune dialog and Leaderboard page, driven by clicking their real buttons (offscreen)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from _gui_helpers import context, wait_until, window  # noqa: F401  (fixtures)
from PySide6.QtCore import Qt

from app.jobs import TrainRequest
from app.pages.leaderboard import LeaderboardPage
from app.widgets.tune_dialog import TuneDialog
from embsr_core.data.demo import import_synthetic
from embsr_core.data.from_store import default_preset
from embsr_core.store import runs_repo
from embsr_core.store.repository import get_dataset
from embsr_core.training import TrainConfig
from embsr_core.training.leaderboard import BoardProgress

torch.set_num_threads(1)
SHOTS = os.environ.get("EMBSR_SCREENSHOTS")  # a folder to save the screens into, when set


def _dataset(ctx) -> tuple[int, str]:
    report = import_synthetic(ctx.store, "Small", n_sessions=240, n_items=60, n_categories=4)
    return report.dataset_id, report.dataset_name


def _request(ctx, model: str, max_epochs: int = 1) -> TrainRequest:
    dataset_id, name = _dataset(ctx)
    preset = default_preset(get_dataset(ctx.store, dataset_id))
    config = TrainConfig(max_epochs=max_epochs, patience=max_epochs, device="cpu", eval_batch_size=256)
    overrides = {"embedding_dim": 16} if model != "SKNN" else {}
    return TrainRequest(dataset_id, name, preset, {}, model, overrides, config)


def _save(widget, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        widget.grab().save(str(Path(SHOTS) / name))


def test_tune_dialog_runs_trials_and_reports_the_best_run(qtbot, context) -> None:  # noqa: F811
    dialog = TuneDialog(context, _request(context, "SKNN"))
    qtbot.addWidget(dialog)
    dialog.show()
    assert "Neighbour sessions (k)" in dialog.space_label.text()
    dialog.trials.setValue(2)
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    assert not dialog.start_button.isEnabled() and dialog.cancel_button.isEnabled()
    wait_until(qtbot, lambda: dialog.task is not None and dialog.task.is_done(), 60_000)
    assert dialog.task.state == "finished", dialog.status.text()
    assert dialog.table.rowCount() == 2
    assert dialog.table.item(0, 5).text() == "your current settings"
    assert dialog.table.item(0, 5).toolTip() == "your current settings"  # a long note wraps and has its tooltip
    assert dialog.table.horizontalScrollBar().maximum() == 0
    assert "Best so far" in dialog.best_label.text()
    result = dialog.result
    assert result is not None and f"saved as run {result.best_run_id}" in dialog.status.text()
    assert runs_repo.get_run(context.store, result.best_run_id).is_best_trial
    assert dialog.start_button.isEnabled() and dialog.start_button.text() == "Tune again"
    _save(dialog, "tune_dialog.png")


def test_tune_dialog_stop_ends_the_search(qtbot, context) -> None:  # noqa: F811
    dialog = TuneDialog(context, _request(context, "NARM", max_epochs=30))
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    wait_until(qtbot, lambda: dialog.table.rowCount() >= 1, 60_000)  # the first try is training
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    wait_until(qtbot, lambda: dialog.task.is_done(), 60_000)
    assert dialog.task.state == "cancelled" and dialog.status.text().startswith("Stopped")
    stopped = [r for r in runs_repo.list_runs(context.store) if r.model_name == "NARM"]
    assert len(stopped) == 1 and stopped[0].status == "stopped"


def _board_page(qtbot, ctx, models: list[str]) -> LeaderboardPage:
    """The Leaderboard page on a small synthetic dataset: ``models`` ticked, 1 minute, 1 epoch per try."""
    _dataset(ctx)
    page = LeaderboardPage(ctx)
    qtbot.addWidget(page)
    page.resize(1180, 760)
    page.show()
    page.reload_datasets()
    page.set_models(models)
    page.minutes.setValue(1)
    page.epochs.setValue(1)
    return page


def test_leaderboard_page_compares_models_and_a_second_start_keeps_them(qtbot, context) -> None:  # noqa: F811
    page = _board_page(qtbot, context, ["S-POP", "SKNN"])
    assert "2 models · 30 s of tuning each" in page.share.text()
    qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
    assert page.stop_button.isEnabled() and not page.start_button.isEnabled()
    wait_until(qtbot, lambda: page.task is not None and page.task.is_done(), 90_000)
    assert page.task.state == "finished", page.status.text()
    assert page.result_table.rowCount() == 2 and page.model_table.rowCount() == 2
    models = {page.result_table.item(r, 0).text() for r in range(2)}
    assert models == {"S-POP", "SKNN"}
    p_cells = {page.result_table.item(r, 7).text() for r in range(2)}
    assert "best" in p_cells and len(p_cells) == 2  # the other row has a p-value
    run_ids = {int(page.result_table.item(r, 8).text()) for r in range(2)}
    assert all(runs_repo.get_run(context.store, r).status == "finished" for r in run_ids)
    _save(page, "leaderboard.png")

    qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)  # same settings: nothing is redone
    wait_until(qtbot, lambda: page.task.is_done(), 60_000)
    assert {page.model_table.item(r, 1).text() for r in range(2)} == {"done earlier (kept)"}
    assert page.result_table.rowCount() == 2


def test_leaderboard_page_trains_with_the_patience_shown(qtbot, context, monkeypatch) -> None:  # noqa: F811
    """The page's epoch and patience fields reach the board's training settings, as --max-epochs and
    --patience do on the command line (so the same board continues from either)."""
    from app.pages import leaderboard as page_module

    _dataset(context)
    seen: list[TrainConfig] = []
    monkeypatch.setattr(page_module, "leaderboard_job",
                        lambda store, ds, models, budget, config, *_, **__: seen.append(config))
    page = LeaderboardPage(context)
    qtbot.addWidget(page)
    page.show()
    page.reload_datasets()
    page.set_models(["S-POP"])
    page.epochs.setValue(20)
    page.patience.setValue(5)
    qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
    assert not page.patience.isEnabled()
    wait_until(qtbot, lambda: page.task is not None and page.task.is_done(), 30_000)
    assert [(c.max_epochs, c.patience) for c in seen] == [(20, 5)] and page.patience.isEnabled()


@pytest.mark.usefixtures("window")
def test_train_page_tune_button_opens_the_dialog(qtbot, window) -> None:  # noqa: F811
    _dataset(window.context)
    train = window.page("train")
    window.show_page("train")
    train.reload_datasets()
    qtbot.mouseClick(train.tune_button, Qt.MouseButton.LeftButton)
    dialog = train.tune_dialog
    assert isinstance(dialog, TuneDialog) and dialog.isVisible()
    assert dialog.request.model_name == train.model_combo.currentData()
    dialog.close()
    assert "leaderboard" in window.page_ids()


def test_leaderboard_page_over_seeds_shows_mean_and_spread(qtbot, context) -> None:  # noqa: F811
    page = _board_page(qtbot, context, ["S-POP", "NARM"])
    page.seeds.setValue(2)
    qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
    assert not page.seeds.isEnabled()
    wait_until(qtbot, lambda: page.task is not None and page.task.is_done(), 120_000)
    assert page.task.state == "finished", page.status.text()
    rows = {page.result_table.item(r, 0).text(): r for r in range(page.result_table.rowCount())}
    assert set(rows) == {"S-POP", "NARM"}
    narm = rows["NARM"]
    assert " ± " in page.result_table.item(narm, 3).text()  # H@20 over two seeds
    assert len(page.result_table.item(narm, 8).text().split(", ")) == 2  # its two runs
    assert " ± " not in page.result_table.item(rows["S-POP"], 3).text()  # fitted: one run serves every seed
    assert "over each model's seeds" in page.result_note.text()
    narm_row = next(r for r in range(page.model_table.rowCount()) if page.model_table.item(r, 0).text() == "NARM")
    assert page.model_table.item(narm_row, 1).text() == "done"
    page._on_progress(BoardProgress("b", "NARM", 1, 2, "running", None, None, None, seed=43))  # as while repeating
    assert page.model_table.item(narm_row, 1).text() == "seed 43…" and "seed 43" in page.status.text()
    # over seeds the ETA is an estimate, also while a model is still being tuned; with one seed a bound
    page._on_progress(BoardProgress("b", "NARM", 1, 2, "running", None, None, 600.0, eta_is_bound=False))
    assert "left (estimate)" in page.status.text() and "at most" not in page.status.text()
    page._on_progress(BoardProgress("b", "NARM", 1, 2, "running", None, None, 600.0))
    assert "left at most" in page.status.text()
    page._on_progress(BoardProgress("b", "NARM", 1, 2, "running", None, None, None, seed=43, eta_is_bound=False))
    _save(page, "leaderboard_seeds.png")


@pytest.mark.usefixtures("window")
def test_a_finished_board_is_exported_reported_and_shown_on_the_runs_page(qtbot, window, tmp_path,  # noqa: F811
                                                                          monkeypatch) -> None:
    """The result's three buttons, clicked: the CSV and the report land where the save dialog said, and
    'Show on Runs page' opens the Runs page with the board's runs selected."""
    import pandas as pd

    from app.pages import leaderboard as page_module

    _dataset(window.context)
    window.show_page("leaderboard")
    page = window.page("leaderboard")
    page.reload_datasets()
    page.set_models(["S-POP", "SKNN"])
    page.minutes.setValue(1)
    assert not page.csv_button.isEnabled() and not page.runs_button.isEnabled()  # nothing to export yet
    qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
    wait_until(qtbot, lambda: page.task is not None and page.task.is_done(), 90_000)
    assert page.task.state == "finished", page.status.text()
    assert page.csv_button.isEnabled() and page.report_button.isEnabled() and page.runs_button.isEnabled()
    board_runs = sorted(page.result.run_ids)

    answers = iter([str(tmp_path / "board"), str(tmp_path / "board report")])  # suffixes are added
    monkeypatch.setattr(page_module.QFileDialog, "getSaveFileName", lambda *a, **k: (next(answers), ""))
    qtbot.mouseClick(page.csv_button, Qt.MouseButton.LeftButton)
    frame = pd.read_csv(tmp_path / "board.csv")  # Table III: a row per model, then the "Imp." row
    assert sorted(frame["run_id"].dropna().astype(int)) == board_runs and set(frame["split"]) == {"test"}
    assert "board.csv" in page.share_message.text()
    qtbot.mouseClick(page.report_button, Qt.MouseButton.LeftButton)
    wait_until(qtbot, lambda: page.report_task is not None and page.report_task.is_done(), 60_000)
    assert page.report_task.state == "finished", page.share_message.text()
    html = (tmp_path / "board report.html").read_text(encoding="utf-8")
    assert "S-POP" in html and "SKNN" in html and "board report.html" in page.share_message.text()
    window.resize(1280, 1000)
    _save(window, "leaderboard_exported.png")

    runs = window.page("runs")
    runs.filter_edit.setText("no run is named like this")  # a filter left on from earlier must not hide them
    qtbot.mouseClick(page.runs_button, Qt.MouseButton.LeftButton)
    assert window.current_page() is runs and runs.filter_edit.text() == ""
    assert sorted(i.id for i in runs.selected_infos()) == board_runs


@pytest.mark.usefixtures("window")
def test_the_tune_dialogs_best_settings_go_to_the_train_page(qtbot, window) -> None:  # noqa: F811
    _dataset(window.context)
    train = window.page("train")
    window.show_page("train")
    train.reload_datasets()
    train.select_model("SKNN")
    train.train_form.set_values({"max_epochs": 1, "patience": 1})
    qtbot.mouseClick(train.tune_button, Qt.MouseButton.LeftButton)
    dialog = train.tune_dialog
    assert not dialog.use_button.isEnabled()  # nothing found yet
    dialog.trials.setValue(3)
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    wait_until(qtbot, lambda: dialog.task is not None and dialog.task.is_done(), 60_000)
    assert dialog.task.state == "finished", dialog.status.text()
    best = runs_repo.get_run(window.context.store, dialog.result.best_run_id)
    tuned_k = int(best.config["model"]["k"])
    train.model_form.set_values({"k": 7 if tuned_k != 7 else 8})  # the fields no longer hold the tuned values
    train.train_form.set_values({"lr": 0.5})
    qtbot.mouseClick(dialog.use_button, Qt.MouseButton.LeftButton)
    assert train.model_combo.currentData() == "SKNN"
    assert train.model_form.values()["k"] == tuned_k
    assert train.train_form.values()["lr"] == best.config["train"]["lr"]
    assert "now in the Train page's fields" in dialog.status.text()
    request = train.build_request()  # what Start training would queue: the tuned settings
    assert request.model_overrides.get("k", 100) == tuned_k and request.train_config.lr == best.config["train"]["lr"]
    dialog.close()
