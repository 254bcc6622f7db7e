"""Trainer → recorders: the trainer runs with no store at all; the store recorder keeps a run exactly
as it was when a resume fails before it starts; a resumed run's duration counts all its training."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from _training_helpers import ensure_tiny_model, tiny_prepared, tiny_store

from embsr_core import reports
from embsr_core.store import open_store, run_details, runs_repo
from embsr_core.store.engine import data_dir
from embsr_core.training import (
    BatchEnd,
    CheckpointSaved,
    ControlToken,
    EvaluationEnd,
    Finished,
    Recorder,
    ResumePoint,
    RunStarted,
    TrainConfig,
    Trainer,
    TrainEvent,
    make_trainer,
    resume_run,
)
from embsr_core.training.checkpoints import load_checkpoint, sha256_file

TINY = ensure_tiny_model()


def _config(**changes: object) -> TrainConfig:
    base = {"batch_size": 32, "max_epochs": 2, "patience": 5, "seed": 7, "device": "cpu", "eval_batch_size": 64}
    return TrainConfig.from_dict({**base, **changes})


class ListRecorder(Recorder):
    """Keeps every event; resumes from a checkpoint it was told about (no store involved)."""

    def __init__(self, point: ResumePoint | None = None):
        self.events: list[TrainEvent] = []
        self.point = point

    def __call__(self, event: TrainEvent) -> None:
        self.events.append(event)

    def resume_point(self, run_id: int) -> ResumePoint | None:
        return self.point


def test_the_trainer_needs_no_store_and_resumes_through_a_recorder(tmp_path: Path) -> None:
    data = tiny_prepared()
    seen: list[TrainEvent] = []
    kept = ListRecorder()
    outcome = Trainer(data, TINY, None, _config(), None, [kept, seen.append], run_id=5,
                      checkpoint_dir=tmp_path).run()
    assert outcome.status == "finished" and outcome.run_id == 5, outcome.error
    assert [type(e) for e in seen] == [type(e) for e in kept.events]  # plain callables hear the same
    assert isinstance(kept.events[0], RunStarted) and isinstance(kept.events[-1], Finished)
    tests = [e for e in kept.events if isinstance(e, EvaluationEnd) and e.split == "test"]
    assert tests and all(e.ranks is not None and len(e.ranks) == 40 and e.wall_time for e in tests)
    saved = {e.kind: e for e in kept.events if isinstance(e, CheckpointSaved)}
    assert saved["last"].best_epoch == outcome.best_epoch and Path(saved["last"].path).parent == tmp_path
    assert sorted(p.name for p in tmp_path.glob("*.safetensors")) == sorted(
        Path(saved[kind].path).name for kind in ("best", "last")
    )  # only the recorded files are kept

    # resume from the last checkpoint with a larger max_epochs: the recorder says where the run stands
    point = ResumePoint(saved["last"].path, saved["last"].sha256, saved["best"].path, saved["best"].sha256)
    again = ListRecorder(point)
    more = Trainer(data, TINY, None, _config(max_epochs=3), None, [again], run_id=5, checkpoint_dir=tmp_path).run()
    started = again.events[0]
    assert isinstance(started, RunStarted) and started.resumed and started.start_epoch == 3
    assert started.start_step == 2 * 3 and started.work_before_s > 0
    assert more.status == "finished" and more.epochs_done == 3


def test_trainer_refuses_a_store_as_first_argument(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="make_trainer"):
        Trainer(tiny_store(tmp_path), tiny_prepared(), TINY)  # type: ignore[arg-type]


def _snapshot(store: Any, run_id: int) -> dict[str, Any]:
    run = runs_repo.get_run(store, run_id)
    columns = ("status", "config", "device", "started_at", "finished_at", "error_text", "epochs_done", "best_epoch",
               "checkpoint_path", "checkpoint_sha256", "best_checkpoint_path", "best_checkpoint_sha256")
    return {
        **{c: getattr(run, c) for c in columns},
        "metrics": runs_repo.metrics_frame(store, [run_id]).to_dict("records"),
        "loss": runs_repo.loss_frame(store, [run_id]).to_dict("records"),
        "log": [line.message for line in run_details.run_log(store, run_id)],
    }


@pytest.mark.parametrize("how", ["finished, extended", "stopped"])
def test_a_failed_resume_leaves_the_run_as_it_was(tmp_path: Path, how: str) -> None:
    """Issue: a corrupted last.pt turned a finished run into failed and stored the new max_epochs."""
    data = tiny_prepared()
    store = tiny_store(tmp_path)
    control = ControlToken()

    def stop_in_epoch_2(event: object) -> None:
        if how == "stopped" and isinstance(event, BatchEnd) and event.epoch == 2:
            control.cancel()

    first = make_trainer(store, data, TINY, None, _config(), stop_in_epoch_2, control,
                         checkpoint_root=tmp_path).run()
    assert first.status == ("finished" if how.startswith("finished") else "stopped")
    run = runs_repo.get_run(store, first.run_id)
    with open(run.checkpoint_path, "r+b") as handle:  # corrupt last.pt in place
        handle.seek(100)
        handle.write(b"garbage")
    before = _snapshot(store, first.run_id)

    outcome = resume_run(store, first.run_id, data, max_epochs=5)
    assert outcome.status == "failed" and "corrupted" in (outcome.error or "")
    after = _snapshot(store, first.run_id)
    assert after == before
    assert after["config"]["train"]["max_epochs"] == 2


def test_a_resumed_run_counts_its_whole_training_time(tmp_path: Path) -> None:
    """Issue: after resuming, the duration counted only the time since the resume."""
    data = tiny_prepared()
    store = tiny_store(tmp_path)
    control = ControlToken()

    def slow_then_stop(event: object) -> None:
        if isinstance(event, BatchEnd):
            time.sleep(0.25)  # the first process does measurable work: 3 batches ≥ 0.75 s
        if isinstance(event, EvaluationEnd) and event.epoch == 1:
            control.cancel()

    first = make_trainer(store, data, TINY, None, _config(max_epochs=3), slow_then_stop, control,
                         checkpoint_root=tmp_path).run()
    assert first.status == "stopped"
    run = runs_repo.get_run(store, first.run_id)
    work_before = float(load_checkpoint(run.checkpoint_path, None)["meta"].split('"elapsed": ')[1].split(",")[0])
    assert work_before >= 0.75
    time.sleep(1.0)  # the pause between stop and resume is not training time

    t0 = time.monotonic()
    assert resume_run(store, first.run_id, data).status == "finished"
    resumed_wall = time.monotonic() - t0
    (info,) = reports.run_infos(store, [first.run_id])
    duration = info.duration_s()
    assert duration is not None
    assert work_before <= duration <= work_before + resumed_wall + 0.2


class _RecordedFileChecker(Recorder):
    """At every checkpoint event, the file recorded before it must still be there, unchanged.

    That is what a kill between a checkpoint's rename and the store's commit needs: the record still
    names an intact file whose hash matches (one fixed file name broke this and resume said "altered").
    """

    def __init__(self) -> None:
        self.recorded: dict[str, tuple[str, str]] = {}
        self.checked = 0

    def __call__(self, event: TrainEvent) -> None:
        if not isinstance(event, CheckpointSaved):
            return
        before = self.recorded.get(event.kind)
        if before is not None:
            assert event.path != before[0], "a save overwrote the file the store records"
            assert sha256_file(Path(before[0])) == before[1]
            self.checked += 1
        self.recorded[event.kind] = (event.path, event.sha256)


def test_a_checkpoint_save_never_touches_the_recorded_file(tmp_path: Path) -> None:
    checker = _RecordedFileChecker()
    outcome = Trainer(tiny_prepared(), TINY, None, _config(max_epochs=3), None, [checker], run_id=1,
                      checkpoint_dir=tmp_path).run()
    assert outcome.status == "finished", outcome.error
    assert checker.checked >= 2  # last saved at epochs 2 and 3 with epoch 1's / 2's file still intact
    assert {Path(path).exists() for path, _ in checker.recorded.values()} == {True}


def test_two_stores_keep_their_run_1_checkpoints_apart(tmp_path: Path) -> None:
    """Run ids are per store: two stores training run 1 at once (two leaderboards) once shared one
    ``run_1`` folder and overwrote each other's checkpoints. Each store has its own folder now."""
    stores = [tiny_store(tmp_path / name) for name in ("a", "b")]
    trainers = [make_trainer(store, tiny_prepared(), TINY, None, _config()) for store in stores]
    assert [t.run_id for t in trainers] == [1, 1]
    folders = [t.checkpoint_dir for t in trainers]
    assert folders[0] != folders[1] and all(f.name == "run_1" for f in folders)
    assert all(f.parent.parent == data_dir() / "checkpoints" for f in folders)
    for trainer in trainers:
        assert trainer.run().status == "finished"
    for store, trainer in zip(stores, trainers, strict=True):
        run = runs_repo.get_run(store, trainer.run_id)
        assert Path(run.checkpoint_path).parent == trainer.checkpoint_dir
        load_checkpoint(run.best_checkpoint_path, run.best_checkpoint_sha256)  # intact and its own
    reopened = open_store(stores[0].url)  # the same store opened again keeps its folder
    assert make_trainer(reopened, tiny_prepared(), TINY, None, _config()).checkpoint_dir.parent == folders[0].parent
