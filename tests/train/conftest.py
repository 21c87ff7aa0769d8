"""Tiny labelled data sets for the training tests: Cu/Al cells labelled by ASE's EMT.

Everything is made here, in a temporary directory: no data files in the repository.
"""

import os
from typing import Any, Dict, List

import ase.io
import numpy as np
import pytest
import yaml
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

#: A tiny SchNet: the whole training directory must run in well under two minutes.
TINY_MODEL = {"family": "schnet", "cutoff": 3.5, "n_features": 8, "n_filters": 8, "n_interactions": 1, "n_basis": 6}


def emt_configurations(n: int, seed: int = 0, elements=("Cu", "Al")) -> List[Any]:
    """``n`` rattled, strained 4-atom fcc cells of Cu and Al, with EMT energy, forces and stress."""
    rng = np.random.default_rng(seed)
    frames = []
    for index in range(n):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        symbols = rng.choice(elements, size=len(atoms))
        atoms.set_chemical_symbols(list(symbols))
        strain = np.eye(3) + rng.normal(0.0, 0.02, (3, 3))
        atoms.set_cell(atoms.get_cell() @ strain, scale_atoms=True)
        atoms.rattle(stdev=0.08, seed=int(rng.integers(1 << 30)))
        atoms.calc = EMT()
        results = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces(), "stress": atoms.get_stress()}
        labelled = atoms.copy()
        labelled.calc = SinglePointCalculator(labelled, **results)
        labelled.info["config_type"] = "bulk" if index % 2 else "rattled"
        frames.append(labelled)
    return frames


def write_config(directory: str, settings: Dict[str, Any], name: str = "config.yaml") -> str:
    path = os.path.join(directory, name)
    with open(path, "w") as handle:
        yaml.safe_dump(settings, handle)
    return path


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> str:
    """``train.xyz`` (24 configs) and ``test.xyz`` (6 configs) of EMT Cu/Al."""
    directory = str(tmp_path_factory.mktemp("data"))
    ase.io.write(os.path.join(directory, "train.xyz"), emt_configurations(24, seed=0))
    ase.io.write(os.path.join(directory, "test.xyz"), emt_configurations(6, seed=1))
    return directory


def base_settings(data_dir: str, output_dir: str, **training: Any) -> Dict[str, Any]:
    """A complete, small config (as a plain dict) training TINY_MODEL on ``data_dir``."""
    recipe = {"epochs": 3, "batch_size": 4, "learning_rate": 0.005, "energy_weight": 1.0, "forces_weight": 10.0, "ema_decay": 0.5}
    recipe.update(training)
    return {
        "seed": 1,
        "dtype": "float64",
        "output_dir": output_dir,
        "deploy": False,
        "plots": False,  # drawing takes seconds: tests/train/test_outputs.py checks the plots
        "model": dict(TINY_MODEL),
        "data": {"train": [os.path.join(data_dir, "train.xyz")], "test": [os.path.join(data_dir, "test.xyz")], "validation_count": 4},
        "training": recipe,
    }
