"""The import wizard as a user drives it: the dataset name after a refused file, where the file dialog
opens, and a header-less user log cut into sessions by an inactivity gap."""

from __future__ import annotations

from pathlib import Path

import _gui_helpers
import pytest
from native_fixtures import write_generic_csv, write_jd, write_taobao
from PySide6.QtCore import QSettings, QStandardPaths, Qt
from PySide6.QtWidgets import QFileDialog

from app.main_window import MainWindow
from app.widgets import import_wizard
from embsr_core.store.repository import get_dataset

pytestmark = pytest.mark.gui
context = _gui_helpers.context  # fixtures
window = _gui_helpers.window
IMPORT_TIMEOUT_MS = 60_000


class FakeDialog:
    """Stands in for the native file dialog: records where it opened, answers with the next paths."""

    def __init__(self, answers: list[list[Path]]):
        self.answers = answers
        self.opened_in: list[str] = []

    def __call__(self, _parent, _title, folder, _filter):
        self.opened_in.append(folder)
        return [str(p) for p in self.answers.pop(0)], ""


def _click_add(qtbot, wizard) -> None:
    qtbot.mouseClick(wizard.files_page.add_button, Qt.MouseButton.LeftButton)


def test_a_refused_file_is_replaced_with_its_name_and_the_dialog_remembers_the_folder(
        qtbot, window: MainWindow, tmp_path, monkeypatch):
    QSettings().remove(import_wizard.SETTINGS_LAST_FOLDER)
    refused = tmp_path / "first" / "passwd"
    refused.parent.mkdir()
    refused.write_bytes(bytes(range(256)) * 8)  # binary: refused on the first page
    good = write_jd(tmp_path / "second" / "appliances.txt", n_sessions=10).path
    dialog = FakeDialog([[refused], [good]])
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", dialog)
    wizard = window.page("datasets").open_import_wizard()
    files = wizard.files_page

    _click_add(qtbot, wizard)
    docs = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    assert dialog.opened_in[0] in (docs, str(Path.home()))  # never the program's folder
    assert dialog.opened_in[0] != str(Path.cwd())
    assert files.name_edit.text() == "passwd" and files.message.isVisible() and not files.isComplete()

    _click_add(qtbot, wizard)
    assert dialog.opened_in[1] == str(refused.parent)  # the last folder, remembered
    assert files.paths() == [good]  # the refused file does not stay in the list
    assert files.name_edit.text() == "appliances" and files.isComplete()

    # a name the user typed is kept when the files change
    files.name_edit.setText("my data")
    qtbot.mouseClick(files.clear_button, Qt.MouseButton.LeftButton)
    files.set_files([good])
    assert files.name_edit.text() == "my data"
    wizard.reject()


def test_header_less_user_log_is_cut_into_sessions_by_the_gap(qtbot, window: MainWindow, context, tmp_path):
    written = write_taobao(tmp_path / "user_behavior.csv", n_users=20, seed=2)
    wizard = window.page("datasets").open_import_wizard()
    wizard.set_files([written.path])
    assert wizard.files_page.detected == "generic"
    wizard.next()
    mapping = wizard.mapping_page
    qtbot.mouseClick(mapping.no_header, Qt.MouseButton.LeftButton)
    assert mapping.no_header.isChecked() and mapping.columns == ["1", "2", "3", "4", "5"]
    assert mapping.raw_table.rowCount() == 20  # the first line is data, shown as a row
    for fld, col in (("user", "1"), ("item", "2"), ("category", "3"), ("operation", "4"), ("timestamp", "5")):
        mapping.combos[fld].setCurrentIndex(mapping.combos[fld].findData(col))
    assert mapping.gap.isEnabled() and mapping.gap.value() == 30.0
    mapping.refresh_preview()
    assert mapping.isComplete(), mapping.status.text()
    assert "30 minutes" in mapping.status.text()
    assert mapping.mapped_table.horizontalHeaderItem(0).text() == "session"
    with qtbot.waitSignal(wizard.imported, timeout=IMPORT_TIMEOUT_MS) as blocker:
        wizard.next()
    report = blocker.args[0]
    assert report.n_sessions == written.sessions and report.rows_kept == written.rows
    assert get_dataset(context.store, "user_behavior").n_sessions == written.sessions
    wizard.accept()


def test_mapping_page_screenshot_renders(qtbot, window: MainWindow, tmp_path):
    written = write_generic_csv(tmp_path / "clicks.csv", n_sessions=8)
    wizard = window.page("datasets").open_import_wizard()
    wizard.set_files([written.path])
    wizard.next()
    wizard.mapping_page.refresh_preview()
    assert wizard.mapping_page.isComplete(), wizard.mapping_page.status.text()
    image = wizard.grab()
    assert not image.isNull() and image.width() > 600
    wizard.reject()


def test_ids_are_text_unless_the_user_ticks_numbers(qtbot, window: MainWindow, context, tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("session,item,operation,timestamp\na,007,v,1\na,7,v,2\nb,7,v,3\n")
    wizard = window.page("datasets").open_import_wizard()
    wizard.set_files([path])
    wizard.next()
    mapping = wizard.mapping_page
    mapping.refresh_preview()
    assert mapping.isComplete() and mapping.mapped_table.item(0, 1).text() == "007"
    qtbot.mouseClick(mapping.numeric_ids, Qt.MouseButton.LeftButton)
    mapping.refresh_preview()
    assert mapping.mapped_table.item(0, 1).text() == "7"
    with qtbot.waitSignal(wizard.imported, timeout=IMPORT_TIMEOUT_MS) as blocker:
        wizard.next()
    assert blocker.args[0].n_items == 1
    wizard.accept()


def test_a_cut_last_line_is_refused_then_imported_without_it_by_one_click(qtbot, window: MainWindow, context,
                                                                          tmp_path):
    written = write_generic_csv(tmp_path / "clicks.csv", n_sessions=8)
    data = written.path.read_bytes()
    written.path.write_bytes(data + data.splitlines()[1][:3])  # the file ends inside a last, short line
    wizard = window.page("datasets").open_import_wizard()
    wizard.set_files([written.path])
    wizard.next()
    wizard.mapping_page.refresh_preview()
    assert wizard.mapping_page.isComplete(), wizard.mapping_page.status.text()
    run_page = wizard.run_page
    with qtbot.waitSignal(wizard.failed, timeout=IMPORT_TIMEOUT_MS) as refused:
        wizard.next()
    assert refused.args[0].cut_last_line and "ends inside" in run_page.result_label.text()
    assert run_page.skip_cut_button.isVisible() and not run_page.isComplete()
    assert not wizard.grab().isNull()
    wizard.grab().save(str(tmp_path / "refused.png"))
    with qtbot.waitSignal(wizard.imported, timeout=IMPORT_TIMEOUT_MS) as blocker:
        qtbot.mouseClick(run_page.skip_cut_button, Qt.MouseButton.LeftButton)
    report = blocker.args[0]
    assert report.rows_kept == written.rows and report.rows_skipped == 1
    assert "the last line, cut short" in run_page.result_label.text() and not run_page.skip_cut_button.isVisible()
    assert get_dataset(context.store, "clicks").n_events == written.rows
    wizard.grab().save(str(tmp_path / "imported.png"))
    wizard.accept()
