"""Checkpoint files: written atomically, identified by SHA-256, read with ``weights_only=True``.

A checkpoint holds only tensors, numbers and strings (configs, RNG states of Python and NumPy and
the trainer's bookkeeping are JSON strings), so loading it can never run pickled code. The vocabulary
lives next to the checkpoints as ``vocab.json`` (its hash is inside each checkpoint), so prediction
never needs the raw data.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from embsr_core.data.prepared import PreparedDataset, Vocab

FORMAT_VERSION = 1
VOCAB_FILE = "vocab.json"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, altered or of an unknown format."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_write(path: Path, write: Any) -> str:
    """Write through ``write(tmp_path)``, fsync, rename over ``path``; return the file's SHA-256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        sha = sha256_file(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return sha


def save_checkpoint(path: Path, state: dict[str, Any]) -> str:
    """Save ``state`` (tensors / numbers / strings only) atomically; return its SHA-256."""
    return _atomic_write(Path(path), lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: Path | str, expected_sha256: str | None) -> dict[str, Any]:
    """Verify the file's SHA-256 against the store's record, then load it without unpickling code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if expected_sha256 is not None:
        actual = sha256_file(path)
        if actual != expected_sha256:
            raise CheckpointError(
                f"checkpoint {path} was altered or corrupted: SHA-256 {actual} differs from the recorded "
                f"{expected_sha256}"
            )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read: {exc}") from exc
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} has an unknown format (expected version {FORMAT_VERSION})")
    return state


def to_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def from_json(value: str) -> Any:
    return json.loads(value)


# --- RNG states -------------------------------------------------------------------------------------


def capture_rng() -> dict[str, Any]:
    """RNG states of Python, NumPy (global) and torch (CPU and every CUDA device)."""
    py_version, py_state, py_gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "rng_python": to_json([py_version, list(py_state), py_gauss]),
        "rng_numpy": to_json(_jsonable(np_state)),
        "rng_torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["rng_cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    py_version, py_state, py_gauss = from_json(state["rng_python"])
    random.setstate((py_version, tuple(py_state), py_gauss))
    np.random.set_state(from_json(state["rng_numpy"]))
    torch.set_rng_state(state["rng_torch"])
    if "rng_cuda" in state and torch.cuda.is_available():
        cuda_states = state["rng_cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


# --- vocabulary -------------------------------------------------------------------------------------


def save_vocab(folder: Path, prepared: PreparedDataset) -> tuple[Path, str]:
    """Write ``vocab.json`` (+ max_len and dataset name) next to the checkpoints; return path and SHA-256."""
    payload = {
        "dataset_name": prepared.dataset_name,
        "item_ids": prepared.vocab.item_ids,
        "item_categories": prepared.vocab.item_categories,
        "op_names": prepared.vocab.op_names,
        "max_len": prepared.train.max_len,
    }
    path = Path(folder) / VOCAB_FILE
    sha = _atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(payload)))
    return path, sha


def load_vocab(path: Path, expected_sha256: str | None) -> tuple[Vocab, int]:
    """``(vocab, max_len)`` from a ``vocab.json``, its hash checked."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"vocabulary file {path} is missing (it is written next to the checkpoints)")
    if expected_sha256 is not None and sha256_file(path) != expected_sha256:
        raise CheckpointError(f"vocabulary file {path} was altered: its SHA-256 differs from the checkpoint's")
    data = json.loads(path.read_text())
    return Vocab(data["item_ids"], data["item_categories"], data["op_names"]), int(data["max_len"])


def prepared_hash(prepared: PreparedDataset) -> str:
    """SHA-256 of a prepared dataset's content (config, vocab sizes, every split's arrays).

    Two runs share a hash exactly when they were trained and evaluated on the same sessions, which is
    what a paired significance test needs.
    """
    digest = hashlib.sha256()
    digest.update(to_json({"config": prepared.config, "n_items": prepared.n_items, "n_ops": prepared.n_ops}).encode())
    for name in ("train", "valid", "test"):
        split = prepared.split(name)
        for array in split.content_arrays():  # views hash their compact storage, not N×L copies
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def model_from_checkpoint(
    path: Path | str, expected_sha256: str | None, device: torch.device | str = "cpu"
) -> tuple[Any, dict[str, Any]]:
    """Rebuild the registered model of a checkpoint with its weights; returns ``(model, meta)``."""
    from embsr_core.models.registry import build_model

    state = load_checkpoint(path, expected_sha256)
    meta = from_json(state["meta"])
    model = build_model(meta["model_name"], meta["n_items"], meta["n_ops"], meta["model_config"])
    model.load_state_dict(state["model"])
    model.to(device)
    model.eval()
    return model, meta
