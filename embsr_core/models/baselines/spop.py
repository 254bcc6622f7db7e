"""S-POP: session popularity (Ludewig & Jannach 2018, "Evaluation of session-based recommendation
algorithms", and Jannach & Ludewig 2017).

Items are ranked by how often they occur in the current session's macro-item sequence, ties (and
items not in the session) broken by global popularity in the training split. Simplification: the
global popularity counts every macro-item occurrence plus the target of each training session.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from embsr_core.data.prepared import SplitArrays
from embsr_core.models.base import Batch, TargetOp
from embsr_core.models.baselines._common import collate_macro, register_baseline, with_padding_column
from embsr_core.models.baselines.fitted import FittedBaseline
from embsr_core.models.layers.macro_batch import macro_sequences


class SPop(FittedBaseline):
    """S-POP: most frequent items of the current session, ties broken by global popularity."""

    uses_operations = False

    def __init__(self, n_items: int, n_ops: int, config: dict[str, Any]):
        super().__init__(n_items, n_ops, config)
        self.register_buffer("popularity", torch.zeros(n_items + 1))  # in [0, 1): a tie-break only
        self.register_buffer("is_fitted", torch.zeros((), dtype=torch.bool))

    def fit(self, train: SplitArrays) -> None:
        train = train.one_per_session()  # each session once, however many prefixes it gave
        seq, _ = macro_sequences(train.items, train.lengths)
        counts = np.bincount(seq.ravel(), minlength=self.n_items + 1).astype(np.float64)
        counts += np.bincount(np.asarray(train.targets, dtype=np.int64), minlength=self.n_items + 1)
        counts[0] = 0
        self.popularity = torch.from_numpy(counts / (counts.max() + 1)).float()
        self.is_fitted = torch.ones((), dtype=torch.bool)

    def collate(self, split: SplitArrays, index: np.ndarray, target_op: TargetOp = "oracle") -> Batch:
        return collate_macro(split, index)

    def scores(self, batch: Batch) -> torch.Tensor:
        self._require_fitted()
        items = batch["items"]  # B×T macro-items, 0 = padding
        in_session = torch.zeros(items.shape[0], self.n_items + 1, device=items.device)
        in_session.scatter_add_(1, items, torch.ones_like(items, dtype=in_session.dtype))
        return with_padding_column(in_session + self.popularity.to(items.device)[None, :])


register_baseline("S-POP", SPop, ())
