"""Make a small DFT data set of one water molecule: normal-mode sampling, labelled with PySCF.

Steps (under 10 minutes on one core):

1. relax H2O at the chosen level of theory (ASE BFGS on :class:`mlff.label.PySCFCalculator`);
2. its Hessian by finite differences of the DFT forces (ASE ``Vibrations``) and the normal
   modes of the mass-weighted Hessian (the six rigid-body modes dropped);
3. for each temperature T, configurations displaced along every vibrational mode k by
   q_k ~ Normal(0, k_B T / omega_k^2) (the classical Boltzmann distribution of a harmonic
   molecule, each mode holding k_B T / 2 of potential energy on average), each then given a
   random rotation about its centre of mass;
4. every configuration labelled with energy (eV) and forces (eV/Angstrom) by the same DFT
   and written to ``data.xyz`` (extended XYZ; ``config_type`` names the temperature).

Usage::

    OMP_NUM_THREADS=1 python make_dataset.py                # B3LYP/def2-SVP, 5 x 80 configurations
    python make_dataset.py --method pbe --per-temperature 20 -o small.xyz
"""

import argparse
import os
import tempfile
import time

import ase.io
import numpy as np
from ase import units
from ase.build import molecule
from ase.optimize import BFGS
from ase.vibrations import Vibrations

from mlff.label import PySCFCalculator, iter_labels
from mlff.testing import random_rotation
from mlff.train.dataset import read_configurations

N_RIGID_BODY_MODES = 6  # 3 translations + 3 rotations of a non-linear molecule


def relax(atoms, calculator, fmax: float):
    """Relaxed copy of ``atoms`` (forces below ``fmax`` eV/Angstrom)."""
    relaxed = atoms.copy()
    relaxed.calc = calculator
    BFGS(relaxed, logfile=None).run(fmax=fmax, steps=200)
    relaxed.calc = None
    return relaxed


def normal_modes(atoms, calculator, delta: float = 0.005):
    """Vibrational normal modes of ``atoms`` at a minimum.

    Returns
    -------
    eigenvalues : ndarray (n_modes,)
        omega_k^2 in eV / (Angstrom^2 amu).
    displacements : ndarray (n_modes, n_atoms, 3)
        Cartesian displacement (Angstrom) per unit normal coordinate (amu^1/2 Angstrom):
        M^-1/2 e_k, with e_k the orthonormal eigenvectors of the mass-weighted Hessian.
    """
    atoms = atoms.copy()
    atoms.calc = calculator
    with tempfile.TemporaryDirectory() as scratch:
        vibrations = Vibrations(atoms, name=os.path.join(scratch, "vib"), delta=delta, nfree=2)
        vibrations.run()
        hessian = vibrations.get_vibrations().get_hessian_2d()  # [3n, 3n] eV/Angstrom^2
    inverse_sqrt_mass = np.repeat(atoms.get_masses() ** -0.5, 3)  # [3n] amu^-1/2
    weighted = hessian * np.outer(inverse_sqrt_mass, inverse_sqrt_mass)
    eigenvalues, vectors = np.linalg.eigh(0.5 * (weighted + weighted.T))
    keep = np.argsort(np.abs(eigenvalues))[N_RIGID_BODY_MODES:]  # drop the ~zero rigid-body modes
    if np.any(eigenvalues[keep] <= 0):
        raise RuntimeError(f"imaginary vibrational mode(s) {eigenvalues[keep]}: the structure is not a minimum")
    displacements = (vectors[:, keep] * inverse_sqrt_mass[:, None]).T.reshape(len(keep), len(atoms), 3)
    return eigenvalues[keep], displacements


def sample(minimum, eigenvalues, displacements, temperature_K: float, count: int, rng: np.random.Generator):
    """``count`` configurations from the classical harmonic distribution at ``temperature_K``."""
    kT = units.kB * temperature_K  # eV
    frames = []
    for _ in range(count):
        q = rng.normal(size=len(eigenvalues)) * np.sqrt(kT / eigenvalues)  # [n_modes] amu^1/2 Angstrom
        atoms = minimum.copy()
        atoms.positions += np.einsum("k,kax->ax", q, displacements)
        centre = atoms.get_center_of_mass()
        atoms.positions = (atoms.positions - centre) @ random_rotation(rng).T + centre
        atoms.info["config_type"] = f"T{temperature_K:g}K"
        frames.append(atoms)
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "data.xyz"))
    parser.add_argument("--method", default="b3lyp", help="'hf' or a functional PySCF knows (default b3lyp)")
    parser.add_argument("--basis", default="def2-svp")
    parser.add_argument("--temperatures", type=float, nargs="+", default=[100.0, 300.0, 600.0, 1000.0, 1500.0], help="K")
    parser.add_argument("--per-temperature", type=int, default=80, help="configurations per temperature")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    calculator = PySCFCalculator(args.method, args.basis)
    minimum = relax(molecule("H2O"), calculator, fmax=1e-3)
    eigenvalues, displacements = normal_modes(minimum, calculator)
    # omega = sqrt(eV / (Angstrom^2 amu)) is in rad per ASE time unit (1 / units.s seconds)
    wavenumbers = np.sqrt(eigenvalues) * units.s / (2 * np.pi * units._c * 100.0)  # cm^-1
    bond = minimum.get_distance(0, 1)
    angle = minimum.get_angle(1, 0, 2)
    print(f"{calculator.level_of_theory}: r(OH) = {bond:.4f} A, angle(HOH) = {angle:.2f} deg, "
          f"modes {', '.join(f'{w:.0f}' for w in sorted(wavenumbers))} cm^-1 ({time.perf_counter() - started:.1f} s)")

    structures = []
    for temperature in args.temperatures:
        structures += sample(minimum, eigenvalues, displacements, temperature, args.per_temperature, rng)
    with open(args.output, "w") as handle:
        for done, atoms in enumerate(iter_labels(structures, calculator), start=1):
            ase.io.write(handle, atoms, format="extxyz")
            if done % 50 == 0 or done == len(structures):
                print(f"labelled {done}/{len(structures)} ({time.perf_counter() - started:.0f} s)", flush=True)

    # read back as `mlff train` will, which also checks every label
    frames = read_configurations([args.output])
    energies = np.array([frame.energy for frame in frames])
    net_force = max(np.abs(frame.forces.sum(axis=0)).max() for frame in frames)
    print(f"wrote {args.output}: {len(frames)} configurations, energies {energies.min():.3f} .. {energies.max():.3f} eV, "
          f"largest net force {net_force:.1e} eV/A, {os.path.getsize(args.output) / 1024:.0f} KiB, "
          f"{time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
