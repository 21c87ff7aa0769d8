"""Local-frame model on degenerate neighbourhoods: finite, smooth and differentiable."""

import ase
import numpy as np
import pytest
import torch

from mlff import testing
from tests.models.conftest import make_potential
from tests.structures import TEST_CUTOFF


@pytest.fixture
def frame_potential():
    return make_potential("local_frame", torch.float64)


def linear(symbols, spacing):
    return ase.Atoms(symbols, positions=[[0.0, 0.0, spacing * k] for k in range(len(symbols))])


DEGENERATE = {
    "pair": lambda: ase.Atoms("OH", positions=[[0.0, 0.0, 0.0], [0.3, 0.2, 0.9]]),
    "symmetric_linear": lambda: linear("OCO", 1.16),  # frame vectors of C cancel exactly
    "linear_chain": lambda: linear("HCN", 1.1),
    "tetrahedral": lambda: ase.build.molecule("CH4"),  # frame vectors of C cancel exactly
    "distant_pair": lambda: ase.Atoms("HH", positions=[[0.0, 0.0, 0.0], [0.0, 0.0, TEST_CUTOFF - 0.5]]),
}


@pytest.mark.parametrize("name", DEGENERATE)
def test_degenerate_frames_are_finite_and_differentiable(frame_potential, name):
    atoms = DEGENERATE[name]()
    result = testing.predict(frame_potential, atoms, compute_stress=False)
    assert np.isfinite(result["energy"]) and np.isfinite(result["forces"]).all()
    testing.assert_forces_match_finite_difference(frame_potential, atoms)


@pytest.mark.parametrize("name", ["symmetric_linear", "tetrahedral"])
def test_symmetric_centre_has_zero_frame(frame_potential, name):
    model = frame_potential.model
    graph = testing.graph_of(frame_potential, DEGENERATE[name]())
    vectors = graph.positions[graph.edge_index[1]] - graph.positions[graph.edge_index[0]]
    distances = vectors.norm(dim=-1)
    embedded = model.embedding(model.species_index(graph.atomic_numbers))
    frames = model.frame(
        embedded, -vectors, model.radial(distances), model.envelope(distances), graph.edge_index[0], graph.edge_index[1]
    )
    centre = 1 if name == "symmetric_linear" else 0
    assert frames[centre].abs().max() < 1e-12
    assert frames.norm(dim=-1).max() < 1.0


def test_energy_smooth_through_collinear(frame_potential):
    """Bend a triatomic through 180 degrees: energies along the path have bounded curvature."""

    def bent(angle_degrees):
        angle = np.radians(angle_degrees)
        return ase.Atoms(
            "OCO", positions=[[0.0, 0.0, 0.0], [0.0, 0.0, 1.16], [1.2 * np.sin(angle), 0.0, 1.16 - 1.2 * np.cos(angle)]]
        )

    angles = np.linspace(178.0, 182.0, 41)
    energies = np.array([testing.predict(frame_potential, bent(a))["energy"] for a in angles])
    step = np.radians(angles[1] - angles[0])
    curvature = np.abs(np.diff(energies, 2)) / step**2
    assert np.isfinite(energies).all()
    # a kink at 180 degrees would show as one second difference much larger than its neighbours
    assert curvature.max() < 10.0 * np.median(curvature) + 1e-6
    # the path is symmetric about 180 degrees (reflection invariance)
    np.testing.assert_allclose(energies, energies[::-1], rtol=0, atol=1e-12)
