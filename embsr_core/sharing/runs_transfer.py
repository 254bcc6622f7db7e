"""Move runs between stores: ``runs.zip`` holds everything the Runs page shows of a run.

Per run: its settings and status columns, per-epoch metrics, the loss series, per-session ranks,
notes, tags and stored log, its checkpoint files (best, last, ``vocab.json``) with their SHA-256,
and the identity of its dataset (name + a fingerprint of the dataset's row counts and operation
names, which a re-import of the same file reproduces). Importing attaches each run to the dataset
of the same name and fingerprint in the target store, or says what is missing; a run already in the
target store (same dataset, model, settings and creation time) is skipped, so importing twice adds
nothing. Each run is imported in one transaction, its files copied first and removed on failure.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from embsr_core import __version__
from embsr_core.store.models import Dataset, EpochMetric, LossPoint, Operation, Run, RunLogLine, RunRanks, RunTag
from embsr_core.training.checkpoints import _atomic_write, sha256_file

FORMAT_NAME = "embsr-runs"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
EXPORTABLE = ("finished", "stopped", "failed", "interrupted")
# Run columns copied as they are (ids, paths, hashes of files and process ownership are not)
RUN_COLUMNS = ("name", "model_name", "config", "status", "device", "created_at", "started_at", "finished_at",
               "error_text", "epochs_done", "best_epoch", "prep_hash", "search_group", "is_best_trial", "notes")
DATES = ("created_at", "started_at", "finished_at")


class RunsArchiveError(ValueError):
    """A runs archive that cannot be read or imported; the message says what is wrong or missing."""


@dataclass
class ImportResult:
    imported: dict[int, int] = field(default_factory=dict)  # archive run id → new run id
    skipped: dict[int, int] = field(default_factory=dict)  # archive run id → run id already in the store
    problems: list[str] = field(default_factory=list)  # runs not imported, with the reason

    def summary_lines(self) -> list[str]:
        lines = [f"Imported {len(self.imported)} run(s)"
                 + (": " + ", ".join(f"{a} → {b}" for a, b in self.imported.items()) if self.imported else "") + "."]
        if self.skipped:
            lines.append(f"Skipped {len(self.skipped)} run(s) already in this store: "
                         + ", ".join(f"{a} (is run {b})" for a, b in self.skipped.items()) + ".")
        lines.extend(self.problems)
        return lines


# --- identities -------------------------------------------------------------------------------------


def dataset_identity(session: Any, dataset: Dataset) -> dict[str, Any]:
    """Name, counts and operation names of a dataset, and their fingerprint (store-independent)."""
    ops = list(session.scalars(select(Operation.name).where(Operation.dataset_id == dataset.id)
                               .order_by(Operation.code)))
    identity = {"name": dataset.name, "source_format": dataset.source_format, "n_sessions": dataset.n_sessions,
                "n_items": dataset.n_items, "n_operations": dataset.n_operations, "n_events": int(dataset.n_events),
                "operations": ops}
    identity["fingerprint"] = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    return identity


def run_identity(fingerprint: str, model_name: str, config: Any, created_at: datetime | str | None) -> str:
    """Same run in two stores ⇔ same dataset fingerprint, model, settings and creation time."""
    created = created_at.isoformat() if isinstance(created_at, datetime) else str(created_at)
    payload = json.dumps([fingerprint, model_name, config, created], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def _date(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


# --- export -----------------------------------------------------------------------------------------


def export_runs(store: Any, run_ids: Sequence[int], path: Path | str, *,
                progress: Callable[[object], None] | None = None, cancel: Any = None) -> Path:
    """Write ``run_ids`` (with checkpoints) to the zip ``path``, atomically."""
    ids = [int(r) for r in run_ids]
    if not ids:
        raise ValueError("no runs to export; give at least one run id")
    target = Path(path)
    if not target.parent.exists():
        raise FileNotFoundError(f"cannot write {target}: folder {target.parent} does not exist")
    entries: list[tuple[dict[str, Any], dict[str, Path]]] = []
    with store.session() as session:
        for run_id in ids:
            run = session.get(Run, run_id)
            if run is None:
                raise KeyError(f"no run with id {run_id} in the store")
            if run.status not in EXPORTABLE:
                raise ValueError(f"run {run_id} is {run.status}; export it once it has ended")
            dataset = session.get(Dataset, run.dataset_id)
            identity = dataset_identity(session, dataset)
            record: dict[str, Any] = {c: _date(getattr(run, c)) for c in RUN_COLUMNS}
            record["id"] = run.id
            record["dataset"] = identity
            record["identity"] = run_identity(identity["fingerprint"], run.model_name, run.config, run.created_at)
            record["metrics"] = [[m.epoch, m.split, m.target_op, m.metric, m.k, m.value, m.wall_time] for m in
                                 session.scalars(select(EpochMetric).where(EpochMetric.run_id == run_id)
                                                 .order_by(EpochMetric.id))]
            record["loss"] = [[p.step, p.epoch, p.loss, p.wall_time] for p in
                              session.scalars(select(LossPoint).where(LossPoint.run_id == run_id)
                                              .order_by(LossPoint.step))]
            record["ranks"] = [{"split": r.split, "target_op": r.target_op, "prep_hash": r.prep_hash, "n": r.n,
                                "ranks": np.frombuffer(r.ranks, dtype="<i4").tolist()}
                               for r in session.scalars(select(RunRanks).where(RunRanks.run_id == run_id))]
            record["tags"] = list(session.scalars(select(RunTag.tag).where(RunTag.run_id == run_id)
                                                  .order_by(RunTag.tag)))
            record["log"] = [[line.seq, line.time.isoformat(), line.level, line.message] for line in
                             session.scalars(select(RunLogLine).where(RunLogLine.run_id == run_id)
                                             .order_by(RunLogLine.seq))]
            files: dict[str, Path] = {}
            checkpoints: dict[str, Any] = {}
            for kind, p, sha in (("best", run.best_checkpoint_path, run.best_checkpoint_sha256),
                                 ("last", run.checkpoint_path, run.checkpoint_sha256)):
                if not p:
                    continue
                if not Path(p).is_file():
                    raise RunsArchiveError(f"run {run_id}: its {kind} checkpoint {p} is missing; delete the run "
                                           "or export it without this run")
                if sha and sha256_file(Path(p)) != sha:
                    raise RunsArchiveError(f"run {run_id}: its {kind} checkpoint {p} was altered (SHA-256 differs "
                                           "from the store's record)")
                checkpoints[kind] = {"file": Path(p).name, "sha256": sha}
                files[Path(p).name] = Path(p)
                vocab = Path(p).parent / "vocab.json"
                if vocab.is_file():
                    files["vocab.json"] = vocab
            record["checkpoints"] = checkpoints
            record["files"] = {name: sha256_file(f) for name, f in files.items()}
            entries.append((record, files))
    manifest = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "package_version": __version__,
                "created": datetime.now(UTC).isoformat(timespec="seconds"), "runs": [r["id"] for r, _ in entries]}

    def write(tmp: Path) -> None:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr(MANIFEST, json.dumps(manifest, indent=2))
            for n, (record, files) in enumerate(entries, start=1):
                if cancel is not None and cancel.is_set():
                    raise RunsArchiveError("the export was cancelled; nothing was written")
                z.writestr(f"runs/{record['id']}/run.json", json.dumps(record))
                for name, source in files.items():
                    z.write(source, f"runs/{record['id']}/{name}", compress_type=zipfile.ZIP_STORED)
                if progress is not None:
                    progress(n / len(entries))

    _atomic_write(target, write)
    return target


# --- import -----------------------------------------------------------------------------------------


def _read_archive(z: zipfile.ZipFile, path: Path) -> list[dict[str, Any]]:
    try:
        manifest = json.loads(z.read(MANIFEST))
    except KeyError:
        raise RunsArchiveError(f"{path} is not a runs archive of EMBSR Workbench (no {MANIFEST})") from None
    except (ValueError, zipfile.BadZipFile) as exc:
        raise RunsArchiveError(f"{path}: its manifest cannot be read ({exc})") from None
    if manifest.get("format") != FORMAT_NAME:
        raise RunsArchiveError(f"{path} is not a runs archive of EMBSR Workbench")
    if not isinstance(manifest.get("format_version"), int) or manifest["format_version"] > FORMAT_VERSION:
        raise RunsArchiveError(
            f"{path} was written by EMBSR Workbench {manifest.get('package_version', '?')} in runs-archive format "
            f"{manifest.get('format_version')}; this version {__version__} reads format {FORMAT_VERSION}: update it")
    records = []
    for run_id in manifest.get("runs", []):
        try:
            records.append(json.loads(z.read(f"runs/{run_id}/run.json")))
        except (KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise RunsArchiveError(f"{path}: the record of run {run_id} is missing or damaged ({exc})") from None
    return records


def _existing_identities(session: Any) -> dict[tuple[str, str], int]:
    """(dataset fingerprint, run identity) → run id for every run of the target store."""
    out: dict[tuple[str, str], int] = {}
    identities: dict[int, dict[str, Any]] = {}
    for run in session.scalars(select(Run)):
        if run.dataset_id not in identities:
            identities[run.dataset_id] = dataset_identity(session, session.get(Dataset, run.dataset_id))
        fp = identities[run.dataset_id]["fingerprint"]
        out[(fp, run_identity(fp, run.model_name, run.config, run.created_at))] = run.id
    return out


def _missing_dataset(record: dict[str, Any], found: dict[str, Any] | None) -> str:
    want = record["dataset"]
    facts = (f"{want['n_sessions']:,} sessions, {want['n_items']:,} items, {want['n_events']:,} events, "
             f"operations {', '.join(want['operations'])}")
    if found is None:
        return (f"Run {record['id']} not imported: this store has no dataset {want['name']!r} ({facts}); import "
                "that data under this name first, then import the runs again.")
    diffs = [f"{k} {found[k]!r} here vs {want[k]!r}" for k in ("source_format", "n_sessions", "n_items",
                                                                 "n_operations", "n_events", "operations")
             if found[k] != want[k]]
    return (f"Run {record['id']} not imported: dataset {want['name']!r} of this store is not the one it was trained "
            f"on ({'; '.join(diffs)}).")


def import_runs(store: Any, path: Path | str, *, checkpoint_root: Path | None = None,
                progress: Callable[[object], None] | None = None, cancel: Any = None) -> ImportResult:
    """Add the runs of archive ``path`` to ``store``; runs already there are skipped, not duplicated."""
    from embsr_core.training.recorders import run_checkpoint_dir

    path = Path(path)
    if not path.is_file():
        raise RunsArchiveError(f"runs archive {path} does not exist")
    try:
        z = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise RunsArchiveError(f"{path} is not a runs archive (not a zip file; it may be damaged)") from None
    result = ImportResult()
    with z:
        records = _read_archive(z, path)
        with store.session() as session:
            existing = _existing_identities(session)
            datasets = {d.name: d for d in session.scalars(select(Dataset))}
            found = {name: dataset_identity(session, d) for name, d in datasets.items()}
        for n, record in enumerate(records, start=1):
            if cancel is not None and cancel.is_set():
                result.problems.append("The import was cancelled; the runs listed above were imported.")
                break
            want = record["dataset"]
            here = found.get(want["name"])
            if here is None or here["fingerprint"] != want["fingerprint"]:
                result.problems.append(_missing_dataset(record, here))
                continue
            key = (want["fingerprint"], record["identity"])
            if key in existing:
                result.skipped[record["id"]] = existing[key]
                continue
            new_id = _import_one(store, z, path, record, datasets[want["name"]].id, checkpoint_root,
                                  partial(run_checkpoint_dir, store=store))
            existing[key] = new_id
            result.imported[record["id"]] = new_id
            if progress is not None:
                progress(n / len(records))
    return result


def _import_one(store: Any, z: zipfile.ZipFile, path: Path, record: dict[str, Any], dataset_id: int,
                checkpoint_root: Path | None, folder_of: Callable[[int, Path | None], Path]) -> int:
    folder: Path | None = None
    try:
        with store.session() as session, session.begin():
            values = {c: record[c] for c in RUN_COLUMNS}
            for c in DATES:
                values[c] = datetime.fromisoformat(values[c]) if values[c] else None
            run = Run(dataset_id=dataset_id, **values)
            session.add(run)
            session.flush()
            run_id = int(run.id)
            folder = folder_of(run_id, checkpoint_root)
            for name, sha in record["files"].items():
                target = folder / name
                data = z.read(f"runs/{record['id']}/{name}")
                if hashlib.sha256(data).hexdigest() != sha:
                    raise RunsArchiveError(f"{path}: file {name} of run {record['id']} is damaged (SHA-256 differs)")
                _atomic_write(target, lambda tmp, d=data: Path(tmp).write_bytes(d))
            for kind, info in record["checkpoints"].items():
                prefix = "best_" if kind == "best" else ""
                setattr(run, f"{prefix}checkpoint_path", str(folder / info["file"]))
                setattr(run, f"{prefix}checkpoint_sha256", info["sha256"])
            session.add_all(EpochMetric(run_id=run_id, epoch=e, split=s, target_op=t, metric=m, k=k, value=v,
                                        wall_time=w) for e, s, t, m, k, v, w in record["metrics"])
            session.add_all(LossPoint(run_id=run_id, step=s, epoch=e, loss=v, wall_time=w)
                            for s, e, v, w in record["loss"])
            session.add_all(RunRanks(run_id=run_id, split=r["split"], target_op=r["target_op"],
                                     prep_hash=r["prep_hash"], n=r["n"],
                                     ranks=np.asarray(r["ranks"], dtype="<i4").tobytes()) for r in record["ranks"])
            session.add_all(RunTag(run_id=run_id, tag=t) for t in record["tags"])
            session.add_all(RunLogLine(run_id=run_id, seq=seq, time=datetime.fromisoformat(t), level=lvl, message=msg)
                            for seq, t, lvl, msg in record["log"])
        return run_id
    except BaseException:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        raise


__all__ = ["ImportResult", "RunsArchiveError", "dataset_identity", "export_runs", "import_runs"]
