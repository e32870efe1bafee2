"""Adam with torch.optim.Adam's arithmetic, without torch.optim.

Building any torch.optim optimizer imports torch._dynamo (and sympy with it) the first time:
about 2.4 s and 70 MB in every training process, for a compiler these models never use. This
is the single-tensor Adam that torch runs on a CPU, operation for operation, so a step moves
the weights bit for bit as torch.optim.Adam's does (tests/test_adam.py). It keeps only what the
study uses: no weight decay, amsgrad, maximize or fused kernels.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


class Adam:
    """torch.optim.Adam(params, lr, betas, eps) for parameters that may have no gradient."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, scales: list[float] | None = None):
        self.params = list(params)
        self.lr, self.betas, self.eps = lr, betas, eps
        # a learning rate per parameter, lr x scale: torch's parameter groups (discriminative rates)
        self.scales = list(scales) if scales is not None else [1.0] * len(self.params)
        self.steps = [0] * len(self.params)  # torch keeps each count as a float tensor: the same values
        self.moments: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * len(self.params)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.betas
        for i, p in enumerate(self.params):
            if p.grad is None:  # as torch: a parameter without a gradient keeps its state
                continue
            if self.moments[i] is None:
                self.moments[i] = (torch.zeros_like(p, memory_format=torch.preserve_format),
                                   torch.zeros_like(p, memory_format=torch.preserve_format))
            exp_avg, exp_avg_sq = self.moments[i]
            self.steps[i] += 1
            step = float(self.steps[i])
            exp_avg.lerp_(p.grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            step_size = self.lr * self.scales[i] / (1 - beta1**step)
            denom = (exp_avg_sq.sqrt() / (1 - beta2**step) ** 0.5).add_(self.eps)
            p.addcdiv_(exp_avg, denom, value=-step_size)

    def state_dict(self) -> dict:
        """Plain data and tensors (a checkpoint loads it with weights_only=True)."""
        return {"lr": self.lr, "betas": list(self.betas), "eps": self.eps, "steps": list(self.steps),
                "moments": [None if m is None else list(m) for m in self.moments]}

    def load_state_dict(self, state: dict) -> None:
        if len(state["steps"]) != len(self.params):
            raise ValueError(f"optimizer state for {len(state['steps'])} parameters, expected {len(self.params)}")
        self.lr, self.betas, self.eps = state["lr"], tuple(state["betas"]), state["eps"]
        self.steps = list(state["steps"])
        self.moments = [None if m is None else (m[0].to(p.device).clone(), m[1].to(p.device).clone())
                        for p, m in zip(self.params, state["moments"])]
