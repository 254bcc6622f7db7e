"""SKNN: session-based k-nearest neighbours (Jannach & Ludewig, RecSys 2017).

Each training session (its macro-items plus its target) is a binary item vector. For a query
session, the candidate neighbours are the ``sample_size`` most recent training sessions sharing at
least one item with it; the ``k`` most cosine-similar of them vote for their items with their
similarity: score(i) = Σ_{n ∈ kNN(s)} sim(s, n)·1[i ∈ n]. Items of no neighbour score 0.
All of it is sparse-matrix algebra (scipy) and sorting over the batch's (query, neighbour) pairs:
no loop over sessions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from embsr_core.data.prepared import SplitArrays
from embsr_core.models.base import Batch, TargetOp
from embsr_core.models.baselines._common import collate_macro, register_baseline, with_padding_column
from embsr_core.models.baselines.fitted import FittedBaseline
from embsr_core.models.layers.macro_batch import macro_sequences
from embsr_core.models.registry import Param


def binary_rows(seq: np.ndarray, n_cols: int) -> sp.csr_matrix:
    """N×T item sequences (0 = padding) → N×n_cols binary CSR, column 0 dropped."""
    rows = np.repeat(np.arange(seq.shape[0]), seq.shape[1])
    cols = seq.ravel()
    keep = cols > 0
    m = sp.csr_matrix((np.ones(int(keep.sum()), dtype=np.float32), (rows[keep], cols[keep])),
                      shape=(seq.shape[0], n_cols))
    m.data[:] = 1.0  # duplicates were summed: back to binary
    return m


def top_per_row(rows: np.ndarray, order_key: np.ndarray, limit: int) -> np.ndarray:
    """Indices of the ``limit`` entries with the largest ``order_key`` within each row group."""
    order = np.lexsort((-order_key, rows))
    sorted_rows = rows[order]
    first = np.searchsorted(sorted_rows, sorted_rows, side="left")
    return order[np.arange(len(order)) - first < limit]


class SKNN(FittedBaseline):
    """SKNN: session k-nearest neighbours with cosine similarity over recent sampled sessions."""

    uses_operations = False

    def __init__(self, n_items: int, n_ops: int, config: dict[str, Any]):
        super().__init__(n_items, n_ops, config)
        self.k = int(config["k"])
        self.sample_size = int(config["sample_size"])
        # the training sessions' item sets as CSR parts, their norms and recency rank
        self.register_buffer("indptr", torch.zeros(1, dtype=torch.int64))
        self.register_buffer("indices", torch.zeros(0, dtype=torch.int64))
        self.register_buffer("recency", torch.zeros(0, dtype=torch.float64))
        self.register_buffer("is_fitted", torch.zeros((), dtype=torch.bool))
        self._matrix: sp.csr_matrix | None = None

    def fit(self, train: SplitArrays) -> None:
        train = train.one_per_session()  # each session once, however many prefixes it gave
        seq, _ = macro_sequences(train.items, train.lengths)
        full = np.concatenate([seq, np.asarray(train.targets, dtype=np.int64)[:, None]], axis=1)
        m = binary_rows(full, self.n_items + 1)
        self.indptr = torch.from_numpy(m.indptr.astype(np.int64))
        self.indices = torch.from_numpy(m.indices.astype(np.int64))
        # most recent first: later end time, then later row (rows are in time order after a time split)
        end = np.nan_to_num(np.asarray(train.end_times, dtype=np.float64), nan=-np.inf)
        self.recency = torch.from_numpy(np.lexsort((np.arange(len(end)), end)).argsort().astype(np.float64))
        self.is_fitted = torch.ones((), dtype=torch.bool)
        self._fitted_changed()

    def _fitted_changed(self) -> None:
        self._matrix = None

    def _train_matrix(self) -> sp.csr_matrix:
        if self._matrix is None:
            indptr = self.indptr.cpu().numpy()
            data = np.ones(int(indptr[-1]), dtype=np.float32)
            self._matrix = sp.csr_matrix((data, self.indices.cpu().numpy(), indptr),
                                         shape=(len(indptr) - 1, self.n_items + 1))
        return self._matrix

    def collate(self, split: SplitArrays, index: np.ndarray, target_op: TargetOp = "oracle") -> Batch:
        return collate_macro(split, index)

    def neighbours(self, items: np.ndarray) -> sp.csr_matrix:
        """B×N_train sparse similarities of each query's k nearest sampled neighbours."""
        train = self._train_matrix()
        query = binary_rows(items, self.n_items + 1)  # B×(n+1)
        overlap = (query @ train.T).tocoo()  # shared item counts, only overlapping pairs
        r, c, shared = overlap.row, overlap.col, overlap.data
        keep = top_per_row(r, self.recency.cpu().numpy()[c], self.sample_size)
        r, c, shared = r[keep], c[keep], shared[keep]
        q_norm = np.sqrt(np.asarray(query.sum(axis=1)).ravel())
        t_norm = np.sqrt(np.diff(train.indptr)).astype(np.float64)
        sim = shared / (q_norm[r] * t_norm[c])
        keep = top_per_row(r, sim, self.k)
        return sp.csr_matrix((sim[keep], (r[keep], c[keep])), shape=(items.shape[0], train.shape[0]))

    def scores(self, batch: Batch) -> torch.Tensor:
        self._require_fitted()
        items = batch["items"]
        votes = (self.neighbours(items.cpu().numpy()) @ self._train_matrix()).toarray()  # B×(n+1)
        return with_padding_column(torch.from_numpy(votes).float().to(items.device))


register_baseline("SKNN", SKNN, (
    Param("k", "int", 100, "Number of nearest neighbour sessions that vote.", low=1, high=10000,
          search=(50, 100, 200, 500)),
    Param("sample_size", "int", 500, "Most recent overlapping training sessions considered as neighbours.",
          low=1, high=1000000),
))
