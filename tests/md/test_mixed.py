"""ML/MM MD: a molecule in TIP3P water with the potential on the molecule only (mlff.md.solvation).

The box is built by OpenMM's Modeller; the mixed System (openmm-ml ``createMixedSystem``) does
not depend on the order of the ML atoms, its ML force group is exactly the potential of the
solute alone, the solute meets the water through its RESP charges and Lennard-Jones
(tests/md/test_solute_charges.py tests the charges), it survives XmlSerializer, and ``mlff md``
runs it.
"""

import torch  # noqa: I001  (before openmm)

import csv

import numpy as np
import openmm
import openmm.unit as unit
import pytest
from ase.geometry import get_distances

import mlff
from mlff.cli import main
from mlff.md.solvation import (
    ML_FORCE_GROUP,
    SOLUTE_LENNARD_JONES,
    mixed_system,
    solute_topology,
    solvate,
    solvated_topology,
)
from mlff.md.structures import build_molecule, water_box
from mlff.units import EV_TO_KJ_PER_MOL, NM_TO_ANGSTROM

PLATFORM = openmm.Platform.getPlatformByName("Reference")  # deterministic sums
FORCE_UNIT = EV_TO_KJ_PER_MOL * NM_TO_ANGSTROM  # eV/Angstrom in kJ/mol/nm
#: A small box (nm) and the classical cutoff it allows (nm): about 110 waters.
BOX_NM, CUTOFF_NM = 1.5, 0.7
AMU_PER_A3_TO_G_PER_CM3 = 1.66053906660


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def box():
    return solvate(build_molecule("ethanol"), box_nm=BOX_NM)


def energy_forces(system, atoms, groups=-1):
    """Energy (kJ/mol) and forces ((n, 3) kJ/mol/nm) of ``system`` at ``atoms``' positions."""
    context = openmm.Context(system, openmm.VerletIntegrator(0.0005), PLATFORM)
    context.setPositions(atoms.get_positions() / NM_TO_ANGSTROM)
    state = context.getState(getEnergy=True, getForces=True, groups=groups)
    energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    forces = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
    return energy, np.asarray(forces)


def bare(path, atoms):
    """Energy (eV) and forces (eV/Angstrom) of the deployed potential on ``atoms`` (gas phase)."""
    module = mlff.load_potential(path)
    dtype = module.potential.scale.dtype
    outputs = module(
        torch.tensor(atoms.get_positions(), dtype=dtype),
        torch.tensor(atoms.get_atomic_numbers()),
        torch.zeros(3, 3, dtype=dtype),
        torch.zeros(3, dtype=torch.bool),
    )
    return outputs["energy"].item(), outputs["forces"].detach().double().numpy()


# ----------------------------------------------------------------------------- the box


def test_solvate_builds_a_cubic_tip3p_box(box):
    solute = box.arrays["solute"]
    assert solute.sum() == 9 and solute[:9].all()
    assert box[:9].get_chemical_formula() == "C2H6O"
    assert box.pbc.all() and np.allclose(box.cell, np.eye(3) * BOX_NM * NM_TO_ANGSTROM)
    waters = box.positions[9:].reshape(-1, 3, 3)  # [n_waters, (O, H, H), 3]
    assert box.get_chemical_symbols()[9:] == ["O", "H", "H"] * len(waters)
    assert np.allclose(np.linalg.norm(waters[:, 1:] - waters[:, :1], axis=-1), 0.9572, atol=5e-3)  # TIP3P's O-H, to 0.01 A
    density = box.get_masses().sum() / box.get_volume() * AMU_PER_A3_TO_G_PER_CM3
    assert 0.75 < density < 1.05  # g/cm^3; Modeller drops waters that clash across a small box's faces
    _, distances = get_distances(box.positions[:9], box.positions[9:], cell=box.cell, pbc=True)
    assert distances.min() > 1.5  # Angstrom: no water atom on top of the solute


def test_padding_sets_the_edge():
    solute = build_molecule("ethanol")
    centre = (solute.positions.min(0) + solute.positions.max(0)) / 2
    diameter = 2 * np.linalg.norm(solute.positions - centre, axis=1).max() / NM_TO_ANGSTROM  # nm
    atoms = solvate(solute, padding_nm=0.9)
    assert atoms.cell[0, 0] / NM_TO_ANGSTROM == pytest.approx(max(diameter + 0.9, 1.8), rel=1e-6)


def test_solvation_errors_are_clear():
    with pytest.raises(ValueError, match="exactly one of padding_nm and box_nm"):
        solvate(build_molecule("ethanol"))
    with pytest.raises(ValueError, match="no Lennard-Jones parameters"):
        solvate(build_molecule("SiH4"), box_nm=1.5)
    with pytest.raises(ValueError, match="structure.solvated"):
        solvated_topology(water_box(8))


# ----------------------------------------------------------------------------- the mixed System


def test_mixed_system_ignores_the_order_of_ml_atoms(box, potential_file):
    solute = list(range(9))
    _, system = mixed_system(box, potential_file, CUTOFF_NM, solute)
    energy, forces = energy_forces(system, box)
    assert np.isfinite(energy) and np.isfinite(forces).all()
    shuffled = [int(i) for i in np.random.default_rng(0).permutation(solute)]
    for order in (solute[::-1], shuffled):
        energy_2, forces_2 = energy_forces(mixed_system(box, potential_file, CUTOFF_NM, order)[1], box)
        assert energy_2 == pytest.approx(energy, rel=1e-10)
        np.testing.assert_allclose(forces_2, forces, rtol=0, atol=1e-9 * np.abs(forces).max())


def test_torch_backend_agrees(box, potential_file):
    from mlff.engines.openmm import openmmtorch_or_error

    try:
        openmmtorch_or_error()
    except RuntimeError as error:
        pytest.skip(f"TorchForce unavailable here: {error}")
    energy, forces = energy_forces(mixed_system(box, potential_file, CUTOFF_NM)[1], box)
    energy_2, forces_2 = energy_forces(mixed_system(box, potential_file, CUTOFF_NM, backend="torch")[1], box)
    assert energy_2 == pytest.approx(energy, rel=1e-10)
    np.testing.assert_allclose(forces_2, forces, rtol=0, atol=1e-8 * np.abs(forces).max())


def test_ml_part_is_the_potential_on_the_solute_alone(box, potential_file):
    """Total minus the classical force group is the deployed potential on the gas-phase solute."""
    _, system = mixed_system(box, potential_file, CUTOFF_NM)
    energy, forces = energy_forces(system, box)
    mm_energy, mm_forces = energy_forces(system, box, groups={0})
    reference_energy, reference_forces = bare(potential_file, box[:9])
    ml_energy, ml_forces = energy - mm_energy, forces - mm_forces
    assert ml_energy / EV_TO_KJ_PER_MOL == pytest.approx(reference_energy, rel=1e-9)
    scale = np.abs(reference_forces).max()
    np.testing.assert_allclose(ml_forces[:9] / FORCE_UNIT, reference_forces, rtol=0, atol=1e-8 * scale)
    np.testing.assert_allclose(ml_forces[9:], 0.0, atol=1e-8 * np.abs(forces).max())  # no ML force on water
    group_energy, group_forces = energy_forces(system, box, groups={ML_FORCE_GROUP})
    assert group_energy / EV_TO_KJ_PER_MOL == pytest.approx(reference_energy, rel=1e-12)
    np.testing.assert_allclose(group_forces[:9] / FORCE_UNIT, reference_forces, rtol=0, atol=1e-10 * scale)


def test_solute_meets_water_through_its_charges_and_lennard_jones(box, potential_file):
    """Mechanical embedding: solute-solute pairs excluded; solute atoms with RESP charges (by
    default) and GAFF-like LJ, the hydroxyl hydrogen without LJ (GAFF's ho)."""
    topology, system = mixed_system(box, potential_file, CUTOFF_NM)
    nonbonded = next(f for f in system.getForces() if isinstance(f, openmm.NonbondedForce))
    assert nonbonded.getNonbondedMethod() == openmm.NonbondedForce.PME
    symbols = box.get_chemical_symbols()
    bonded_to_oxygen = {b.atom1.index if b.atom2.element.symbol == "O" else b.atom2.index
                        for b in solute_topology(box[:9]).bonds() if "O" in (b.atom1.element.symbol, b.atom2.element.symbol)}
    charges = []
    for i in range(9):
        charge, sigma, epsilon = nonbonded.getParticleParameters(i)
        charges.append(charge.value_in_unit(unit.elementary_charge))
        epsilon = epsilon.value_in_unit(unit.kilojoule_per_mole)
        if symbols[i] == "H" and i in bonded_to_oxygen:
            assert epsilon == 0.0  # the hydroxyl hydrogen: charges alone make its hydrogen bond
        else:
            assert (sigma.value_in_unit(unit.nanometer), epsilon) == pytest.approx(SOLUTE_LENNARD_JONES[symbols[i]])
    assert sum(charges) == pytest.approx(0.0, abs=1e-6) and min(charges) < -0.5  # neutral, a negative hydroxyl O
    zero_charge = mixed_system(box, potential_file, CUTOFF_NM, solute_charges="zero")[1]
    nonbonded_zero = next(f for f in zero_charge.getForces() if isinstance(f, openmm.NonbondedForce))
    assert all(nonbonded_zero.getParticleParameters(i)[0].value_in_unit(unit.elementary_charge) == 0.0 for i in range(9))
    excluded = set()
    for k in range(nonbonded.getNumExceptions()):
        i, j, charge_product, _, epsilon = nonbonded.getExceptionParameters(k)
        if i < 9 and j < 9:
            assert charge_product.value_in_unit(unit.elementary_charge**2) == 0.0
            assert epsilon.value_in_unit(unit.kilojoule_per_mole) == 0.0
            excluded.add((min(i, j), max(i, j)))
    assert len(excluded) == 9 * 8 // 2  # every solute pair
    # no classical bonded term left inside the solute; the water's rigid geometry is constraints
    for force in system.getForces():
        if isinstance(force, openmm.HarmonicBondForce):
            assert all(force.getBondParameters(b)[0] >= 9 for b in range(force.getNumBonds()))
        if isinstance(force, openmm.HarmonicAngleForce):
            assert all(force.getAngleParameters(a)[0] >= 9 for a in range(force.getNumAngles()))
    assert system.getNumConstraints() == len(box) - 9  # 3 per water
    _, mm_forces = energy_forces(system, box, groups={0})
    assert np.abs(mm_forces[:9]).max() > 1e-3  # the water pushes and pulls the solute


def test_mixed_system_round_trips_through_xml(box, potential_file):
    _, system = mixed_system(box, potential_file, CUTOFF_NM)
    energy, forces = energy_forces(system, box)
    restored = openmm.XmlSerializer.deserialize(openmm.XmlSerializer.serialize(system))
    energy_2, forces_2 = energy_forces(restored, box)
    assert energy_2 == pytest.approx(energy, rel=1e-12)
    np.testing.assert_allclose(forces_2, forces, rtol=0, atol=1e-10 * np.abs(forces).max())
    context = openmm.Context(restored, openmm.VerletIntegrator(0.0005), PLATFORM)
    molecules = sorted(context.getMolecules(), key=min)
    assert sorted(molecules[0]) == list(range(9))  # the ML solute stays one molecule
    assert len(molecules) == 1 + (len(box) - 9) // 3


# ----------------------------------------------------------------------------- mlff md


def mixed_settings(**settings):
    values = dict(
        structure={"solvated": "ethanol", "box_nm": BOX_NM},
        ml_atoms="solute",
        mm_cutoff_nm=CUTOFF_NM,
        minimize_iterations=20,
        steps=6,
        report_interval=3,
        progress=True,
        outputs={"trajectory": "t.dcd", "csv": "e.csv", "plot": "e.png", "last_frame": "l.xyz"},
    )
    values.update(settings)
    return values


@pytest.mark.parametrize("ensemble", ["nvt", "npt"])
def test_mlff_md_runs_a_mixed_system(write_config, tmp_path, capsys, ensemble):
    path = write_config(**mixed_settings(ensemble=ensemble, barostat_interval=1))
    assert main(["md", path]) == 0
    assert "ns/day" in capsys.readouterr().err
    with open(tmp_path / "e.csv") as handle:
        rows = list(csv.reader(handle))
    values = np.array(rows[1:], dtype=float)
    assert values.shape == (3, 7 if ensemble == "npt" else 6) and np.isfinite(values).all()
    # rigid TIP3P: 3 degrees of freedom per atom, less 3 constraints per water and 3 for the
    # centre-of-mass motion; the thermalised start is near 300 K only when counted so
    assert 250 < values[0, 5] < 350
    if ensemble == "npt":
        assert len(set(values[:, 6])) > 1  # the barostat moved the box
    assert (tmp_path / "t.dcd").stat().st_size > 3 * len(solvate(build_molecule("ethanol"), box_nm=BOX_NM)) * 12
    assert (tmp_path / "e.png").stat().st_size > 1000


def test_mlff_md_says_when_the_box_is_too_small_for_the_cutoff(write_config, capsys):
    path = write_config(**mixed_settings(structure={"solvated": "ethanol", "padding_nm": 0.5}, mm_cutoff_nm=0.9))
    assert main(["md", path]) == 1
    assert "at least twice mm_cutoff_nm" in capsys.readouterr().err
