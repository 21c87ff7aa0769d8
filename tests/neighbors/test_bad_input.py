"""Bad input raises a clear Python error naming the problem: never a crash, hang or garbage."""

import math

import pytest
import torch

from mlff.neighbors import neighbor_list

PBC = torch.tensor([True, True, True])
CELL = 5.0 * torch.eye(3, dtype=torch.float64)


def positions(n=4):
    return torch.rand(n, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 5.0


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(positions=torch.rand(4, 2, dtype=torch.float64)), ValueError, "positions must have shape"),
        (dict(positions=torch.zeros(4, 3, dtype=torch.int64)), TypeError, "float32 or float64"),
        (dict(positions=torch.zeros(4, 3, dtype=torch.float16)), TypeError, "float32 or float64"),
        (dict(cell=torch.eye(4, dtype=torch.float64)), ValueError, "cell must have shape"),
        (dict(pbc=torch.tensor([True, True])), ValueError, "pbc must have shape"),
        (dict(cutoff=-1.0), ValueError, "cutoff must be a positive"),
        (dict(cutoff=0.0), ValueError, "cutoff must be a positive"),
        (dict(cutoff=math.nan), ValueError, "cutoff must be a positive"),
        (dict(batch=torch.zeros(3, dtype=torch.long)), ValueError, "batch must have shape"),
        (dict(batch=torch.zeros(4, dtype=torch.int32)), TypeError, "batch must be int64"),
        (dict(batch=torch.tensor([0, 0, 1, 1])), ValueError, "batch values must lie in"),
        (dict(cell=torch.zeros(3, 3, dtype=torch.float64)), ValueError, "singular"),
        (dict(cell=torch.tensor([[1.0, 0, 0], [2.0, 0, 0], [0, 0, 1.0]], dtype=torch.float64)), ValueError, "singular"),
        (dict(cell=torch.full((3, 3), math.nan, dtype=torch.float64)), ValueError, "non-finite"),
        (dict(cutoff=1000.0, cell=2.0 * torch.eye(3, dtype=torch.float64)), ValueError, r"more than the 2\^31 - 1"),
    ],
)
def test_errors_name_the_problem(kwargs, error, message):
    arguments = dict(positions=positions(), cell=CELL, pbc=PBC, cutoff=3.0, batch=None)
    arguments.update(kwargs)
    with pytest.raises(error, match=message):
        neighbor_list(**arguments)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_positions(bad):
    p = positions()
    p[2, 1] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        neighbor_list(p, CELL, PBC, 3.0)


def test_open_axis_may_have_degenerate_cell_row():
    cell = CELL.clone()
    cell[2] = 0.0
    neighbor_list(positions(), cell, torch.tensor([True, True, False]), 3.0)  # no error
    with pytest.raises(ValueError, match="singular"):
        neighbor_list(positions(), cell, PBC, 3.0)


def test_several_cells_need_a_batch():
    with pytest.raises(ValueError, match="no batch vector"):
        neighbor_list(positions(), CELL.expand(2, 3, 3), PBC.expand(2, 3), 3.0)


def test_mixed_devices():
    meta_cell = torch.empty(1, 3, 3, dtype=torch.float64, device="meta")
    with pytest.raises((ValueError, RuntimeError, NotImplementedError)):
        torch.ops.mlff.neighbor_list(positions(), meta_cell, PBC.view(1, 3), torch.zeros(4, dtype=torch.long), 3.0)


def test_direct_op_call_is_checked_too():
    # TorchScript and C++ engines call the op directly: validation lives in C++
    with pytest.raises(ValueError, match="pbc must have shape"):
        torch.ops.mlff.neighbor_list(positions(), CELL.view(1, 3, 3), PBC, torch.zeros(4, dtype=torch.long), 3.0)
