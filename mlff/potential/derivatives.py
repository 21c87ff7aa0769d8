"""Forces, virial and stress as derivatives of one energy: the only place mlff differentiates.

Forces are ``F = -dE/dr``. The virial and stress come from a symmetric strain ``eps`` applied to
both positions and cell, ``r -> r (I + eps)`` and ``cell -> cell (I + eps)`` (rows are vectors),
evaluated at ``eps = 0``:

    virial = -dE/d(eps)            (eV)
    stress = (1/V) dE/d(eps)       (eV/Angstrom^3, ASE's sign: positive under tension)

Only the symmetric part of ``eps`` enters, so both are symmetric. The stress needs a cell of
nonzero volume; for a system without one (no periodic axes) it is set to zero, while its virial
is still the strain derivative (well defined for any translation-invariant energy).
"""

from typing import List, Optional, Tuple

import torch
from torch import Tensor


def apply_symmetric_strain(positions: Tensor, cell: Tensor, batch: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Deform positions and cells by a zero strain that autograd can differentiate against.

    Parameters
    ----------
    positions : Tensor, (n_atoms, 3), Angstrom
    cell : Tensor, (n_graphs, 3, 3), Angstrom, rows are lattice vectors
    batch : Tensor, (n_atoms,), int64

    Returns
    -------
    positions : Tensor, (n_atoms, 3), equal in value to the input, ``r (I + eps)``
    cell : Tensor, (n_graphs, 3, 3), equal in value to the input, ``cell (I + eps)``
    strain : Tensor, (n_graphs, 3, 3), zeros, requires grad; ``dE/d(strain)`` is symmetric
    """
    strain = torch.zeros_like(cell).requires_grad_(True)
    symmetric = 0.5 * (strain + strain.transpose(1, 2))  # [n_graphs, 3, 3]
    strained_positions = positions + torch.einsum("ai,aij->aj", positions, symmetric[batch])
    strained_cell = cell + torch.bmm(cell, symmetric)
    return strained_positions, strained_cell, strain


def cell_volume(cell: Tensor) -> Tensor:
    """Volumes (n_graphs,) in Angstrom^3 of cells (n_graphs, 3, 3); zero for a zero cell."""
    return torch.linalg.det(cell).abs()


def stress_from_virial(virial: Tensor, cell: Tensor) -> Tensor:
    """Stress ``-virial / V`` (n_graphs, 3, 3) in eV/Angstrom^3; zero where the volume is zero."""
    volume = cell_volume(cell)  # [n_graphs]
    has_volume = volume > 0.0
    safe_volume = torch.where(has_volume, volume, torch.ones_like(volume))
    stress = -virial / safe_volume.view(-1, 1, 1)
    return torch.where(has_volume.view(-1, 1, 1), stress, torch.zeros_like(stress))


def energy_derivatives(
    energy: Tensor,
    positions: Tensor,
    strain: Optional[Tensor],
    cell: Tensor,
    compute_forces: bool,
    create_graph: bool,
) -> Tuple[Optional[Tensor], Optional[Tensor], Optional[Tensor]]:
    """Forces, virial and stress from the energies of a batch.

    Parameters
    ----------
    energy : Tensor, (n_graphs,), eV
        Computed from ``positions`` and, when given, ``strain``.
    positions : Tensor, (n_atoms, 3), Angstrom
        The unstrained positions the energy was computed from (requires grad when forces are wanted).
    strain : Tensor, (n_graphs, 3, 3), optional
        From :func:`apply_symmetric_strain`; None when no stress is wanted.
    cell : Tensor, (n_graphs, 3, 3), Angstrom
        Unstrained cells, for the volume.
    compute_forces : bool
    create_graph : bool
        Keep the derivative graph (training on forces, higher derivatives).

    Returns
    -------
    forces : Tensor (n_atoms, 3) eV/Angstrom, or None
    virial : Tensor (n_graphs, 3, 3) eV, or None
    stress : Tensor (n_graphs, 3, 3) eV/Angstrom^3, or None
    """
    inputs: List[Tensor] = []
    if compute_forces:
        inputs.append(positions)
    if strain is not None:
        inputs.append(strain)
    if len(inputs) == 0:
        return None, None, None
    gradients: List[Optional[Tensor]] = [None for _ in inputs]
    if energy.requires_grad:
        gradients = torch.autograd.grad([energy.sum()], inputs, create_graph=create_graph, allow_unused=True)

    forces: Optional[Tensor] = None
    virial: Optional[Tensor] = None
    stress: Optional[Tensor] = None
    if compute_forces:
        gradient = gradients[0]
        forces = torch.zeros_like(positions) if gradient is None else -gradient
    if strain is not None:
        gradient = gradients[len(inputs) - 1]
        virial = torch.zeros_like(strain) if gradient is None else -gradient
        stress = stress_from_virial(virial, cell)
    return forces, virial, stress
