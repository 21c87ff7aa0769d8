"""The MD and materials checks of the shipped potentials (results go into the model cards).

    python potentials/training/md_check.py ethanol potentials/ethanol.pt OUTPUT_DIR
    python potentials/training/md_check.py aspirin potentials/aspirin.pt OUTPUT_DIR
    python potentials/training/md_check.py water potentials/water.pt OUTPUT_DIR
    python potentials/training/md_check.py si potentials/si.pt OUTPUT_DIR

- ethanol, aspirin: NVT Langevin at 500 K from the geometry relaxed with the potential (50 ps,
  0.5 fs). Stable means every covalent bond stays within 0.5 A of its length in the relaxed
  starting structure (Fu et al., "Forces are not enough", 2023). Writes NAME_md.json and
  NAME_bonds.png. Ethanol starts from ase.build's structure; aspirin (not in ase.build) from the
  first configuration of the rMD17 aspirin test file in ../shared/data.
- water: NVT Langevin at 300 K of the 64-molecule box (20 ps). Stable means every oxygen keeps
  exactly two hydrogens within 1.3 A and no hydrogen is shared. Writes water_md.json and
  water_rdf.png (O-O radial distribution function over the second half of the run).
- si: energy-volume curve of diamond Si (8-atom cell) and the lattice constant from a full
  cell relaxation (FrechetCellFilter + BFGS). Writes si_eos.json and si_eos.png.

All runs use the ASE calculator (``mlff.MLFFCalculator``), the same file a user loads.
"""

import argparse
import json
import os
import time

import numpy as np
import torch  # noqa: F401  (before anything that may import openmm)
import ase
import ase.build
import ase.io
from ase import units
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, ZeroRotation
from ase.neighborlist import natural_cutoffs, neighbor_list
from ase.optimize import BFGS

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from mlff import MLFFCalculator  # noqa: E402
from mlff.md.structures import water_box  # noqa: E402

BOND_TOLERANCE = 0.5  # Angstrom, Fu et al.
OH_BOND_MAX = 1.3  # Angstrom: beyond this a hydrogen no longer belongs to its oxygen


def _langevin(atoms: ase.Atoms, temperature_K: float, timestep_fs: float, seed: int) -> Langevin:
    rng = np.random.default_rng(seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, rng=rng)
    Stationary(atoms)
    if not atoms.pbc.any():
        ZeroRotation(atoms)
    return Langevin(atoms, timestep_fs * units.fs, temperature_K=temperature_K, friction=1.0 / (100 * units.fs), fixcm=False, rng=rng)


def _relaxed(atoms: ase.Atoms, fmax: float = 0.005) -> ase.Atoms:
    BFGS(atoms, logfile=None).run(fmax=fmax, steps=500)
    return atoms


RMD17_ASPIRIN_TEST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "data",
                                  "rmd17", "rmd17_aspirin_test_01.xyz")
#: Where each molecule's starting structure comes from (the MD check relaxes it first).
STARTING_STRUCTURES = {"ethanol": "ase.build.molecule", "aspirin": "first rMD17 test configuration"}


def starting_molecule(name: str) -> ase.Atoms:
    """The molecule an MD check (and the stored reference configuration) starts from."""
    if name == "ethanol":
        return ase.build.molecule("CH3CH2OH")
    if name == "aspirin":
        if not os.path.isfile(RMD17_ASPIRIN_TEST):
            raise FileNotFoundError(f"{RMD17_ASPIRIN_TEST} not found: the aspirin check starts from the first rMD17 "
                                    "aspirin test configuration in ../shared/data next to the repository")
        atoms = ase.io.read(RMD17_ASPIRIN_TEST, index=0)
        return ase.Atoms(numbers=atoms.numbers, positions=atoms.positions)  # geometry only
    raise ValueError(f"no starting structure for molecule {name!r}: use one of {sorted(STARTING_STRUCTURES)}")


def molecule(name: str, potential: str, output: str, picoseconds: float, seed: int) -> dict:
    atoms = starting_molecule(name)
    atoms.calc = MLFFCalculator(potential)
    _relaxed(atoms)
    first, second = neighbor_list("ij", atoms, natural_cutoffs(atoms, mult=1.1))
    bonds = np.array([(i, j) for i, j in zip(first, second) if i < j])
    reference = atoms.get_distances(bonds[:, 0], bonds[:, 1])
    timestep_fs, temperature = 0.5, 500.0
    dynamics = _langevin(atoms, temperature, timestep_fs, seed)
    steps = int(round(picoseconds * 1000 / timestep_fs))
    interval = 20
    times, worst, temperatures = [], [], []
    started = time.perf_counter()
    for done in range(0, steps, interval):
        dynamics.run(interval)
        lengths = np.array([atoms.get_distance(i, j) for i, j in bonds])
        times.append((done + interval) * timestep_fs / 1000)
        worst.append(float(np.max(np.abs(lengths - reference))))
        temperatures.append(float(atoms.get_temperature()))
    seconds = time.perf_counter() - started
    result = {
        "system": f"{name} ({STARTING_STRUCTURES[name]}), relaxed with the potential",
        "ensemble": f"NVT Langevin {temperature:.0f} K, friction 0.01/fs, {timestep_fs} fs, seed {seed}",
        "simulated_ps": steps * timestep_fs / 1000,
        "bonds": [[int(i), int(j)] for i, j in bonds],
        "max_bond_deviation_A": max(worst),
        "stable": bool(max(worst) < BOND_TOLERANCE),
        "mean_temperature_K": float(np.mean(temperatures[len(temperatures) // 5:])),
        "wall_seconds": seconds,
        "ns_per_day": steps * timestep_fs * 1e-6 / (seconds / 86400),
    }
    figure, axis = plt.subplots(figsize=(6, 3.5))
    axis.plot(times, worst, lw=0.6)
    axis.axhline(BOND_TOLERANCE, color="red", ls="--", label="0.5 A criterion")
    axis.set_xlabel("time (ps)")
    axis.set_ylabel("largest bond-length deviation (A)")
    axis.set_title(f"{name}, NVT {temperature:.0f} K")
    axis.legend()
    figure.tight_layout()
    figure.savefig(os.path.join(output, f"{name}_bonds.png"), dpi=120)
    return result


def _water_intact(atoms: ase.Atoms) -> bool:
    """Every O has two H within OH_BOND_MAX and every H belongs to exactly one O."""
    numbers = atoms.numbers
    first, second = neighbor_list("ij", atoms, OH_BOND_MAX)
    oh = (numbers[first] == 8) & (numbers[second] == 1)
    hydrogens_per_oxygen = np.bincount(first[oh], minlength=len(atoms))[numbers == 8]
    oxygens_per_hydrogen = np.bincount(second[oh], minlength=len(atoms))[numbers == 1]
    return bool(np.all(hydrogens_per_oxygen == 2) and np.all(oxygens_per_hydrogen == 1))


def _rdf_oo(frames, r_max: float, bins: int = 120):
    edges = np.linspace(0.0, r_max, bins + 1)
    counts = np.zeros(bins)
    n_oxygen, volume = 0, 0.0
    for atoms in frames:
        oxygens = atoms[atoms.numbers == 8]
        distances = neighbor_list("d", oxygens, r_max)
        counts += np.histogram(distances, edges)[0]
        n_oxygen, volume = len(oxygens), oxygens.get_volume()
    shells = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    density = n_oxygen / volume
    g = counts / (len(frames) * n_oxygen * density * shells)
    return 0.5 * (edges[1:] + edges[:-1]), g


def water(potential: str, output: str, picoseconds: float, seed: int) -> dict:
    atoms = water_box(64, seed=seed)
    atoms.calc = MLFFCalculator(potential)
    BFGS(atoms, logfile=None).run(fmax=0.05, steps=200)
    timestep_fs, temperature = 1.0, 300.0
    dynamics = _langevin(atoms, temperature, timestep_fs, seed)
    steps = int(round(picoseconds * 1000 / timestep_fs))
    interval = 50
    frames, intact, temperatures = [], True, []
    started = time.perf_counter()
    for done in range(0, steps, interval):
        dynamics.run(interval)
        intact = intact and _water_intact(atoms)
        temperatures.append(float(atoms.get_temperature()))
        if done >= steps // 2:
            frames.append(atoms.copy())
    seconds = time.perf_counter() - started
    r, g = _rdf_oo(frames, r_max=min(6.0, 0.49 * float(np.min(atoms.cell.lengths()))))
    peak = int(np.argmax(g))
    result = {
        "system": "64 H2O at 1 g/cm^3 (mlff.md.structures.water_box), relaxed with the potential",
        "ensemble": f"NVT Langevin {temperature:.0f} K, friction 0.01/fs, {timestep_fs} fs, seed {seed}",
        "simulated_ps": steps * timestep_fs / 1000,
        "no_dissociation": intact,
        "mean_temperature_K": float(np.mean(temperatures[len(temperatures) // 5:])),
        "rdf_oo_first_peak_A": float(r[peak]),
        "rdf_oo_first_peak_height": float(g[peak]),
        "wall_seconds": seconds,
        "ns_per_day": steps * timestep_fs * 1e-6 / (seconds / 86400),
    }
    figure, axis = plt.subplots(figsize=(6, 3.5))
    axis.plot(r, g)
    axis.axhline(1.0, color="gray", lw=0.5)
    axis.set_xlabel("r (A)")
    axis.set_ylabel("g_OO(r)")
    axis.set_title(f"water, 64 H2O, NVT {temperature:.0f} K, last {steps * timestep_fs / 2000:.0f} ps")
    figure.tight_layout()
    figure.savefig(os.path.join(output, "water_rdf.png"), dpi=120)
    return result


def silicon(potential: str, output: str, dft_lattice_A: float) -> dict:
    from ase.eos import EquationOfState
    from ase.filters import FrechetCellFilter

    calculator = MLFFCalculator(potential)
    volumes, energies = [], []
    for a in np.linspace(0.94, 1.06, 13) * dft_lattice_A:
        atoms = ase.build.bulk("Si", "diamond", a=a, cubic=True)
        atoms.calc = calculator
        volumes.append(atoms.get_volume() / len(atoms))
        energies.append(atoms.get_potential_energy() / len(atoms))
    eos = EquationOfState(volumes, energies, eos="birchmurnaghan")
    v0, e0, bulk_modulus = eos.fit()
    atoms = ase.build.bulk("Si", "diamond", a=1.02 * dft_lattice_A, cubic=True)
    atoms.rattle(0.01, seed=0)
    atoms.calc = calculator
    BFGS(FrechetCellFilter(atoms), logfile=None).run(fmax=1e-4, steps=300)
    relaxed_a = float(np.mean(atoms.cell.lengths()))
    result = {
        "relaxed_lattice_constant_A": relaxed_a,
        "eos_lattice_constant_A": float((8 * v0) ** (1 / 3)),
        "eos_bulk_modulus_GPa": float(bulk_modulus / units.GPa),
        "eos_energy_per_atom_eV": float(e0),
        "dft_lattice_constant_A": dft_lattice_A,
        "relative_error": (relaxed_a - dft_lattice_A) / dft_lattice_A,
        "volumes_A3_per_atom": volumes,
        "energies_eV_per_atom": energies,
    }
    figure, axis = plt.subplots(figsize=(6, 3.5))
    axis.plot(volumes, energies, "o", label="mlff")
    fine = np.linspace(min(volumes), max(volumes), 200)
    axis.plot(fine, [eos.func(v, *eos.eos_parameters) for v in fine], "-", lw=0.8, label="Birch-Murnaghan fit")
    axis.axvline(dft_lattice_A**3 / 8, color="red", ls="--", label=f"DFT a = {dft_lattice_A:.3f} A")
    axis.set_xlabel("volume (A^3/atom)")
    axis.set_ylabel("energy (eV/atom)")
    axis.set_title("diamond Si")
    axis.legend()
    figure.tight_layout()
    figure.savefig(os.path.join(output, "si_eos.png"), dpi=120)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("system", choices=(*STARTING_STRUCTURES, "water", "si"))
    parser.add_argument("potential")
    parser.add_argument("output")
    parser.add_argument("--picoseconds", type=float, help="simulated time (default: 50 ethanol and aspirin, 20 water)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dft-lattice", type=float, default=5.469, help="DFT lattice constant of Si in A")
    args = parser.parse_args()
    os.makedirs(args.output, exist_ok=True)
    if args.system in STARTING_STRUCTURES:
        result = molecule(args.system, args.potential, args.output, args.picoseconds or 50.0, args.seed)
    elif args.system == "water":
        result = water(args.potential, args.output, args.picoseconds or 20.0, args.seed)
    else:
        result = silicon(args.potential, args.output, args.dft_lattice)
    path = os.path.join(args.output, f"{args.system if args.system != 'si' else 'si_eos'}{'_md' if args.system != 'si' else ''}.json")
    with open(path, "w") as handle:
        json.dump(result, handle, indent=2)
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, list)}, indent=2))


if __name__ == "__main__":
    main()
