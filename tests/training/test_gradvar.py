"""GradVarianceMonitor: windowed gradient variance against a direct numpy computation."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from wsnas.core.errors import WsnasError
from wsnas.training.gradvar import GradVarianceMonitor


def _params():
    return [torch.nn.Parameter(torch.zeros(3, 4)), torch.nn.Parameter(torch.zeros(5))]


def _feed(monitor, params, grads):
    for g in grads:
        for p, v in zip(params, g):
            p.grad = None if v is None else v.clone()
        monitor.update()


def _random_grads(steps, seed):
    gen = torch.Generator().manual_seed(seed)
    out = []
    for t in range(steps):
        a = torch.randn(3, 4, generator=gen) + 0.5
        b = None if t % 3 == 1 else torch.randn(5, generator=gen) * 2  # a missing grad counts as zeros
        out.append((a, b))
    return out


def _flat(g):
    return np.concatenate([g[0].numpy().ravel(), np.zeros(5) if g[1] is None else g[1].numpy().ravel()])


def test_windows_match_numpy():
    params = _params()
    monitor = GradVarianceMonitor(params, window=5)
    grads = _random_grads(12, seed=1)
    _feed(monitor, params, grads)
    assert len(monitor.windows) == 2 and monitor.pending_steps == 2 and monitor.total_steps == 12
    for w, chunk in zip(monitor.windows, (grads[0:5], grads[5:10])):
        stacked = np.stack([_flat(g) for g in chunk]).astype(np.float64)
        mean = stacked.mean(0)
        variance = ((stacked - mean) ** 2).sum(1).mean()
        assert w["steps"] == 5
        assert w["variance"] == pytest.approx(variance, rel=1e-6)
        assert w["variance"] == pytest.approx(np.var(stacked, axis=0).sum(), rel=1e-6)
        assert w["mean_sq_norm"] == pytest.approx((stacked ** 2).sum(1).mean(), rel=1e-6)
        assert w["norm_of_mean_sq"] == pytest.approx((mean ** 2).sum(), rel=1e-6)
        assert w["relative"] == pytest.approx(variance / (stacked ** 2).sum(1).mean(), rel=1e-6)
    assert [w["end_step"] for w in monitor.windows] == [5, 10]


def test_identical_gradients_have_zero_variance():
    params = _params()
    monitor = GradVarianceMonitor(params, window=3)
    g = (torch.ones(3, 4), torch.full((5,), 2.0))
    _feed(monitor, params, [g] * 3)
    (w,) = monitor.windows
    assert w["variance"] == pytest.approx(0.0, abs=1e-9) and w["relative"] == pytest.approx(0.0, abs=1e-9)
    assert w["mean_sq_norm"] == pytest.approx(12 + 20)


def test_state_dict_resumes_exactly():
    grads = _random_grads(11, seed=2)
    params = _params()
    full = GradVarianceMonitor(params, window=4)
    _feed(full, params, grads)

    part = GradVarianceMonitor(params, window=4)
    _feed(part, params, grads[:6])
    buffer = io.BytesIO()
    torch.save(part.state_dict(), buffer)
    buffer.seek(0)
    resumed = GradVarianceMonitor(params, window=4)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    _feed(resumed, params, grads[6:])
    assert resumed.windows == full.windows and resumed.total_steps == 11 and resumed.pending_steps == 3

    with pytest.raises(WsnasError, match="window 4"):
        GradVarianceMonitor(params, window=5).load_state_dict(part.state_dict())


@pytest.mark.parametrize("window", [0, -1, 2.5, True])
def test_bad_window_is_refused(window):
    with pytest.raises(WsnasError, match="window"):
        GradVarianceMonitor(_params(), window=window)
