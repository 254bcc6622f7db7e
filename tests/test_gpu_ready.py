"""The GPU-ready training path computes what the CPU path computes.

Losses read from the device every few steps instead of every step, segment counts without bincount,
loop offsets kept on the host, DDP without the unused-parameter search: each is checked here on the
CPU against the plain path (identical events, losses, metrics, resume point).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _training_helpers import ensure_tiny_model, tiny_prepared, tiny_store

from embsr_core.models.base import HOST_KEYS, batch_to
from embsr_core.models.layers.segment import segment_mean
from embsr_core.models.registry import build_model, list_specs
from embsr_core.store import runs_repo
from embsr_core.training import BatchEnd, ControlToken, Finished, TrainConfig, make_trainer, resume_run
from embsr_core.training.trainer import Trainer

TINY = ensure_tiny_model()
EMBSR_SMALL = {"embedding_dim": 16, "dropout": 0.1}


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_segment_mean_matches_the_bincount_form() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 8, generator=gen)
    segment = torch.randint(0, 37, (200,), generator=gen)
    segment[segment == 5] = 6  # an empty segment
    count = torch.bincount(segment, minlength=40).clamp_min(1).to(x.dtype)
    expected = x.new_zeros(40, 8).index_add_(0, segment, x) / count[:, None]
    assert torch.equal(segment_mean(x, segment, 40), expected)


def test_last_macro_position_matches_the_bincount_form() -> None:
    from embsr_core.models.embsr import EMBSR

    gen = torch.Generator().manual_seed(1)
    drawn = torch.randint(0, 9, (60,), generator=gen)
    session = torch.cat([torch.arange(9), drawn]).sort().values  # session-major; every session has one at least
    expected = torch.bincount(session, minlength=9).cumsum(0) - 1
    assert torch.equal(EMBSR._last_macro({"g_macro_session": session}, 9), expected)


def test_loop_offsets_stay_on_the_host() -> None:
    batch = {"g_trie_level_ptr": torch.tensor([0, 3, 5]), "items": torch.ones(2, 3, dtype=torch.int64)}
    moved = batch_to(batch, "meta")  # a device whose tensors cannot be read back at all
    assert "g_trie_level_ptr" in HOST_KEYS
    assert moved["g_trie_level_ptr"].device.type == "cpu" and moved["g_trie_level_ptr"].tolist() == [0, 3, 5]
    assert moved["items"].device.type == "meta"


def test_every_model_uses_all_its_parameters_each_step() -> None:
    """What lets DDP skip its per-step search for unused parameters (``ddp_find_unused_parameters``)."""
    torch.set_num_threads(1)
    data = tiny_prepared()
    for spec in list_specs():
        if spec.name.startswith("_"):
            continue
        model = build_model(spec.name, data.n_items, data.n_ops, {})
        if not model.trainable or model.ddp_find_unused_parameters:
            continue
        model.train()
        for mode in ("oracle", "unknown"):
            model.zero_grad(set_to_none=True)
            model.loss(model.collate(data.train, np.arange(32), mode)).backward()
            unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
            assert unused == [], f"{spec.name} ({mode}): no gradient for {unused}; set ddp_find_unused_parameters"


def _train(tmp_path: Path, every: int, monkeypatch: pytest.MonkeyPatch, stop_after_batch: int | None = None,
           name: str = "run") -> tuple[list[BatchEnd], object, object]:
    monkeypatch.setattr(Trainer, "_sync_interval", lambda self, n_batches: every)
    torch.set_num_threads(1)
    store = tiny_store(tmp_path / name)
    control = ControlToken()
    events: list[object] = []

    def listen(event: object) -> None:
        events.append(event)
        if stop_after_batch is not None and isinstance(event, BatchEnd) and event.step == stop_after_batch:
            control.cancel()

    config = TrainConfig(batch_size=16, max_epochs=2, patience=5, seed=3, device="cpu", eval_batch_size=64,
                         threads=1)
    trainer = make_trainer(store, tiny_prepared(), "EMBSR", EMBSR_SMALL, config, listen, control,
                           checkpoint_root=tmp_path / name / "ckpt")
    outcome = trainer.run()
    return [e for e in events if isinstance(e, BatchEnd)], outcome, (store, trainer.run_id)


def test_reading_losses_every_few_steps_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain, plain_out, _ = _train(tmp_path, 1, monkeypatch, name="plain")
    windowed, windowed_out, _ = _train(tmp_path, 4, monkeypatch, name="windowed")  # 6 batches: 4 + 2 per epoch
    assert plain_out.status == windowed_out.status == "finished"  # type: ignore[attr-defined]
    assert [(e.epoch, e.batch, e.step, e.loss) for e in plain] == [(e.epoch, e.batch, e.step, e.loss) for e in windowed]
    assert plain_out.test_metrics == windowed_out.test_metrics  # type: ignore[attr-defined]


def test_a_stop_inside_a_window_books_the_steps_taken_and_resumes_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain, plain_out, _ = _train(tmp_path, 1, monkeypatch, name="plain")
    _, stopped, (store, run_id) = _train(tmp_path, 4, monkeypatch, stop_after_batch=1, name="stopped")
    assert stopped.status == "stopped"  # type: ignore[attr-defined]
    run = runs_repo.get_run(store, run_id)
    assert run.status == "stopped"
    events: list[object] = []
    resumed = resume_run(store, run_id, tiny_prepared(), events.append)
    assert resumed.status == "finished", resumed.error
    finished = next(e for e in events if isinstance(e, Finished))
    assert finished.test_metrics == plain_out.test_metrics  # type: ignore[attr-defined]
    resumed_steps = [e.step for e in events if isinstance(e, BatchEnd)]
    assert resumed_steps == list(range(resumed_steps[0], plain[-1].step + 1))
