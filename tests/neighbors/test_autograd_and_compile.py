"""Edge vectors built from the op are differentiable in positions and cell, and the op runs
inside TorchScript, torch.compile and torch.export."""

import ase.build
import numpy as np
import pytest
import torch

from mlff.neighbors import edge_vectors, neighbor_list

from .systems import pair_set


def small_periodic_system():
    atoms = ase.build.bulk("Si", "diamond", a=5.43) * (2, 1, 1)
    atoms.rattle(0.1, seed=1)
    positions = torch.tensor(atoms.positions, dtype=torch.float64)
    cell = torch.tensor(np.asarray(atoms.cell), dtype=torch.float64)
    return positions, cell, torch.tensor(atoms.pbc)


def test_gradcheck_edge_lengths_wrt_positions_and_cell():
    positions, cell, pbc = small_periodic_system()
    edge_index, shifts = neighbor_list(positions, cell, pbc, 4.0)

    def lengths(p, c):
        return edge_vectors(p, c, edge_index, shifts).norm(dim=1)

    assert torch.autograd.gradcheck(lengths, (positions.requires_grad_(), cell.requires_grad_()))


def test_gradcheck_batched_cells():
    positions, cell, pbc = small_periodic_system()
    n = positions.shape[0]
    all_positions = torch.cat([positions, positions + 0.05]).requires_grad_()
    cells = torch.stack([cell, 1.02 * cell]).requires_grad_()
    batch = torch.cat([torch.zeros(n, dtype=torch.long), torch.ones(n, dtype=torch.long)])
    edge_index, shifts = neighbor_list(all_positions.detach(), cells.detach(), pbc.expand(2, 3), 3.5, batch)

    def lengths(p, c):
        return edge_vectors(p, c, edge_index, shifts, batch).norm(dim=1)

    assert torch.autograd.gradcheck(lengths, (all_positions, cells))


class EdgeLengthSum(torch.nn.Module):
    """A toy energy: sum of edge lengths within the cutoff."""

    def __init__(self, cutoff: float):
        super().__init__()
        self.cutoff = cutoff

    def forward(self, positions: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor) -> torch.Tensor:
        edge_index, shifts = neighbor_list(positions, cell, pbc, self.cutoff)
        return torch.linalg.vector_norm(edge_vectors(positions, cell, edge_index, shifts), dim=1).sum()


def test_scripted_module_matches_eager(tmp_path):
    positions, cell, pbc = small_periodic_system()
    module = EdgeLengthSum(4.0)
    scripted = torch.jit.script(module)
    path = tmp_path / "toy.pt"
    scripted.save(str(path))
    loaded = torch.jit.load(str(path))
    expected = module(positions, cell, pbc)
    torch.testing.assert_close(scripted(positions, cell, pbc), expected)
    torch.testing.assert_close(loaded(positions, cell, pbc), expected)
    assert "mlff::neighbor_list" in loaded.graph.__str__() or "neighbor_list" in loaded.code


def test_scripted_function():
    positions, cell, pbc = small_periodic_system()
    scripted = torch.jit.script(neighbor_list)
    a = scripted(positions, cell, pbc, 4.0, None)
    b = neighbor_list(positions, cell, pbc, 4.0)
    assert pair_set(a[0][0], a[0][1], a[1]) == pair_set(b[0][0], b[0][1], b[1])


def test_torch_compile_fullgraph():
    # the number of edges is data-dependent: dynamo traces it as an unbacked size once
    # capture_dynamic_output_shape_ops is on
    positions, cell, pbc = small_periodic_system()
    module = EdgeLengthSum(4.0)
    torch._dynamo.reset()
    with torch._dynamo.config.patch(capture_dynamic_output_shape_ops=True):
        compiled = torch.compile(module, fullgraph=True, dynamic=True)
        torch.testing.assert_close(compiled(positions, cell, pbc), module(positions, cell, pbc))
        moved = positions + 0.01
        torch.testing.assert_close(compiled(moved, cell, pbc), module(moved, cell, pbc))


def test_torch_compile_default_settings():
    positions, cell, pbc = small_periodic_system()
    module = EdgeLengthSum(4.0)
    torch._dynamo.reset()
    compiled = torch.compile(module)
    torch.testing.assert_close(compiled(positions, cell, pbc), module(positions, cell, pbc))


def test_torch_export():
    positions, cell, pbc = small_periodic_system()
    module = EdgeLengthSum(4.0)
    exported = torch.export.export(module, (positions, cell, pbc))
    assert "mlff.neighbor_list" in str(exported.graph)
    torch.testing.assert_close(exported.module()(positions, cell, pbc), module(positions, cell, pbc))


def test_fake_kernel_shapes():
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.symbolic_shapes import ShapeEnv

    with FakeTensorMode(shape_env=ShapeEnv()):
        p = torch.empty(10, 3, dtype=torch.float64)
        edge_index, shifts = torch.ops.mlff.neighbor_list(
            p, torch.empty(1, 3, 3, dtype=torch.float64), torch.ones(1, 3, dtype=torch.bool),
            torch.zeros(10, dtype=torch.long), 3.0,
        )
        assert edge_index.shape[0] == 2 and shifts.shape[1] == 3
        assert edge_index.dtype == torch.int64 and shifts.dtype == torch.int64
        assert edge_index.shape[1] == shifts.shape[0]
