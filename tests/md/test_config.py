"""MD configurations: defaults, overrides, paths, and clear errors."""

import dataclasses
import glob
import os

import pytest

from mlff.md import load_config
from mlff.md.config import MDConfig

MD_RUNS = os.path.join(os.path.dirname(__file__), "..", "..", "md_runs")


def test_defaults_and_paths(write_config, tmp_path):
    config = load_config(write_config())
    assert isinstance(config, MDConfig)
    assert config.engine == "openmm" and config.ensemble == "nvt"
    assert config.outputs.csv == str(tmp_path / "energies.csv")  # relative to the YAML file
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.steps = 3


def test_overrides(write_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    overrides = ["steps=7", "engine=ase", "structure.molecule=H2O", "outputs.plot=null", "outputs.csv=x.csv"]
    config = load_config(write_config(), overrides)
    assert (config.steps, config.engine, config.structure.molecule, config.outputs.plot) == (7, "ase", "H2O", None)
    assert config.outputs.csv == str(tmp_path / "x.csv")


def test_exponent_numbers_are_numbers(write_config):
    config = load_config(write_config(), ["temperature_K=25e1", "timestep_fs=2E-1"])
    assert (config.temperature_K, config.timestep_fs) == (250.0, 0.2)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"thermostat": "nose"}, "unknown key"),
        ({"outputs": {"movie": "a.mp4"}}, "unknown key"),
        ({"ensemble": "nph"}, "ensemble must be one of"),
        ({"engine": "gromacs"}, "engine must be one of"),
        ({"timestep_fs": -1.0}, "timestep_fs must be positive"),
        ({"steps": 0}, "steps must be a positive integer"),
        ({"steps": 1.5}, "steps must be an integer"),
        ({"temperature_K": "hot"}, "temperature_K must be a number"),
        ({"structure": {"molecule": "ethanol", "water_box": 8}}, "exactly one of"),
        ({"structure": {"molecule": "unobtainium"}}, "is not a molecule"),
        ({"structure": {"water_box": 0}}, "positive number of molecules"),
        ({"outputs": {"trajectory": "t.pdb"}}, "outputs.trajectory must end in"),
        ({"minimize_iterations": -1}, "minimize_iterations must be an integer >= 0"),
        # a molecule in TIP3P water, ML on the molecule only
        ({"structure": {"solvated": "ethanol"}, "ml_atoms": "solute"}, "exactly one of padding_nm, box_nm"),
        ({"structure": {"solvated": "ethanol", "padding_nm": 1.0, "box_nm": 3.0}, "ml_atoms": "solute"},
         "exactly one of padding_nm"),
        ({"structure": {"solvated": "ethanol", "padding_nm": -1.0}, "ml_atoms": "solute"}, "padding_nm must be positive"),
        ({"structure": {"solvated": "ethanol", "box_nm": "big"}, "ml_atoms": "solute"}, "box_nm must be a number"),
        ({"structure": {"solvated": "unobtainium", "box_nm": 3.0}, "ml_atoms": "solute"}, "is not a molecule"),
        ({"structure": {"solvated": "ethanol", "box_nm": 3.0}}, "needs ml_atoms: solute"),
        ({"structure": {"molecule": "ethanol", "padding_nm": 1.0}}, "sizes the water box of structure.solvated"),
        ({"ml_atoms": "solute"}, "ml_atoms: solute needs structure.solvated"),
        ({"ml_atoms": "ligand"}, "ml_atoms must be one of"),
        ({"structure": {"solvated": "ethanol", "box_nm": 3.0}, "ml_atoms": "solute", "engine": "ase"},
         "needs engine: openmm"),
        ({"structure": {"solvated": "ethanol", "box_nm": 1.5}, "ml_atoms": "solute"}, "at least twice mm_cutoff_nm"),
        ({"mm_cutoff_nm": 0.0}, "mm_cutoff_nm must be positive"),
        ({"structure": {"solvated": "ethanol", "box_nm": 3.0}, "ml_atoms": "solute", "solute_charges": "gasteiger"},
         "solute_charges must be one of"),
    ],
)
def test_errors_are_clear(write_config, settings, message):
    with pytest.raises(ValueError, match=message):
        load_config(write_config(**settings))


def test_missing_files(write_config, tmp_path):
    with pytest.raises(FileNotFoundError, match="potential file"):
        load_config(write_config(potential="nowhere.pt"))
    with pytest.raises(FileNotFoundError, match="structure file"):
        load_config(write_config(structure={"file": "nowhere.xyz"}))
    with pytest.raises(FileNotFoundError, match="no MD configuration"):
        load_config(str(tmp_path / "absent.yaml"))
    with pytest.raises(ValueError, match="key=value"):
        load_config(write_config(), ["steps"])


def test_cli_reports_config_errors(write_config, capsys):
    from mlff.cli import main

    assert main(["md", write_config(ensemble="nph")]) == 1
    assert "ensemble must be one of" in capsys.readouterr().err


def test_solvated_config(write_config):
    settings = dict(structure={"solvated": "ethanol", "padding_nm": 1.2}, ml_atoms="solute", minimize_iterations=50)
    config = load_config(write_config(**settings))
    assert (config.structure.solvated, config.structure.padding_nm, config.structure.box_nm) == ("ethanol", 1.2, None)
    assert (config.ml_atoms, config.mm_cutoff_nm, config.minimize_iterations) == ("solute", 0.9, 50)
    assert load_config(write_config(), ["ml_atoms=all"]).ml_atoms == "all"


def test_md_runs_validate(potential_file):
    paths = sorted(glob.glob(os.path.join(MD_RUNS, "*.yaml")))
    assert len(paths) >= 6
    for path in paths:
        load_config(path, [f"potential={potential_file}"])
