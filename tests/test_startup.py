"""Fast start (issue 16): what `embsr datasets list`, `embsr runs list` and the window load at start-up.

Checked in fresh interpreters through ``sys.modules`` (never by timing): a heavy library imported at
start-up by any module on the way fails here. The figures themselves come from benchmarks/startup.py.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import _gui_helpers
import pytest
from _cli_child import CHILD

from embsr_core import reports, run_summary
from embsr_core.store import open_store
from embsr_core.store.migrate import HEAD_REVISION, current_revision, head_revision
from embsr_core.store.models import Dataset, EpochMetric, Run

REPO = Path(__file__).resolve().parents[1]
context, window = _gui_helpers.context, _gui_helpers.window  # fixtures (the GUI test below)
HEAVY = ("torch", "pandas", "numpy", "optuna", "pyarrow", "pyqtgraph", "alembic", "scipy")

CLI_CHILD = CHILD


def child_env(folder: Path) -> dict[str, str]:
    """A throw-away store and user folders, as benchmarks/startup.py uses."""
    return {"EMBSR_DB_URL": f"sqlite:///{folder / 'startup.db'}", "HOME": str(folder),
            "XDG_DATA_HOME": str(folder / "data"), "XDG_CONFIG_HOME": str(folder / "config"),
            "XDG_CACHE_HOME": str(folder / "cache"), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "QT_QPA_PLATFORM": "offscreen"}


def run_child(code: str, args: list[str], folder: Path) -> tuple[dict, str]:
    done = subprocess.run([sys.executable, "-c", f"HEAVY = {HEAVY!r}\n" + code, *args], env=child_env(folder),
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    line = next((x for x in done.stdout.splitlines() if x.startswith("MODULES ")), None)
    assert line is not None, done.stdout[-2000:] + done.stderr[-3000:]
    return json.loads(line.removeprefix("MODULES ")), done.stdout


@pytest.fixture()
def store_with_runs(tmp_path: Path):
    """The child's store, migrated, with one dataset and two runs of known metrics."""
    store = open_store(child_env(tmp_path)["EMBSR_DB_URL"])
    t0 = datetime(2026, 1, 1, 12, 0, 0)
    with store.session() as session, session.begin():
        dataset = Dataset(name="shop", source_format="synthetic", imported_at=t0)
        session.add(dataset)
        session.flush()
        for run_id, best in ((1, 2), (2, None)):
            session.add(Run(id=run_id, name=f"run {run_id}", dataset_id=dataset.id, model_name="EMBSR",
                            status="finished", device="cpu", config={"train": {"lr": 0.001}}, created_at=t0,
                            started_at=t0, finished_at=t0 + timedelta(seconds=90), epochs_done=3,
                            best_epoch=best))
            session.flush()
            for epoch in (1, 2, 3):
                for metric in ("hit", "mrr"):
                    session.add(EpochMetric(run_id=run_id, epoch=epoch, split="valid", target_op="oracle",
                                            metric=metric, k=20, value=0.1 * epoch + (0.05 if metric == "hit" else 0)
                                            + 0.01 * run_id, wall_time=float(epoch)))
            session.add(EpochMetric(run_id=run_id, epoch=best or 3, split="test", target_op="oracle", metric="hit",
                                    k=20, value=0.4321 + run_id / 100, wall_time=4.0))
    yield store
    store.dispose()


def test_the_head_constant_is_alembics_head():
    """Opening skips Alembic when the store is at HEAD_REVISION: it must be the newest migration."""
    assert head_revision() == HEAD_REVISION


def test_datasets_list_at_the_head_loads_neither_alembic_nor_heavy_libraries(tmp_path: Path):
    open_store(child_env(tmp_path)["EMBSR_DB_URL"]).dispose()  # created and migrated beforehand
    result, out = run_child(CLI_CHILD, ["datasets", "list"], tmp_path)
    assert result["code"] == 0, out
    assert result["loaded"] == []


def test_a_new_store_is_still_migrated_by_alembic(tmp_path: Path):
    result, out = run_child(CLI_CHILD, ["datasets", "list"], tmp_path)
    assert result["code"] == 0 and result["loaded"] == ["alembic"], out
    store = open_store(child_env(tmp_path)["EMBSR_DB_URL"], migrate=False)
    assert current_revision(store.engine) == HEAD_REVISION
    store.dispose()


def test_runs_list_loads_no_heavy_library_and_shows_the_reports_numbers(store_with_runs, tmp_path: Path):
    result, out = run_child(CLI_CHILD, ["runs", "list"], tmp_path)
    assert result["code"] == 0, out
    assert result["loaded"] == []
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()[:1].isdigit()}
    # run 1 has a test value at its best epoch; run 2 (no best epoch) has one test evaluation
    assert " 0.4421 " in lines["1"] and " test " in lines["1"] and " 0.4521 " in lines["2"]


def test_plain_aggregation_matches_the_comparison_table(store_with_runs):
    infos = run_summary.run_infos(store_with_runs, [1, 2])
    columns = [("hit", 20), ("mrr", 20)]
    for agg in run_summary.AGGREGATIONS:
        rows, split = run_summary.summary_rows(store_with_runs, infos, columns, agg, split="valid")
        table = reports.comparison_table(store_with_runs, [1, 2], metrics=("hit", "mrr"), ks=(20,), aggregation=agg,
                                         split="valid")
        assert split == "valid"
        for i in range(2):
            for j in range(2):
                a, b = rows[i][j], float(table.values[i, j])
                assert (math.isnan(a) and math.isnan(b)) or a == b, (agg, i, j)
    assert run_summary.summary_rows(store_with_runs, infos, columns, "max", split="valid")[0][0] == [
        pytest.approx(0.36), pytest.approx(0.31)]


WINDOW_CHILD = r"""
import json, sys
from PySide6.QtCore import QDeadlineTimer, QEventLoop
from app.application import create_context, ensure_application
from app.main_window import MainWindow
from app.preferences import Preferences
app = ensure_application()
if sys.argv[1:]:
    Preferences().last_page = sys.argv[1]  # the page the last session ended on
context = create_context(None, None)
window = MainWindow(context, persist=False)
window.show()
def loaded():
    return sorted(m for m in HEAVY if m in sys.modules)
def built():
    return [p.page_id for p in window.built_pages()]
steps = {"shown": loaded(), "device_before": window.device_label.text(), "built": built(),
         "current": window.page_ids()[window.stack.currentIndex()]}
deadline = QDeadlineTimer(120_000)
while window.device_label.text() == "Device: …" and not deadline.hasExpired():
    app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)  # filled in after the first paint
steps.update(device_after=window.device_label.text(), after_paint=loaded(), built_after_paint=built())
window.show_page("leaderboard")
steps.update(leaderboard=loaded(), built_at_end=built())
window.close()
context.runner.shutdown()
print("\nMODULES " + json.dumps(steps))
"""


def test_the_window_opens_without_torch_or_optuna_and_loads_them_with_the_pages_that_need_them(tmp_path: Path):
    open_store(child_env(tmp_path)["EMBSR_DB_URL"]).dispose()  # an existing store (a new one loads Alembic)
    steps, out = run_child(WINDOW_CHILD, [], tmp_path)
    assert steps["built"] == ["datasets"]  # the first page only: the others are built when first shown
    assert not {"torch", "optuna", "alembic", "scipy"} & set(steps["shown"]), steps["shown"]
    assert steps["device_before"] == "Device: …"
    assert steps["device_after"] == "Device: CPU" or steps["device_after"].startswith("Device: CUDA · ")
    assert "torch" in steps["after_paint"] and "optuna" not in steps["after_paint"]
    assert "optuna" in steps["leaderboard"]
    assert steps["built_at_end"] == ["datasets", "leaderboard"]


def test_a_restored_page_that_loads_torch_is_built_once_the_window_is_on_screen(tmp_path: Path):
    open_store(child_env(tmp_path)["EMBSR_DB_URL"]).dispose()
    steps, out = run_child(WINDOW_CHILD, ["train"], tmp_path)
    assert steps["current"] == "train" and steps["built"] == [] and "torch" not in steps["shown"]
    assert steps["built_after_paint"] == ["train"] and "torch" in steps["after_paint"]


LIGHT_PAGES_CHILD = r"""
import json, sys
from app.application import create_context, ensure_application
from app.main_window import MainWindow
from app.pages import PAGES
app = ensure_application()
context = create_context(None, None)
window = MainWindow(context, persist=False)  # never shown: nothing is loaded after a first paint
light = [e.page_id for e in PAGES if not e.loads_torch]
for page_id in light:
    window.page(page_id)
built = [p.page_id for p in window.built_pages()]
context.runner.shutdown()
loaded = sorted(m for m in HEAVY if m in sys.modules)
print("\nMODULES " + json.dumps({"light": light, "built": built, "loaded": loaded}))
"""


def test_pages_not_marked_as_loading_torch_build_without_it(tmp_path: Path):
    """The marks decide which restored page waits until the window is on screen: an unmarked page must
    really be light (Datasets, Runs, Playground and Help build without PyTorch and optuna)."""
    open_store(child_env(tmp_path)["EMBSR_DB_URL"]).dispose()
    result, out = run_child(LIGHT_PAGES_CHILD, [], tmp_path)
    assert result["built"] == result["light"] == ["datasets", "runs", "playground", "help"]
    assert not {"torch", "optuna"} & set(result["loaded"]), result["loaded"]


def test_page_entries_match_their_classes():
    from app.pages import PAGE_CLASSES, PAGES

    assert [(e.page_id, e.title, e.icon_name) for e in PAGES] == [(c.page_id, c.title, c.icon_name)
                                                                   for c in PAGE_CLASSES]


def _until_cancelled(*, progress, cancel) -> None:
    while not cancel.cancelled:
        time.sleep(0.01)


@pytest.mark.gui
def test_a_run_queued_before_the_train_page_was_built_shows_there(qtbot, window, context):
    """The Train page shows every run wherever it was started (a resume on the Runs page): a run queued
    while the page was not built yet builds it, and it is listed there."""
    assert "train" not in [p.page_id for p in window.built_pages()]
    task = context.runner.submit_training(_until_cancelled, name="Resuming run 7")
    assert "train" in [p.page_id for p in window.built_pages()]
    window.show_page("train")
    train = window.page("train")
    assert train.queue.count() == 1 and "Resuming run 7" in train.queue.item(0).text()
    task.cancel()
    qtbot.waitUntil(task.is_done, timeout=10_000)
