"""The memory estimate before training (issue 18): measured dry run, refusal, lowering, free memory."""

from __future__ import annotations

import logging

import _gui_helpers
import numpy as np
import pytest
import torch
from _model_helpers import one_torch_thread  # noqa: F401 (autouse fixture)
from _training_helpers import ensure_tiny_model, tiny_prepared, tiny_store

from embsr_core.store import runs_repo
from embsr_core.training import TrainConfig, run_training
from embsr_core.training import memory_estimate as me

SMALL_EMBSR = {"embedding_dim": 8}


def test_tracker_counts_live_and_peak_bytes():
    with me.TensorBytesPeak() as meter:
        a = torch.empty(1000, dtype=torch.float32)  # 4,000 bytes
        b = torch.empty(500, dtype=torch.float64)  # 4,000 bytes
        view = a[:10]  # same storage: nothing new
        c = b * 2  # 4,000 more while a and b are alive
        del a, view, b
        d = c + 1  # c alone is alive: 8,000, below the peak
        del c, d
    assert meter.peak == 12_000
    assert meter.live == 0


def test_tracker_sees_the_backward_pass():
    x = torch.randn(64, 32, requires_grad=True)
    w = torch.randn(32, 256)
    with me.TensorBytesPeak() as forward_only:
        (x @ w).relu().sum()
    with me.TensorBytesPeak() as with_backward:
        (x @ w).relu().sum().backward()
    assert with_backward.peak > forward_only.peak  # the 64×256 output gradient and x.grad


def _estimate(prepared, config, available=None):
    return me.estimate_for_prepared(prepared, "EMBSR", SMALL_EMBSR, config, available=available)


def test_estimate_grows_with_batch_and_data_shape():
    prepared = tiny_prepared()
    est = _estimate(prepared, TrainConfig(device="cpu", batch_size=64), available=1e12)
    assert est.step_per_session > 0 and est.eval_per_row > 0 and est.state_bytes > 0
    assert est.train_bytes(256) > est.train_bytes(64) > est.train_bytes(8)
    assert est.fits() and est.plan() == {}
    assert "training" in est.summary() and "MB" in est.summary()
    # many more operations: the model state grows (|O|² relation rows), a step hardly does
    many = me.estimate_memory(me.worst_case_split(30, 60, 6), 30, 60, "EMBSR", SMALL_EMBSR,
                              TrainConfig(device="cpu", batch_size=64), available=1e12)
    few = me.estimate_memory(me.worst_case_split(30, 3, 6), 30, 3, "EMBSR", SMALL_EMBSR,
                             TrainConfig(device="cpu", batch_size=64), available=1e12)
    assert many.state_bytes > 5 * few.state_bytes
    assert many.step_per_session < 2 * few.step_per_session


def test_automatic_batch_size_is_resolved_like_the_trainer():
    prepared = tiny_prepared()
    est = _estimate(prepared, TrainConfig(device="cpu"), available=1e12)  # batch_size 0 = automatic
    assert est.batch_size == TrainConfig().resolved_for(len(prepared.train)).batch_size


def test_refuses_with_the_estimate_and_what_to_change():
    prepared = tiny_prepared()
    config = TrainConfig(device="cpu", batch_size=64)
    with pytest.raises(me.MemoryBudgetError) as err:
        me.fit_to_memory(prepared, "EMBSR", SMALL_EMBSR, config, available=1e3)
    text = str(err.value)
    assert "Not enough memory for EMBSR" in text and "needs about" in text and "MB" in text
    assert "smaller embedding size" in text
    assert "would not start" in _estimate(prepared, config, available=1e3).verdict()


def test_lowers_the_batch_size_when_a_smaller_one_fits(caplog):
    prepared = tiny_prepared()
    config = TrainConfig(device="cpu", batch_size=64, eval_batch_size=4)
    est = _estimate(prepared, config, available=1e12)
    # free memory for a 20-session step (and the small evaluation) but not for 64
    room = est.train_bytes(20) / me.SAFETY
    assert est.eval_bytes() < est.train_bytes(20) < est.train_bytes(64)
    with caplog.at_level(logging.WARNING, logger=me.__name__):
        lowered = me.fit_to_memory(prepared, "EMBSR", SMALL_EMBSR, config, available=room)
    assert 8 <= lowered.batch_size <= 20 and lowered.batch_size % 8 == 0
    assert lowered.eval_batch_size == 4 and lowered.lr == config.lr
    assert "batch size → " in caplog.text
    assert "lowered to" in _estimate(prepared, config, available=room).verdict()


def test_lowering_stops_at_an_eighth_of_the_chosen_batch():
    prepared = tiny_prepared()
    config = TrainConfig(device="cpu", batch_size=512, eval_batch_size=16)
    est = _estimate(prepared, config, available=1e12)
    room = max(est.train_bytes(44), est.eval_bytes()) / me.SAFETY  # fits 44 (→ 40) < 512 / 8
    with pytest.raises(me.MemoryBudgetError, match="at most 40"):
        me.fit_to_memory(prepared, "EMBSR", SMALL_EMBSR, config, available=room)


def test_evaluation_batch_is_lowered_alone_when_only_evaluation_is_too_big():
    prepared = tiny_prepared(n_eval=600)
    config = TrainConfig(device="cpu", batch_size=8, eval_batch_size=4096)
    est = _estimate(prepared, config, available=1e12)
    assert est.eval_rows == 600  # capped by the larger evaluation split
    assert est.eval_bytes() > est.train_bytes()
    room = max(est.train_bytes(), est.eval_bytes(64)) / me.SAFETY
    lowered = me.fit_to_memory(prepared, "EMBSR", SMALL_EMBSR, config, available=room)
    assert lowered.batch_size == 8 and 1 <= lowered.eval_batch_size <= 64


def test_run_training_refuses_before_a_run_exists(tmp_path, monkeypatch):
    store = tiny_store(tmp_path)
    monkeypatch.setattr(me, "available_bytes", lambda device: 1e3)
    with pytest.raises(me.MemoryBudgetError):
        run_training(store, tiny_prepared(), "EMBSR", SMALL_EMBSR,
                     TrainConfig(device="cpu", batch_size=32, max_epochs=1), checkpoint_root=tmp_path / "ck")
    assert runs_repo.list_runs(store) == []


def test_run_training_trains_with_the_lowered_batch(tmp_path, monkeypatch):
    prepared = tiny_prepared()
    name = ensure_tiny_model()
    config = TrainConfig(device="cpu", batch_size=64, max_epochs=1, eval_batch_size=16)
    est = me.estimate_for_prepared(prepared, name, {}, config, available=1e12)
    room = max(est.train_bytes(16), est.eval_bytes()) / me.SAFETY
    monkeypatch.setattr(me, "available_bytes", lambda device: room)
    store = tiny_store(tmp_path)
    outcome = run_training(store, prepared, name, {}, config, checkpoint_root=tmp_path / "ck")
    assert outcome.status == "finished"
    stored = runs_repo.get_run(store, outcome.run_id).config["train"]
    assert 8 <= stored["batch_size"] <= 16


def test_free_memory_readers(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24683584 kB\nMemFree:  1000 kB\nMemAvailable:   2048 kB\n")
    assert me._meminfo_available(meminfo) == 2048 * 1024
    assert me._meminfo_available(tmp_path / "missing") is None
    (tmp_path / "memory.max").write_text("1000000\n")
    (tmp_path / "memory.current").write_text("400000\n")
    assert me._cgroup_available(tmp_path) == 600_000
    (tmp_path / "memory.max").write_text("max\n")
    assert me._cgroup_available(tmp_path) is None
    free = me.available_bytes(torch.device("cpu"))
    assert free is None or free > 0


def test_worst_case_split_has_full_sessions():
    split = me.worst_case_split(50, 7, 12, n=5)
    assert len(split) == 5 and np.all(split.lengths == 12)
    assert split.items.min() >= 1 and split.ops.max() <= 7


context = _gui_helpers.context  # fixtures of the Train page test below
window = _gui_helpers.window


@pytest.mark.gui
def test_train_page_shows_the_estimate_and_follows_the_batch_size(qtbot, window, context, monkeypatch):
    from app.pages.train import TrainPage
    from embsr_core.data.demo import import_synthetic

    import_synthetic(context.store, "Small synthetic", n_sessions=300, n_items=60, n_categories=4, seed=1)
    window.show_page("train")
    page = window.page("train")
    assert isinstance(page, TrainPage)
    page.select_model("EMBSR")
    page.model_form.set_values({"embedding_dim": 16})
    batch = page.train_form.widgets["batch_size"]
    qtbot.waitUntil(lambda: page.memory_label.text().startswith("Estimated peak"), timeout=30_000)
    assert page.memory_label.isVisible() and "evaluation" in page.memory_label.text()
    batch.setValue(64)  # the user edits the field (a spin box)
    qtbot.waitUntil(lambda: "(batch 64)" in page.memory_label.text(), timeout=30_000)
    monkeypatch.setattr(me, "available_bytes", lambda device: 1e3)  # a machine with no memory left
    batch.setValue(128)
    qtbot.waitUntil(lambda: "would not start" in page.memory_label.text(), timeout=30_000)
