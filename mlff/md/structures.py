"""Starting structures for MD: read from a file, or built (a molecule by name, a water box, a
molecule in TIP3P water).

Everything is an ``ase.Atoms`` in Angstrom; a molecule is gas phase (no cell, pbc False), a
water box and a solvated molecule are periodic (the latter built by :mod:`mlff.md.solvation`,
which needs OpenMM).
"""

import ase
import ase.io
import numpy as np
from ase.build import molecule as ase_molecule

from mlff.testing import random_rotation

#: Common names ase.build.molecule does not know, and its names for them.
MOLECULE_ALIASES = {"ethanol": "CH3CH2OH", "water": "H2O", "methane": "CH4", "methanol": "CH3OH", "benzene": "C6H6"}

#: Water molecules per cubic Angstrom at 1 g/cm^3 (18.015 g/mol; 1 g/cm^3 = 0.6022 amu/A^3).
WATER_NUMBER_DENSITY = 0.602214076 / 18.01528

#: O-H bond length (Angstrom) and H-O-H angle (degrees) of the built water molecules (TIP3P's).
WATER_OH = 0.9572
WATER_ANGLE = 104.52


def known_molecule(name: str) -> bool:
    """Whether :func:`build_molecule` can build ``name``."""
    try:
        build_molecule(name)
    except (KeyError, ValueError):
        return False
    return True


def build_molecule(name: str) -> ase.Atoms:
    """A gas-phase molecule by name (``ase.build.molecule`` names, or an alias like ``ethanol``)."""
    return ase_molecule(MOLECULE_ALIASES.get(name.lower(), name))


def water_box(n_molecules: int, seed: int = 0) -> ase.Atoms:
    """``n_molecules`` waters at 1 g/cm^3 in a periodic cube, randomly oriented.

    Oxygens sit on the sites of the smallest cubic grid with room for all molecules (the sites,
    when there are more than molecules, chosen at random), so that no two molecules overlap.

    Parameters
    ----------
    n_molecules : int
    seed : int
        Seeds the choice of sites and the orientations.
    """
    if n_molecules < 1:
        raise ValueError(f"water_box: need at least one molecule, got {n_molecules}")
    rng = np.random.default_rng(seed)
    length = (n_molecules / WATER_NUMBER_DENSITY) ** (1.0 / 3.0)  # Angstrom
    per_side = int(np.ceil(n_molecules ** (1.0 / 3.0) - 1e-9))
    spacing = length / per_side
    grid = np.stack(np.meshgrid(*[np.arange(per_side)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    sites = grid[np.sort(rng.choice(len(grid), n_molecules, replace=False))]
    half = np.radians(WATER_ANGLE) / 2
    x, y = WATER_OH * np.sin(half), WATER_OH * np.cos(half)
    local = np.array([[0.0, 0.0, 0.0], [x, y, 0.0], [-x, y, 0.0]])  # O, H, H; Angstrom
    positions = []
    for site in sites:
        rotation = random_rotation(rng)
        positions.append((site + 0.5) * spacing + local @ rotation.T)
    return ase.Atoms("OH2" * n_molecules, positions=np.concatenate(positions), cell=[length] * 3, pbc=True)


def build_structure(structure, seed: int = 0) -> ase.Atoms:
    """The starting ``ase.Atoms`` of a :class:`mlff.md.config.StructureConfig`."""
    if structure.file is not None:
        atoms = ase.io.read(structure.file, index=-1)
        if atoms.pbc.any() and not atoms.pbc.all():
            raise ValueError(f"{structure.file}: MD needs a structure periodic in all or no directions, got pbc={atoms.pbc}")
        return atoms
    if structure.molecule is not None:
        return build_molecule(structure.molecule)
    if structure.solvated is not None:
        from mlff.md.solvation import solvate  # imports OpenMM

        return solvate(build_molecule(structure.solvated), structure.padding_nm, structure.box_nm)
    return water_box(structure.water_box, seed)
