"""The fast implementations of ops compute what PyTorch's reference modules compute."""

import pytest
import torch
from torch import nn

from wsnas.nn.ops import AvgPool3x3


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("shape", [(5, 7, 9, 6), (2, 16, 32, 32), (3, 4, 1, 1), (1, 3, 2, 5)])
def test_avg_pool_equals_pytorch_forward_and_backward(stride, shape):
    torch.manual_seed(0)
    ref = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    fast = AvgPool3x3(stride)
    for dtype, tol in ((torch.float32, 1e-6), (torch.float64, 1e-14)):
        x = torch.randn(*shape, dtype=dtype, requires_grad=True)
        x_ref = x.detach().clone().requires_grad_(True)
        y, y_ref = fast(x), ref(x_ref)
        assert y.shape == y_ref.shape
        torch.testing.assert_close(y, y_ref, rtol=tol, atol=tol)
        g = torch.randn_like(y)
        y.backward(g)
        y_ref.backward(g)
        torch.testing.assert_close(x.grad, x_ref.grad, rtol=tol, atol=tol)


def test_avg_pool_takes_channels_last_and_no_grad():
    x = torch.randn(4, 8, 10, 10).contiguous(memory_format=torch.channels_last)
    ref = nn.AvgPool2d(3, 1, 1, count_include_pad=False)(x)
    with torch.no_grad():
        torch.testing.assert_close(AvgPool3x3(1)(x), ref)


def test_avg_pool_has_no_state():
    pool = AvgPool3x3(2)
    pool(torch.randn(1, 3, 8, 8))  # fills its cache of constants
    assert pool.state_dict() == {}
    assert list(pool.parameters()) == [] and list(pool.buffers()) == []
