"""One label per setting, the same in the Train form, the Tune dialog and a run's details.

The schema's names are the CLI's and the paper's symbols; an analyst reads these labels instead.
A setting not listed here is labelled by the head of its help text (``"Adam learning rate (paper
grid ...)"`` → ``"Adam learning rate"``), else by its name with the underscores as spaces.
"""

from __future__ import annotations

import re

# Labels an analyst reads (the schema's names are the CLI's and the paper's symbols); any other name is
# shown with its underscores as spaces. The paper's symbol follows in brackets where it has one.
ANALYST_LABELS = {
    "embedding_dim": "Embedding size (d)",
    "dropout": "Dropout",
    "w_k": "Score sharpness (wₖ)",
    "gnn_layers": "Graph propagation steps",
    "star_gate": "Star-node gate",
    "message_source": "Graph message content",
    "attn_layers": "Attention blocks",
    "positions": "Position counting",
    "heads": "Attention heads",
    "recent": "Last-item summary",
    "repeat": "Recommend items seen again",
    "target_op_dropout": "Hide next operation (share)",
    "beta": "Fixed fusion weight (β)",
    "tokens": "Attention tokens",
    "max_len": "Positions",
    "layers": "Layers",
    "mask_prob": "Masking probability",
    "gnn_steps": "Graph propagation steps",
    "blocks": "Attention blocks (k)",
    "omega": "Attention weight (ω)",
    "k": "Neighbour sessions (k)",
    "sample_size": "Candidate sessions",
    "lr": "Learning rate",
    "weight_decay": "Weight decay",
    "amsgrad": "AMSGrad",
    "batch_size": "Batch size",
    "max_epochs": "Maximum epochs",
    "patience": "Patience (epochs)",
    "criterion": "Best-epoch rule",
    "grad_clip": "Gradient clipping",
    "seed": "Random seed",
    "device": "Device",
    "amp": "Mixed precision",
    "eval_batch_size": "Evaluation batch size",
    "exclude_seen_items": "Exclude items already seen",
    "train_target_op": "Next operation in training",
    "eval_memory_mb": "Evaluation memory (MiB)",
    "loss_points_per_epoch": "Loss points kept per epoch",
    "threads": "Processor threads",
    "loader_workers": "Batch preparation processes",
}
# A plain sentence first for settings whose schema help speaks the paper's notation (kept after it).
ANALYST_HELP = {
    "w_k": "How sharply the scores separate items: higher values make the top items stand out more.",
    "star_gate": "How the session summary (star node) decides how much to update each item.",
    "message_source": "What an item passes to its neighbours in the session graph.",
    "positions": "Whether step positions are counted from the session's start or from its end.",
    "recent": "What stands for the user's latest interest: the last action only ('micro', as in the paper), "
              "plus everything done on the last item, in order ('run', for models that read operations), or the "
              "last item passed through a learned gate ('gated', the default: in models that read operations, "
              "what was done on the item decides what of it counts).",
    "repeat": "Whether the model may point back at items already in the session ('pointer'): it learns how "
              "often users return to an item and which one (e.g. an item read in detail earlier). 'off' is "
              "the paper's model, which scores seen and unseen items alike; 'pointer-items' recognises the seen "
              "items by their own vectors rather than by what the graph made of them.",
    "beta": "With a fixed fusion: the share of the whole-session summary against the last item.",
    "tokens": "What the attention looks at: whole items, or each micro-behavior.",
    "omega": "The share of the attention summary against the last graph state.",
    "blocks": "How many attention layers are stacked.",
    "target_op_dropout": "How often training hides the next operation, so one model serves both evaluation "
                         "settings (next operation given or unknown).",
    "train_target_op": "Whether the model is told the next operation while it learns and when the best epoch "
                       "is chosen: 'oracle' = told, 'unknown' = not told (see Help).",
    "loader_workers": "How many helper processes get the next batches ready while the model learns. 'auto' "
                      "uses 2 with a graphics card (GPU) and none on the processor alone; the results are the "
                      "same for every choice, only the speed differs.",
}


def setting_label(name: str, help_text: str = "") -> str:
    """The analyst's label of setting ``name`` (its help text is the fallback's source)."""
    if name in ANALYST_LABELS:
        return ANALYST_LABELS[name]
    head = re.split(r" \(|: |; |, | = ", help_text, maxsplit=1)[0].strip().rstrip(". ") if help_text else ""
    text = head if 3 <= len(head) <= 48 else name.replace("_", " ")
    return text[:1].upper() + text[1:]
