"""Labelling (mlff.label): PySCF energies and forces as physics, labels round-trip into training."""

import os
import sys

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.calculator import CalculationFailed
from ase.calculators.emt import EMT
from ase.calculators.fd import calculate_numerical_forces

from mlff import units
from mlff.cli import main
from mlff.label import PySCFCalculator, label, label_file
from mlff.train.config import config_from_dict
from mlff.train.splits import load_splits

pyscf = pytest.importorskip("pyscf")


def water(seed: int = 1, rattle: float = 0.05) -> Atoms:
    atoms = molecule("H2O")
    atoms.rattle(rattle, seed=seed)
    return atoms


def test_hartree_and_bohr_are_codata_2018():
    from ase.units import create_units

    codata = create_units("2018")
    assert units.HARTREE_TO_EV == pytest.approx(codata["Hartree"], rel=1e-10)
    assert units.BOHR_TO_ANGSTROM == pytest.approx(codata["Bohr"], rel=1e-10)
    assert units.ANGSTROM_TO_BOHR * units.BOHR_TO_ANGSTROM == pytest.approx(1.0, rel=1e-15)


@pytest.mark.parametrize("method", ["hf", "pbe"])
def test_pyscf_forces_are_minus_the_energy_gradient(method):
    atoms = water()
    # a coarse DFT grid is enough: with grid_response=True (the default) the forces are the exact
    # derivative of the energy on whatever grid (without it they differ by ~2e-4 eV/A)
    atoms.calc = PySCFCalculator(method, "sto-3g", grid_level=1)
    forces = atoms.get_forces()
    numerical = calculate_numerical_forces(atoms, eps=3e-4, iatoms=[0, 1])  # central differences of the energy
    np.testing.assert_allclose(forces[:2], numerical, atol=5e-5)
    np.testing.assert_allclose(forces.sum(axis=0), 0.0, atol=1e-6)  # an isolated molecule feels no net force


@pytest.mark.parametrize(
    "name, spin, method, basis",
    [("H2O", 0, "b3lyp", "6-31g*"), ("OH", 1, "hf", "sto-3g")],  # restricted DFT, unrestricted HF
)
def test_pyscf_matches_a_direct_pyscf_calculation(name, spin, method, basis):
    from pyscf import dft, gto, scf

    atoms = molecule(name)
    atoms.rattle(0.02, seed=3)
    atoms.calc = PySCFCalculator(method, basis, spin=spin)
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()

    reference = gto.M(
        atom=[(s, tuple(p)) for s, p in zip(atoms.get_chemical_symbols(), atoms.positions)],
        unit="Angstrom", basis=basis, spin=spin, verbose=0,
    )
    if method == "hf":
        mean_field = scf.UHF(reference) if spin else scf.RHF(reference)
    else:
        mean_field = dft.RKS(reference)
        mean_field.xc = method
    mean_field.conv_tol = 1e-10
    hartree = mean_field.kernel()
    gradient = mean_field.nuc_grad_method()
    if method != "hf":
        gradient.grid_response = True
    hartree_per_bohr = gradient.kernel()

    assert energy == pytest.approx(hartree * units.HARTREE_TO_EV, abs=1e-6)  # eV
    np.testing.assert_allclose(forces, -hartree_per_bohr * units.HARTREE_TO_EV / units.BOHR_TO_ANGSTROM, atol=1e-5)  # eV/A


def test_energy_then_forces_runs_one_scf_and_moves_recompute():
    atoms = water()
    calculator = PySCFCalculator("hf", "sto-3g")
    atoms.calc = calculator
    atoms.get_potential_energy()
    first = calculator._scf
    atoms.get_forces()
    assert calculator._scf is first  # forces of the same structure reuse its SCF
    energy = atoms.get_potential_energy()
    atoms.positions[0, 0] += 0.01
    assert atoms.get_potential_energy() != energy
    assert calculator._scf is not first


@pytest.mark.parametrize("prefix", ["", "dft_"])  # the default keys, and keys of one's own
def test_emt_labels_round_trip_through_the_training_reader(tmp_path, prefix):
    import ase.io

    keys = dict(energy_key=f"{prefix}energy", forces_key=f"{prefix}forces", stress_key=f"{prefix}stress")
    rng = np.random.default_rng(0)
    structures = []
    for a in (3.55, 3.6, 3.65):
        crystal = bulk("Cu", "fcc", a=a, cubic=True)
        crystal.positions += rng.normal(scale=0.05, size=crystal.positions.shape)
        crystal.info[keys["energy_key"]] = 123.0  # a stale label, to be replaced
        crystal.info["config_type"] = "bulk"
        structures.append(crystal)
    structures.append(Atoms("Cu4", positions=[[0, 0, 0], [2.5, 0, 0], [0, 2.5, 0], [0, 0, 2.5]]))  # a cluster
    source, written = tmp_path / "structures.xyz", tmp_path / "labelled.xyz"
    ase.io.write(source, structures)
    calls = []
    assert label_file(str(source), str(written), EMT(), progress=lambda *done: calls.append(done), **keys) == 4
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    with pytest.raises(FileNotFoundError, match="missing.xyz does not exist"):
        label_file(str(tmp_path / "missing.xyz"), str(written), EMT())

    data = {"train": str(written), "validation_count": 0, **keys}
    read = load_splits(config_from_dict({"model": {"family": "schnet", "cutoff": 3.0}, "data": data})).train
    assert len(read) == 4
    for structure, configuration in zip(structures, read):
        reference = structure.copy()
        reference.calc = EMT()
        assert configuration.energy == pytest.approx(reference.get_potential_energy(), abs=1e-6)
        np.testing.assert_allclose(configuration.forces, reference.get_forces(), atol=1e-6)
        if structure.pbc.all():
            np.testing.assert_allclose(configuration.stress, reference.get_stress(voigt=False), atol=1e-7)
            assert configuration.config_type == "bulk"
        else:
            assert configuration.stress is None  # no stress for a molecule


def test_pyscf_labels_round_trip_and_leave_the_input_alone(tmp_path):
    structures = [water(seed) for seed in (1, 2)]
    before = [s.positions.copy() for s in structures]
    labelled = label(structures, PySCFCalculator("hf", "sto-3g"))
    assert all(s.calc is None and "energy" not in s.info for s in structures)
    for s, positions in zip(structures, before):
        np.testing.assert_array_equal(s.positions, positions)

    import ase.io

    path = tmp_path / "water.xyz"
    ase.io.write(path, labelled)
    config = config_from_dict({"model": {"family": "schnet", "cutoff": 3.0}, "data": {"train": str(path), "validation_count": 0}})
    for atoms, configuration in zip(labelled, load_splits(config).train):
        assert configuration.energy == pytest.approx(atoms.info["energy"], abs=1e-8)
        np.testing.assert_allclose(configuration.forces, atoms.arrays["forces"], atol=1e-8)


def test_mlff_label_command(tmp_path, capsys):
    import ase.io

    source, output = tmp_path / "in.xyz", tmp_path / "out.xyz"
    ase.io.write(source, [water(1), water(2), water(3)])
    assert main(["label", str(source), "-o", str(output), "--method", "hf", "--basis", "sto-3g", "--index", "::2"]) == 0
    assert "2 structures labelled with hf/sto-3g" in capsys.readouterr().out
    frames = ase.io.read(output, ":")
    assert len(frames) == 2 and frames[0].get_forces().shape == (3, 3)

    ase.io.write(source, bulk("Si"))
    assert main(["label", str(source), "-o", str(output), "--basis", "sto-3g"]) == 1
    assert "periodic DFT is not supported" in capsys.readouterr().err


def test_periodic_structures_are_refused():
    crystal = bulk("Si")
    crystal.calc = PySCFCalculator("pbe", "sto-3g")
    with pytest.raises(ValueError, match="molecules only.*periodic"):
        crystal.get_potential_energy()


def test_missing_pyscf_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyscf", None)  # makes `import pyscf` fail
    with pytest.raises(ImportError, match="pip install pyscf"):
        PySCFCalculator()


@pytest.mark.parametrize(
    "options, match",
    [
        ({"method": "pbee"}, "neither 'hf' nor an exchange-correlation functional"),
        ({"spin": -1}, "spin must be a non-negative integer"),
        ({"charge": 0.5}, "charge must be an integer"),
        ({"grid_level": 12}, "grid_level"),
    ],
)
def test_bad_settings_are_refused(options, match):
    with pytest.raises(ValueError, match=match):
        PySCFCalculator(**options)


@pytest.mark.filterwarnings("ignore:Basis may be available")  # pyscf suggests basis-set-exchange
def test_bad_spin_or_basis_names_the_problem():
    radical = molecule("OH")
    with pytest.raises(ValueError, match="9 electrons.*spin=0.*odd"):
        label([radical], PySCFCalculator("hf", "sto-3g"))
    with pytest.raises(ValueError, match="structure 0 \\(H2O\\).*basis 'def2-svpx'"):
        label([water()], PySCFCalculator("hf", "def2-svpx"))


def test_failed_scf_stops_or_is_skipped():
    structures = [water(1), water(2)]
    calculator = PySCFCalculator("pbe", "sto-3g", max_cycle=1)
    with pytest.raises(CalculationFailed, match="structure 0 .*did not converge.*skip_failed"):
        label(structures, calculator)
    with pytest.warns(UserWarning, match="left out 2 of 2"):
        assert label(structures, calculator, skip_failed=True) == []


def test_a_calculator_without_forces_is_refused():
    from ase.calculators.calculator import Calculator

    class EnergyOnly(Calculator):
        implemented_properties = ["energy"]

    with pytest.raises(ValueError, match="does not implement \\['forces'\\]"):
        label([water()], EnergyOnly())


EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "dft_water")


def test_dft_water_example_is_valid_and_reproducible():
    """The example's config reads its data; a stored configuration is recomputed by its DFT."""
    from mlff.train.config import load_config

    config = load_config(os.path.join(EXAMPLE, "train.yaml"), [f"output_dir={os.devnull}"])
    splits = load_splits(config)
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (300, 40, 60)
    assert splits.species == [1, 8]
    stored = splits.test[0]
    atoms = stored.atoms.copy()
    atoms.calc = PySCFCalculator("b3lyp", "def2-svp")  # the level make_dataset.py uses
    assert atoms.get_potential_energy() == pytest.approx(stored.energy, abs=1e-5)
    np.testing.assert_allclose(atoms.get_forces(), stored.forces, atol=1e-4)
