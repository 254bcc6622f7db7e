"""Padded macro-item sequences for the baselines (vectorised numpy, no loop per session).

A macro-item is a run of consecutive micro-behaviors on the same item (§IV-B-1); macro-behavior
baselines see only the sequence of these runs, exactly as EMBSR's item side does.
"""

from __future__ import annotations

import numpy as np


def macro_runs(items: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each macro run starts and which run every micro-behavior belongs to.

    items: B×L left-aligned (0 = padding); lengths: B. Returns ``starts`` (B×L bool, first
    micro-behavior of a run), ``run`` (B×L int64, run index of each micro-behavior, -1 on padding)
    and ``n_runs`` (B int64).
    """
    items = np.asarray(items, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    valid = np.arange(items.shape[1])[None, :] < lengths[:, None]  # B×L
    starts = valid.copy()
    starts[:, 1:] &= items[:, 1:] != items[:, :-1]
    run = np.where(valid, np.cumsum(starts, axis=1) - 1, -1)
    return starts, run, starts.sum(axis=1).astype(np.int64)


def macro_sequences(
    items: np.ndarray, lengths: np.ndarray, max_len: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Left-aligned padded macro-item sequences (B×T int64) and their lengths (B).

    With ``max_len`` only the most recent ``max_len`` macro-items of each session are kept.
    """
    items = np.asarray(items, dtype=np.int64)
    starts, run, n_runs = macro_runs(items, lengths)
    shift = np.maximum(n_runs - max_len, 0) if max_len else np.zeros_like(n_runs)
    kept = n_runs - shift
    out = np.zeros((items.shape[0], max(int(kept.max(initial=1)), 1)), dtype=np.int64)
    r, c = np.nonzero(starts)
    dest = run[r, c] - shift[r]
    keep = dest >= 0
    out[r[keep], dest[keep]] = items[r[keep], c[keep]]
    return out, kept


def padded_positions(session: np.ndarray, n_sessions: int) -> tuple[np.ndarray, np.ndarray]:
    """Column of each element of a flat, session-sorted array in its session's padded row.

    session: M (non-decreasing session index per element). Returns (col M, count per session B),
    so that ``padded[session, col] = flat`` lays the elements out left-aligned.
    """
    session = np.asarray(session, dtype=np.int64)
    counts = np.bincount(session, minlength=n_sessions)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return np.arange(len(session)) - first[session], counts
