"""Checkpoint files: safetensors (no pickle), written atomically, identified by SHA-256.

A checkpoint is one safetensors file: every tensor of the state (model weights, optimiser moments, RNG
states) is a named tensor, and the rest of the state (its nesting, numbers, strings: configs, the RNG
states of Python and NumPy and the trainer's bookkeeping) is a JSON document in the file's metadata.
Reading it parses JSON and raw tensor bytes only, so it can never run code, and the store's SHA-256
of the whole file covers weights and metadata alike. Checkpoints written before (``torch.save`` zip
files) still load through ``torch.load(weights_only=True)``. The vocabulary lives next to the
checkpoints as ``vocab.json`` (its hash is inside each checkpoint), so prediction never needs the raw data.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch

from embsr_core.data.prepared import PreparedDataset, Vocab

FORMAT_VERSION = 1
VOCAB_FILE = "vocab.json"
CHECKPOINT_SUFFIX = ".safetensors"
METADATA_KEY = "embsr_state"  # safetensors metadata entry holding the JSON skeleton of the state
ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format (checkpoints of earlier versions)


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, altered or of an unknown format."""


def checkpoint_file(folder: Path, kind: str) -> Path:
    """Where the ``kind`` ("best" / "last") checkpoint of a run folder goes."""
    return Path(folder) / f"{kind}{CHECKPOINT_SUFFIX}"


def checkpoint_slots(folder: Path, kind: str) -> tuple[Path, Path]:
    """The two files a ``kind`` checkpoint alternates between.

    A save writes the slot the store does *not* record, and only then is the record moved to it: a
    kill between the file's rename and the store's commit leaves the recorded file (and its hash)
    intact, where one fixed file name left a new file under the old hash (resume refused as altered).
    """
    return checkpoint_file(folder, kind), checkpoint_file(folder, f"{kind}.alt")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_write(path: Path, write: Any) -> str:
    """Write through ``write(tmp_path)``, fsync, rename over ``path``; return the file's SHA-256.

    A kill at any moment leaves the old file or the new one, never a part (the rename is atomic and
    the folder is synced after it, so the new name survives a power cut too).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        sha = sha256_file(tmp)
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return sha


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open folders; the rename itself is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- state <-> (tensors, JSON skeleton) --------------------------------------------------------------


class _Flattener:
    """Splits a nested state into named tensors and a JSON skeleton that refers to them.

    Dict keys keep their type (an optimiser's state is keyed by int parameter ids) and tuples stay
    tuples, so ``load_state_dict`` gets back exactly what ``state_dict`` gave. A tensor seen twice
    (tied weights) is stored once; views sharing storage are copied, as safetensors requires.
    """

    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}
        self._by_view: dict[tuple[Any, ...], str] = {}
        self._storages: set[int] = set()

    def encode(self, value: Any, name: str) -> Any:
        if isinstance(value, torch.Tensor):
            return {"$tensor": self._tensor(value, name)}
        if isinstance(value, dict):
            return {"$dict": [[self.encode(k, f"{name}/k{i}"), self.encode(v, f"{name}/{_key_text(k)}")]
                              for i, (k, v) in enumerate(value.items())]}
        if isinstance(value, tuple):
            return {"$tuple": [self.encode(v, f"{name}/{i}") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [self.encode(v, f"{name}/{i}") for i, v in enumerate(value)]
        if value is None or isinstance(value, bool | int | float | str):
            return value
        raise CheckpointError(f"cannot store {type(value).__name__} at {name!r} in a checkpoint; "
                              "expected tensors, numbers, strings, lists, tuples and dicts")

    def _tensor(self, tensor: torch.Tensor, name: str) -> str:
        tensor = tensor.detach()
        if tensor.numel() > 0:
            view = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape),
                    tuple(tensor.stride()), tensor.dtype, tensor.device)
            if view in self._by_view:
                return self._by_view[view]
            storage = tensor.untyped_storage().data_ptr()
            shared = storage in self._storages
            self._storages.add(storage)
            self._by_view[view] = name
            if shared and tensor.device.type == "cpu":
                tensor = tensor.clone()
        self.tensors[name] = tensor.to("cpu").contiguous()  # a GPU tensor or a strided view is copied
        return name


def _key_text(key: Any) -> str:
    return str(key).replace("/", "_")


def _decode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, dict):
        if "$tensor" in value:
            return tensors[value["$tensor"]]
        if "$tuple" in value:
            return tuple(_decode(v, tensors) for v in value["$tuple"])
        if "$dict" in value:
            return {_decode(k, tensors): _decode(v, tensors) for k, v in value["$dict"]}
        raise ValueError(f"unknown node {sorted(value)}")
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    return value


def encode_state(state: dict[str, Any]) -> bytes:
    """The safetensors bytes of ``state``."""
    flat = _Flattener()
    skeleton = flat.encode(state, "state")
    return safetensors.torch.save(flat.tensors, metadata={METADATA_KEY: json.dumps(skeleton)})


def decode_state(data: bytes) -> dict[str, Any]:
    """The state of safetensors bytes written by :func:`encode_state` (``ValueError`` when malformed)."""
    if len(data) < 8:
        raise ValueError("the file is too short for a safetensors header")
    header_len = int.from_bytes(data[:8], "little")
    if header_len <= 0 or 8 + header_len > len(data):
        raise ValueError(f"the safetensors header claims {header_len} bytes; the file has {len(data)}")
    header = json.loads(data[8 : 8 + header_len])
    metadata = header.get("__metadata__") or {}
    if METADATA_KEY not in metadata:
        raise ValueError(f"no {METADATA_KEY!r} metadata: not a checkpoint of EMBSR Workbench")
    tensors = safetensors.torch.load(data)
    state = _decode(json.loads(metadata[METADATA_KEY]), tensors)
    if not isinstance(state, dict):
        raise ValueError("the checkpoint's state is not a mapping")
    return state


def save_checkpoint(path: Path, state: dict[str, Any]) -> str:
    """Save ``state`` (tensors / numbers / strings / lists / dicts) atomically as safetensors; return its SHA-256."""
    data = encode_state(state)
    return _atomic_write(Path(path), lambda tmp: Path(tmp).write_bytes(data))


def load_checkpoint(path: Path | str, expected_sha256: str | None) -> dict[str, Any]:
    """Verify the file's SHA-256 against the store's record, then load it; no code is ever unpickled.

    Reads safetensors checkpoints, and the ``torch.save`` files of earlier versions with
    ``weights_only=True``. The bytes hashed are the bytes parsed (the file is read once).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read: {exc.strerror}") from None
    if expected_sha256 is not None:
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected_sha256:
            raise CheckpointError(
                f"checkpoint {path} was altered or corrupted: SHA-256 {actual} differs from the recorded "
                f"{expected_sha256}"
            )
    try:
        if data.startswith(ZIP_MAGIC):
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        else:
            state = decode_state(data)
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
    from embsr_core.models.registry import build_model, stored_config

    state = load_checkpoint(path, expected_sha256)
    meta = from_json(state["meta"])
    config = stored_config(meta["model_name"], meta["model_config"])
    model = build_model(meta["model_name"], meta["n_items"], meta["n_ops"], config)
    model.load_state_dict(state["model"])
    model.to(device)
    model.eval()
    return model, meta
