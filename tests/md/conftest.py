"""Fixtures of the MD tests: a tiny deployed potential and a writer of MD configurations."""

import pytest
import torch
import yaml

import mlff
from tests.models.conftest import make_potential


@pytest.fixture(scope="session")
def potential_file(tmp_path_factory) -> str:
    """A small random SchNet (species H C N O Si, float64), deployed."""
    path = tmp_path_factory.mktemp("potential") / "schnet.pt"
    mlff.deploy(make_potential("schnet", torch.float64), str(path))
    return str(path)


@pytest.fixture
def write_config(tmp_path, potential_file):
    """Write an MD YAML in tmp_path from keyword settings (outputs in tmp_path); returns its path."""

    def write(name: str = "run.yaml", **settings) -> str:
        config = {
            "potential": potential_file,
            "structure": {"molecule": "ethanol"},
            "steps": 10,
            "report_interval": 5,
            "progress": False,
            "outputs": {"trajectory": "traj.xyz", "csv": "energies.csv", "plot": "energies.png", "last_frame": "last.xyz"},
        }
        config.update(settings)
        path = tmp_path / name
        path.write_text(yaml.safe_dump(config))
        return str(path)

    return write
