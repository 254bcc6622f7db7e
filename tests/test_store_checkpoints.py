"""Checkpoints without pickle (issue 13): safetensors + JSON metadata, SHA-256 checked, exact round trip
of an optimiser's state, old ``torch.save`` files still read safely, damaged files are messages."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import safetensors
import torch
from click.testing import CliRunner

from embsr_core.cli import main
from embsr_core.store import open_store, runs_repo
from embsr_core.training.checkpoints import (
    METADATA_KEY,
    CheckpointError,
    capture_rng,
    load_checkpoint,
    save_checkpoint,
)


def _state() -> dict:
    """What the trainer saves: weights (one tied), Adam state keyed by int ids, RNG states, bookkeeping."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(7, 4), torch.nn.Linear(4, 7))
    model[1].weight = model[0].weight  # tied input/output embedding: one storage under two names
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, betas=(0.8, 0.99))
    model(torch.tensor([[1, 2]])).sum().backward()
    optimizer.step()
    return {
        "format_version": 1,
        "meta": json.dumps({"epochs_done": 2, "best_metrics": {"hit@20": 0.5}}),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "extras": {"view": torch.arange(12.0).reshape(3, 4)[:, 1], "empty": torch.zeros(0, 3), "nan": math.nan,
                   "pair": (1, "a"), "none": None},
        **capture_rng(),
    }


def _same(a, b) -> None:
    assert type(a) is type(b) or (isinstance(a, dict) and isinstance(b, dict)), (a, b)
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for key in a:
            _same(a[key], b[key])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _same(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    else:
        assert a == b


def test_a_checkpoint_is_safetensors_with_json_metadata_and_round_trips_exactly(tmp_path: Path) -> None:
    state = _state()
    path = tmp_path / "last.safetensors"
    sha = save_checkpoint(path, state)
    raw = path.read_bytes()
    assert not raw.startswith(b"PK") and b"\x80\x04" not in raw[:16]  # neither torch's zip nor a pickle
    with safetensors.safe_open(str(path), "pt") as handle:  # any safetensors reader can open it
        skeleton = json.loads(handle.metadata()[METADATA_KEY])
        assert "state/model/0.weight" in list(handle.keys())
    assert skeleton["$dict"][0] == ["format_version", 1]
    loaded = load_checkpoint(path, sha)
    _same(state, loaded)
    assert list(loaded["optimizer"]["state"]) == [0, 1]  # int keys, as load_state_dict needs them

    model = torch.nn.Sequential(torch.nn.Embedding(7, 4), torch.nn.Linear(4, 7))
    model[1].weight = model[0].weight
    optimizer = torch.optim.Adam(model.parameters(), lr=0.5)
    model.load_state_dict(loaded["model"])
    optimizer.load_state_dict(loaded["optimizer"])
    _same(optimizer.state_dict(), state["optimizer"])


def test_a_checkpoint_of_an_earlier_version_still_loads_through_weights_only(tmp_path: Path) -> None:
    state = _state()
    old = tmp_path / "last.pt"
    torch.save(state, old)
    _same(state, load_checkpoint(old, None))


class _Payload:
    def __reduce__(self):
        return (Path.touch, (Path(__file__).parent / "never-created",))


def test_a_pickle_with_code_is_refused_and_never_runs(tmp_path: Path) -> None:
    evil = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "x": _Payload()}, evil)
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(evil, None)
    assert not (Path(__file__).parent / "never-created").exists()


@pytest.mark.parametrize("damage", ["flip", "truncate", "header"])
def test_damaged_checkpoints_are_refused(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "best.safetensors"
    sha = save_checkpoint(path, _state())
    raw = bytearray(path.read_bytes())
    if damage == "flip":
        raw[-3] ^= 0xFF
    elif damage == "truncate":
        raw = raw[: len(raw) // 2]
    else:
        raw[:8] = (10**9).to_bytes(8, "little")
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="altered or corrupted"):
        load_checkpoint(path, sha)
    if damage != "flip":  # without the recorded hash the format checks still refuse it
        with pytest.raises(CheckpointError, match="cannot be read"):
            load_checkpoint(path, None)


def test_evaluate_and_predict_on_a_tampered_checkpoint_print_a_message(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ck.db'}"
    runner = CliRunner()
    assert runner.invoke(main, ["--db", db, "generate", "--name", "g", "--sessions", "200", "--items", "60",
                                "--categories", "5"]).exit_code == 0
    trained = runner.invoke(main, ["--db", db, "train", "g", "-m", "S-POP", "--max-epochs", "1"])
    assert trained.exit_code == 0, trained.output
    store = open_store(db)
    (run,) = runs_repo.list_runs(store)
    store.dispose()
    with open(run.best_checkpoint_path, "ab") as handle:
        handle.write(b"\0")
    for args in (["evaluate", str(run.id)], ["predict", str(run.id), "x:y"]):
        result = runner.invoke(main, ["--db", db, *args])
        assert result.exit_code == 1, result.output
        assert "was altered or corrupted" in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception


def test_an_embsr_checkpoint_saved_before_a_knob_existed_loads_as_the_model_of_that_time(tmp_path: Path) -> None:
    """``positions`` and ``recent`` came later, with other defaults since: a stored configuration
    without them meant forward positions and the paper's x_t, and must rebuild that model exactly."""
    from embsr_core.models.registry import build_model, resolve_config, stored_config
    from embsr_core.training.checkpoints import model_from_checkpoint

    then = build_model("EMBSR", 20, 4, {"positions": "forward", "recent": "micro"})
    config = {k: v for k, v in resolve_config("EMBSR").items() if k not in ("positions", "recent")}
    meta = {"model_name": "EMBSR", "n_items": 20, "n_ops": 4, "model_config": config}
    path = tmp_path / "best.safetensors"
    sha = save_checkpoint(path, {"format_version": 1, "meta": json.dumps(meta), "model": then.state_dict()})
    model, _ = model_from_checkpoint(path, sha)
    assert (model.reverse_positions, model.recent_gru, model.recent_run) == (False, None, None)
    assert stored_config("EMBSR", config)["recent"] == "micro" != resolve_config("EMBSR")["recent"]
    assert stored_config("EMBSR", {**config, "recent": "run"})["recent"] == "run"  # a stored value wins
    assert "positions" not in stored_config("SGNN-HN", {})  # only a model's own knobs are filled
