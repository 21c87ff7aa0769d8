"""potentials/training/park.sh: a long training's resume state survives a fresh clone.

The script is copied next to a scratch ``runs/`` folder (it works relative to its own folder),
then saves, refuses to overwrite a live run, restores byte for byte, and drops; ``carry`` turns
a real checkpoint into a small weights-only checkpoint that a new run starts from.
"""

import os
import shutil
import subprocess
import sys

import ase.build
import pytest
import torch

from mlff.graph import from_atoms
from mlff.train import load_checkpoint, save_checkpoint
from tests.models.conftest import make_potential

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "potentials", "training", "park.sh")


def park(folder, *arguments, **environment):
    return subprocess.run(
        ["bash", os.path.join(folder, "park.sh"), *arguments],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable, **environment},
    )


@pytest.fixture
def training_folder(tmp_path):
    shutil.copy(SCRIPT, tmp_path / "park.sh")
    live = tmp_path / "runs" / "demo"
    live.mkdir(parents=True)
    (live / "last.pt").write_bytes(os.urandom(1000))
    (live / "best.pt").write_bytes(os.urandom(500))
    (live / "log.csv").write_text("epoch,loss\n1,0.5\n2,0.25\n")
    (live / "tensorboard").mkdir()  # not carried
    return tmp_path


def test_save_restore_round_trip(training_folder):
    live, parked = training_folder / "runs" / "demo", training_folder / "checkpoints" / "demo"
    originals = {name: (live / name).read_bytes() for name in ("last.pt", "best.pt", "log.csv")}

    saved = park(training_folder, "save", "demo")
    assert saved.returncode == 0 and "epoch 2" in saved.stdout
    assert sorted(os.listdir(parked)) == ["best.pt", "last.pt", "log.csv"]

    refused = park(training_folder, "restore", "demo")  # the live run is still there
    assert refused.returncode == 2 and "not overwriting" in refused.stderr

    shutil.rmtree(training_folder / "runs")  # a fresh clone has no runs/
    restored = park(training_folder, "restore", "demo")
    assert restored.returncode == 0 and "--resume" in restored.stdout
    assert {name: (live / name).read_bytes() for name in originals} == originals

    assert park(training_folder, "drop", "demo").returncode == 0
    assert not parked.exists()


def test_clear_errors(training_folder):
    assert "does not exist" in park(training_folder, "save", "missing").stderr
    assert "nothing parked" in park(training_folder, "restore", "missing").stderr
    assert "unknown action" in park(training_folder, "keep", "demo").stderr
    assert park(training_folder).returncode != 0


def _energy_and_forces(potential, atoms):
    outputs = potential(from_atoms(atoms, potential.cutoff, torch.float32))
    return outputs["energy"].detach(), outputs["forces"].detach()


def test_carry_writes_the_moving_average_as_a_small_checkpoint(tmp_path):
    shutil.copy(SCRIPT, tmp_path / "park.sh")
    live = tmp_path / "runs" / "demo"
    live.mkdir(parents=True)
    potential = make_potential("mace", torch.float32)
    save_checkpoint(potential, str(live / "last.pt"), metadata={"epoch": 7}, training_state={"optimizer": torch.zeros(10000)})
    (live / "log.csv").write_text("epoch,loss\n6,0.5\n7,0.25\n")

    carried = park(tmp_path, "carry", "demo")
    assert carried.returncode == 0, carried.stderr
    assert "epoch 7" in carried.stdout and "initial_weights" in carried.stdout
    path = tmp_path / "carry" / "demo.pt"
    assert sorted(os.listdir(tmp_path / "carry")) == ["demo.pt"]  # no partial file left
    assert os.path.getsize(path) < os.path.getsize(live / "last.pt") - 30000  # the 40 kB training state stays behind

    rebuilt, state = load_checkpoint(str(path))  # what training.initial_weights reads
    assert state["family"] == "mace" and state["metadata"]["epoch"] == 7 and "training_state" not in state
    atoms = ase.build.molecule("CH3CH2OH")
    energy, forces = _energy_and_forces(potential, atoms)
    carried_energy, carried_forces = _energy_and_forces(rebuilt, atoms)
    assert torch.equal(carried_energy, energy) and torch.equal(carried_forces, forces)

    refused = park(tmp_path, "carry", "demo", CARRY_MAX_BYTES="1000")
    assert refused.returncode == 2 and "over the 1000" in refused.stderr
    assert os.path.getsize(path) > 1000  # the earlier carry is kept, no partial file appears
    assert sorted(os.listdir(tmp_path / "carry")) == ["demo.pt"]
    assert "does not exist" in park(tmp_path, "carry", "missing").stderr
