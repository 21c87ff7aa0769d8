"""RESP charges of an ML/MM solute (mlff.md.solute_charges) and what the water sees of them.

The charges come from a real Hartree-Fock/6-31G* calculation (PySCF): they sum to the molecule's
charge, reproduce its electrostatic potential and its quantum-mechanical dipole, do not depend on
how the molecule is placed, and give ethanol a hydrogen bond to water of the right size.
"""

import torch  # noqa: F401,I001  (before openmm)

import ase
import numpy as np
import openmm
import openmm.unit as unit
import pytest
from scipy.spatial.transform import Rotation

from mlff.md.solute_charges import fitting_points, resp_charges
from mlff.md.solvation import ML_FORCE_GROUP, force_field, mixed_system, solute_topology
from mlff.md.structures import build_molecule
from mlff.units import BOHR_TO_ANGSTROM, NM_TO_ANGSTROM

#: Debye in e*Angstrom
DEBYE = 0.20819434


def qm_dipole(molecule: ase.Atoms) -> np.ndarray:
    """Hartree-Fock/6-31G* dipole, e*Angstrom (PySCF)."""
    from pyscf import gto, scf

    mol = gto.M(atom=[(s, p) for s, p in zip(molecule.get_chemical_symbols(), molecule.positions)],
                unit="Angstrom", basis="6-31g*", verbose=0)
    mean_field = scf.RHF(mol).run()
    return np.asarray(mean_field.dip_moment(unit="AU", verbose=0)) * BOHR_TO_ANGSTROM  # e*Bohr -> e*A


@pytest.fixture(scope="module")
def ethanol():
    return build_molecule("ethanol")


@pytest.fixture(scope="module")
def ethanol_charges(ethanol):
    return resp_charges(ethanol)


@pytest.mark.parametrize("name", ["H2O", "CH3CH2OH"])
def test_resp_charges_reproduce_the_molecule_electrostatics(name):
    molecule = build_molecule(name)
    charges, relative_rms = resp_charges(molecule)
    assert charges.sum() == pytest.approx(0.0, abs=1e-10)
    assert relative_rms < 0.2  # of the QM potential on the Merz-Kollman shells
    dipole = (charges[:, None] * molecule.positions).sum(axis=0)  # neutral: origin-free
    reference = qm_dipole(molecule)
    assert np.linalg.norm(dipole - reference) < 0.1 * np.linalg.norm(reference)
    symbols = molecule.get_chemical_symbols()
    oxygen = symbols.index("O")
    assert -1.0 < charges[oxygen] < -0.5  # a strongly negative hydroxyl / water oxygen
    if name == "H2O":
        assert charges[1] == pytest.approx(charges[2], abs=0.01)  # the two hydrogens are equivalent
        assert 1.9 < np.linalg.norm(dipole) / DEBYE < 2.8  # HF/6-31G* overestimates the gas-phase 1.85 D


def test_resp_charges_do_not_depend_on_placement(ethanol, ethanol_charges):
    """Rotated, translated and permuted, the molecule keeps its charges (the fitting grid moves
    with it only approximately, hence 0.02 e)."""
    moved = ethanol.copy()
    moved.positions = Rotation.from_euler("zyx", [40, -25, 70], degrees=True).apply(ethanol.positions) + [3.0, -1.0, 2.0]
    order = np.random.default_rng(0).permutation(len(ethanol))
    moved = moved[order]
    charges, _ = resp_charges(moved)
    np.testing.assert_allclose(charges, ethanol_charges[0][order], atol=0.02)


def test_fitting_points_lie_outside_the_molecule(ethanol):
    points = fitting_points(ethanol)
    distances = np.linalg.norm(points[:, None] - ethanol.positions[None], axis=2)
    assert distances.min() >= 1.4 * 1.2 - 1e-6  # the innermost shell of the smallest atom (H)
    assert len(points) > 300


def test_unknown_elements_and_wrong_charge_counts_are_refused(ethanol):
    with pytest.raises(ValueError, match="no van der Waals radius"):
        resp_charges(ase.Atoms("Si", positions=[[0, 0, 0]]))
    with pytest.raises(ValueError, match="need 9 finite charges"):
        force_field(solute_topology(ethanol), [0.1, -0.1])


def hydrogen_bonded_pair(ethanol: ase.Atoms, separation: float, box_nm: float = 3.2) -> ase.Atoms:
    """Ethanol donating its hydroxyl H to a water oxygen ``separation`` Angstrom away (H...O),
    H2O's hydrogens pointing away; in a periodic cube as ``mlff.md.solvation.solvate`` lays it out."""
    symbols = ethanol.get_chemical_symbols()
    oxygen = symbols.index("O")
    hydrogen = min((i for i, s in enumerate(symbols) if s == "H"),
                   key=lambda i: np.linalg.norm(ethanol.positions[i] - ethanol.positions[oxygen]))
    axis = ethanol.positions[hydrogen] - ethanol.positions[oxygen]
    axis /= np.linalg.norm(axis)
    side = np.cross(axis, [0.0, 0.0, 1.0])
    side /= np.linalg.norm(side)
    water_oxygen = ethanol.positions[hydrogen] + separation * axis
    half_angle = np.radians(104.52 / 2)
    water = [water_oxygen] + [water_oxygen + 0.9572 * (np.cos(half_angle) * axis + sign * np.sin(half_angle) * side)
                              for sign in (1.0, -1.0)]
    atoms = ase.Atoms(symbols + ["O", "H", "H"], positions=np.vstack([ethanol.positions, water]),
                      cell=np.eye(3) * box_nm * NM_TO_ANGSTROM, pbc=True)
    atoms.translate(atoms.cell.sum(axis=0) / 2 - ethanol.positions.mean(axis=0))
    atoms.arrays["solute"] = np.arange(len(atoms)) < len(ethanol)
    return atoms


def classical_energy(system: openmm.System, atoms: ase.Atoms) -> float:
    """kJ/mol of the classical force group (the solute-water interaction lives there)."""
    context = openmm.Context(system, openmm.VerletIntegrator(0.0005), openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(atoms.positions / NM_TO_ANGSTROM)
    groups = {g for g in range(32) if g != ML_FORCE_GROUP}
    return context.getState(getEnergy=True, groups=groups).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)


@pytest.mark.parametrize("solute_charges", ["resp", "zero"])
def test_ethanol_hydrogen_bonds_to_water_through_its_charges(ethanol, ethanol_charges, potential_file, solute_charges):
    """Classical ethanol-water interaction at the hydrogen-bond distance, against the pair 15 A
    apart: about -20 kJ/mol with RESP charges (MP2: about -20 kJ/mol for this donor geometry),
    Lennard-Jones only (a few kJ/mol) without."""
    charges = ethanol_charges[0] if solute_charges == "resp" else "zero"
    near, far = hydrogen_bonded_pair(ethanol, 1.9), hydrogen_bonded_pair(ethanol, 15.0)
    interaction = (classical_energy(mixed_system(near, potential_file, 0.9, solute_charges=charges)[1], near)
                   - classical_energy(mixed_system(far, potential_file, 0.9, solute_charges=charges)[1], far))
    if solute_charges == "resp":
        assert -40.0 < interaction < -12.0
    else:
        assert abs(interaction) < 5.0


def test_mixed_system_carries_the_resp_charges(ethanol_charges, potential_file):
    atoms = hydrogen_bonded_pair(build_molecule("ethanol"), 1.9)
    _, system = mixed_system(atoms, potential_file, 0.9)  # RESP is the default
    nonbonded = next(f for f in system.getForces() if isinstance(f, openmm.NonbondedForce))
    charges = [nonbonded.getParticleParameters(i)[0].value_in_unit(unit.elementary_charge) for i in range(len(atoms))]
    np.testing.assert_allclose(charges[:9], ethanol_charges[0], atol=1e-8)
    assert charges[9:] == pytest.approx([-0.834, 0.417, 0.417])  # TIP3P
