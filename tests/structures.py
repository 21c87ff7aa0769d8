"""Small atomic structures for model and potential tests, built with ase.build (no data files).

Every structure is rattled with a fixed seed, so that no force or stress vanishes by symmetry
and checks compare nonzero numbers.
"""

import ase
import numpy as np
from ase.build import bulk, molecule

#: Elements the test models are built for.
SPECIES = [1, 6, 7, 8, 14]

#: Reference energies (eV) the test potentials use; small, so float32 keeps precision.
REFERENCE_ENERGIES = {1: -0.5, 6: -1.25, 7: -1.5, 8: -2.0, 14: -0.75}

#: Cutoff (Angstrom) of the test models: small, for speed, larger than the silicon primitive cell.
TEST_CUTOFF = 4.0

RATTLE = 0.05  # Angstrom


def rattled(atoms: ase.Atoms, seed: int, amplitude: float = RATTLE) -> ase.Atoms:
    """Copy of ``atoms`` with positions displaced by Gaussian noise of ``amplitude`` Angstrom."""
    result = atoms.copy()
    result.rattle(stdev=amplitude, seed=seed)
    return result


def ethanol() -> ase.Atoms:
    """Ethanol, no cell (9 atoms, H C O)."""
    return rattled(molecule("CH3CH2OH"), seed=1)


def water() -> ase.Atoms:
    """One water molecule, no cell."""
    return rattled(molecule("H2O"), seed=2)


def methylamine() -> ase.Atoms:
    """Methylamine, no cell (H C N)."""
    return rattled(molecule("H3CNH2"), seed=3)


def silicon() -> ase.Atoms:
    """Diamond silicon, 2-atom primitive (triclinic) cell, edges 3.8 Angstrom < cutoff."""
    return rattled(bulk("Si", "diamond", a=5.43), seed=4)


def silicon_cubic() -> ase.Atoms:
    """Diamond silicon, 8-atom cubic cell, slightly sheared."""
    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    cell = np.asarray(atoms.get_cell())
    shear = np.array([[1.0, 0.03, 0.0], [0.0, 1.0, -0.02], [0.01, 0.0, 1.0]])
    atoms.set_cell(cell @ shear, scale_atoms=True)
    return rattled(atoms, seed=5)


def water_box() -> ase.Atoms:
    """Four water molecules in a periodic 5 Angstrom cube (smaller than twice the cutoff)."""
    box = ase.Atoms(cell=np.eye(3) * 5.0, pbc=True)
    centres = [[1.2, 1.2, 1.2], [3.7, 3.7, 1.2], [3.7, 1.2, 3.7], [1.2, 3.7, 3.7]]
    rng = np.random.default_rng(6)
    for centre in centres:
        h2o = molecule("H2O")
        h2o.rotate(rng.uniform(0.0, 360.0), rng.normal(size=3), center=(0.0, 0.0, 0.0))
        h2o.translate(centre)
        box += h2o
    return rattled(box, seed=7)


def tiny_hydrogen_cell() -> ase.Atoms:
    """One hydrogen atom in a 1.7 Angstrom triclinic cell: the cutoff spans many images."""
    cell = 1.7 * np.array([[1.0, 0.0, 0.0], [0.2, 1.0, 0.0], [0.1, -0.15, 1.0]])
    return ase.Atoms("H", positions=[[0.1, 0.2, 0.3]], cell=cell, pbc=True)


def molecules():
    """Non-periodic structures."""
    return [ethanol(), water(), methylamine()]


def crystals():
    """Periodic structures."""
    return [silicon(), water_box()]
