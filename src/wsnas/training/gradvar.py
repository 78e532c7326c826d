"""Gradient variance of a supernet over windows of training steps (the quantity PA&DA minimises).

A single-path supernet's stochastic gradient varies from step to step both because the batch
changes and because the path changes. :class:`GradVarianceMonitor` measures how much: call
:meth:`~GradVarianceMonitor.update` after every backward pass (it reads ``p.grad`` of the
parameters it watches, a missing gradient counting as zeros) and every ``window`` steps it
closes a window and records, with ``g_1 .. g_W`` the flattened gradients of the window and
``m = (1/W) sum_t g_t`` their mean:

* ``variance`` -- the trace of the gradients' covariance, ``(1/W) sum_t ||g_t - m||^2``
  (population normalisation, divided by ``W``);
* ``mean_sq_norm`` -- ``(1/W) sum_t ||g_t||^2``;
* ``norm_of_mean_sq`` -- ``||m||^2`` (so ``variance = mean_sq_norm - norm_of_mean_sq``);
* ``relative`` -- ``variance / mean_sq_norm``, in [0, 1]: 0 when every step pushes the
  weights the same way, near 1 when the steps' gradients cancel out on average;
* ``steps`` (``W``) and ``end_step`` (how many updates the monitor had seen when the window
  closed).

Sums are kept per element in float64 over the current window only, so memory is one float64
vector the size of the watched parameters. :meth:`~GradVarianceMonitor.state_dict` holds
plain tensors and Python values, so the monitor can travel in a checkpoint and resume exactly.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from wsnas.core.errors import WsnasError

__all__ = ["METRIC_NAMES", "GradVarianceMonitor"]

#: ``run_metrics`` name of each value of a window's record (a window is stored at its last step).
METRIC_NAMES = {"variance": "grad_variance", "mean_sq_norm": "grad_mean_sq_norm",
                "norm_of_mean_sq": "grad_norm_of_mean_sq", "relative": "grad_relative_variance"}


class GradVarianceMonitor:
    """Running gradient variance of ``params`` over consecutive windows of ``window`` steps."""

    def __init__(self, params: Iterable[torch.nn.Parameter], window: int):
        self.params = list(params)
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise WsnasError(f"gradient-variance window must be a positive number of steps, got {window!r}")
        if not self.params:
            raise WsnasError("gradient-variance monitor needs at least one parameter")
        self.window = window
        self.numel = sum(p.numel() for p in self.params)
        self.device = self.params[0].device
        self.windows: list[dict] = []
        self.total_steps = 0
        self._reset()

    def _reset(self) -> None:
        self._sum = torch.zeros(self.numel, dtype=torch.float64, device=self.device)
        self._sq = torch.zeros((), dtype=torch.float64, device=self.device)
        self._count = 0

    def _flat_grad(self) -> torch.Tensor:
        parts = []
        for p in self.params:
            if p.grad is None:
                parts.append(torch.zeros(p.numel(), dtype=torch.float64, device=self.device))
            else:
                parts.append(p.grad.detach().reshape(-1).to(self.device, torch.float64))
        return torch.cat(parts)

    def update(self) -> dict | None:
        """Add the current gradients as one step; returns the window's record when it closes."""
        g = self._flat_grad()
        self._sum += g
        self._sq += g.dot(g)
        self._count += 1
        self.total_steps += 1
        if self._count < self.window:
            return None
        record = self._close()
        self._reset()
        return record

    def _close(self) -> dict:
        w = self._count
        mean_sq = self._sq.item() / w
        norm_mean = (self._sum / w).square().sum().item()
        variance = max(mean_sq - norm_mean, 0.0)  # rounding can leave a tiny negative
        record = {"steps": w, "end_step": self.total_steps, "variance": variance,
                  "mean_sq_norm": mean_sq, "norm_of_mean_sq": norm_mean,
                  "relative": variance / mean_sq if mean_sq > 0 else float("nan")}
        self.windows.append(record)
        return record

    @property
    def pending_steps(self) -> int:
        """Steps seen in the window that is still open."""
        return self._count

    def state_dict(self) -> dict:
        """Everything needed to resume: the open window's sums and the closed windows."""
        return {"window": self.window, "numel": self.numel, "total_steps": self.total_steps,
                "count": self._count, "sum": self._sum.detach().cpu().clone(),
                "sq": float(self._sq.item()), "windows": [dict(r) for r in self.windows]}

    def load_state_dict(self, state: dict) -> None:
        """Restore a state from :meth:`state_dict` (same parameters and window)."""
        if int(state["window"]) != self.window or int(state["numel"]) != self.numel:
            raise WsnasError(f"gradient-variance state is for window {state['window']} over "
                             f"{state['numel']} values, not window {self.window} over {self.numel}")
        self.total_steps = int(state["total_steps"])
        self._count = int(state["count"])
        self._sum = state["sum"].to(self.device, torch.float64).clone()
        self._sq = torch.tensor(float(state["sq"]), dtype=torch.float64, device=self.device)
        self.windows = [dict(r) for r in state["windows"]]
