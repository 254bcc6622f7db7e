"""Scaled-cosine scoring over all items and its cross-entropy (eq. 19–20).

ŷ = softmax(w_k · cos(m, v_i)) over items 1..n (row 0 of the item table is padding: never scored).
``CosineScorer.loss`` fuses scoring and cross-entropy in one autograd function: one B×n buffer
(logits → probabilities in place) instead of logits, log-softmax and their gradients. It runs in
float32 even under autocast (the softmax over ~10⁴ items is where reduced precision hurts).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

# exp(scale·cos) needs no max shift while n·e^scale stays far from fp32's limit (e^88.7): the
# logits lie in [−scale, scale], so neither the sum overflows nor a row's terms all underflow.
_NO_SHIFT_MAX_EXPONENT = 80.0
_NORM_EPS = 1e-12  # F.normalize's default


class _ScaledCosineCE(torch.autograd.Function):
    """Mean CE of softmax(scale · m̂ v̂ᵀ) against 0-based targets; m̂: B×d unit rows, v̂ = L2Norm(items[1:]).

    It takes the whole (n+1)×d item table and normalises rows 1..n itself, so the table's gradient
    is written once, row 0 (padding) zero, instead of a normalisation backward plus a zero-filled
    copy for the slice.

    Every pass over the B×N buffer costs as much as a small matmul on a CPU, so the scale is folded
    into m̂ (B×d) and into the gradients (B×d, N×d), and the softmax is exp and sum in place, its
    normalisation left to the backward's B×d sides (no max shift where the scores' bounded range
    makes it unnecessary). ``dtype`` is the type the three B×N products run in (bfloat16: inputs
    rounded, logits, softmax and gradients float32).

    ``per_row``: return the B per-row losses instead of their mean (the copy mechanism mixes each
    row's target probability exp(−loss) with its own pointer); each row's gradient weight then
    scales its B×d side of the products, so the B×N buffer is still touched only by them.
    """

    @staticmethod
    def forward(ctx, m_hat, items, targets, scale, dtype=torch.float32, per_row=False):  # type: ignore[override]
        raw = items[1:]  # N×d
        length = torch.linalg.vector_norm(raw, dim=-1, keepdim=True)  # N×1
        norm = length.clamp_min(_NORM_EPS)  # as F.normalize
        v_hat = raw / norm  # N×d
        m_mm, v_mm = (m_hat * scale).to(dtype), v_hat.to(dtype)
        logits = torch.mm(m_mm, v_mm.t()).float()  # B×N, in [−scale, scale]
        target_logit = logits.gather(1, targets[:, None])[:, 0]  # B
        if scale + math.log(max(logits.shape[1], 1)) < _NO_SHIFT_MAX_EXPONENT:
            shift = None
        else:  # a large scale: the usual max shift keeps exp finite
            shift = logits.amax(1, keepdim=True)
            logits.sub_(shift)
        total = logits.exp_().sum(1)  # B; the buffer now holds exp(logits)
        lse = total.log() if shift is None else total.log() + shift[:, 0]
        loss = lse - target_logit if per_row else (lse - target_logit).mean()
        # the softmax is left unnormalised (E = exp(logits)): its 1/total is applied to the B×d sides
        # of the backward's products, not to the B×N buffer
        ctx.save_for_backward(logits, total.reciprocal(), m_mm, v_mm, targets, v_hat, norm, length > _NORM_EPS)
        ctx.scale, ctx.dtype, ctx.n_rows, ctx.per_row = scale, dtype, items.shape[0], per_row
        return loss

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        # m_mm = scale · m̂; dL/dlogits · B = softmax − onehot(targets) = diag(inv) E − onehot
        exp, inv, m_mm, v_mm, targets, v_hat, norm, unclamped = ctx.saved_tensors
        e = exp.to(ctx.dtype)
        if ctx.per_row:  # row weights g (B) on the B×d sides; nothing left to scale afterwards
            row, factor = grad.float()[:, None], 1.0
        else:
            row, factor = None, grad / exp.shape[0]  # applied to the small B×d and N×d products
        grad_m = None
        if ctx.needs_input_grad[0]:  # (diag(inv) E − onehot) v = inv ⊙ (E v) − v[targets]
            grad_m = torch.mm(e, v_mm).float().mul_(inv[:, None]).sub_(v_mm.index_select(0, targets).float())
            grad_m.mul_(factor * ctx.scale if row is None else row * ctx.scale)
        grad_items = None
        if ctx.needs_input_grad[1]:
            # (diag(inv) E − onehot)ᵀ m = Eᵀ (inv ⊙ m) − Σ m into the target rows
            m_rows = m_mm.float() if row is None else m_mm.float() * row
            m_inv = (m_rows * inv[:, None]).to(ctx.dtype)
            grad_v = torch.mm(e.t(), m_inv).float()  # N×d
            grad_v.index_add_(0, targets, m_rows, alpha=-1.0)
            if row is None:
                grad_v.mul_(factor)  # dL/dv̂
            # through v̂ = v / max(‖v‖, ε): (dL/dv̂ − v̂ (v̂·dL/dv̂)) / ‖v‖ (just dL/dv̂ / ε where clamped)
            along = (grad_v * v_hat).sum(-1, keepdim=True).mul_(unclamped)  # N×1
            grad_items = grad_v.new_empty(ctx.n_rows, grad_v.shape[1])
            grad_items[0] = 0.0
            torch.addcmul(grad_v, v_hat, along, value=-1.0, out=grad_items[1:]).div_(norm)
        return grad_m, grad_items, None, None, None, None


class CosineScorer(nn.Module):
    """Scores a session representation against an item embedding table (row 0 = padding)."""

    def __init__(self, w_k: float = 12.0):
        super().__init__()
        self.w_k = float(w_k)
        # The type of the training loss's three B×n products (benchmarks/train_step.py --precision):
        # float32, or bfloat16 where a processor multiplies it faster (logits and softmax stay float32).
        self.matmul_dtype = torch.float32
        # Opt-in (the Predictor sets it): keep v̂ between calls while the weights are frozen.
        self.cache_item_table = False
        self._table: tuple[tuple[int, int, int, tuple[int, ...]], torch.Tensor] | None = None

    def _normalised(self, m: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return F.normalize(m.float(), dim=-1), self._item_table(items)  # B×d, n×d

    def _item_table(self, items: torch.Tensor) -> torch.Tensor:
        """v̂ = L2Norm(items[1:]): n×d, cached only for inference with frozen weights.

        Re-normalising a 100,000-row table is most of one Playground query. The cache is opt-in
        because not every weight change is visible to a cheap check: a collective such as
        ``dist.broadcast`` writes a parameter's storage without bumping its version counter.
        The key still checks identity, storage and version, so an ordinary update is never missed.
        """
        if not self.cache_item_table or (torch.is_grad_enabled() and items.requires_grad):
            return F.normalize(items[1:].float(), dim=-1)
        key = (id(items), items.data_ptr(), items._version, tuple(items.shape))
        if self._table is None or self._table[0] != key:
            self._table = (key, F.normalize(items[1:].detach().float(), dim=-1))
        return self._table[1]

    def scores(self, m: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """m: B×d, items: (n+1)×d → B×(n+1) scores, column 0 = -inf."""
        with torch.autocast(m.device.type, enabled=False):
            m_hat, v_hat = self._normalised(m, items)
            logits = self.w_k * (m_hat @ v_hat.t())  # B×n
            return F.pad(logits, (1, 0), value=float("-inf"))

    def loss(self, m: torch.Tensor, items: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy (eq. 20); targets: B item ids in 1..n."""
        return self._fused_ce(m, items, targets, per_row=False)

    def row_losses(self, m: torch.Tensor, items: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """B cross-entropies −log ŷ(target), each row's own (the copy mechanism's mixture needs them)."""
        return self._fused_ce(m, items, targets, per_row=True)

    def _fused_ce(self, m: torch.Tensor, items: torch.Tensor, targets: torch.Tensor, per_row: bool) -> torch.Tensor:
        with torch.autocast(m.device.type, enabled=False):
            m_hat = F.normalize(m.float(), dim=-1)  # B×d; the table is normalised inside
            return _ScaledCosineCE.apply(m_hat, items.float(), targets - 1, self.w_k, self.matmul_dtype, per_row)
