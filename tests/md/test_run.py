"""``mlff md`` end to end on tiny systems: outputs, NVE drift, NPT, the explosion guard, md_runs/."""

import csv
import glob
import os

import ase.io
import numpy as np
import pytest

from mlff.cli import main
from mlff.md.reporting import columns

MD_RUNS = os.path.join(os.path.dirname(__file__), "..", "..", "md_runs")


def read_csv(path):
    with open(path) as handle:
        rows = list(csv.reader(handle))
    return rows[0], np.array(rows[1:], dtype=float)


@pytest.mark.parametrize("engine, trajectory", [("openmm", "traj.dcd"), ("ase", "traj.xyz"), ("ase", "traj.dcd")])
def test_outputs(write_config, tmp_path, capsys, engine, trajectory):
    outputs = {"trajectory": trajectory, "csv": "e.csv", "plot": "e.png", "last_frame": "l.xyz"}
    path = write_config(engine=engine, ensemble="nvt", outputs=outputs, progress=True)
    assert main(["md", path]) == 0
    err = capsys.readouterr().err
    assert "ns/day" in err and "10 steps" in err and "mean temperature" in err
    header, values = read_csv(tmp_path / "e.csv")
    assert header == columns(False)
    assert values.shape == (3, 6) and np.isfinite(values).all()
    assert np.allclose(values[:, 0], [0, 5, 10])
    assert np.allclose(values[:, 4], values[:, 2] + values[:, 3])
    assert (tmp_path / "e.png").stat().st_size > 1000
    if trajectory.endswith(".xyz"):
        frames = ase.io.read(tmp_path / trajectory, ":")
        assert len(frames) == 3 and len(frames[0]) == 9
    else:
        size = (tmp_path / trajectory).stat().st_size
        assert size > 3 * 9 * 3 * 4  # three frames of 9 atoms in float32
    assert not (tmp_path / "l.xyz").exists()


@pytest.mark.parametrize("engine", ["openmm", "ase"])
def test_nve_drift(write_config, tmp_path, engine):
    outputs = {"csv": "e.csv", "plot": "e.png", "trajectory": None}
    path = write_config(engine=engine, ensemble="nve", timestep_fs=0.25, steps=60, report_interval=20, outputs=outputs)
    assert main(["md", path]) == 0
    _, values = read_csv(tmp_path / "e.csv")
    total = values[:, 4]
    assert np.abs(total - total[0]).max() / 9 < 1e-4  # eV/atom over 15 fs
    assert values[:, 3].std() > 0  # it did move


@pytest.mark.parametrize("engine", ["openmm", "ase"])
def test_npt_water_box(write_config, tmp_path, engine):
    outputs = {"csv": "e.csv", "plot": "e.png", "trajectory": "t.xyz"}
    path = write_config(
        engine=engine, ensemble="npt", structure={"water_box": 8}, steps=4, report_interval=2, barostat_interval=1, outputs=outputs
    )
    assert main(["md", path]) == 0
    header, values = read_csv(tmp_path / "e.csv")
    assert header == columns(True) and values.shape == (3, 7)
    assert np.isfinite(values).all()
    assert len(set(values[:, 6])) > 1  # the barostat moved the box
    frames = ase.io.read(tmp_path / "t.xyz", ":")
    assert frames[0].pbc.all() and frames[0].get_volume() == pytest.approx(values[0, 6])


@pytest.mark.parametrize("engine", ["openmm", "ase"])
def test_explosion_guard(write_config, tmp_path, capsys, engine):
    outputs = {"csv": "e.csv", "plot": None, "trajectory": "t.xyz", "last_frame": "last.xyz"}
    settings = dict(timestep_fs=20.0, temperature_K=5000.0, steps=40, report_interval=2, max_energy_change_per_atom_eV=1e-3)
    path = write_config(engine=engine, ensemble="nve", outputs=outputs, **settings)
    assert main(["md", path]) == 1
    err = capsys.readouterr().err
    assert "stopped before step" in err and "last.xyz" in err
    last = ase.io.read(tmp_path / "last.xyz")
    good = ase.io.read(tmp_path / "t.xyz", -1)
    assert np.allclose(last.positions, good.positions)


@pytest.mark.parametrize("engine", ["openmm", "ase"])
def test_minimization_lowers_the_starting_energy(write_config, tmp_path, engine):
    outputs = {"csv": "e.csv", "plot": None, "trajectory": None}
    energies = []
    for iterations in (0, 30):
        path = write_config(engine=engine, minimize_iterations=iterations, steps=1, report_interval=1, outputs=outputs)
        assert main(["md", path]) == 0
        energies.append(read_csv(tmp_path / "e.csv")[1][0, 2])
    assert energies[1] < energies[0] - 1e-3  # eV


def test_torch_backend(write_config, tmp_path):
    from mlff.engines.openmm import openmmtorch_or_error

    try:
        openmmtorch_or_error()
    except RuntimeError as error:
        pytest.skip(str(error))
    outputs = {"csv": "e.csv", "plot": None, "trajectory": None}
    path = write_config(engine="openmm", backend="torch", steps=4, report_interval=2, outputs=outputs)
    assert main(["md", path]) == 0
    assert read_csv(tmp_path / "e.csv")[1].shape == (3, 6)


#: Overrides that make each md_runs input small (the water box) or different (seed).
SMALL_RUNS = {
    "water_box": ["structure.water_box=8"],
    "ethanol_in_water": ["structure.padding_nm=1.0", "mm_cutoff_nm=0.7", "minimize_iterations=5"],
}


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(MD_RUNS, "*.yaml"))), ids=os.path.basename)
def test_md_runs_run(path, potential_file, tmp_path):
    stem = os.path.splitext(os.path.basename(path))[0]
    overrides = [f"potential={potential_file}", "steps=2", "report_interval=1", "progress=false"]
    overrides += next((small for prefix, small in SMALL_RUNS.items() if stem.startswith(prefix)), ["seed=1"])
    overrides += [f"outputs.{key}={tmp_path / (stem + suffix)}" for key, suffix in
                  [("csv", ".csv"), ("plot", ".png"), ("last_frame", "_last.xyz")]]
    trajectory = ".dcd" if "openmm" in stem else ".xyz"
    overrides.append(f"outputs.trajectory={tmp_path / (stem + trajectory)}")
    assert main(["md", path, *overrides]) == 0
    assert (tmp_path / (stem + trajectory)).exists() and (tmp_path / (stem + ".png")).exists()
