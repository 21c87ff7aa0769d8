"""What an engine reports at each report interval: one :class:`Frame`, in mlff's units."""

from dataclasses import dataclass
from typing import Optional

import ase
import numpy as np
from ase.units import kB  # eV/K

#: femtoseconds per picosecond.
FS_PER_PS = 1000.0


@dataclass(frozen=True)
class Frame:
    """A snapshot of a run.

    Attributes
    ----------
    step : int
    potential_energy : float, eV
    kinetic_energy : float, eV
    positions : np.ndarray, [n_atoms, 3] Angstrom
    numbers : np.ndarray, [n_atoms] atomic numbers
    cell : np.ndarray or None, [3, 3] Angstrom, rows = lattice vectors; None if not periodic
    degrees_of_freedom : int or None
        Of the integrated motion (None: 3 n_atoms, no constraints).
    """

    step: int
    potential_energy: float
    kinetic_energy: float
    positions: np.ndarray
    numbers: np.ndarray
    cell: Optional[np.ndarray]
    degrees_of_freedom: Optional[int] = None

    @property
    def n_atoms(self) -> int:
        return len(self.numbers)

    @property
    def total_energy(self) -> float:
        return self.potential_energy + self.kinetic_energy

    @property
    def temperature(self) -> float:
        """Kelvin, from ``degrees_of_freedom`` (3 n_atoms unless constraints remove some)."""
        dof = 3 * self.n_atoms if self.degrees_of_freedom is None else self.degrees_of_freedom
        return 2.0 * self.kinetic_energy / (dof * kB)

    @property
    def volume(self) -> Optional[float]:
        """Angstrom^3, or None if not periodic."""
        return None if self.cell is None else float(abs(np.linalg.det(self.cell)))

    def is_finite(self) -> bool:
        return bool(np.isfinite([self.potential_energy, self.kinetic_energy]).all() and np.isfinite(self.positions).all())

    def to_atoms(self) -> ase.Atoms:
        if self.cell is None:
            return ase.Atoms(numbers=self.numbers, positions=self.positions)
        return ase.Atoms(numbers=self.numbers, positions=self.positions, cell=self.cell, pbc=True)
