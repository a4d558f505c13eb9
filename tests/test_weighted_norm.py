"""The weighted batch norm equals BatchNorm1d on the rows repeated by their weights."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from cgcnn.nn.weighted_norm import weighted_batch_norm


def _rows(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(9, 4, generator=generator) * 3 + 1
    weight = torch.tensor([1, 4, 2, 1, 1, 3, 1, 2, 6], dtype=torch.float32)
    grad_out = torch.randn(int(weight.sum()), 4, generator=generator)
    return z, weight, grad_out


@pytest.mark.parametrize("momentum", [0.1, None])
def test_training_mode_equals_batchnorm_on_repeated_rows(momentum):
    z, weight, grad_out = _rows()
    bn = nn.BatchNorm1d(4, momentum=momentum)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([0.5, 1.0, 2.0, -1.0]))
        bn.bias.copy_(torch.tensor([0.1, -0.2, 0.0, 3.0]))
    twin = copy.deepcopy(bn)
    repeats = weight.long()
    mine_z = z.clone().requires_grad_(True)
    their_z = z.clone().requires_grad_(True)
    for _ in range(2):  # twice: running statistics accumulate the same way
        mine = weighted_batch_norm(mine_z, weight, bn)
        theirs = twin(their_z.repeat_interleave(repeats, dim=0))
    torch.testing.assert_close(mine.repeat_interleave(repeats, dim=0), theirs)
    # the loss on the repeated rows: a merged row gets the sum of its copies' gradients
    grad_merged = torch.zeros_like(mine).index_add_(
        0, torch.arange(9).repeat_interleave(repeats), grad_out
    )
    mine.backward(grad_merged)
    theirs.backward(grad_out)
    torch.testing.assert_close(mine_z.grad, their_z.grad)
    torch.testing.assert_close(bn.weight.grad, twin.weight.grad)
    torch.testing.assert_close(bn.bias.grad, twin.bias.grad)
    torch.testing.assert_close(bn.running_mean, twin.running_mean)
    torch.testing.assert_close(bn.running_var, twin.running_var)
    assert int(bn.num_batches_tracked) == int(twin.num_batches_tracked) == 2


def test_gradient_passes_gradcheck():
    z, weight, _ = _rows(1)
    bn = nn.BatchNorm1d(4).double()
    z = z.double().requires_grad_(True)
    gamma = torch.randn(4, dtype=torch.float64)
    with torch.no_grad():
        bn.weight.copy_(gamma)
    assert torch.autograd.gradcheck(
        lambda rows: weighted_batch_norm(rows, weight.double(), bn), (z,)
    )


def test_eval_mode_uses_running_statistics_and_weights_do_not_matter():
    z, weight, _ = _rows(2)
    bn = nn.BatchNorm1d(4)
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]))
        bn.running_var.copy_(torch.tensor([0.5, 1.0, 2.0, 4.0]))
    bn.eval()
    torch.testing.assert_close(weighted_batch_norm(z, weight, bn), bn(z))
    assert int(bn.num_batches_tracked) == 0


def test_without_weights_or_batchnorm_it_is_the_module_itself():
    z, weight, _ = _rows(3)
    bn = nn.BatchNorm1d(4)
    torch.testing.assert_close(weighted_batch_norm(z, None, bn), copy.deepcopy(bn)(z))
    identity = nn.Identity()
    assert weighted_batch_norm(z, weight, identity) is z
