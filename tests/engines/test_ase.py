"""The ASE calculator: ASE's conventions, finite-difference forces and stress, and real ASE
dynamics, optimisers and cell filters."""

import ase.build
import numpy as np
import pytest
import torch
from ase import units
from ase.calculators.calculator import PropertyNotImplementedError
from ase.filters import FrechetCellFilter
from ase.md.langevin import Langevin
from ase.md.nptberendsen import NPTBerendsen
from ase.md.velocitydistribution import thermalize_momenta
from ase.md.verlet import VelocityVerlet
from ase.optimize import BFGS, FIRE

import mlff
from mlff.graph import from_atoms
from tests.models.conftest import make_potential


@pytest.fixture(scope="module")
def potential():
    return make_potential("schnet", torch.float64)


def silicon(seed=0):
    atoms = ase.build.bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.rattle(0.05, seed=seed)
    return atoms


def ethanol(seed=0):
    atoms = ase.build.molecule("CH3CH2OH")
    atoms.rattle(0.02, seed=seed)
    return atoms


def test_results_match_the_potential(potential):
    atoms = silicon()
    atoms.calc = mlff.MLFFCalculator(potential)
    outputs = potential(from_atoms(atoms, potential.cutoff, torch.float64), compute_stress=True)
    assert atoms.get_potential_energy() == pytest.approx(outputs["energy"].item(), abs=1e-10)
    assert atoms.get_potential_energy() == pytest.approx(atoms.get_potential_energy(force_consistent=True))
    np.testing.assert_allclose(atoms.get_forces(), outputs["forces"].detach().numpy(), atol=1e-10)
    np.testing.assert_allclose(atoms.get_potential_energies().sum(), atoms.get_potential_energy(), atol=1e-10)
    stress = outputs["stress"].detach().numpy()[0]
    voigt = [stress[0, 0], stress[1, 1], stress[2, 2], stress[1, 2], stress[0, 2], stress[0, 1]]
    np.testing.assert_allclose(atoms.get_stress(), voigt, atol=1e-12)


def test_forces_and_stress_match_finite_differences(potential):
    atoms = silicon(1)
    atoms.calc = mlff.MLFFCalculator(potential, skin=0.0)
    numerical_forces = atoms.calc.calculate_numerical_forces(atoms, d=1e-4)
    np.testing.assert_allclose(atoms.get_forces(), numerical_forces, atol=1e-6)
    numerical_stress = atoms.calc.calculate_numerical_stress(atoms, d=1e-5)
    np.testing.assert_allclose(atoms.get_stress(), numerical_stress, atol=1e-6)


def test_molecule_forces_and_no_stress(potential):
    atoms = ethanol()
    atoms.calc = mlff.MLFFCalculator(potential)
    np.testing.assert_allclose(atoms.get_forces(), atoms.calc.calculate_numerical_forces(atoms, d=1e-4), atol=1e-6)
    with pytest.raises(PropertyNotImplementedError, match="periodic"):
        atoms.get_stress()


def test_nve_conserves_energy_and_reuses_neighbors(potential):
    atoms = ethanol()
    calculator = mlff.MLFFCalculator(potential, skin=1.0)
    atoms.calc = calculator
    thermalize_momenta(atoms, temperature_K=300, rng=np.random.default_rng(0))
    dynamics = VelocityVerlet(atoms, timestep=0.25 * units.fs)
    energies = []
    dynamics.attach(lambda: energies.append(atoms.get_total_energy()), interval=1)
    dynamics.run(200)
    energies = np.array(energies)
    assert np.abs(energies - energies[0]).max() < 2e-3 * max(1.0, atoms.get_kinetic_energy())
    assert calculator.neighbors.n_builds < 50, "the neighbour list must be reused between MD steps"


def test_langevin_and_npt_run(potential):
    atoms = silicon(2)
    atoms.calc = mlff.MLFFCalculator(potential)
    Langevin(atoms, 1.0 * units.fs, temperature_K=300, friction=0.02, fixcm=False, rng=np.random.default_rng(1)).run(10)
    volume = atoms.get_volume()
    NPTBerendsen(
        atoms, 1.0 * units.fs, temperature_K=300, pressure_au=1.0 * units.GPa, taut=50 * units.fs,
        taup=100 * units.fs, compressibility_au=1e-2 / units.GPa,
    ).run(10)
    assert atoms.get_volume() != pytest.approx(volume, rel=1e-9)
    assert np.isfinite(atoms.get_potential_energy())


@pytest.mark.parametrize("optimizer", [BFGS, FIRE])
def test_optimizers_lower_the_energy(potential, optimizer):
    atoms = ethanol(3)
    atoms.rattle(0.15, seed=3)
    atoms.calc = mlff.MLFFCalculator(potential)
    start = atoms.get_potential_energy()
    optimizer(atoms, logfile=None).run(fmax=1e-4, steps=30)
    assert atoms.get_potential_energy() < start


def test_cell_filter_relaxation(potential):
    atoms = silicon(4)
    atoms.calc = mlff.MLFFCalculator(potential)
    start = atoms.get_potential_energy()
    BFGS(FrechetCellFilter(atoms), logfile=None).run(fmax=1e-4, steps=20)
    assert atoms.get_potential_energy() < start


def test_unknown_element_and_float32(potential, tmp_path):
    atoms = ase.build.molecule("CH3Cl")
    atoms.calc = mlff.MLFFCalculator(potential)
    with pytest.raises(ValueError, match=r"atomic numbers \[17\]"):
        atoms.get_potential_energy()
    path = str(tmp_path / "p.pt")
    mlff.deploy(potential, path)
    molecule = ethanol()
    molecule.calc = mlff.MLFFCalculator(path, dtype=torch.float32)
    reference = ethanol()
    reference.calc = mlff.MLFFCalculator(path)
    assert molecule.calc.dtype == torch.float32
    assert molecule.get_potential_energy() == pytest.approx(reference.get_potential_energy(), rel=1e-5)


def test_check_state_reports_what_ase_reports(potential):
    """The exact-comparison check_state agrees with ASE's compare_atoms on every kind of change,
    and an unchanged structure is not recalculated."""
    from ase.calculators.calculator import compare_atoms

    atoms = silicon(5)
    calculator = mlff.MLFFCalculator(potential)
    atoms.calc = calculator
    atoms.get_forces()
    assert calculator.check_state(atoms) == []
    changes = {
        "positions": lambda a: a.positions.__setitem__((3, 1), a.positions[3, 1] + 1e-9),
        "numbers": lambda a: a.numbers.__setitem__(0, 6),
        "cell": lambda a: a.set_cell(a.cell.array * 1.001),
        "pbc": lambda a: a.set_pbc([True, True, False]),
        "initial_charges": lambda a: a.set_initial_charges(np.arange(len(a), dtype=float)),
        "initial_magmoms": lambda a: a.set_initial_magnetic_moments(np.ones(len(a))),
    }
    for name, change in changes.items():
        changed = atoms.copy()
        change(changed)
        assert calculator.check_state(changed) == [name]
        assert sorted(calculator.check_state(changed)) == sorted(compare_atoms(calculator.atoms, changed))
    # a looser tolerance goes through ASE's own comparison
    nudged = atoms.copy()
    nudged.positions[0, 0] += 1e-9
    assert calculator.check_state(nudged, tol=1e-6) == []

    calls = []
    original = calculator.calculate
    calculator.calculate = lambda *args, **kwargs: (calls.append(1), original(*args, **kwargs))
    forces = atoms.get_forces()
    atoms.get_potential_energy()
    assert calls == [], "an unchanged structure must not be recalculated"
    atoms.positions[0, 0] += 1e-3
    assert not np.array_equal(atoms.get_forces(), forces)
    assert calls == [1]
