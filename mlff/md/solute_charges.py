"""Partial charges of a solute fitted to its quantum-mechanical electrostatic potential (RESP).

The solute of an ML/MM run (:mod:`mlff.md.solvation`) meets the water through its classical
charges and Lennard-Jones parameters (mechanical embedding). These charges are AMBER's recipe,
computed with PySCF: the Hartree-Fock/6-31G* electrostatic potential of the gas-phase molecule,
sampled on Merz-Kollman shells (1.4, 1.6, 1.8 and 2.0 times the van der Waals radii, five
points per Angstrom^2), fitted by least squares under a fixed total charge with RESP's
hyperbolic restraint towards zero (a = 0.0005, b = 0.1; Bayly et al., J. Phys. Chem. 1993),
which keeps buried atoms' charges from taking arbitrary values.

Units: Angstrom and elementary charges in and out; PySCF works in Bohr and Hartree inside.
"""

from typing import Tuple

import ase
import numpy as np

from mlff.units import BOHR_TO_ANGSTROM

#: Hartree-Fock in this basis: the level AMBER's charges are fitted at.
RESP_BASIS = "6-31g*"
#: Merz-Kollman shells, in units of each atom's van der Waals radius.
SHELL_SCALES = (1.4, 1.6, 1.8, 2.0)
#: Points per Angstrom^2 on each shell (Merz-Kollman's 1 leaves buried atoms' charges depending on
#: how the molecule is oriented by a few hundredths of e; 5 by under 0.01).
POINT_DENSITY = 5.0
#: RESP's hyperbolic restraint (stage one): strength a (atomic units) and width b (e).
RESTRAINT_STRENGTH, RESTRAINT_WIDTH = 0.0005, 0.1
#: Merz-Kollman van der Waals radii, Angstrom.
VDW_RADII = {"H": 1.2, "C": 1.5, "N": 1.5, "O": 1.4, "F": 1.35, "P": 1.8, "S": 1.75, "Cl": 1.7}


def fitting_points(solute: ase.Atoms) -> np.ndarray:
    """Points on the Merz-Kollman shells that lie outside every atom's shell of the same scale.

    Returns (n_points, 3), Angstrom.
    """
    symbols = solute.get_chemical_symbols()
    missing = sorted({s for s in symbols if s not in VDW_RADII})
    if missing:
        raise ValueError(f"solute charges: no van der Waals radius for {missing} (known: {sorted(VDW_RADII)})")
    radii = np.array([VDW_RADII[s] for s in symbols])
    positions = solute.get_positions()
    points = []
    for scale in SHELL_SCALES:
        for center, radius in zip(positions, radii * scale):
            shell = center + radius * _sphere(max(int(4 * np.pi * radius**2 * POINT_DENSITY), 12))
            distances = np.linalg.norm(shell[:, None, :] - positions[None, :, :], axis=2)
            points.append(shell[np.all(distances >= radii * scale - 1e-9, axis=1)])
    return np.concatenate(points)


def _sphere(n: int) -> np.ndarray:
    """n nearly uniform unit vectors (a Fibonacci lattice), (n, 3)."""
    k = np.arange(n) + 0.5
    polar = np.arccos(1.0 - 2.0 * k / n)
    azimuth = np.pi * (1.0 + 5.0**0.5) * k
    return np.stack([np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar), np.cos(polar)], axis=1)


def electrostatic_potential(solute: ase.Atoms, points: np.ndarray, charge: int = 0) -> np.ndarray:
    """Hartree-Fock/6-31G* electrostatic potential of ``solute`` at ``points`` (Angstrom), in e/Angstrom.

    Raises ValueError when the self-consistent field does not converge.
    """
    try:
        from pyscf import df, gto, scf
    except ImportError as error:
        raise ImportError(
            "RESP solute charges need PySCF, which is not installed: pip install pyscf "
            "(or run with solute_charges: zero, Lennard-Jones only)"
        ) from error

    molecule = gto.M(
        atom=[(s, p) for s, p in zip(solute.get_chemical_symbols(), solute.get_positions())],
        unit="Angstrom",
        basis=RESP_BASIS,
        charge=charge,
        spin=(sum(solute.get_atomic_numbers()) - charge) % 2,
        verbose=0,
    )
    mean_field = (scf.RHF if molecule.spin == 0 else scf.UHF)(molecule)
    mean_field.kernel()
    if not mean_field.converged:
        raise ValueError(f"solute charges: Hartree-Fock did not converge for {solute.get_chemical_formula()}")
    density = mean_field.make_rdm1()
    if density.ndim == 3:  # alpha and beta
        density = density.sum(axis=0)
    points_bohr = points / BOHR_TO_ANGSTROM
    nuclear = np.zeros(len(points))
    for z, position in zip(molecule.atom_charges(), molecule.atom_coords()):
        nuclear += z / np.linalg.norm(points_bohr - position, axis=1)
    electronic = np.empty(len(points))
    for start in range(0, len(points), 2000):  # (nao, nao, chunk) integrals, chunk by chunk
        chunk = points_bohr[start : start + 2000]
        integrals = df.incore.aux_e2(molecule, gto.fakemol_for_charges(chunk), intor="int3c2e")
        electronic[start : start + len(chunk)] = np.einsum("ijp,ij->p", integrals, density)
    return (nuclear - electronic) / BOHR_TO_ANGSTROM  # e/Bohr -> e/Angstrom


def fit_charges(positions: np.ndarray, points: np.ndarray, potential: np.ndarray, total_charge: float) -> np.ndarray:
    """Restrained least-squares charges (n_atoms,) reproducing ``potential`` (e/Angstrom) at ``points``.

    Minimises sum_k (V_k - sum_i q_i / r_ik)^2 + a sum_i (sqrt(q_i^2 + b^2) - b) under sum_i q_i =
    total_charge (iterating on the restraint, which is not quadratic).
    """
    inverse = 1.0 / np.linalg.norm(points[:, None, :] - positions[None, :, :], axis=2)  # (n_points, n_atoms), 1/Angstrom
    n = positions.shape[0]
    normal = inverse.T @ inverse
    target = inverse.T @ potential
    charges = np.zeros(n)
    for _ in range(100):
        # RESP's a is for potentials in atomic units: (e/Bohr)^2 = (e/Angstrom)^2 * BOHR_TO_ANGSTROM^2
        restraint = RESTRAINT_STRENGTH / np.sqrt(charges**2 + RESTRAINT_WIDTH**2) / BOHR_TO_ANGSTROM**2
        system = np.zeros((n + 1, n + 1))
        system[:n, :n] = normal + np.diag(restraint)
        system[:n, n] = system[n, :n] = 1.0
        updated = np.linalg.solve(system, np.append(target, total_charge))[:n]
        if np.max(np.abs(updated - charges)) < 1e-7:
            return updated
        charges = updated
    return charges


def resp_charges(solute: ase.Atoms, charge: int = 0) -> Tuple[np.ndarray, float]:
    """RESP charges of ``solute`` (n_atoms,), e, and the root-mean-square error of the fitted
    potential relative to the QM one's root-mean-square value (about 0.1 or less for a good fit)."""
    points = fitting_points(solute)
    potential = electrostatic_potential(solute, points, charge)
    charges = fit_charges(solute.get_positions(), points, potential, float(charge))
    fitted = (1.0 / np.linalg.norm(points[:, None, :] - solute.get_positions()[None], axis=2)) @ charges
    relative_rms = float(np.sqrt(np.mean((fitted - potential) ** 2) / np.mean(potential**2)))
    return charges, relative_rms
