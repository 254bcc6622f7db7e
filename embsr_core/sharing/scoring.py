"""Batch scoring: a file of sessions in any importable format → top-K predictions as CSV.

The file is read by the importers' streaming readers (same format detection, same errors), one
chunk at a time, so memory stays bounded by the chunk size whatever the file's length. A session
cut by a chunk boundary is carried into the next chunk; a session whose rows come back after other
sessions is refused (the file must keep each session's rows together, as every native format does).

Unknown items and operations are not errors: their steps are skipped and counted, and a session
with no known step is reported as skipped. The output has one row per session and rank:
``session_id, rank, item_id, score``; it is written to a temporary name and renamed at the end, so
a failure or a cancel never leaves a partial file behind.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from embsr_core.data.errors import DataFormatError
from embsr_core.data.events import sort_events, validate_events
from embsr_core.data.importers import DEFAULT_CHUNK_ROWS, ColumnMapping, Source, iter_source_chunks
from embsr_core.data.prepared import SampleView, SplitArrays
from embsr_core.inference import Predictor
from embsr_core.models.base import batch_to

HEADER = ("session_id", "rank", "item_id", "score")
MAX_EXAMPLES = 10  # unknown item / operation names quoted in the report
DEFAULT_BATCH = 256


class ScoringCancelled(Exception):
    """Raised when the caller's cancel token was set; no output file is left behind."""


@dataclass(frozen=True)
class ScoreProgress:
    bytes_read: int
    total_bytes: int
    sessions_scored: int

    @property
    def fraction(self) -> float:
        return min(1.0, self.bytes_read / self.total_bytes) if self.total_bytes else 0.0


@dataclass
class ScoreReport:
    """What a scoring pass read, used, skipped and wrote."""

    input: Path
    output: Path
    format: str
    top_k: int
    target_op: str
    sessions_read: int = 0
    sessions_scored: int = 0
    sessions_skipped: int = 0  # no step with a known item and operation
    steps_read: int = 0
    steps_used: int = 0  # known steps (before the model's max length cuts older ones)
    unknown_item_steps: int = 0
    unknown_op_steps: int = 0
    unknown_items: set[str] = field(default_factory=set)
    unknown_ops: dict[str, int] = field(default_factory=dict)
    rows_skipped_by_reader: dict[str, int] = field(default_factory=dict)  # reason → rows (e.g. trivago)
    rows_written: int = 0
    seconds: float = 0.0

    @property
    def sessions_per_second(self) -> float:
        return self.sessions_read / self.seconds if self.seconds > 0 else 0.0

    def summary_lines(self) -> list[str]:
        lines = [
            f"Scored {self.sessions_scored:,} of {self.sessions_read:,} sessions ({self.format} file) in "
            f"{self.seconds:.1f} s ({self.sessions_per_second:,.0f} sessions/s): {self.rows_written:,} rows "
            f"(top-{self.top_k}, next operation {self.target_op}) in {self.output}",
        ]
        if self.unknown_item_steps:
            examples = ", ".join(sorted(self.unknown_items)[:MAX_EXAMPLES])
            lines.append(f"Skipped {self.unknown_item_steps:,} step(s) on {len(self.unknown_items):,} item(s) the "
                         f"model never saw (e.g. {examples}).")
        if self.unknown_op_steps:
            ops = ", ".join(f"{name} ({n:,})" for name, n in sorted(self.unknown_ops.items())[:MAX_EXAMPLES])
            lines.append(f"Skipped {self.unknown_op_steps:,} step(s) with operation(s) the model does not know: {ops}.")
        if self.sessions_skipped:
            lines.append(f"{self.sessions_skipped:,} session(s) had no step the model knows and got no prediction.")
        for reason, n in sorted(self.rows_skipped_by_reader.items()):
            lines.append(f"The reader skipped {n:,} row(s): {reason}.")
        return lines


class _Scorer:
    """Encodes canonical event rows with the model's vocabulary and writes top-K rows per session."""

    def __init__(self, predictor: Predictor, writer: Any, report: ScoreReport, exclude_seen: bool, batch_size: int,
                 after_batch: Callable[[], None]):
        self.p = predictor
        self.after_batch = after_batch  # cancel check and progress, once per batch
        self.writer = writer
        self.report = report
        self.exclude_seen = exclude_seen
        self.batch_size = batch_size
        self.items = pd.Index(predictor.vocab.item_ids)  # position = dense id (0 = padding, never matched)
        self.ops = pd.Index(predictor.vocab.op_names)
        self.uses_ops = bool(predictor.model.uses_operations)
        self.target = predictor._target_op(report.target_op)
        self.item_names = np.asarray(predictor.vocab.item_ids, dtype=object)

    def score(self, frame: pd.DataFrame) -> None:
        """Score every session of ``frame`` (canonical, sorted: each session's rows together, oldest first)."""
        r = self.report
        codes, names = pd.factorize(frame["session"], sort=False)
        n_sessions = len(names)
        r.sessions_read += n_sessions
        r.steps_read += len(frame)
        items = self.items.get_indexer(frame["item"].to_numpy())  # -1: unknown
        items[items == 0] = -1
        bad_items = items < 0
        if self.uses_ops:
            ops = self.ops.get_indexer(frame["operation"].to_numpy())
            ops[ops == 0] = -1
        else:  # the model ignores operations: any name will do
            ops = np.ones(len(frame), np.int64)
        bad_ops = ops < 0
        if bad_items.any():
            r.unknown_item_steps += int(bad_items.sum())
            r.unknown_items.update(pd.unique(frame["item"].to_numpy()[bad_items]).tolist())
        if bad_ops.any():
            r.unknown_op_steps += int(bad_ops.sum())
            for name, n in pd.Series(frame["operation"].to_numpy()[bad_ops]).value_counts().items():
                r.unknown_ops[str(name)] = r.unknown_ops.get(str(name), 0) + int(n)
        known = ~bad_items & ~bad_ops
        r.steps_used += int(known.sum())
        kc = codes[known]
        counts = np.bincount(kc, minlength=n_sessions)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        keep_rows = (np.arange(len(kc)) - starts[kc]) >= counts[kc] - self.p.max_len  # the last max_len steps
        kept_codes = kc[keep_rows]
        lengths = np.minimum(counts, self.p.max_len).astype(np.int32)
        has = lengths > 0
        r.sessions_skipped += int((~has).sum())
        ends = np.cumsum(lengths).astype(np.int64)[has]
        lengths = lengths[has]
        session_ids = np.asarray(names, dtype=object)[has]
        n = len(lengths)
        if n == 0:
            return
        assert len(kept_codes) == int(lengths.sum())
        width = self.p.max_len

        def view(values: np.ndarray, dtype: Any) -> SampleView:
            return SampleView(values.astype(dtype), ends, lengths, width)

        dwell = None
        if "dwell" in frame.columns:
            raw = frame["dwell"].to_numpy(dtype=np.float32, na_value=np.nan)[known][keep_rows]
            dwell = view(np.nan_to_num(raw, nan=0.0), np.float32)
        split = SplitArrays(
            items=view(items[known][keep_rows], np.int32),
            ops=view(ops[known][keep_rows], np.int32),
            lengths=lengths,
            targets=np.ones(n, np.int64),  # placeholder: collate requires a target
            target_ops=np.ones(n, np.int32),
            session_ids=session_ids,
            end_times=np.zeros(n),
            dwell=dwell,
        )
        # batches of similar lengths: a batch is padded to its longest session, so sorting the chunk's
        # sessions by length cuts the padded work; rows are written back in file order
        order = np.argsort(lengths, kind="stable")
        k = min(self.report.top_k, self.p.model.n_items)
        top = np.zeros((n, k), np.int64)  # n×k dense item ids, best first
        values = np.zeros((n, k), np.float32)  # n×k scores (-inf: fewer than k items left)
        for lo in range(0, n, self.batch_size):
            index = order[lo : lo + self.batch_size]
            top[index], values[index] = self._batch(split, index, k)
        for lo in range(0, n, self.batch_size):  # CSV rows in file order, a slice at a time
            self._write(session_ids[lo : lo + self.batch_size], top[lo : lo + self.batch_size],
                        values[lo : lo + self.batch_size])

    @torch.no_grad()
    def _batch(self, split: SplitArrays, index: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        batch = batch_to(self.p.model.collate(split, index, self.target), self.p.device)
        scores = self.p.model.scores(batch).float()  # B×(n_items+1); column 0 is -inf
        scores[:, 0] = -torch.inf
        if self.exclude_seen:
            seen = torch.from_numpy(split.items.take(index).astype(np.int64)).to(scores.device)  # B×L, 0 = pad
            scores.scatter_(1, seen, -torch.inf)
        values, top = torch.topk(scores, k, dim=1)  # B×k, best first
        self.report.sessions_scored += len(index)
        self.after_batch()
        return top.cpu().numpy(), values.cpu().numpy()

    def _write(self, sessions: np.ndarray, top: np.ndarray, values: np.ndarray) -> None:
        ids = self.item_names[top]
        rows = []
        for b, session in enumerate(sessions):
            finite = np.isfinite(values[b])
            rows.extend(
                (session, rank, item, f"{score:.6g}")
                for rank, (item, score) in enumerate(zip(ids[b][finite], values[b][finite], strict=True), start=1)
            )
        self.writer.writerows(rows)
        self.report.rows_written += len(rows)


def score_file(
    predictor: Predictor | Path | str,
    sessions: Path | str,
    output: Path | str,
    *,
    top_k: int = 20,
    target_op: str = "unknown",
    exclude_seen: bool = False,
    file_format: str = "auto",
    mapping: ColumnMapping | None = None,
    batch_size: int = DEFAULT_BATCH,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: Callable[[object], None] | None = None,
    cancel: Any = None,
) -> ScoreReport:
    """Score every session of ``sessions`` with ``predictor`` (or a model file's path) into ``output``.

    ``target_op`` is ``"unknown"`` or one of the model's operation names ("what will they buy?").
    ``cancel`` is anything with ``is_set()`` (a ``threading.Event``, the GUI's token); checked per
    chunk and per batch. Raises :class:`DataFormatError` for unreadable input (nothing written).
    """
    if top_k < 1:
        raise ValueError(f"top-k must be at least 1, got {top_k}")
    if not isinstance(predictor, Predictor):
        predictor = Predictor.from_model_file(predictor)
    predictor._target_op(target_op)  # a bad operation name fails before any reading
    src, out = Path(sessions), Path(output)
    if not out.parent.exists():
        raise FileNotFoundError(f"cannot write {out}: folder {out.parent} does not exist")
    fmt, chunks = iter_source_chunks([Source(src)], file_format, mapping, chunk_rows=chunk_rows)
    report = ScoreReport(src, out, fmt, top_k, target_op)
    total = src.stat().st_size
    started = time.perf_counter()
    tmp = out.with_name(f".{out.name}.partial")
    cancelled = (lambda: cancel is not None and cancel.is_set())
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(HEADER)
            position = [0]  # bytes read by the reader so far

            def after_batch() -> None:
                if cancelled():
                    raise ScoringCancelled("scoring was cancelled; no output file was written")
                if progress is not None:
                    progress(ScoreProgress(position[0], total, report.sessions_scored))

            scorer = _Scorer(predictor, writer, report, exclude_seen, batch_size, after_batch)
            carry: pd.DataFrame | None = None
            done: set[str] = set()
            for _, chunk in chunks:
                if cancelled():
                    raise ScoringCancelled("scoring was cancelled; no output file was written")
                position[0] = chunk.bytes_read
                for reason, n in chunk.skipped.items():
                    report.rows_skipped_by_reader[reason] = report.rows_skipped_by_reader.get(reason, 0) + n
                if chunk.frame.empty:
                    continue
                frame = validate_events(chunk.frame, source=str(src))
                if carry is not None:
                    frame = sort_events(pd.concat([carry, frame], ignore_index=True))
                last = frame["session"].iat[-1]
                tail = (frame["session"] == last).to_numpy()
                carry, ready = frame[tail], frame[~tail]
                _check_together(ready, done, src)
                scorer.score(ready)
            if carry is not None:
                _check_together(carry, done, src)
                scorer.score(carry)
        if cancelled():
            raise ScoringCancelled("scoring was cancelled; no output file was written")
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    report.seconds = time.perf_counter() - started
    if progress is not None:
        progress(ScoreProgress(total, total, report.sessions_scored))
    return report


def _check_together(frame: pd.DataFrame, done: set[str], src: Path) -> None:
    """Refuse a session whose rows reappear after other sessions (it would be scored twice, in parts)."""
    names = pd.unique(frame["session"].to_numpy())
    again = done.intersection(names)
    if again:
        raise DataFormatError(
            f"the rows of session {sorted(again)[0]!r} are not together: it appears again after other sessions; "
            "expected each session's rows in one block (sort the file by session)",
            path=src,
        )
    done.update(names.tolist())
