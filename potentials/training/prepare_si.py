"""Write the mlearn Si data with its stress in ASE's convention, for ``si.yaml``.

``../shared/data/si_mlearn`` keeps mlearn's raw ``mlearn_virial_stress`` (order xx yy zz xy yz
xz, kbar, VASP's sign: positive = compressive). Checked on the "Elastic" group: compressing a
cell gives positive values, and the finite-strain derivative of the DFT energy, -dE/(V de),
matches -value in kbar within the spacing of the strains. So the ASE stress (eV/A^3, positive =
tensile, Voigt xx yy zz yz xz xy) is ``-value * KBAR``.

Usage: ``python prepare_si.py SOURCE_DIR OUTPUT_DIR`` (writes train.xyz and test.xyz).
"""

import os
import sys

import ase.io
import numpy as np
from ase.units import GPa

KBAR = 0.1 * GPa  # eV/A^3 per kbar


def to_ase_stress(raw: np.ndarray) -> np.ndarray:
    """mlearn (xx yy zz xy yz xz, kbar, compressive > 0) -> ASE Voigt (xx yy zz yz xz xy, eV/A^3)."""
    xx, yy, zz, xy, yz, xz = raw
    return -KBAR * np.array([xx, yy, zz, yz, xz, xy])


def convert(source: str, target: str) -> int:
    frames = ase.io.read(source, ":")
    for atoms in frames:
        raw = np.asarray(atoms.info.pop("mlearn_virial_stress"), dtype=float)
        atoms.info["stress"] = to_ase_stress(raw)
    ase.io.write(target, frames, format="extxyz")
    return len(frames)


def main() -> None:
    source_dir, output_dir = sys.argv[1], sys.argv[2]
    os.makedirs(output_dir, exist_ok=True)
    for source, target in (("Si_training.xyz", "train.xyz"), ("Si_test.xyz", "test.xyz")):
        count = convert(os.path.join(source_dir, source), os.path.join(output_dir, target))
        print(f"{target}: {count} configurations")


if __name__ == "__main__":
    main()
