"""Sharing from the GUI, by clicking the real buttons: export a model file from the Runs page, open it
on the Playground, score a file in the dialog (progress, result, cancel)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog
from test_sharing_scoring import write_split

from embsr_core.inference import Predictor

pytestmark = pytest.mark.gui
WAIT_MS = 60_000


@pytest.fixture()
def runs_page(real_runs, qtbot):
    from app.application import create_context
    from app.pages.runs import RunsPage

    context = create_context(cli_url=real_runs.url, theme="light")
    page = RunsPage(context)
    qtbot.addWidget(page)
    page.resize(1300, 800)
    page.show()
    yield page
    page.share.runner.shutdown()
    context.runner.shutdown()


def test_export_model_then_open_it_on_the_playground(real_runs, runs_page, qtbot, tmp_path, monkeypatch):
    share = runs_page.share
    assert not share.model_button.isEnabled()  # nothing selected
    runs_page.select_runs([real_runs.run_ids[0]])
    assert share.model_button.isEnabled() and share.score_button.isEnabled()
    target = tmp_path / "shared_model"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    with qtbot.waitSignal(share.exported, timeout=WAIT_MS) as blocker:
        qtbot.mouseClick(share.model_button, Qt.MouseButton.LeftButton)
    path = Path(blocker.args[0])
    assert path == tmp_path / "shared_model.embsr" and path.is_file()
    assert "Saved EMBSR as shared_model.embsr" in runs_page.message.text()

    from app.application import create_context
    from app.pages.playground import PlaygroundPage

    context = create_context(cli_url=real_runs.url, theme="light")
    play = PlaygroundPage(context)
    qtbot.addWidget(play)
    play.show()
    qtbot.waitUntil(lambda: play.predictor is not None and play.is_idle(), timeout=WAIT_MS)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    with qtbot.waitSignal(play.predictorLoaded, timeout=WAIT_MS):
        qtbot.mouseClick(play.open_file_button, Qt.MouseButton.LeftButton)
    assert play.predictor.model_info is not None and play.predictor.run_id is None
    assert play.run_combo.currentText() == "Model file: shared_model.embsr"
    vocab = play.predictor.vocab
    session = [(vocab.item_ids[4], vocab.op_names[1]), (vocab.item_ids[7], vocab.op_names[2])]
    with qtbot.waitSignal(play.predictionsReady, timeout=WAIT_MS):
        play.set_session(session)
    qtbot.waitUntil(play.is_idle, timeout=WAIT_MS)
    shown = [play.pred_tables[0].item(r, 1).text() for r in range(play.pred_tables[0].rowCount())]
    expected = Predictor.from_run(real_runs.store, real_runs.run_ids[0]).predict(session, k=play.k_spin.value())
    assert shown == [r.item_id for r in expected]
    play.grab().save(str(tmp_path / "playground_model_file.png"))
    play.runner.shutdown()
    context.runner.shutdown()


def test_score_dialog_from_the_runs_page(real_runs, runs_page, qtbot, tmp_path, monkeypatch):
    sessions = tmp_path / "sessions.csv"
    ids = write_split(real_runs.prepared, sessions)
    runs_page.select_runs([real_runs.run_ids[1]])
    qtbot.mouseClick(runs_page.share.score_button, Qt.MouseButton.LeftButton)
    dialog = runs_page.share.score_dialog
    assert dialog is not None and dialog.isVisible()
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(sessions), ""))
    qtbot.mouseClick(dialog.sessions_browse, Qt.MouseButton.LeftButton)
    assert dialog.output_edit.text() == str(tmp_path / "sessions_predictions.csv")
    dialog.k_spin.setValue(5)
    dialog.target_combo.setCurrentIndex(2)  # the second operation
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.report is not None, timeout=WAIT_MS)
    assert dialog.progress.value() == 1000 and f"Scored {len(ids):,} of {len(ids):,} sessions" in dialog.status.text()
    with open(tmp_path / "sessions_predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 5 * len(ids) and rows[0]["session_id"] == ids[0]
    dialog.grab().save(str(tmp_path / "score_dialog.png"))

    # a bad file: the reason is shown, nothing written
    bad = tmp_path / "bad.csv"
    bad.write_text("")
    dialog.sessions_edit.setText(str(bad))
    dialog.output_edit.setText(str(tmp_path / "bad_predictions.csv"))
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.start_button.isEnabled(), timeout=WAIT_MS)
    assert dialog.status.text().startswith("Scoring failed:") and "empty" in dialog.status.text()
    assert not (tmp_path / "bad_predictions.csv").exists()
    qtbot.mouseClick(dialog.close_button, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()


def test_report_and_moving_runs_from_the_runs_page(real_runs, runs_page, qtbot, tmp_path, monkeypatch):
    from test_sharing_runs_transfer import colleague_store

    share = runs_page.share
    assert share.import_button.isEnabled() and not share.report_button.isEnabled()
    runs_page.select_runs(real_runs.run_ids)
    assert share.report_button.isEnabled() and share.runs_button.isEnabled()
    assert not share.model_button.isEnabled()  # one run at a time
    runs_page.grab().save(str(tmp_path / "runs_share_row.png"))
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "team_report"), ""))
    with qtbot.waitSignal(share.exported, timeout=WAIT_MS) as blocker:
        qtbot.mouseClick(share.report_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0] == tmp_path / "team_report.html"
    html = (tmp_path / "team_report.html").read_text()
    assert "Comparison (Table III)" in html and "data:image/png;base64," in html
    assert "Saved the report team_report.html" in runs_page.message.text()

    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "team_runs.zip"), ""))
    with qtbot.waitSignal(share.exported, timeout=WAIT_MS):
        qtbot.mouseClick(share.runs_button, Qt.MouseButton.LeftButton)
    assert (tmp_path / "team_runs.zip").is_file()

    # a colleague's store: the Runs page imports the archive and lists the same runs
    from app.application import create_context
    from app.pages.runs import RunsPage

    colleague_store(tmp_path).dispose()
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "colleague_data"))
    context = create_context(cli_url=f"sqlite:///{tmp_path / 'colleague.db'}", theme="light")
    page = RunsPage(context)
    qtbot.addWidget(page)
    page.show()
    assert page.model.rowCount() == 0
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(tmp_path / "team_runs.zip"), ""))
    with qtbot.waitSignal(page.share.imported, timeout=WAIT_MS) as blocker:
        qtbot.mouseClick(page.share.import_button, Qt.MouseButton.LeftButton)
    assert len(blocker.args[0].imported) == 2
    qtbot.waitUntil(lambda: page.model.rowCount() == 2, timeout=WAIT_MS)
    page.share.runner.shutdown()
    context.runner.shutdown()


def test_cancel_in_the_score_dialog_leaves_no_file(real_runs, runs_page, qtbot, tmp_path):
    from app.widgets.score_dialog import ScoreDialog, ScoreSource

    one = tmp_path / "one.csv"
    write_split(real_runs.prepared, one)
    header, *rows = one.read_text().splitlines()
    big = tmp_path / "big.csv"
    with open(big, "w") as handle:  # 200 copies of the test split under distinct session ids: ~12,000 sessions
        handle.write(header + "\n")
        for copy in range(200):
            handle.write("\n".join(f"c{copy}-{row}" for row in rows) + "\n")
    source = ScoreSource.from_run(real_runs.store, real_runs.run_ids[0], "EMBSR tiny")
    dialog = ScoreDialog(source, runs_page)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.sessions_edit.setText(str(big))
    dialog.output_edit.setText(str(tmp_path / "big_predictions.csv"))
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.progress.value() > 0 or dialog.report is not None, timeout=WAIT_MS)
    if dialog.report is not None:
        pytest.fail("scoring finished before it could be cancelled; make the file bigger")
    assert dialog.cancel_button.isEnabled()
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.start_button.isEnabled(), timeout=WAIT_MS)
    assert dialog.status.text() == "Cancelled; no predictions file was written."
    assert not (tmp_path / "big_predictions.csv").exists()
    assert not any(p.name.endswith(".partial") for p in tmp_path.iterdir())
    dialog.runner.shutdown()


def test_score_dialog_with_a_model_file(real_runs, qtbot, tmp_path):
    """What the Playground's "Score a file…" opens once a model file is loaded: no store involved."""
    from app.widgets.score_dialog import ScoreDialog, ScoreSource
    from embsr_core.sharing.model_file import export_model

    path = tmp_path / "m.embsr"
    export_model(real_runs.store, real_runs.run_ids[0], path)
    sessions = tmp_path / "s.csv"
    ids = write_split(real_runs.prepared, sessions)
    dialog = ScoreDialog(ScoreSource.from_model_file(path))
    qtbot.addWidget(dialog)
    dialog.show()
    assert "model file m.embsr (EMBSR)" in dialog.findChildren(type(dialog.status))[0].text()
    assert dialog.target_combo.count() == 1 + len(real_runs.prepared.vocab.op_names) - 1
    dialog.sessions_edit.setText(str(sessions))
    dialog.output_edit.setText(str(tmp_path / "p.csv"))
    dialog.exclude_check.setChecked(True)
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.report is not None, timeout=WAIT_MS)
    assert dialog.report.sessions_scored == len(ids) and (tmp_path / "p.csv").is_file()
    dialog.runner.shutdown()
