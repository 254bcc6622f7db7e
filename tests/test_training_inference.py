"""Predictor: top-K equals the model's own score ordering; unknown input is reported clearly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _training_helpers import tiny_prepared, tiny_store

from embsr_core.data.prepared import SplitArrays
from embsr_core.inference import Predictor, UnknownInputError
from embsr_core.store import runs_repo
from embsr_core.training import TrainConfig, run_training
from embsr_core.training.checkpoints import CheckpointError


def test_predictor_top_k_equals_scores_argsort(tmp_path: Path) -> None:
    data = tiny_prepared()
    store = tiny_store(tmp_path)
    outcome = run_training(store, data, "EMBSR", {"embedding_dim": 16},
                           TrainConfig(batch_size=48, max_epochs=1, device="cpu"), checkpoint_root=tmp_path)
    assert outcome.status == "finished", outcome.error
    predictor = Predictor.from_run(store, outcome.run_id)
    session = [("i3", "view"), ("i3", "cart"), ("i17", "view")]
    top = predictor.predict(session, k=10, target_op="buy")
    assert len(top) == 10 and top[0].score >= top[-1].score

    # the same session scored directly by the model, in query mode for "buy" (op id 3)
    row = SplitArrays(items=np.array([[3, 3, 17]], np.int32), ops=np.array([[1, 2, 1]], np.int32),
                      lengths=np.array([3], np.int32), targets=np.array([1]), target_ops=np.array([1], np.int32),
                      session_ids=np.array(["q"]), end_times=np.zeros(1))
    with torch.no_grad():
        scores = predictor.model.scores(predictor.model.collate(row, np.array([0]), 3))[0].numpy()
    expected = np.argsort(-scores[1:], kind="stable")[:10] + 1
    assert [r.item_id for r in top] == [f"i{i}" for i in expected]
    assert [r.score for r in top] == pytest.approx(scores[expected].tolist())
    assert {r.item_id for r in top if r.in_session} <= {"i3", "i17"}
    assert all(r.category == f"c{int(r.item_id[1:]) % 4}" for r in top)
    unseen = predictor.predict(session, k=30, exclude_seen=True)
    assert len(unseen) == 28 and not any(r.in_session for r in unseen)

    with pytest.raises(UnknownInputError, match=r"'nope' \(position 2\).*'teleport' \(position 3\)"):
        predictor.predict([("i3", "view"), ("nope", "view"), ("i4", "teleport")])
    assert predictor.predict([("i3", "view"), ("nope", "view")], skip_unknown=True)
    with pytest.raises(ValueError, match="only known when evaluating"):
        predictor.predict(session, target_op="oracle")
    assert "items" in predictor.explain(session)

    run = runs_repo.get_run(store, outcome.run_id)
    vocab = Path(run.best_checkpoint_path).parent / "vocab.json"
    vocab.write_text(vocab.read_text().replace('"i3"', '"i3x"'))
    with pytest.raises(CheckpointError, match="vocabulary"):
        Predictor.from_run(store, outcome.run_id)
