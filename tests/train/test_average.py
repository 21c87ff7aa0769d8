"""`mlff average`: the mean of checkpoints' weights, written as a checkpoint that loads to that mean."""

import os

import ase.build
import pytest
import torch

from mlff.cli import main
from mlff.engines.ase import MLFFCalculator
from mlff.train import load_checkpoint, save_checkpoint
from tests.models.conftest import make_potential



def average_cli(*arguments):
    """`mlff average ARGUMENTS` in this process; its exit status."""
    return main(["average", *arguments])


def energy(potential):
    atoms = ase.build.molecule("CH3CH2OH")
    atoms.calc = MLFFCalculator(potential)
    return atoms.get_potential_energy()


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two MACE checkpoints (it has versioned layers) with different weights, one architecture."""
    directory = tmp_path_factory.mktemp("average")
    first = make_potential("mace", torch.float64)
    second = make_potential("mace", torch.float64)
    with torch.no_grad():
        generator = torch.Generator().manual_seed(1)
        for parameter in second.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))
    paths = [str(directory / "a.pt"), str(directory / "b.pt")]
    save_checkpoint(first, paths[0], metadata={"epoch": 3})
    save_checkpoint(second, paths[1], metadata={"epoch": 5})
    return first, second, paths, directory


def test_average_is_the_mean_of_the_weights(two_runs):
    first, second, paths, directory = two_runs
    output = str(directory / "soup.pt")
    assert average_cli("-o", output, *paths) == 0
    soup, state = load_checkpoint(output)
    assert state["metadata"]["averaged_from"] == [os.path.abspath(path) for path in paths]
    expected = make_potential("mace", torch.float64)
    with torch.no_grad():
        for (name, parameter), a, b in zip(expected.named_parameters(), first.parameters(), second.parameters()):
            parameter.copy_(0.5 * (a + b))
            torch.testing.assert_close(dict(soup.named_parameters())[name], parameter, rtol=0, atol=1e-15)
    assert energy(soup) == pytest.approx(energy(expected), abs=1e-10)
    assert abs(energy(soup) - energy(first)) > 1e-4  # the weights really moved


def test_a_checkpoint_averaged_with_itself_predicts_the_same(two_runs):
    first, _, paths, directory = two_runs
    output = str(directory / "same.pt")
    assert average_cli("-o", output, paths[0], paths[0]) == 0
    soup, _ = load_checkpoint(output)
    assert energy(soup) == pytest.approx(energy(first), abs=1e-10)


def test_refuses_different_architectures_and_single_inputs(two_runs, capsys):
    _, _, paths, directory = two_runs
    other = str(directory / "other.pt")
    save_checkpoint(make_potential("mace", torch.float64, n_channels=6), other)
    assert average_cli("-o", str(directory / "x.pt"), paths[0], other) == 1
    assert "only one architecture can be averaged" in capsys.readouterr().err
    assert average_cli("-o", str(directory / "x.pt"), paths[0]) == 1
    assert "at least two checkpoints" in capsys.readouterr().err
    assert not os.path.exists(directory / "x.pt")
