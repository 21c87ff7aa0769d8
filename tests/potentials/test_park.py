"""potentials/training/park.sh: a long training's resume state survives a fresh clone.

The script is copied next to a scratch ``runs/`` folder (it works relative to its own folder),
then saves, refuses to overwrite a live run, restores byte for byte, and drops.
"""

import os
import shutil
import subprocess

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "potentials", "training", "park.sh")


def park(folder, *arguments):
    return subprocess.run(["bash", os.path.join(folder, "park.sh"), *arguments], capture_output=True, text=True)


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
