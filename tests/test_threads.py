"""The `threads` training setting: resolved sensibly, applied before training, kept with the run, a flag everywhere."""

from __future__ import annotations

from pathlib import Path

import _gui_helpers
import pytest
import torch
from _training_helpers import ensure_tiny_model, tiny_prepared, tiny_store
from click.testing import CliRunner

from embsr_core.cli import main
from embsr_core.store import runs_repo
from embsr_core.store.run_details import run_log_text
from embsr_core.training import RunStarted, TrainConfig, make_trainer
from embsr_core.training.config import TRAIN_PARAMS
from embsr_core.training.threads import AUTO_MAX_THREADS, apply_threads, auto_threads, physical_cores, resolve_threads

TINY = ensure_tiny_model()


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_automatic_choice_is_physical_cores_capped_and_shared() -> None:
    cores = physical_cores()
    assert cores >= 1
    assert auto_threads() == min(cores, AUTO_MAX_THREADS)
    assert auto_threads(processes_per_machine=10_000) == 1  # never zero, even with more processes than cores
    assert resolve_threads(0) == auto_threads() and resolve_threads(3) == 3
    with pytest.raises(ValueError, match="threads"):
        resolve_threads(-1)


def test_setting_is_in_the_schema_with_auto_default() -> None:
    param = next(p for p in TRAIN_PARAMS if p.name == "threads")
    assert param.default == 0 and TrainConfig().threads == 0
    assert TrainConfig.from_dict({}).threads == 0  # runs stored before the setting existed
    with pytest.raises(ValueError):
        TrainConfig(threads=-2)


def test_apply_sets_torch(restore_threads: None) -> None:
    assert apply_threads(1) == 1 and torch.get_num_threads() == 1


def test_trainer_applies_threads_and_the_run_keeps_them(tmp_path: Path, restore_threads: None) -> None:
    torch.set_num_threads(2)
    store = tiny_store(tmp_path)
    config = TrainConfig(batch_size=32, max_epochs=1, device="cpu", eval_batch_size=64, threads=1)
    events: list[object] = []
    trainer = make_trainer(store, tiny_prepared(), TINY, {"dim": 8}, config, events.append,
                           checkpoint_root=tmp_path / "ckpt")
    outcome = trainer.run()
    assert outcome.status == "finished", outcome.error
    assert torch.get_num_threads() == 1
    started = next(e for e in events if isinstance(e, RunStarted))
    assert started.threads == 1
    run = runs_repo.get_run(store, trainer.run_id)
    assert run.config["train"]["threads"] == 1
    assert "with 1 processor thread" in run_log_text(store, trainer.run_id)


@pytest.mark.parametrize("command", ["train", "resume", "search", "tune", "leaderboard"])
def test_every_training_command_has_the_flag(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "--threads" in result.output and "automatic" in result.output


def test_resume_takes_a_new_thread_count(tmp_path: Path, restore_threads: None) -> None:
    from embsr_core.training import ControlToken, resume_run

    store = tiny_store(tmp_path)
    prepared = tiny_prepared()
    control = ControlToken()
    config = TrainConfig(batch_size=32, max_epochs=2, device="cpu", eval_batch_size=64, threads=1)

    def stop_after_first_epoch(event: object) -> None:
        if type(event).__name__ == "CheckpointSaved":
            control.cancel()

    trainer = make_trainer(store, prepared, TINY, {"dim": 8}, config, stop_after_first_epoch, control,
                           checkpoint_root=tmp_path / "ckpt")
    assert trainer.run().status == "stopped"
    outcome = resume_run(store, trainer.run_id, prepared, threads=2)
    assert outcome.status == "finished", outcome.error
    assert torch.get_num_threads() == 2
    assert runs_repo.get_run(store, trainer.run_id).config["train"]["threads"] == 2


@pytest.mark.gui
def test_train_page_shows_the_setting(qtbot, restore_threads: None, request: pytest.FixtureRequest) -> None:
    import os

    from PySide6.QtWidgets import QScrollArea, QTabWidget

    window = request.getfixturevalue("window")
    window.show_page("train")
    page = window.page("train")
    form = page.train_form
    assert "threads" in form.widgets and form.values()["threads"] == 0
    assert "automatic" in form.widgets["threads"].toolTip()
    tabs = page.findChild(QTabWidget)
    if tabs is not None:
        tabs.setCurrentIndex(next(i for i in range(tabs.count()) if tabs.widget(i).isAncestorOf(form)))
    for area in page.findChildren(QScrollArea):
        if area.isAncestorOf(form.widgets["threads"]):
            area.ensureWidgetVisible(form.widgets["threads"])
    if os.environ.get("EMBSR_SHOT"):
        window.grab().save(os.environ["EMBSR_SHOT"])


context = _gui_helpers.context  # fixtures of the GUI test
window = _gui_helpers.window
