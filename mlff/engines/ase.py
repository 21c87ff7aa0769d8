"""ASE calculator for mlff potentials.

Follows ASE's conventions: energy and free_energy (eV), energies (n,) eV, forces (n, 3)
eV/Angstrom, stress (6,) eV/Angstrom^3 in Voigt order xx yy zz yz xz xy with
sigma = (1/V) dE/d(strain). The neighbour list is reused across MD steps (Verlet skin) on
the potential's device.
"""

import os
from typing import Optional, Union

import numpy as np
import torch
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes

from mlff.engines.allocator import retain_freed_memory
from mlff.export.compiled import CompiledPotential
from mlff.export.deployed import DeployedPotential
from mlff.export.files import load_potential
from mlff.neighbors import VerletNeighborList

VOIGT_ORDER = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))


class MLFFCalculator(Calculator):
    """An mlff potential as an ASE calculator.

    Parameters
    ----------
    potential : str, os.PathLike, mlff.Potential, DeployedPotential or CompiledPotential
        A deployed file (``mlff deploy``: .pt or .pt2), or a potential object.
    device : str
        Where to evaluate ("cpu", "cuda", ...).
    dtype : torch.dtype, optional
        Evaluate in this dtype (default: the potential's own).
    skin : float
        Verlet skin in Angstrom for reusing the neighbour list across calls (0: rebuild always).

    Notes
    -----
    Creating one keeps freed memory in the process between steps
    (:func:`mlff.engines.allocator.retain_freed_memory`).
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]

    def __init__(
        self,
        potential: Union[str, os.PathLike, torch.nn.Module],
        device: str = "cpu",
        dtype: Optional[torch.dtype] = None,
        skin: float = 1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(potential, (str, os.PathLike)):
            module = load_potential(os.fspath(potential), device=device)
        elif isinstance(potential, (DeployedPotential, CompiledPotential, torch.jit.ScriptModule)):
            module = potential
        else:
            module = DeployedPotential(potential)
        self.device = torch.device(device)
        module = module.to(self.device)
        if dtype is not None:
            module = module.to(dtype)
        self.module = module
        self.dtype = module.potential.scale.dtype
        self.cutoff = float(module.cutoff)
        self.species = [int(z) for z in module.species]
        self.neighbors = VerletNeighborList(self.cutoff, skin)
        self._numbers: Optional[np.ndarray] = None
        self._numbers_tensor = torch.zeros(0, dtype=torch.long, device=self.device)
        retain_freed_memory()

    def check_state(self, atoms, tol=1e-15):
        """What changed since the last calculation (ASE's ``system_changes``).

        ASE's default compares every array with ``numpy.isclose``, which costs more than a
        whole small-molecule MD step here; at the default ``tol`` exact equality is used instead
        (differences below 1e-15 then count as changes, which only costs a recalculation).
        """
        if tol > 1e-15 or self.atoms is None:
            return super().check_state(atoms, tol)
        previous = self.atoms
        changes = []
        if not np.array_equal(previous.cell.array, atoms.cell.array):
            changes.append("cell")
        if not np.array_equal(previous.pbc, atoms.pbc):
            changes.append("pbc")
        for name in all_changes:
            if name in ("cell", "pbc"):
                continue
            old, new = previous.arrays.get(name), atoms.arrays.get(name)
            if (old is None) != (new is None) or (old is not None and not np.array_equal(old, new)):
                changes.append(name)
        return changes

    def _atomic_numbers(self, atoms) -> torch.Tensor:
        """Atomic numbers on the device, moved only when they change."""
        numbers = atoms.get_atomic_numbers()
        if self._numbers is None or not np.array_equal(numbers, self._numbers):
            unknown = sorted(set(int(z) for z in numbers) - set(self.species))
            if unknown:
                raise ValueError(
                    f"MLFFCalculator: the structure contains atomic numbers {unknown} that this potential was not "
                    f"trained for (it knows {self.species})"
                )
            self._numbers = numbers.copy()
            self._numbers_tensor = torch.as_tensor(numbers, dtype=torch.long, device=self.device)
        return self._numbers_tensor

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        pbc = np.asarray(atoms.get_pbc(), dtype=bool)
        want_stress = "stress" in properties
        if want_stress and not pbc.any():
            raise PropertyNotImplementedError("stress needs a periodic cell; this structure has pbc = False")
        positions = torch.as_tensor(atoms.get_positions(), dtype=self.dtype, device=self.device)
        cell_array = np.asarray(atoms.get_cell()) if pbc.any() else np.zeros((3, 3))
        cell = torch.as_tensor(cell_array, dtype=self.dtype, device=self.device)
        pbc_tensor = torch.as_tensor(pbc, device=self.device)
        numbers = self._atomic_numbers(atoms)
        edge_index, cell_shifts = self.neighbors(positions, cell, pbc_tensor)
        # TorchScript's profiling executor would re-specialise the graph whenever the number of
        # edges changes (nearly every MD step), costing far more than the evaluation itself
        with torch.jit.optimized_execution(False):
            outputs = self.module(positions, numbers, cell, pbc_tensor, edge_index, cell_shifts, want_stress)

        energy = float(outputs["energy"].detach().sum().item())
        self.results["energy"] = energy
        self.results["free_energy"] = energy
        self.results["energies"] = outputs["node_energy"].detach().cpu().double().numpy()
        self.results["forces"] = outputs["forces"].detach().cpu().double().numpy()
        if want_stress:
            stress = outputs["stress"].detach().cpu().double().numpy()[0]
            self.results["stress"] = np.array([stress[i, j] for i, j in VOIGT_ORDER])
