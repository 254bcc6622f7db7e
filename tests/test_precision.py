"""Mixed precision: where ``amp`` applies (CUDA; CPUs with AMX tiles), where it stays fp32 and says why,
and a bf16 run on the CPU path (forced here, since this CPU has no AMX) that trains with fp32 scoring."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _training_helpers import tiny_prepared, tiny_store

from embsr_core.models.base import batch_to
from embsr_core.models.registry import build_model
from embsr_core.store import runs_repo
from embsr_core.training import RunStarted, TrainConfig, make_trainer
from embsr_core.training import precision as precision_module
from embsr_core.training.precision import precision_for
from embsr_core.training.run_log import event_log_lines

EMBSR_SMALL = {"embedding_dim": 16, "dropout": 0.1}
CPU = torch.device("cpu")


def _config(**changes: object) -> TrainConfig:
    base = {"batch_size": 32, "max_epochs": 2, "patience": 5, "seed": 7, "device": "cpu", "eval_batch_size": 64}
    return TrainConfig.from_dict({**base, **changes})


def test_amp_applies_only_where_the_hardware_pays_it_back() -> None:
    assert not precision_for(False, CPU).enabled and precision_for(False, CPU).label == "fp32"
    without = precision_for(True, CPU, bf16_tiles=False)
    assert not without.enabled and "AMX" in without.note and without.label == "fp32"
    tiles = precision_for(True, CPU, bf16_tiles=True)
    assert tiles.enabled and tiles.dtype == torch.bfloat16 and not tiles.scaled and tiles.label == "bf16"
    other = precision_for(True, torch.device("meta"))
    assert not other.enabled and "meta" in other.note


def _train(tmp_path: Path, amp: bool, events: list[object]) -> np.ndarray:
    store = tiny_store(tmp_path)
    trainer = make_trainer(store, tiny_prepared(), "EMBSR", EMBSR_SMALL, _config(amp=amp), events.append,
                           checkpoint_root=tmp_path / "ckpt")
    outcome = trainer.run()
    assert outcome.status == "finished", outcome.error
    return np.asarray(runs_repo.load_ranks(store, outcome.run_id, "test", "oracle")[0])


@pytest.mark.skipif(precision_module.cpu_has_bf16_tiles(), reason="this CPU has AMX: amp is on here")
def test_amp_on_a_cpu_without_tiles_trains_in_fp32_and_the_log_says_why(tmp_path: Path) -> None:
    asked: list[object] = []
    plain: list[object] = []
    ranks = _train(tmp_path / "a", True, asked)
    assert np.array_equal(ranks, _train(tmp_path / "b", False, plain))  # the same fp32 run
    started = next(e for e in asked if isinstance(e, RunStarted))
    assert started.precision == "fp32" and "AMX" in started.precision_note
    lines = event_log_lines(started)
    assert lines[-1][0] == "warning" and "no bf16 matrix unit" in lines[-1][1]
    assert len(event_log_lines(next(e for e in plain if isinstance(e, RunStarted)))) == 1  # nothing to say


def test_bf16_on_the_cpu_path_trains_and_keeps_the_scoring_in_fp32(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """What a CPU with AMX runs: bf16 autocast for the model, fp32 scores over the items."""
    monkeypatch.setattr(precision_module, "cpu_has_bf16_tiles", lambda: True)
    events: list[object] = []
    ranks = _train(tmp_path, True, events)
    started = next(e for e in events if isinstance(e, RunStarted))
    assert started.precision == "bf16" and not started.precision_note
    assert "in bf16 mixed precision" in event_log_lines(started)[0][1]
    assert len(ranks) == len(tiny_prepared().test) and (ranks >= 1).all()

    data = tiny_prepared()
    model = build_model("EMBSR", data.n_items, data.n_ops, EMBSR_SMALL).eval()
    batch = batch_to(model.collate(data.test, np.arange(8), "oracle"), CPU)
    with torch.no_grad():
        exact = model.scores(batch)[:, 1:]  # item 0 is the padding (-inf)
        with precision_for(True, CPU).autocast():
            scores = model.scores(batch)[:, 1:]
            loss = model.loss(batch)
    assert scores.dtype == torch.float32 and torch.isfinite(scores).all() and torch.isfinite(loss)
    assert np.corrcoef(scores.flatten().numpy(), exact.flatten().numpy())[0, 1] > 0.99  # bf16 rounding only
