"""Deployment: checkpoint -> one TorchScript file -> same energies and forces, in a process
that cannot import the training code; bad files give clear errors."""

import json
import os
import subprocess
import sys
import zipfile

import ase.build
import numpy as np
import pytest
import torch

import mlff
from mlff.export import FORMAT_VERSION, load_potential, read_metadata
from mlff.graph import from_atoms
from mlff.train import load_checkpoint, save_checkpoint
from tests.models.conftest import make_potential

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def water_dimer():
    atoms = ase.build.molecule("H2O")
    other = ase.build.molecule("H2O")
    other.translate([2.8, 0.3, 0.1])
    atoms += other
    return atoms


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    directory = tmp_path_factory.mktemp("deploy")
    potential = make_potential("schnet", torch.float64)
    checkpoint = str(directory / "model.ckpt")
    save_checkpoint(potential, checkpoint, metadata={"training_data_sha256": "abc", "test_errors": {"forces_mae": 0.1}})
    path = str(directory / "potential.pt")
    result = subprocess.run(
        [sys.executable, "-m", "mlff", "deploy", checkpoint, "-o", path], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    return potential, checkpoint, path


def reference(potential, atoms):
    outputs = potential(from_atoms(atoms, potential.cutoff, torch.float64))
    return outputs["energy"].item(), outputs["forces"].detach().numpy()


def test_checkpoint_round_trip(deployed):
    potential, checkpoint, _ = deployed
    rebuilt, state = load_checkpoint(checkpoint)
    atoms = water_dimer()
    assert reference(rebuilt, atoms)[0] == pytest.approx(reference(potential, atoms)[0], abs=1e-12)
    assert state["metadata"]["training_data_sha256"] == "abc"


def test_deployed_file_matches_eager(deployed):
    potential, _, path = deployed
    module = mlff.load_potential(path)
    atoms = water_dimer()
    outputs = module(
        torch.tensor(atoms.positions), torch.tensor(atoms.numbers), torch.zeros(3, 3), torch.zeros(3, dtype=torch.bool)
    )
    energy, forces = reference(potential, atoms)
    assert outputs["energy"].item() == pytest.approx(energy, abs=1e-10)
    np.testing.assert_allclose(outputs["forces"].numpy(), forces, atol=1e-10)


def test_metadata(deployed):
    _, _, path = deployed
    info = read_metadata(path)
    assert info["format_version"] == FORMAT_VERSION
    assert info["model_family"] == "schnet"
    assert info["cutoff"] == pytest.approx(make_potential("schnet").cutoff)
    assert info["dtype"] == "float64"
    assert info["units"]["energy"] == "eV"
    assert info["training_data_sha256"] == "abc"
    assert info["hyperparameters"]["n_features"] == 16
    assert info["torch_version"] == torch.__version__
    module = torch.jit.load(path)  # plain torch.jit.load works once mlff is imported
    assert json.loads(module.metadata_json)["model_family"] == "schnet"


def test_file_is_deflated_and_leaves_no_temporaries(deployed, tmp_path):
    """Every entry is compressed (torch.jit.save stores them), yet torch.jit.load reads the file
    (test_deployed_file_matches_eager), and deploying leaves nothing beside the file."""
    _, _, path = deployed
    with zipfile.ZipFile(path) as archive:
        entries = archive.infolist()
    assert entries and all(entry.compress_type == zipfile.ZIP_DEFLATED for entry in entries)
    assert sorted(os.listdir(os.path.dirname(path))) == ["model.ckpt", "potential.pt"]

    # a MACE: its code (most of a small model's file) deflates well
    deflated = str(tmp_path / "mace.pt")
    mlff.deploy(make_potential("mace", torch.float32), deflated)
    with zipfile.ZipFile(deflated) as archive:
        stored_bytes = sum(entry.file_size for entry in archive.infolist())
    assert os.path.getsize(deflated) < 0.6 * stored_bytes
    assert sorted(os.listdir(tmp_path)) == ["mace.pt"]


def test_runs_without_training_code(deployed):
    _, _, path = deployed
    atoms = water_dimer()
    script = f"""
import sys
for name in ("mlff.train", "mlff.models", "mlff.testing"):
    sys.modules[name] = None  # importing them now fails
import torch, mlff
module = mlff.load_potential({path!r})
out = module(torch.tensor({atoms.positions.tolist()!r}, dtype=torch.float64), torch.tensor({atoms.numbers.tolist()!r}),
             torch.zeros(3, 3), torch.zeros(3, dtype=torch.bool))
print(repr(out["energy"].item()))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    potential = deployed[0]
    assert float(result.stdout.strip()) == pytest.approx(reference(potential, atoms)[0], abs=1e-10)


def test_bad_files(deployed, tmp_path):
    _, _, path = deployed
    with pytest.raises(FileNotFoundError):
        load_potential(str(tmp_path / "missing.pt"))
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(open(path, "rb").read()[:2000])
    with pytest.raises(ValueError, match="corrupt, truncated"):
        load_potential(str(truncated))
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a model at all" * 100)
    with pytest.raises(ValueError, match="corrupt, truncated"):
        load_potential(str(garbage))
    foreign = tmp_path / "foreign.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(foreign))
    with pytest.raises(ValueError, match="not an mlff potential"):
        load_potential(str(foreign))
    newer = tmp_path / "newer.pt"
    info = read_metadata(path)
    info["format_version"] = FORMAT_VERSION + 1
    module = torch.jit.load(path)
    torch.jit.save(module, str(newer), _extra_files={"mlff_metadata.json": json.dumps(info)})
    with pytest.raises(ValueError, match="upgrade mlff"):
        load_potential(str(newer))
    with pytest.raises(ValueError, match="not a readable mlff checkpoint"):
        load_checkpoint(str(garbage))


def test_cli_reports_errors_clearly(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mlff", "deploy", str(tmp_path / "nothing.ckpt"), "-o", str(tmp_path / "x.pt")],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert result.returncode == 1
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_deploys_models_that_cannot_be_deep_copied(tmp_path):
    """MACE with l = 2 hidden features holds TorchScript functions (e3nn), which torch 2.9
    cannot deep-copy (torch 2.13 can): deploy must not rely on copy.deepcopy (a finished training
    run once failed there)."""
    from mlff.export import deploy
    from mlff.potential import rebuilt_copy

    potential = make_potential("mace", torch.float64, hidden_l_max=2)
    atoms = water_dimer()
    energy, forces = reference(potential, atoms)

    copied = rebuilt_copy(potential)
    assert reference(copied, atoms)[0] == pytest.approx(energy, abs=1e-12)
    with torch.no_grad():  # independent of the original
        next(copied.parameters()).add_(1.0)
    assert reference(potential, atoms)[0] == energy

    path = str(tmp_path / "potential.pt")
    deploy(potential, path)
    assert all(p.requires_grad for p in potential.parameters())  # the caller's potential is left as it was
    module = mlff.load_potential(path)
    outputs = module(
        torch.tensor(atoms.positions), torch.tensor(atoms.numbers), torch.zeros(3, 3), torch.zeros(3, dtype=torch.bool)
    )
    assert outputs["energy"].item() == pytest.approx(energy, abs=1e-10)
    np.testing.assert_allclose(outputs["forces"].numpy(), forces, atol=1e-10)


@pytest.mark.parametrize("family", ["schnet", "mace"])
def test_deployed_file_gives_back_its_weights(tmp_path, family):
    """training.initial_weights may name a deployed file: its checkpoint dict rebuilds the same
    function (MACE's NormalizedLinear must not take the TorchScript state for its old layout)."""
    from mlff.export import deploy
    from mlff.models.config import config_to_dict
    from mlff.potential import Potential
    from mlff.models.registry import build
    from mlff.train.checkpoint import checkpoint_of_deployed, is_deployed_potential

    potential = make_potential(family, torch.float64)
    path, bare, checkpoint = str(tmp_path / "potential.pt"), str(tmp_path / "bare.pt"), str(tmp_path / "model.ckpt")
    deploy(potential, path, {"model_family": family, "hyperparameters": config_to_dict(potential.model.config)})
    save_checkpoint(potential, checkpoint)
    assert is_deployed_potential(path) and not is_deployed_potential(checkpoint)
    state = checkpoint_of_deployed(path)
    rebuilt = Potential(build(state["family"], **state["config"])).double()
    rebuilt.load_state_dict(state["potential"])
    atoms = water_dimer()
    energy, forces = reference(potential, atoms)
    assert reference(rebuilt.eval(), atoms)[0] == pytest.approx(energy, abs=1e-10)
    np.testing.assert_allclose(reference(rebuilt, atoms)[1], forces, atol=1e-10)

    deploy(potential, bare)  # no model family in its metadata: nothing to rebuild from
    with pytest.raises(ValueError, match="names no model_family"):
        checkpoint_of_deployed(bare)


def test_shipped_potential_gives_back_its_weights():
    """A shipped potential is a starting point for fine-tuning: rebuilt eagerly, it predicts as the file."""
    from mlff.models.registry import build
    from mlff.potential import Potential
    from mlff.train.checkpoint import checkpoint_of_deployed

    path = os.path.join(ROOT, "potentials", "ethanol.pt")
    state = checkpoint_of_deployed(path)
    rebuilt = Potential(build(state["family"], **state["config"])).float()
    rebuilt.load_state_dict(state["potential"])
    atoms = ase.build.molecule("CH3CH2OH")
    outputs = rebuilt.eval()(from_atoms(atoms, rebuilt.cutoff, torch.float32), compute_stress=False)
    module = mlff.load_potential(path)
    expected = module(torch.tensor(atoms.positions, dtype=torch.float32), torch.tensor(atoms.numbers),
                      torch.zeros(3, 3), torch.zeros(3, dtype=torch.bool))
    assert outputs["energy"].item() == pytest.approx(expected["energy"].item(), abs=1e-3)  # eV, float32 sums
    np.testing.assert_allclose(outputs["forces"].detach().numpy(), expected["forces"].numpy(), atol=1e-4)
