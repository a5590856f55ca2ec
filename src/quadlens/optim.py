"""AdamW for full-batch training of small models, without per-step optimizer bookkeeping.

`torch.optim.AdamW(fused=True)` spends more time in Python (grouping tensors by device, state
lookups) than in its kernel when the model is small and a step takes a few milliseconds. This
class keeps the state in flat lists and calls the same fused kernel (`torch._fused_adamw_`)
directly, so it computes exactly what `torch.optim.AdamW(fused=True)` computes (a test checks
bit-equality) at a fraction of the overhead. Decoupled weight decay: p <- p (1 - lr wd) - ...

torch's CPU fused kernel (2.13) reads each gradient's memory as if it were laid out like its
parameter, whatever the gradient's strides: a transposed or permuted gradient is read
scrambled. So a gradient that is not laid out like its parameter is copied into that layout
first (`_like_param`). Until 2026-12-06 the fast path's W_V gradient was such a permuted view,
and W_V was trained on a scrambled gradient (tests/test_train.py now checks every parameter's
update against the unfused reference).
"""

from __future__ import annotations

import torch
from torch import Tensor


class AdamW:
    def __init__(
        self,
        named_params: list[tuple[str, Tensor]],
        betas: tuple[float, float],
        weight_decay: float,
        eps: float = 1e-8,
    ) -> None:
        self.names = [n for n, _ in named_params]
        self.params = [p for _, p in named_params]
        self.beta1, self.beta2 = betas
        self.weight_decay, self.eps = weight_decay, eps
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        # torch keeps the fused optimizer's step count as a float32 scalar tensor per parameter
        self.steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in self.params]

    def step(self, lr: float) -> None:
        AdamW.step_all([self], [lr])

    @torch.no_grad()
    def step_grads(self, grads: list[Tensor], lr: float) -> None:
        """One step with these gradients (one per parameter, in order) instead of `.grad`: for
        parameters that are plain tensors, such as a training batch's stacked parameters."""
        if len(grads) != len(self.params):
            raise RuntimeError(f"AdamW.step_grads: {len(grads)} gradients for "
                               f"{len(self.params)} parameters")  # fmt: skip
        g = [_like_param(x, p) for x, p in zip(grads, self.params, strict=True)]
        _fused_step(self.params, g, self.exp_avg, self.exp_avg_sq, self.steps, lr,
                    (self.beta1, self.beta2, self.weight_decay, self.eps))  # fmt: skip

    @staticmethod
    @torch.no_grad()
    def step_all(opts: list[AdamW], lrs: list[float]) -> None:
        """Step several optimizers, one fused kernel call per group of equal hyperparameters.
        The kernel treats every tensor on its own, so grouping changes no bit."""
        groups: dict[tuple[float, ...], list[AdamW]] = {}
        for opt, lr in zip(opts, lrs, strict=True):
            key = (lr, opt.beta1, opt.beta2, opt.weight_decay, opt.eps)
            groups.setdefault(key, []).append(opt)
        for (lr, beta1, beta2, wd, eps), group in groups.items():
            params, grads, m1, m2, steps = [], [], [], [], []
            for opt in group:
                g = [p.grad for p in opt.params]
                if any(x is None for x in g):
                    missing = [n for n, x in zip(opt.names, g, strict=True) if x is None]
                    raise RuntimeError(f"AdamW.step: no gradient for {', '.join(missing)}")
                g = [_like_param(x, p) for x, p in zip(g, opt.params, strict=True)]
                params += opt.params
                grads += g
                m1 += opt.exp_avg
                m2 += opt.exp_avg_sq
                steps += opt.steps
            _fused_step(params, grads, m1, m2, steps, lr, (beta1, beta2, wd, eps))

    def state_tensors(self) -> dict[str, Tensor]:
        """The optimizer state by parameter name, for checkpoints."""
        out: dict[str, Tensor] = {}
        for i, name in enumerate(self.names):
            out[f"{name}/exp_avg"] = self.exp_avg[i]
            out[f"{name}/exp_avg_sq"] = self.exp_avg_sq[i]
            out[f"{name}/step"] = self.steps[i]
        return out

    @torch.no_grad()
    def load_state_tensors(self, state: dict[str, Tensor]) -> None:
        for i, name in enumerate(self.names):
            self.exp_avg[i].copy_(state[f"{name}/exp_avg"])
            self.exp_avg_sq[i].copy_(state[f"{name}/exp_avg_sq"])
            self.steps[i].copy_(state[f"{name}/step"])


def _fused_step(params: list[Tensor], grads: list[Tensor], m1: list[Tensor], m2: list[Tensor],
                steps: list[Tensor], lr: float, hyper: tuple[float, float, float, float]) -> None:
    """The step counts advanced, then torch's fused AdamW kernel on these lists."""
    beta1, beta2, wd, eps = hyper
    torch._foreach_add_(steps, 1)
    torch._fused_adamw_(
        params, grads, m1, m2, [], steps, lr=lr, beta1=beta1, beta2=beta2,
        weight_decay=wd, eps=eps, amsgrad=False, maximize=False,
    )  # fmt: skip


def _like_param(grad: Tensor, param: Tensor) -> Tensor:
    """grad laid out like param (the fused kernel reads both by the same flat index)."""
    if grad.stride() == param.stride():
        return grad
    return torch.empty_like(param).copy_(grad)
