"""DeployedPotential: neighbour list + potential in one TorchScript-able module.

Inputs and outputs are in mlff's internal units (Angstrom, eV, eV/Angstrom, eV/Angstrom^3);
engines convert at their own boundary (see :mod:`mlff.units`).
"""

from typing import Dict, List, Optional

import torch
from torch import Tensor

from mlff.graph.atomic_graph import AtomicGraph
from mlff.neighbors import neighbor_list


class DeployedPotential(torch.nn.Module):
    """One system in, energy and derivatives out; the neighbour list is computed inside unless
    the caller passes one (e.g. from :class:`mlff.neighbors.VerletNeighborList`).

    Parameters
    ----------
    potential : mlff.Potential
    metadata_json : str
        JSON text describing the potential (species, cutoff, units, provenance).
    """

    cutoff: float
    species: List[int]
    metadata_json: str

    def __init__(self, potential: torch.nn.Module, metadata_json: str = "{}"):
        super().__init__()
        self.potential = potential
        self.cutoff = float(potential.cutoff)
        self.species = [int(z) for z in potential.species]
        self.metadata_json = metadata_json

    def forward(
        self,
        positions: Tensor,
        atomic_numbers: Tensor,
        cell: Tensor,
        pbc: Tensor,
        edge_index: Optional[Tensor] = None,
        cell_shifts: Optional[Tensor] = None,
        compute_stress: bool = False,
    ) -> Dict[str, Tensor]:
        """Energy (eV), per-atom energies, forces (eV/Angstrom) and optionally stress.

        Parameters
        ----------
        positions : Tensor, (n_atoms, 3), Angstrom
        atomic_numbers : Tensor, (n_atoms,), int64
        cell : Tensor, (3, 3), Angstrom, rows are lattice vectors (zeros without periodicity)
        pbc : Tensor, (3,), bool
        edge_index, cell_shifts : Tensor, optional
            A neighbour list with at least the pairs within ``cutoff`` (longer edges add
            nothing); computed here when not given.
        compute_stress : bool
            Also ``"stress"`` (1, 3, 3) eV/Angstrom^3 and ``"virial"`` (1, 3, 3) eV.

        Returns
        -------
        dict with ``"energy"`` (1,), ``"node_energy"`` (n_atoms,), ``"forces"`` (n_atoms, 3)
        """
        dtype = self.potential.scale.dtype
        positions = positions.to(dtype)
        cell = cell.to(dtype).reshape(1, 3, 3)
        pbc = pbc.to(torch.bool).reshape(1, 3)
        batch = torch.zeros(positions.size(0), dtype=torch.long, device=positions.device)
        if edge_index is None or cell_shifts is None:
            edge_index, cell_shifts = neighbor_list(positions.detach(), cell.detach(), pbc, self.cutoff, batch)
        graph = AtomicGraph(
            positions=positions,
            atomic_numbers=atomic_numbers.to(torch.long),
            cell=cell,
            pbc=pbc,
            edge_index=edge_index,
            cell_shifts=cell_shifts,
            batch=batch,
        )
        return self.potential(graph, True, compute_stress)
