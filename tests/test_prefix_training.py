"""Prefix training (the default): one training sample per macro-item position, as index views.

Also the data-size batch rule, which decides how many of those samples go into one step.
"""

from __future__ import annotations

import _gui_helpers
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from embsr_core.cli import main
from embsr_core.data.prepared import PreparedDataset, SampleView
from embsr_core.data.preprocess import PRESETS, PreprocessConfig, config_hash, prepare
from embsr_core.models.registry import build_model
from embsr_core.store import open_store, runs_repo
from embsr_core.training.config import TrainConfig, auto_batch_size


def _events(sessions: dict[str, list[tuple[str, str]]]) -> pd.DataFrame:
    rows = [(s, item, op, float(t)) for s, steps in sessions.items() for t, (item, op) in enumerate(steps)]
    frame = pd.DataFrame(rows, columns=["session", "item", "operation", "timestamp"])
    frame["timestamp"] += frame.groupby("session").ngroup() * 1000.0  # end times in key order
    return frame


SESSIONS = {
    "a": [("A", "x"), ("A", "y"), ("B", "x"), ("C", "z"), ("C", "y"), ("D", "x")],
    "b": [("B", "x"), ("C", "x"), ("C", "x"), ("A", "z")],
    "c": [("D", "y"), ("A", "x")],
    "d": [("C", "x"), ("B", "y"), ("C", "x"), ("D", "z"), ("D", "z")],
}


def _config(**kw) -> PreprocessConfig:
    return PreprocessConfig(**{"min_item_support": 1, "split": "order", "split_fractions": (0.5, 0.25, 0.25),
                               "max_len": 3, **kw})


def _decode(p: PreparedDataset, split: str) -> list[tuple[str, list[tuple[str, str]], str, str]]:
    sp, v = p.split(split), p.vocab
    items, ops = np.asarray(sp.items), np.asarray(sp.ops)
    return [(str(sp.session_ids[r]),
             [(v.item_ids[i], v.op_names[o]) for i, o in zip(items[r, :n], ops[r, :n], strict=True)],
             v.item_ids[int(sp.targets[r])], v.op_names[int(sp.target_ops[r])])
            for r, n in enumerate(sp.lengths.tolist())]


def _expected_prefixes(name: str, max_len: int) -> list[tuple[str, list[tuple[str, str]], str, str]]:
    """Reference by brute force: for every macro-item k ≥ 2, the micro-behaviors before it (last L)."""
    steps = SESSIONS[name]
    out = []
    for j in range(1, len(steps)):
        if steps[j][0] != steps[j - 1][0]:  # a macro-item starts at j
            out.append((name, steps[:j][-max_len:], steps[j][0], steps[j][1]))
    return out


def test_training_samples_are_exactly_the_prefixes_and_eval_keeps_one_target():
    p = prepare(_events(SESSIONS), _config())
    assert _decode(p, "train") == _expected_prefixes("a", 3) + _expected_prefixes("b", 3)
    assert _decode(p, "valid") == _expected_prefixes("c", 3)[-1:]
    assert _decode(p, "test") == _expected_prefixes("d", 3)[-1:]
    assert p.stats["table2"]["train"] == 2 and p.stats["protocol"]["train_samples"] == 5
    paper = prepare(_events(SESSIONS), _config(augment=False))  # the paper's protocol, chosen explicitly
    assert _decode(paper, "train") == [_expected_prefixes("a", 3)[-1], _expected_prefixes("b", 3)[-1]]
    last = p.train.one_per_session()
    np.testing.assert_array_equal(np.asarray(last.items), np.asarray(paper.train.items))
    np.testing.assert_array_equal(last.targets, paper.train.targets)
    for split in ("valid", "test"):
        assert _decode(p, split) == _decode(paper, split)


def test_samples_are_views_that_share_the_session_storage():
    rng = np.random.default_rng(0)
    sessions = {f"s{k}": [(f"i{rng.integers(30)}", "x") for _ in range(rng.integers(2, 40))] for k in range(400)}
    p = prepare(_events(sessions), _config(max_len=20, split_fractions=(0.8, 0.1, 0.1)))
    train = p.train
    assert isinstance(train.items, SampleView) and isinstance(train.ops, SampleView)
    assert len(train.items.values) < sum(len(s) for s in list(sessions.values())[:320])  # each stored once
    padded_bytes = len(train) * train.max_len * 4 * 2  # items + ops as N×L int32 copies
    sequence_bytes = train.items.values.nbytes + train.ops.values.nbytes + train.items.ends.nbytes
    assert sequence_bytes < padded_bytes / 8 and train.nbytes() < padded_bytes / 2, (train.nbytes(), padded_bytes)
    batch = np.array([5, 0, len(train) - 1])
    sub = train.subset(batch)
    assert np.shares_memory(sub.items.values, train.items.values)  # a subset is a view too
    width = int(train.lengths[batch].max())
    gathered = train.items[batch, :width]  # what collate asks for: only B × width cells
    assert gathered.shape == (3, width)
    np.testing.assert_array_equal(gathered, np.asarray(train.items)[batch, :width])
    np.testing.assert_array_equal(train.items[batch[0], :3], np.asarray(train.items)[batch[0], :3])


def test_prefix_split_survives_the_cache_and_feeds_every_model(tmp_path):
    p = prepare(_events(SESSIONS), _config())
    p.save(tmp_path / "p.npz")
    back = PreparedDataset.load(tmp_path / "p.npz")
    assert isinstance(back.train.items, SampleView)
    assert _decode(back, "train") == _decode(p, "train")
    np.testing.assert_array_equal(back.train.session_rows, p.train.session_rows)
    index = np.arange(len(p.train))
    for name in ("EMBSR", "SGNN-Self", "S-POP", "SKNN", "BERT4Rec", "MKM-SR", "GC-SAN"):
        model = build_model(name, p.n_items, p.n_ops, {})
        model.fit(p.train)
        batch = model.collate(p.train, index, "oracle")
        assert batch["targets"].tolist() == p.train.targets.tolist(), name


def test_cache_key_and_stored_settings_know_the_flag():
    assert PreprocessConfig().augment and all(c.augment for c in PRESETS.values())
    assert config_hash(_config()) != config_hash(_config(augment=False))
    assert PreprocessConfig.from_dict(_config(augment=False).to_dict()).augment is False
    legacy = {k: v for k, v in _config().to_dict().items() if k != "augment"}
    assert PreprocessConfig.from_dict(legacy).augment is False  # a run stored before prefix training


def test_batch_size_rule():
    assert [auto_batch_size(n) for n in (0, 490, 700, 2_000, 5_000, 10_240, 14_000, 10**7)] == \
        [32, 32, 32, 64, 128, 512, 512, 512]
    for n in (1, 33, 641, 5_000, 123_456):
        bs = auto_batch_size(n)
        assert 32 <= bs <= 512 and (bs == 32 or n // bs >= 20) and bs & (bs - 1) == 0
    assert TrainConfig().resolved_for(5_000).batch_size == 128
    assert TrainConfig(batch_size=100).resolved_for(5_000).batch_size == 100  # an explicit size wins
    assert TrainConfig().resolved_for(5_000).resolved_for(10**6).batch_size == 128  # resolved once


@pytest.mark.parametrize("flag, expected", [([], True), (["--no-augment"], False)])
def test_cli_flag_and_batch_rule_reach_the_stored_run(flag: list[str], expected: bool):
    runner = CliRunner()
    gen = runner.invoke(main, ["generate", "--name", "P", "--sessions", "300", "--items", "60", "--categories", "4"])
    assert gen.exit_code == 0, gen.output
    out = runner.invoke(main, ["train", "P", "-m", "SGNN-Self", "-p", "embedding_dim=8", "--max-epochs", "1",
                               "--device", "cpu", *flag], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    run = runs_repo.list_runs(open_store())[0]
    assert run.config["prep"]["augment"] is expected
    n_train = 210 if not expected else None
    bs = run.config["train"]["batch_size"]
    assert bs != 0 and bs & (bs - 1) == 0  # resolved by the rule, then stored
    if n_train is not None:
        assert bs == auto_batch_size(n_train)


context = _gui_helpers.context  # fixtures
window = _gui_helpers.window


def test_train_page_checkbox_chooses_the_protocol(qtbot, window, context):
    from PySide6.QtCore import Qt

    from app.pages.train import TrainPage
    from embsr_core.data.demo import import_synthetic

    import_synthetic(context.store, "Small synthetic", n_sessions=200, n_items=40, n_categories=4, seed=1)
    window.show_page("train")
    page = window.page("train")
    assert isinstance(page, TrainPage) and page.dataset_combo.count() == 1
    box = page.augment_box
    assert box.isChecked() and "every step" in box.text() and "paper" in box.toolTip()
    assert "augment" not in page.build_request().prep_overrides  # the default needs no override
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton)
    assert not box.isChecked()
    assert page.build_request().prep_overrides == {"augment": False}


def test_sample_view_pairs_two_index_arrays_like_numpy() -> None:
    """``view[rows, cols]`` with two arrays pairs them element-wise (one cell each), as numpy does,
    instead of building a rows × rows block (a 92,000-sample split asked for 32 GiB)."""
    from embsr_core.data.prepared import SampleView

    view = SampleView(np.arange(1, 11, dtype=np.int32), np.array([3, 7, 10]), np.array([3, 2, 3]), 4)
    dense = np.asarray(view)
    rows, cols = np.array([0, 1, 2, 2, 1]), np.array([0, 1, 2, 3, -1])
    assert view[rows, cols].tolist() == dense[rows, cols].tolist()
    assert view[rows, view.lengths[rows] - 1].tolist() == dense[rows, view.lengths[rows] - 1].tolist()
