"""Trainer events as the lines of a run's stored training log (what the run detail view shows).

One formatter for every caller, so the log a run leaves in the store reads the same whether it was
trained from the GUI, the CLI or a search. Batch events are not logged (thousands per epoch); the
epoch-level events are. Metrics are written in percent, as the GUI shows them.
"""

from __future__ import annotations

from embsr_core.training.events import (
    Cancelled,
    CheckpointSaved,
    EvaluationEnd,
    Failed,
    Finished,
    RunStarted,
    TrainEvent,
)

LOG_METRICS = ("hit@10", "hit@20", "mrr@10", "mrr@20", "ndcg@10", "ndcg@20")


def metrics_percent_text(metrics: dict[str, float]) -> str:
    """``{"hit@20": 0.4123}`` → ``"H@20 41.23 %"`` for the metrics in :data:`LOG_METRICS`."""
    parts = []
    for name in LOG_METRICS:
        if name in metrics:
            label = name.replace("hit", "H").replace("mrr", "M").replace("ndcg", "NDCG")
            parts.append(f"{label} {100 * metrics[name]:.2f} %")
    return "  ".join(parts)


def event_log_lines(event: TrainEvent) -> list[tuple[str, str]]:
    """``(level, message)`` lines for one event; empty for events the log leaves out."""
    if isinstance(event, RunStarted):
        what = "resumed from epoch" if event.resumed else "started at epoch"
        workers = f" on {event.world_size} processes" if event.world_size > 1 else ""
        if event.threads:
            workers += f" with {event.threads} processor thread{'s' if event.threads > 1 else ''}"
            workers += " each" if event.world_size > 1 else ""
        if event.precision != "fp32":
            workers += f" in {event.precision} mixed precision"
        lines = [("info", f"run {event.run_id} {what} {event.start_epoch}: {event.model_name} on {event.device}"
                          f"{workers}; {event.n_train:,} training / {event.n_valid:,} validation / "
                          f"{event.n_test:,} test sessions, up to {event.max_epochs} epochs")]
        return lines + ([("warning", event.precision_note)] if event.precision_note else [])
    if isinstance(event, EvaluationEnd):
        split = "validation" if event.split == "valid" else "test"
        loss = f"training loss {event.train_loss:.4f}  " if event.train_loss is not None else ""
        best = "  (new best)" if event.is_best else ""
        where = f"epoch {event.epoch}" if event.split == "valid" else f"best epoch {event.epoch}"
        return [("info", f"{where}, {split} ({event.target_op} operation): {loss}"
                         f"{metrics_percent_text(event.metrics)}{best}")]
    if isinstance(event, CheckpointSaved):
        return [("info", f"checkpoint ({event.kind}) saved after epoch {event.epoch}")]
    if isinstance(event, Finished):
        early = " (stopped early: validation stopped improving)" if event.stopped_early else ""
        return [("info", f"finished after {event.epochs_done} epochs; best epoch {event.best_epoch}{early}")]
    if isinstance(event, Cancelled):
        kept = "; it can be resumed from its checkpoint" if event.checkpoint_path else ""
        return [("warning", f"stopped by the user after epoch {event.epoch}{kept}")]
    if isinstance(event, Failed):
        lines = [("error", f"failed: {event.reason}")]
        if event.traceback:
            lines.append(("error", event.traceback.rstrip()))
        return lines
    return []
