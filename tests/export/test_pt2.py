"""AOTInductor (.pt2) deployment: `mlff deploy ... -o potential.pt2` gives the same energies,
per-atom energies, forces and stress as the TorchScript file, for any number of atoms and
edges from one compiled package, loads in a process that cannot import the training code, and
refuses bad files and impossible moves clearly.

Each package is a C++ compile of about a minute on a busy 2-core machine, so the float64 and
float32 packages are built once per module and shared; the whole module is marked slow.
"""

import json
import os
import subprocess
import sys
import zipfile

import ase
import ase.build
import numpy as np
import pytest
import torch

import mlff
from mlff.engines.ase import MLFFCalculator
from mlff.export import FORMAT_VERSION, CompiledPotential, load_potential, read_metadata
from mlff.md.structures import water_box as water_box_of
from mlff.train import save_checkpoint
from tests.models.conftest import make_potential
from tests.structures import ethanol, silicon_cubic, tiny_hydrogen_cell, water_box

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: absolute tolerance (eV, eV/Angstrom, eV/Angstrom^3) of .pt2 against .pt, per dtype
TOLERANCE = {torch.float64: 1e-9, torch.float32: 2e-4}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # small systems: more intra-op threads only add synchronisation on a shared 2-core machine
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def deploy_both(folder, dtype, cli_arguments):
    """(.pt path, .pt2 path) of the same tiny SchNet, the .pt2 written by the CLI."""
    potential = make_potential("schnet", dtype, n_interactions=1)
    checkpoint = str(folder / "model.ckpt")
    save_checkpoint(potential, checkpoint, metadata={"training_data_sha256": "abc"})
    torchscript = str(folder / "potential.pt")
    mlff.deploy(potential, torchscript, {"model_family": "schnet"})
    output, *options = cli_arguments
    package = str(folder / output)
    result = subprocess.run(
        [sys.executable, "-m", "mlff", "deploy", checkpoint, "-o", package, *options], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    return torchscript, package


@pytest.fixture(scope="module")
def files64(tmp_path_factory):
    return deploy_both(tmp_path_factory.mktemp("pt2_64"), torch.float64, ["potential.pt2"])


@pytest.fixture(scope="module")
def files32(tmp_path_factory):
    # --format instead of the suffix; --dtype from a float64 checkpoint
    folder = tmp_path_factory.mktemp("pt2_32")
    potential = make_potential("schnet", torch.float64, n_interactions=1)
    checkpoint = str(folder / "model.ckpt")
    save_checkpoint(potential, checkpoint)
    torchscript = str(folder / "potential.pt")
    mlff.deploy(potential.float(), torchscript)
    package = str(folder / "potential.bin")
    result = subprocess.run(
        [sys.executable, "-m", "mlff", "deploy", checkpoint, "-o", package, "--format", "pt2", "--dtype", "float32"],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return torchscript, package


@pytest.fixture(params=[torch.float64, torch.float32], ids=["float64", "float32"])
def files(request):
    return request.getfixturevalue("files64" if request.param == torch.float64 else "files32"), request.param


def inputs_of(atoms: ase.Atoms, dtype=torch.float64):
    periodic = bool(atoms.pbc.any())
    cell = np.asarray(atoms.get_cell()) if periodic else np.zeros((3, 3))
    return (
        torch.tensor(atoms.positions, dtype=dtype),
        torch.tensor(atoms.numbers),
        torch.tensor(cell, dtype=dtype),
        torch.tensor(atoms.pbc),
    )


def assert_same(outputs, expected, tolerance, keys=("energy", "node_energy", "forces")):
    for key in keys:
        np.testing.assert_allclose(
            outputs[key].detach().double().numpy(), expected[key].detach().double().numpy(), atol=tolerance, rtol=0, err_msg=key
        )


def structures():
    lone_atom = ase.Atoms("O", positions=[[0.0, 0.0, 0.0]])
    pair = ase.Atoms("CO", positions=[[0.0, 0.0, 0.0], [1.2, 0.1, 0.0]])
    return {
        "lone atom": lone_atom,
        "pair": pair,
        "ethanol": ethanol(),
        "water box": water_box(),
        "silicon": silicon_cubic(),
        "hydrogen in a tiny cell": tiny_hydrogen_cell(),
        "64 waters": water_box_of(64),
    }


def test_loads_as_compiled_potential(files64):
    _, package = files64
    module = mlff.load_potential(package)
    assert isinstance(module, CompiledPotential)
    assert module.cutoff == pytest.approx(make_potential("schnet").cutoff)
    assert module.species == make_potential("schnet").species
    assert module.dtype == torch.float64


def test_same_results_as_torchscript_for_every_size(files):
    """One compiled file, systems from 1 to 192 atoms (0 to thousands of edges), with the
    neighbour list inside and with the caller's; energies, per-atom energies, forces, stress."""
    (torchscript, package), dtype = files
    compiled, scripted = load_potential(package), load_potential(torchscript)
    for name, atoms in structures().items():
        inputs = inputs_of(atoms, dtype)
        periodic = bool(atoms.pbc.any())
        expected = scripted(*inputs, compute_stress=periodic)
        keys = ("energy", "node_energy", "forces") + (("stress", "virial") if periodic else ())
        # relative to the size of the values: float32 sums over many atoms
        scale = max(1.0, float(expected["energy"].abs().max()))
        assert_same(compiled(*inputs, compute_stress=periodic), expected, TOLERANCE[dtype] * scale, keys)
        edge_index, cell_shifts = mlff.neighbors.neighbor_list(inputs[0], inputs[2], inputs[3], compiled.cutoff + 0.5)
        given = compiled(*inputs, edge_index, cell_shifts, periodic)  # a longer list adds nothing
        assert_same(given, expected, TOLERANCE[dtype] * scale, keys)
        assert "stress" in given if periodic else "stress" not in given


def test_isolated_atom_has_its_reference_energy(files64):
    compiled = load_potential(files64[1])
    outputs = compiled(*inputs_of(ase.Atoms("N", positions=[[1.0, 2.0, 3.0]])))
    assert outputs["energy"].item() == pytest.approx(-1.5, abs=1e-12)  # E0 of N in tests/structures.py
    assert torch.equal(outputs["forces"], torch.zeros(1, 3, dtype=torch.float64))


def test_stress_is_the_strain_derivative(files64):
    """sigma = (1/V) dE/d(eps), by central differences of the compiled energy."""
    compiled = load_potential(files64[1])
    atoms = silicon_cubic()
    stress = compiled(*inputs_of(atoms), compute_stress=True)["stress"][0].numpy()
    step = 1e-5
    numerical = np.zeros((3, 3))
    for i in range(3):
        for j in range(3):
            energies = []
            for sign in (1.0, -1.0):
                strain = np.eye(3)
                strain[i, j] += sign * step
                strained = atoms.copy()
                strained.set_cell(np.asarray(atoms.get_cell()) @ strain, scale_atoms=True)
                energies.append(compiled(*inputs_of(strained))["energy"].item())
            numerical[i, j] = (energies[0] - energies[1]) / (2 * step) / atoms.get_volume()
    numerical = 0.5 * (numerical + numerical.T)
    np.testing.assert_allclose(stress, numerical, atol=1e-7)


def test_ase_calculator_runs_the_package(files64):
    torchscript, package = files64
    atoms = water_box()
    results = {}
    for path in (torchscript, package):
        atoms.calc = MLFFCalculator(path)
        results[path] = (atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress(), atoms.get_potential_energies())
    for got, expected in zip(results[package], results[torchscript]):
        np.testing.assert_allclose(got, expected, atol=1e-9, rtol=0)
    # a few MD steps: the Verlet list goes through the compiled model that takes edges
    from ase.md.verlet import VelocityVerlet

    atoms.calc = MLFFCalculator(package)
    dynamics = VelocityVerlet(atoms, timestep=0.5 * ase.units.fs)
    dynamics.run(5)
    reference = MLFFCalculator(torchscript)
    assert atoms.get_potential_energy() == pytest.approx(reference.get_potential_energy(atoms), abs=1e-9)


def test_openmm_python_force_runs_the_package(files64):
    openmm = pytest.importorskip("openmm")
    from openmm import app, unit

    from mlff.engines.openmm import create_force

    atoms = ethanol()
    topology = app.Topology()
    residue = topology.addResidue("MOL", topology.addChain())
    for symbol in atoms.get_chemical_symbols():
        topology.addAtom(symbol, app.Element.getBySymbol(symbol), residue)
    energies = []
    for path in files64:
        system = openmm.System()
        for atom in topology.atoms():
            system.addParticle(atom.element.mass)
        system.addForce(create_force(topology, path, backend="python"))
        context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
        context.setPositions(atoms.positions * 0.1)
        energies.append(context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole))
    assert energies[1] == pytest.approx(energies[0], abs=1e-7)


def test_metadata_and_info(files64):
    torchscript, package = files64
    info = read_metadata(package)
    assert info["format_version"] == FORMAT_VERSION
    assert info["file_type"] == "aotinductor" and info["device"] == "cpu" and info["dtype"] == "float64"
    assert info["model_family"] == "schnet" and info["hyperparameters"]["n_interactions"] == 1
    assert info["training_data_sha256"] == "abc"
    assert info["torch_version"] == torch.__version__
    assert set(read_metadata(torchscript)) <= set(info)
    result = subprocess.run([sys.executable, "-m", "mlff", "info", package], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["file_type"] == "aotinductor"


def test_runs_without_training_code(files64):
    torchscript, package = files64
    atoms = water_box()
    script = f"""
import sys
for name in ("mlff.train", "mlff.models", "mlff.testing"):
    sys.modules[name] = None  # importing them now fails
import torch, mlff
module = mlff.load_potential({package!r})
assert type(module).__name__ == "CompiledPotential"
out = module(torch.tensor({atoms.positions.tolist()!r}, dtype=torch.float64), torch.tensor({atoms.numbers.tolist()!r}),
             torch.tensor({np.asarray(atoms.cell).tolist()!r}), torch.ones(3, dtype=torch.bool), compute_stress=True)
print(repr(out["energy"].item()), repr(out["stress"][0, 0, 0].item()))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    energy, stress = (float(value) for value in result.stdout.split())
    expected = load_potential(torchscript)(*inputs_of(atoms), compute_stress=True)
    assert energy == pytest.approx(expected["energy"].item(), abs=1e-9)
    assert stress == pytest.approx(expected["stress"][0, 0, 0].item(), abs=1e-9)


def test_bad_inputs_give_the_potentials_errors(files64):
    compiled = load_potential(files64[1])
    positions, numbers, cell, pbc = inputs_of(ethanol())
    with pytest.raises(ValueError, match="unknown element"):
        compiled(positions, torch.full_like(numbers, 26), cell, pbc)
    broken = positions.clone()
    broken[3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite"):
        compiled(broken, numbers, cell, pbc)
    broken = positions.clone()
    broken[4] = broken[2]
    with pytest.raises(ValueError, match="same position"):
        compiled(broken, numbers, cell, pbc)
    edge_index, cell_shifts = mlff.neighbors.neighbor_list(broken, cell, pbc, compiled.cutoff)
    with pytest.raises(ValueError, match="same position"):
        compiled(broken, numbers, cell, pbc, edge_index, cell_shifts)


def test_fixed_dtype_and_device(files64):
    compiled = load_potential(files64[1])
    assert compiled.to("cpu") is compiled and compiled.to(torch.float64) is compiled
    with pytest.raises(ValueError, match="compiled for float64 on cpu"):
        compiled.to(torch.float32)
    with pytest.raises(ValueError, match="compiled for float64 on cpu"):
        compiled.float()
    with pytest.raises(ValueError, match="compiled for cpu"):
        load_potential(files64[1], device="cuda")
    with pytest.raises(ValueError, match="cannot run inside TorchScript"):
        torch.jit.script(compiled)  # what openmm-torch's TorchForce would need


def rewrite_archive(source: str, target, replace):
    """Copy a zip archive, passing each (name, bytes) through ``replace`` (None drops it)."""
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(target, "w") as out:
        for name in archive.namelist():
            data = replace(name, archive.read(name))
            if data is not None:
                out.writestr(name, data)


def test_bad_files(files64, tmp_path):
    _, package = files64
    truncated = tmp_path / "truncated.pt2"
    truncated.write_bytes(open(package, "rb").read()[:5000])
    for function in (load_potential, read_metadata):
        with pytest.raises(ValueError, match="corrupt, truncated"):
            function(str(truncated))
    garbage = tmp_path / "garbage.pt2"
    garbage.write_bytes(b"\x00not a model" * 500)
    with pytest.raises(ValueError, match="corrupt, truncated"):
        load_potential(str(garbage))
    with pytest.raises(FileNotFoundError):
        load_potential(str(tmp_path / "missing.pt2"))

    from torch.export.pt2_archive._package import package_pt2

    foreign = tmp_path / "foreign.pt2"
    package_pt2(str(foreign), extra_files={"notes.txt": "someone else's package"})
    with pytest.raises(ValueError, match=r"AOTInductor \(.pt2\) package but not an mlff potential"):
        load_potential(str(foreign))

    def newer(name, data):
        if name.endswith("extra/mlff_metadata.json"):
            return json.dumps({**json.loads(data), "format_version": FORMAT_VERSION + 1}).encode()
        return data

    rewrite_archive(package, tmp_path / "newer.pt2", newer)
    with pytest.raises(ValueError, match="upgrade mlff"):
        load_potential(str(tmp_path / "newer.pt2"))

    rewrite_archive(package, tmp_path / "no_models.pt2", lambda name, data: None if "/data/aotinductor/" in name else data)
    with pytest.raises(ValueError, match="lacks the compiled model|cannot load this AOTInductor package"):
        load_potential(str(tmp_path / "no_models.pt2"))
