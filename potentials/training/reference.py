"""Store a configuration with a shipped potential's energy, forces (and stress) on it.

    python potentials/training/reference.py NAME potentials/NAME.pt potentials/reference/NAME.json

tests/potentials loads every shipped file and must reproduce these numbers: a silently
changed file or a broken loader fails there. The configurations are built here: ethanol and a
16-molecule water box slightly rattled, a strained, rattled 8-atom diamond Si cell (which also
checks stress), and aspirin (the MD check's starting geometry, the first rMD17 test
configuration, rattled). The JSON stores the positions, so the tests need no data folder.
"""

import json
import sys

import numpy as np
import torch  # noqa: F401
import ase
import ase.build

from mlff import MLFFCalculator
from mlff.export import read_metadata
from mlff.md.structures import water_box
from md_check import STARTING_STRUCTURES, starting_molecule


def configuration(name: str) -> ase.Atoms:
    """The stored configuration for ``name`` (deterministic)."""
    if name in STARTING_STRUCTURES:
        atoms = starting_molecule(name)
    elif name == "water":
        atoms = water_box(16, seed=3)
    elif name == "si":
        atoms = ase.build.bulk("Si", "diamond", a=5.469, cubic=True)
        atoms.set_cell(atoms.cell @ (np.eye(3) + np.array([[0.01, 0.004, 0.0], [0.004, -0.006, 0.0], [0.0, 0.0, 0.003]])), scale_atoms=True)
    else:
        raise ValueError(f"unknown shipped potential {name!r}: use ethanol, aspirin, water or si")
    atoms.rattle(0.03, seed=7)
    return atoms


def main() -> None:
    name, potential, output = sys.argv[1:4]
    atoms = configuration(name)
    atoms.calc = MLFFCalculator(potential)
    record = {
        "potential": f"{name}.pt",
        "metadata_species": read_metadata(potential)["species"],
        "numbers": atoms.numbers.tolist(),
        "positions": atoms.positions.tolist(),
        "cell": atoms.cell.array.tolist(),
        "pbc": atoms.pbc.tolist(),
        "energy": float(atoms.get_potential_energy()),
        "forces": atoms.get_forces().tolist(),
    }
    if atoms.pbc.all():
        record["stress"] = atoms.get_stress().tolist()
    with open(output, "w") as handle:
        json.dump(record, handle, indent=1)
    print(f"wrote {output}: energy {record['energy']:.6f} eV")


if __name__ == "__main__":
    main()
