"""The portable model file (``.embsr``): one zip a colleague can score with, without any store.

Members (every one listed with its SHA-256 in the manifest, and zip CRC-checked on reading):

``manifest.json``       format name and version, package / torch / Python versions, the model's name and
                        configuration, vocabulary sizes, the preprocessing settings needed to encode a
                        session (``max_len`` and the rest of the run's protocol), where it came from
                        (run, dataset, best epoch and metrics) and the evaluation rule (exclude seen items)
``weights.safetensors`` the model's weights only (no optimiser state), written by the checkpoint code
``vocab.json``          item ids (dense id order), item categories and operation names

Reading parses JSON and raw tensor bytes only (no pickle), so opening a file never runs code.
"""

from __future__ import annotations

import hashlib
import json
import platform
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from embsr_core import __version__
from embsr_core.data.prepared import Vocab
from embsr_core.training.checkpoints import (
    CheckpointError,
    _atomic_write,
    decode_state,
    encode_state,
    from_json,
    load_checkpoint,
    load_vocab,
)

FORMAT_NAME = "embsr-model"
FORMAT_VERSION = 1  # bump when a reader of this version could not read the new files
SUFFIX = ".embsr"
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
VOCAB = "vocab.json"
MEMBERS = (MANIFEST, WEIGHTS, VOCAB)


class ModelFileError(CheckpointError):
    """A model file that is missing, damaged, altered or made by an incompatible version."""


@dataclass(frozen=True)
class ModelFileInfo:
    """What a model file says about itself (read without loading the weights)."""

    path: Path
    manifest: dict[str, Any]

    @property
    def model_name(self) -> str:
        return str(self.manifest["model"]["name"])

    @property
    def max_len(self) -> int:
        return int(self.manifest["preprocessing"]["max_len"])

    def summary_lines(self) -> list[str]:
        """Plain lines for ``embsr model info`` and the GUI."""
        m = self.manifest
        src = m.get("source", {})
        versions = m.get("versions", {})
        lines = [
            f"model file:     {self.path.name} (format {m['format']} version {m['format_version']})",
            f"model:          {m['model']['name']}",
            f"items:          {m['vocabulary']['n_items']:,}",
            f"operations:     {m['vocabulary']['n_ops']} ({', '.join(m['vocabulary'].get('op_names', []))})",
            f"max length:     {self.max_len} micro-behaviors per session",
            f"trained on:     dataset {src.get('dataset', '?')!r}, run {src.get('run_id', '?')} "
            f"({src.get('run_name') or 'unnamed'}), best epoch {src.get('best_epoch', '-')}",
            f"exclude seen:   {'yes' if m.get('evaluation', {}).get('exclude_seen_items') else 'no'}",
            f"created:        {m.get('created', '-')} by EMBSR Workbench {versions.get('package', '?')}, "
            f"torch {versions.get('torch', '?')}",
        ]
        metrics = src.get("test_metrics") or {}
        if metrics:
            shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted(metrics.items()) if k in ("hit@20", "mrr@20"))
            if shown:
                lines.append(f"test (oracle):  {shown}")
        lines.append("model config:   " + ", ".join(f"{k}={v}" for k, v in sorted(m["model"]["config"].items())))
        return lines


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- writing ------------------------------------------------------------------------------------------


def export_model(store: Any, run_id: int, path: Path | str, *, which: str = "best") -> ModelFileInfo:
    """Write run ``run_id``'s best (or last) checkpoint as a portable model file at ``path``.

    The checkpoint and vocabulary are hash-checked against the store first, so a damaged checkpoint
    is never exported. The file is written atomically (a failure leaves no partial file).
    """
    from embsr_core.store import runs_repo
    from embsr_core.store.models import Dataset

    run, ckpt, sha = runs_repo.run_checkpoint(store, run_id, which)
    if not ckpt:
        raise ValueError(f"run {run_id} has no {which} checkpoint (status {run.status}); train it first")
    state = load_checkpoint(ckpt, sha)
    meta = from_json(state["meta"])
    vocab_path = Path(ckpt).parent / meta["vocab_file"]
    vocab, max_len = load_vocab(vocab_path, meta["vocab_sha256"] or None)
    with store.session() as session:
        dataset = session.get(Dataset, run.dataset_id)
        dataset_name = dataset.name if dataset is not None else "?"
    test = runs_repo.final_metrics(store, run_id, "test").get("oracle", {})
    weights = encode_state({"model": state["model"]})
    vocab_bytes = json.dumps({
        "item_ids": vocab.item_ids, "item_categories": vocab.item_categories, "op_names": vocab.op_names,
    }).encode()
    train_config = meta.get("train_config") or run.config.get("train", {})
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": {"package": __version__, "torch": torch.__version__, "python": platform.python_version()},
        "model": {
            "name": meta["model_name"],
            "config": meta["model_config"],
            "uses_operations": bool(meta.get("uses_operations", True)),
        },
        "vocabulary": {"n_items": int(meta["n_items"]), "n_ops": int(meta["n_ops"]),
                       "op_names": vocab.op_names[1:]},
        "preprocessing": {**dict(run.config.get("prep", {})), "max_len": int(max_len)},
        "evaluation": {"exclude_seen_items": bool(train_config.get("exclude_seen_items", False))},
        "source": {
            "run_id": int(run.id), "run_name": run.name, "dataset": dataset_name, "checkpoint": which,
            "best_epoch": run.best_epoch, "prep_hash": run.prep_hash, "test_metrics": test,
        },
        "sha256": {WEIGHTS: _sha(weights), VOCAB: _sha(vocab_bytes)},
    }
    manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True).encode()

    def write(tmp: Path) -> None:
        with zipfile.ZipFile(tmp, "w") as z:
            z.writestr(MANIFEST, manifest_bytes, compress_type=zipfile.ZIP_DEFLATED)
            z.writestr(WEIGHTS, weights, compress_type=zipfile.ZIP_STORED)  # floats barely compress
            z.writestr(VOCAB, vocab_bytes, compress_type=zipfile.ZIP_DEFLATED)

    target = Path(path)
    if not target.parent.exists():
        raise FileNotFoundError(f"cannot write {target}: folder {target.parent} does not exist")
    _atomic_write(target, write)
    return ModelFileInfo(target, manifest)


# --- reading ------------------------------------------------------------------------------------------


def _open(path: Path) -> zipfile.ZipFile:
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist")
    try:
        z = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ModelFileError(f"{path} is not an EMBSR model file (not a zip archive; it may be damaged or "
                             "cut short)") from None
    except OSError as exc:
        raise ModelFileError(f"model file {path} cannot be read: {exc.strerror or exc}") from None
    missing = [m for m in MEMBERS if m not in z.namelist()]
    if missing:
        z.close()
        raise ModelFileError(f"{path} is not an EMBSR model file: it lacks {', '.join(missing)}")
    return z


def _member(z: zipfile.ZipFile, path: Path, name: str) -> bytes:
    try:
        return z.read(name)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:  # e.g. "Bad CRC-32 for file ..."
        raise ModelFileError(f"model file {path} is damaged: {name} cannot be read ({exc})") from None


def _check_manifest(path: Path, manifest: Any) -> dict[str, Any]:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{path} is not an EMBSR model file (its manifest does not name format {FORMAT_NAME!r})")
    version = manifest.get("format_version")
    versions = manifest.get("versions") if isinstance(manifest.get("versions"), dict) else {}
    made_by = versions.get("package", "an unknown version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path} was made by EMBSR Workbench {made_by} in model-file format version {version}; this "
            f"EMBSR Workbench {__version__} reads format version {FORMAT_VERSION} only: update EMBSR Workbench "
            "to open it"
        )
    if version < 1:
        raise ModelFileError(f"{path} has format version {version}, which no EMBSR Workbench release wrote")
    for key in ("model", "vocabulary", "preprocessing", "sha256"):
        if not isinstance(manifest.get(key), dict):
            raise ModelFileError(f"{path}: the manifest lacks its {key!r} section (the file was altered)")
    for section, key in (("model", "name"), ("model", "config"), ("vocabulary", "n_items"), ("vocabulary", "n_ops"),
                         ("preprocessing", "max_len")):
        if key not in manifest[section]:
            raise ModelFileError(f"{path}: the manifest's {section!r} section lacks {key!r} (the file was altered)")
    return manifest


def read_info(path: Path | str) -> ModelFileInfo:
    """The manifest of a model file, checked for format and version (weights not loaded)."""
    path = Path(path)
    with _open(path) as z:
        raw = _member(z, path, MANIFEST)
    try:
        manifest = json.loads(raw)
    except ValueError as exc:
        raise ModelFileError(f"{path}: the manifest is not valid JSON ({exc})") from None
    return ModelFileInfo(path, _check_manifest(path, manifest))


@dataclass
class LoadedModel:
    info: ModelFileInfo
    model: Any  # SessionRecommender in eval mode on the requested device
    vocab: Vocab


def load_model_file(path: Path | str, device: torch.device | str = "cpu") -> LoadedModel:
    """Rebuild the model of a model file with its weights, each member's SHA-256 checked."""
    from embsr_core.models.registry import build_model, stored_config

    path = Path(path)
    info = read_info(path)
    manifest = info.manifest
    with _open(path) as z:
        weights = _member(z, path, WEIGHTS)
        vocab_bytes = _member(z, path, VOCAB)
    for name, data in ((WEIGHTS, weights), (VOCAB, vocab_bytes)):
        if manifest["sha256"].get(name) != _sha(data):
            raise ModelFileError(f"model file {path} was altered or damaged: the SHA-256 of {name} differs from "
                                 "the one recorded when it was exported")
    try:
        raw_vocab = json.loads(vocab_bytes)
        vocab = Vocab(raw_vocab["item_ids"], raw_vocab["item_categories"], raw_vocab["op_names"])
        state = decode_state(weights)
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelFileError(f"model file {path} is damaged: {exc}") from None
    n_items, n_ops = int(manifest["vocabulary"]["n_items"]), int(manifest["vocabulary"]["n_ops"])
    if vocab.n_items != n_items or vocab.n_ops != n_ops:
        raise ModelFileError(f"model file {path}: the vocabulary does not match the sizes in its manifest")
    name = manifest["model"]["name"]
    try:
        model = build_model(name, n_items, n_ops, stored_config(name, manifest["model"]["config"]))
        model.load_state_dict(state["model"])
    except KeyError as exc:
        raise ModelFileError(
            f"{path} holds model {name!r}, which this EMBSR Workbench {__version__} cannot build "
            f"({exc.args[0] if exc.args else exc}); it was made by version "
            f"{manifest.get('versions', {}).get('package', '?')}"
        ) from None
    except (RuntimeError, ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(
            f"{path}: the weights do not fit model {name!r} of this EMBSR Workbench {__version__} (made by "
            f"{manifest.get('versions', {}).get('package', '?')}): {first}"
        ) from None
    model.to(device)
    model.eval()
    return LoadedModel(info, model, vocab)

