"""Worker DataLoader: the same training with 0 and 2 collating processes; cancel / pause / resume with workers."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from _training_helpers import tiny_prepared, tiny_store

from embsr_core.store import runs_repo
from embsr_core.training import BatchEnd, Cancelled, ControlToken, TrainConfig, make_trainer, resume_run
from embsr_core.training import loader as loader_mod
from embsr_core.training.checkpoints import load_checkpoint
from embsr_core.training.config import TRAIN_PARAMS
from embsr_core.training.trainer import Trainer

EMBSR_SMALL = {"embedding_dim": 16, "dropout": 0.1}  # dropout on: the global RNG stream must not move


def _config(**changes: object) -> TrainConfig:
    base = {"batch_size": 8, "max_epochs": 1, "patience": 5, "seed": 5, "device": "cpu", "eval_batch_size": 64,
            "threads": 1}
    return TrainConfig.from_dict({**base, **changes})


def _train(tmp_path: Path, workers: int) -> tuple[list[float], dict[str, torch.Tensor], dict]:
    events: list[object] = []
    trainer = Trainer(tiny_prepared(), "EMBSR", EMBSR_SMALL, _config(loader_workers=workers), recorders=[events.append],
                      checkpoint_dir=tmp_path / f"w{workers}")
    outcome = trainer.run()
    assert outcome.status == "finished", outcome.error
    losses = [e.loss for e in events if isinstance(e, BatchEnd)]
    return losses, trainer.model.state_dict(), outcome.test_metrics


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_two_workers_train_exactly_like_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"start method {method!r} does not exist on {sys.platform}")
    monkeypatch.setattr(loader_mod, "start_method", lambda: method)
    losses0, weights0, test0 = _train(tmp_path, 0)
    losses2, weights2, test2 = _train(tmp_path, 2)
    assert len(losses0) == 12  # 96 training samples / batch 8
    assert losses2 == losses0  # same batches in the same order, same dropout masks: bit for bit
    assert weights2.keys() == weights0.keys()
    assert all(torch.equal(weights0[k], weights2[k]) for k in weights0)
    assert test2 == test0
    assert not multiprocessing.active_children()  # the workers are gone once the epoch is over


def test_cancel_while_paused_mid_epoch_with_workers_then_exact_resume(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader_mod, "start_method", lambda: "fork")
    data = tiny_prepared()
    store = tiny_store(tmp_path)
    cfg = _config(max_epochs=2, loader_workers=2)
    full = make_trainer(store, data, "EMBSR", EMBSR_SMALL, cfg.with_(loader_workers=0),
                        checkpoint_root=tmp_path).run()
    assert full.status == "finished"

    control = ControlToken()
    events: list[object] = []
    paused = threading.Event()

    def callback(event: object) -> None:
        events.append(event)
        if isinstance(event, BatchEnd) and event.epoch == 2 and event.batch == 3:
            control.pause()
            paused.set()

    trainer = make_trainer(store, data, "EMBSR", EMBSR_SMALL, cfg, callback, control, checkpoint_root=tmp_path)
    thread = threading.Thread(target=trainer.run)
    thread.start()
    assert paused.wait(60)
    n_before = len(events)
    thread.join(0.5)
    assert thread.is_alive() and len(events) == n_before  # paused with workers alive: no progress
    assert len(multiprocessing.active_children()) == 2
    control.cancel()
    thread.join(30)
    assert not thread.is_alive()
    assert isinstance(events[-1], Cancelled) and events[-1].checkpoint_path
    assert not multiprocessing.active_children()  # the cancel ended the workers
    run = runs_repo.get_run(store, trainer.run_id)
    assert run.status == "stopped"
    meta = load_checkpoint(run.checkpoint_path, run.checkpoint_sha256)["meta"]
    assert '"cursor": 3' in meta and '"global_step": 15' in meta

    resumed = resume_run(store, trainer.run_id, data)  # workers again (the run's own setting), from batch 4
    assert resumed.status == "finished"
    assert resumed.test_metrics == full.test_metrics
    wa = load_checkpoint(runs_repo.get_run(store, full.run_id).checkpoint_path, None)["model"]
    wb = load_checkpoint(runs_repo.get_run(store, trainer.run_id).checkpoint_path, None)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    a = runs_repo.loss_frame(store, [full.run_id])
    b = runs_repo.loss_frame(store, [trainer.run_id])
    assert list(a.loss) == list(b.loss) and list(a.step) == list(b.step)


def test_a_collation_error_in_a_worker_fails_the_run_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader_mod, "start_method", lambda: "fork")
    data = tiny_prepared()
    data.train.items[5, 0] = 999  # an item id outside 1..n_items in the first batch's rows (a collate check)
    events: list[object] = []
    outcome = Trainer(data, "EMBSR", EMBSR_SMALL, _config(loader_workers=2, batch_size=96), recorders=[events.append],
                      checkpoint_dir=tmp_path).run()
    assert outcome.status == "failed" and "item ids must be in 1..30" in (outcome.error or "")
    assert not multiprocessing.active_children()


def test_automatic_workers_and_start_method(monkeypatch: pytest.MonkeyPatch) -> None:
    assert loader_mod.resolve_workers("auto", torch.device("cpu")) == 0
    assert loader_mod.resolve_workers(3, torch.device("cpu")) == 3
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(16)), raising=False)
    assert loader_mod.resolve_workers("auto", torch.device("cuda")) == 2
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0}, raising=False)
    assert loader_mod.resolve_workers("auto", torch.device("cuda")) == 0  # one core: nothing to overlap with
    monkeypatch.setitem(sys.modules, "PySide6.QtCore", object())  # a Qt process (the desktop app)
    assert loader_mod.start_method() in ("forkserver", "spawn")


def test_setting_in_the_schema_the_cli_and_the_form_use() -> None:
    param = next(p for p in TRAIN_PARAMS if p.name == "loader_workers")
    assert TrainConfig().loader_workers == "auto" == param.default
    assert TrainConfig.from_dict({"loader_workers": "2"}).loader_workers == 2  # a CLI / form string
    with pytest.raises(ValueError, match="loader_workers"):
        TrainConfig(loader_workers=-1)


def test_the_training_form_offers_the_setting(qtbot) -> None:  # type: ignore[no-untyped-def]
    from app.widgets.param_form import ParamForm

    form = ParamForm(TRAIN_PARAMS)
    qtbot.addWidget(form)
    combo = form.widgets["loader_workers"]
    assert [combo.itemText(i) for i in range(combo.count())][:4] == ["auto", "0", "1", "2"]
    assert combo.currentText() == "auto"
    combo.setCurrentIndex(combo.findText("2"))
    assert TrainConfig.from_dict(form.values()).loader_workers == 2


_QT_THREAD_RUN = """
import json, sys, threading
sys.path.insert(0, {tests!r})
from PySide6.QtCore import QCoreApplication
from _training_helpers import tiny_prepared
from embsr_core.training import BatchEnd, TrainConfig, loader
from embsr_core.training.trainer import Trainer

app = QCoreApplication([])
out = {{"method": loader.start_method()}}

def train(workers):  # as the desktop app trains: in a worker thread of a Qt process (app/workers.py)
    events = []
    cfg = TrainConfig(batch_size=8, max_epochs=2, device="cpu", threads=1, seed=5, loader_workers=workers)
    outcome = Trainer(tiny_prepared(), "EMBSR", {{"embedding_dim": 16}}, cfg, recorders=[events.append]).run()
    out[workers] = [outcome.status, [e.loss for e in events if isinstance(e, BatchEnd)]]

for workers in (0, 2):
    thread = threading.Thread(target=train, args=(workers,))
    thread.start()
    thread.join()
print(json.dumps(out))
"""


def test_training_in_a_qt_process_thread_uses_forkserver_workers_and_gives_the_same_losses() -> None:
    if "forkserver" not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no forkserver start method on {sys.platform}")
    code = _QT_THREAD_RUN.format(tests=str(Path(__file__).resolve().parent))
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["method"] == "forkserver"
    assert out["0"][0] == out["2"][0] == "finished"
    assert len(out["0"][1]) == 24 and out["2"][1] == out["0"][1]
