"""How long a leaderboard has left, from what each model still has to do.

A board that is continued (after a crash, a Stop, or to add seeds) mostly holds models that are
already tuned: counting a full tuning share for each of them, or timing every model's repeated seeds
by the slowest model's, told an analyst "235 minutes" for a 40-minute job. So the estimate is kept
per model: whether its tuning share is still to spend, how many repeated seeds it still has to
train, and how long one of its seeds takes (its tuned run's training time, then its own measured
seeds).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class ModelWork:
    """What one model of the board still has to do."""

    tuning: bool  # its tuning share is still to be spent
    seeds_left: int  # repeated-seed trainings still to come (the one running counts)
    seed_s: float | None = None  # one seed's training time: the tuned run's, then a measured one


class BoardEta:
    """Seconds left for the whole board, updated as models finish their tuning and their seeds."""

    def __init__(self, models: Sequence[str], work: dict[str, ModelWork], per_model_s: float | None) -> None:
        self.models = list(models)
        self.work = work
        self.per_model_s = per_model_s
        self._tuning_s: list[float] = []  # whole tuning times of this session (boards by number of trials)

    def tuned(self, model: str, seconds: float, seed_s: float | None) -> None:
        """``model`` finished its tuning in ``seconds``; ``seed_s`` = its best run's training time."""
        self.work[model].tuning = False
        self._tuning_s.append(seconds)
        if seed_s is not None:
            self.work[model].seed_s = seed_s

    def kept(self, model: str, seed_s: float | None) -> None:
        """``model`` was found tuned (its study is done), perhaps by another process since the start."""
        self.work[model].tuning = False
        if seed_s is not None and self.work[model].seed_s is None:
            self.work[model].seed_s = seed_s

    def seed_done(self, model: str, seconds: float | None = None) -> None:
        """One repeated seed of ``model`` ended (``seconds``: how long it took, when it finished)."""
        work = self.work[model]
        work.seeds_left = max(0, work.seeds_left - 1)
        if seconds is not None:
            work.seed_s = seconds

    def seeds_over(self, model: str) -> None:
        self.work[model].seeds_left = 0

    def left_s(self, index: int, elapsed_s: float) -> float | None:
        """Seconds left from the model at ``index``, ``elapsed_s`` into its tuning; None when unknown
        (a board by number of trials before any model has been tuned here)."""
        tuning_share = self.per_model_s
        if tuning_share is None and self._tuning_s:
            tuning_share = sum(self._tuning_s) / len(self._tuning_s)
        known = [w.seed_s for w in self.work.values() if w.seed_s is not None]
        fallback = sum(known) / len(known) if known else (tuning_share or 0.0)
        total = 0.0
        for i, model in enumerate(self.models[index:], start=index):
            work = self.work[model]
            if work.tuning:
                if tuning_share is None:
                    return None
                total += max(0.0, tuning_share - elapsed_s) if i == index else tuning_share
            total += work.seeds_left * (work.seed_s if work.seed_s is not None else fallback)
        return total
