"""The trainer: events in order, everything in the store, cancel / pause, NaN, exact resume, interrupted runs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from _training_helpers import ensure_tiny_model, tiny_prepared, tiny_store

from embsr_core.store import runs_repo
from embsr_core.training import (
    BatchEnd,
    Cancelled,
    CheckpointSaved,
    ControlToken,
    EpochStarted,
    EvaluationEnd,
    Failed,
    Finished,
    RunStarted,
    TrainConfig,
    evaluate_checkpoint,
    make_trainer,
    mark_interrupted_runs,
    resume_run,
)
from embsr_core.training.checkpoints import CheckpointError, load_checkpoint

EMBSR_SMALL = {"embedding_dim": 16, "dropout": 0.1}
TINY = ensure_tiny_model()


def _config(**changes: object) -> TrainConfig:
    base = {"batch_size": 32, "max_epochs": 3, "patience": 5, "seed": 7, "device": "cpu", "eval_batch_size": 64}
    return TrainConfig.from_dict({**base, **changes})


def test_events_in_order_and_store_records(tmp_path: Path) -> None:
    data = tiny_prepared()
    store = tiny_store(tmp_path)
    events: list[object] = []
    trainer = make_trainer(store, data, "EMBSR", EMBSR_SMALL, _config(max_epochs=2), events.append,
                           checkpoint_root=tmp_path / "ckpt")
    assert runs_repo.get_run(store, trainer.run_id).status == "queued"
    outcome = trainer.run()
    assert outcome.status == "finished", outcome.error

    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "RunStarted" and kinds[1] == "EpochStarted" and kinds[-1] == "Finished"
    n_batches = events[1].n_batches  # type: ignore[attr-defined]
    assert n_batches == 3  # 96 sessions / 32
    epoch1 = kinds[1 : kinds.index("EpochStarted", 2)]
    assert epoch1 == (["EpochStarted"] + ["BatchEnd"] * n_batches + ["EvaluationEnd"] * 2
                      + ["CheckpointSaved"] * 2)  # valid oracle + unknown; best + last
    batch_ends = [e for e in events if isinstance(e, BatchEnd)]
    assert [b.step for b in batch_ends] == list(range(1, 2 * n_batches + 1))
    assert all(b.loss > 0 and b.samples_per_s > 0 and b.epoch_eta_s >= 0 for b in batch_ends)
    assert batch_ends[-1].epoch_eta_s == 0
    tests = [e for e in events if isinstance(e, EvaluationEnd) and e.split == "test"]
    assert {t.target_op for t in tests} == {"oracle", "unknown"}
    finished = events[-1]
    assert isinstance(finished, Finished) and set(finished.test_metrics) == {"oracle", "unknown"}

    run = runs_repo.get_run(store, trainer.run_id)
    assert run.status == "finished" and run.epochs_done == 2 and run.best_epoch in (1, 2)
    assert run.pid == os.getpid() and run.host == socket.gethostname() and run.device == "cpu"
    assert run.prep_hash and run.config["model"]["embedding_dim"] == 16 and run.config["train"]["max_epochs"] == 2
    checkpoints = [(run.checkpoint_path, run.checkpoint_sha256), (run.best_checkpoint_path, run.best_checkpoint_sha256)]
    for path, sha in checkpoints:
        assert Path(path).parent == tmp_path / "ckpt" / f"run_{run.id}"
        load_checkpoint(path, sha)  # verifies
    assert (tmp_path / "ckpt" / f"run_{run.id}" / "vocab.json").is_file()

    frame = runs_repo.metrics_frame(store, [run.id])
    valid = frame[frame.split == "valid"]
    assert sorted(valid.epoch.unique()) == [1, 2]
    assert set(valid.target_op) == {"oracle", "unknown"} and len(valid) == 2 * 2 * 15
    test = frame[frame.split == "test"]
    assert set(test.epoch) == {run.best_epoch} and len(test) == 2 * 15
    assert set(frame[frame.split == "train"].name) == {"loss"}
    final = runs_repo.final_metrics(store, run.id)
    assert final["oracle"] == pytest.approx(finished.test_metrics["oracle"])
    loss = runs_repo.loss_frame(store, [run.id])
    assert list(loss.step) == list(range(1, 2 * n_batches + 1))  # 3 batches ≤ 50 points per epoch: all kept
    ranks, prep = runs_repo.load_ranks(store, run.id, "test", "unknown")
    assert ranks.shape == (40,) and prep == run.prep_hash

    # the stored best checkpoint evaluates to the recorded test metrics
    again = evaluate_checkpoint(store, run.id, "test", "oracle", prepared=data, device="cpu")
    assert again.metrics == pytest.approx(finished.test_metrics["oracle"])


def test_cancel_and_pause(tmp_path: Path) -> None:
    data = tiny_prepared()
    store = tiny_store(tmp_path)
    control = ControlToken()
    events: list[object] = []
    paused = threading.Event()

    def callback(event: object) -> None:
        events.append(event)
        if isinstance(event, BatchEnd) and event.step == 2:
            control.pause()
            paused.set()

    trainer = make_trainer(store, data, ensure_tiny_model(), None, _config(), callback, control,
                           checkpoint_root=tmp_path)
    worker = threading.Thread(target=trainer.run)
    worker.start()
    assert paused.wait(20)
    n_before = len(events)
    worker.join(0.3)
    assert worker.is_alive() and len(events) == n_before  # paused: no progress
    control.cancel()  # wakes the paused trainer, which stops cleanly
    worker.join(20)
    assert not worker.is_alive()
    assert isinstance(events[-2], CheckpointSaved) and events[-2].kind == "last"
    assert isinstance(events[-1], Cancelled) and events[-1].checkpoint_path
    run = runs_repo.get_run(store, trainer.run_id)
    assert run.status == "stopped" and run.finished_at is not None
    meta = load_checkpoint(run.checkpoint_path, run.checkpoint_sha256)
    assert '"cursor": 2' in meta["meta"] and '"global_step": 2' in meta["meta"]


@pytest.mark.parametrize("after_batches", [4, 1])
def test_finish_early_keeps_the_best_epoch_and_scores_test(tmp_path: Path, after_batches: int) -> None:
    """What a tuning trial cut by its budget asks for: inside epoch 2 the run ends as early stopping
    would (best weights, test scored, status finished); inside epoch 1 nothing is validated yet, so
    it stops as on a cancel."""
    store = tiny_store(tmp_path)
    control = ControlToken()
    events: list[object] = []

    def callback(event: object) -> None:
        events.append(event)
        if isinstance(event, BatchEnd) and event.step == after_batches:
            control.finish_early()

    outcome = make_trainer(store, tiny_prepared(), TINY, None, _config(), callback, control,
                           checkpoint_root=tmp_path).run()
    run = runs_repo.get_run(store, outcome.run_id)
    if after_batches == 1:  # 3 batches an epoch: still in epoch 1
        assert outcome.status == "stopped" and run.status == "stopped" and isinstance(events[-1], Cancelled)
        return
    assert outcome.status == "finished" and run.status == "finished"
    assert run.epochs_done == 1 and outcome.best_epoch == run.best_epoch == 1
    finished = events[-1]
    assert isinstance(finished, Finished) and finished.stopped_early and finished.epochs_done == 1
    assert not any(isinstance(e, BatchEnd) and e.step > after_batches + 1 for e in events)
    assert runs_repo.final_metrics(store, run.id, "test")["oracle"] == pytest.approx(finished.test_metrics["oracle"])
    again = evaluate_checkpoint(store, run.id, "test", "oracle", prepared=tiny_prepared(), device="cpu")
    assert again.metrics == pytest.approx(finished.test_metrics["oracle"])  # tested with the best epoch's weights


def test_nan_loss_fails_clearly(tmp_path: Path) -> None:
    store = tiny_store(tmp_path)
    events: list[object] = []
    outcome = make_trainer(store, tiny_prepared(), ensure_tiny_model(), {"nan": True}, _config(), events.append,
                           checkpoint_root=tmp_path).run()
    assert outcome.status == "failed" and "nan" in (outcome.error or "")
    assert isinstance(events[-1], Failed) and "epoch 1, batch 1" in events[-1].reason
    assert "NonFiniteLoss" in events[-1].traceback
    run = runs_repo.get_run(store, outcome.run_id)
    assert run.status == "failed" and "learning rate" in run.error_text


@pytest.mark.parametrize(("stop_at", "model"), [("epoch", "EMBSR"), ("batch", TINY), ("validation", "EMBSR")])
def test_resume_is_exact(tmp_path: Path, stop_at: str, model: str) -> None:
    """Stopped after epoch 1, inside epoch 2 or inside epoch 1's validation (its evaluation blocks
    check for a cancel too) and resumed = uninterrupted, to the last bit on CPU."""
    data = tiny_prepared()
    store = tiny_store(tmp_path)
    cfg = _config(max_epochs=2 if model == "EMBSR" else 3, eval_batch_size=8)
    overrides = EMBSR_SMALL if model == "EMBSR" else None
    full = make_trainer(store, data, model, overrides, cfg, checkpoint_root=tmp_path).run()
    assert full.status == "finished"

    control = ControlToken()

    def stopper(event: object) -> None:
        if stop_at == "epoch" and isinstance(event, EvaluationEnd) and event.epoch == 1:
            control.cancel()
        if stop_at == "batch" and isinstance(event, BatchEnd) and event.epoch == 2 and event.batch == 2:
            control.cancel()
        if stop_at == "validation" and isinstance(event, BatchEnd) and event.batch == event.n_batches:
            control.cancel()  # after epoch 1's last batch: the first evaluation block sees it

    first = make_trainer(store, data, model, overrides, cfg, stopper, control, checkpoint_root=tmp_path).run()
    assert first.status == "stopped"
    if stop_at == "validation":  # stopped inside it: epoch 1 is not done and nothing of it was recorded
        assert runs_repo.metrics_frame(store, [first.run_id]).empty
    events: list[object] = []
    resumed = resume_run(store, first.run_id, data, events.append)
    assert resumed.status == "finished" and resumed.run_id == first.run_id
    started = events[0]
    assert isinstance(started, RunStarted) and started.resumed
    assert started.start_epoch == (1 if stop_at == "validation" else 2)
    if stop_at == "validation":  # the resume validates epoch 1 without training any of its batches again
        assert not [e for e in events if isinstance(e, BatchEnd) and e.epoch == 1]
        assert next(e for e in events if isinstance(e, EvaluationEnd)).epoch == 1
    assert resumed.test_metrics == full.test_metrics  # exact, not approximate
    assert resumed.best_epoch == full.best_epoch
    a = runs_repo.metrics_frame(store, [full.run_id]).drop(columns=["run_id", "wall_time"])
    b = runs_repo.metrics_frame(store, [first.run_id]).drop(columns=["run_id", "wall_time"])
    assert a.reset_index(drop=True).equals(b.reset_index(drop=True))
    ra, _ = runs_repo.load_ranks(store, full.run_id, "test", "oracle")
    rb, _ = runs_repo.load_ranks(store, first.run_id, "test", "oracle")
    assert np.array_equal(ra, rb)
    wa = load_checkpoint(runs_repo.get_run(store, full.run_id).checkpoint_path, None)["model"]
    wb = load_checkpoint(runs_repo.get_run(store, first.run_id).checkpoint_path, None)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_interrupted_runs_are_marked_and_resumable(tmp_path: Path) -> None:
    data = tiny_prepared()
    store = tiny_store(tmp_path)
    trainer = make_trainer(store, data, ensure_tiny_model(), None, _config(max_epochs=1), checkpoint_root=tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    runs_repo.update_run(store, trainer.run_id, status="running", pid=dead.pid)
    alive = make_trainer(store, data, ensure_tiny_model(), None, _config(), checkpoint_root=tmp_path)
    runs_repo.update_run(store, alive.run_id, status="running")  # this process: alive
    assert mark_interrupted_runs(store) == [trainer.run_id]
    assert runs_repo.get_run(store, trainer.run_id).status == "interrupted"
    assert runs_repo.get_run(store, alive.run_id).status == "running"
    outcome = resume_run(store, trainer.run_id, data)  # no checkpoint yet: starts over under the same id
    assert outcome.status == "finished" and outcome.epochs_done == 1


def test_checkpoint_tampering_is_detected(tmp_path: Path) -> None:
    data = tiny_prepared()
    store = tiny_store(tmp_path)
    outcome = make_trainer(store, data, ensure_tiny_model(), None, _config(max_epochs=1),
                           checkpoint_root=tmp_path).run()
    run = runs_repo.get_run(store, outcome.run_id)
    with open(run.best_checkpoint_path, "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(CheckpointError, match="altered or corrupted"):
        evaluate_checkpoint(store, run.id, "test", "oracle", prepared=data, device="cpu")
    with pytest.raises(ValueError, match="finished"):
        resume_run(store, run.id, data)
    runs_repo.delete_run(store, run.id)
    assert not Path(run.checkpoint_path).parent.exists()
    with pytest.raises(KeyError):
        runs_repo.get_run(store, run.id)


def test_non_trainable_model_is_fitted_then_evaluated_once(tmp_path: Path) -> None:
    from embsr_core.inference import Predictor

    data = tiny_prepared()
    store = tiny_store(tmp_path)
    events: list[object] = []
    outcome = make_trainer(store, data, "S-POP", None, _config(), events.append, checkpoint_root=tmp_path).run()
    assert outcome.status == "finished" and outcome.epochs_done == 1 and outcome.best_epoch == 1, outcome.error
    assert not any(isinstance(e, (BatchEnd, EpochStarted)) for e in events)
    assert "oracle" in outcome.test_metrics
    top = Predictor.from_run(store, outcome.run_id).predict([("i1", "view"), ("i2", "cart")], k=3)
    assert len(top) == 3


def test_early_stopping_and_ctrl_c(tmp_path: Path) -> None:
    data = tiny_prepared()
    store = tiny_store(tmp_path)
    events: list[object] = []
    # lr ~ 0: validation never strictly improves after epoch 1 → stops after `patience` more epochs
    cfg = _config(max_epochs=5, patience=1, lr=1e-7, criterion="hit@20")
    outcome = make_trainer(store, data, TINY, None, cfg, events.append, checkpoint_root=tmp_path).run()
    assert outcome.status == "finished" and outcome.epochs_done == 2 and outcome.best_epoch == 1
    assert isinstance(events[-1], Finished) and events[-1].stopped_early
    valid = [e for e in events if isinstance(e, EvaluationEnd) and e.split == "valid" and e.target_op == "oracle"]
    assert [e.is_best for e in valid] == [True, False]

    def interrupt(event: object) -> None:  # what Ctrl-C does without cancel_on_sigint
        if isinstance(event, BatchEnd) and event.step == 2:
            raise KeyboardInterrupt

    stopped = make_trainer(store, data, TINY, None, _config(), interrupt, checkpoint_root=tmp_path).run()
    run = runs_repo.get_run(store, stopped.run_id)
    assert stopped.status == "stopped" and run.status == "stopped" and "Ctrl-C" in run.error_text
    assert run.checkpoint_path and Path(run.checkpoint_path).is_file()
