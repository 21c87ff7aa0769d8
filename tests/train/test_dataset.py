"""Reading labelled data: labels by key, bad data named by file and index, splits, statistics."""


import ase.io
import numpy as np
import pytest
import torch
from ase.calculators.singlepoint import SinglePointCalculator

from mlff.train.dataset import BadDataError, LabelKeys, Requirements, batches, build_samples, read_configurations, split
from mlff.train.statistics import average_num_neighbors, energy_scale, least_squares_reference_energies
from tests.train.conftest import emt_configurations

NEEDS_ALL = Requirements(energy=True, forces=True)


def write(tmp_path, frames, name="data.xyz"):
    path = str(tmp_path / name)
    ase.io.write(path, frames)
    return path


def test_reads_energy_forces_stress_and_weights(tmp_path):
    frames = emt_configurations(4)
    path = write(tmp_path, frames)
    configurations = read_configurations([path], requirements=NEEDS_ALL, config_type_weights={"bulk": 3.0})
    assert len(configurations) == 4
    first = configurations[1]
    np.testing.assert_allclose(first.energy, frames[1].get_potential_energy())
    np.testing.assert_allclose(first.forces, frames[1].get_forces())
    voigt = frames[1].get_stress()
    np.testing.assert_allclose(np.diag(first.stress), voigt[:3])
    np.testing.assert_allclose(first.stress[1, 2], voigt[3])
    assert [c.weight for c in configurations] == [1.0, 3.0, 1.0, 3.0]


def test_custom_keys_from_info_and_arrays(tmp_path):
    frames = emt_configurations(2)
    for atoms in frames:
        atoms.info["dft_energy"] = atoms.get_potential_energy()
        atoms.arrays["dft_forces"] = atoms.get_forces()
        atoms.calc = None
    path = write(tmp_path, frames)
    keys = LabelKeys(energy="dft_energy", forces="dft_forces")
    configurations = read_configurations([path], keys, NEEDS_ALL)
    np.testing.assert_allclose(configurations[0].forces, frames[0].arrays["dft_forces"])
    assert configurations[0].stress is None


def corrupt(frames, index, what):
    atoms = frames[index]
    results = dict(atoms.calc.results)
    if what == "positions":
        positions = atoms.get_positions()
        positions[0, 0] = np.nan
        atoms.set_positions(positions)
    elif what == "energy":
        results["energy"] = np.inf
    elif what == "forces":
        results["forces"] = results["forces"].copy()
        results["forces"][1, 2] = np.nan
    elif what == "count":
        results["forces"] = results["forces"][:-1]
    elif what == "missing":
        del results["forces"]
    atoms.calc = SinglePointCalculator(atoms, **results)
    return frames


@pytest.mark.parametrize(
    "what, message",
    [
        ("positions", "positions contain NaN or inf"),
        ("energy", "energy 'energy' is inf"),
        ("forces", "forces 'forces' contain NaN or inf"),
        ("count", "forces 'forces' have shape (3, 3), but there are 4 atoms"),
        ("missing", "no forces 'forces' (needed by the loss"),
    ],
)
def test_bad_data_names_file_and_index(tmp_path, what, message):
    path = str(tmp_path / "bad.traj")  # .traj keeps inconsistent calculator results as they are
    ase.io.write(path, corrupt(emt_configurations(5), 3, what))
    with pytest.raises(BadDataError) as error:
        read_configurations([path], requirements=NEEDS_ALL)
    assert f"{path}: configuration 3: {message}" in str(error.value)
    with pytest.warns(UserWarning, match="skipped 1 bad configuration"):
        kept = read_configurations([path], requirements=NEEDS_ALL, skip_bad=True)
    assert len(kept) == 4


def test_missing_forces_allowed_when_loss_does_not_need_them(tmp_path):
    path = str(tmp_path / "bad.traj")
    ase.io.write(path, corrupt(emt_configurations(3), 0, "missing"))
    configurations = read_configurations([path], requirements=Requirements(energy=True, forces=False))
    assert configurations[0].forces is None


def test_empty_file(tmp_path):
    path = str(tmp_path / "empty.xyz")
    open(path, "w").close()
    with pytest.raises(BadDataError, match="empty.xyz: the file is empty"):
        read_configurations([path])


def test_split_is_seeded_and_disjoint():
    kept, held = split(20, seed=3, fraction=0.25, count=None)
    assert len(held) == 5 and sorted(kept + held) == list(range(20))
    assert split(20, seed=3, fraction=0.25, count=None) == (kept, held)
    assert split(20, seed=4, fraction=0.25, count=None) != (kept, held)
    with pytest.raises(ValueError, match="nothing would be left"):
        split(4, seed=0, fraction=None, count=4)


def test_least_squares_reference_energies_recover_exact_values(tmp_path):
    frames = emt_configurations(6)
    e0 = {13: -2.5, 29: -1.25}
    for atoms in frames:
        energy = sum(e0[int(z)] for z in atoms.get_atomic_numbers())
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=np.zeros((len(atoms), 3)))
    configurations = read_configurations([write(tmp_path, frames)])
    fitted = least_squares_reference_energies(configurations, [13, 29])
    assert fitted == pytest.approx(e0)
    assert energy_scale(configurations, fitted) == 1.0  # constant data: falls back to 1


def test_samples_batches_and_neighbors(tmp_path):
    configurations = read_configurations([write(tmp_path, emt_configurations(5))], requirements=NEEDS_ALL)
    samples = build_samples(configurations, cutoff=3.0, dtype=torch.float32)
    assert samples[0].graph.positions.dtype == torch.float32
    assert average_num_neighbors(samples) == pytest.approx(12.0, abs=4.0)  # fcc: 12 nearest neighbours
    generator = torch.Generator().manual_seed(0)
    collected = list(batches(samples, 2, generator))
    assert [int(b.weight.numel()) for b in collected] == [2, 2, 1]
    assert collected[0].forces.shape == (8, 3) and collected[0].stress.shape == (2, 3, 3)
    assert bool(collected[0].stress_mask.all())
