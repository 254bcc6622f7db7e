"""Non-neural baselines keep what ``fit`` learned in buffers whose size depends on the data."""

from __future__ import annotations

from typing import Any

import torch

from embsr_core.models.base import SessionRecommender


class FittedBaseline(SessionRecommender):
    """Buffers are resized on ``load_state_dict``, so a saved fitted model reloads into a fresh one."""

    trainable = False

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        for name, buf in list(self._buffers.items()):
            key = prefix + name
            if buf is not None and key in state_dict:
                self._buffers[name] = torch.empty_like(state_dict[key])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._fitted_changed()

    def _fitted_changed(self) -> None:
        """Drop anything derived from the buffers (called after fitting and loading)."""

    def _require_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError(f"{type(self).__name__} must be fitted on the training split before scoring")

    @property
    def fitted(self) -> bool:
        return bool(self.is_fitted.item())
