"""Every model family has a commented example config in configs/, and it trains."""

import json
import os
import re

import pytest

from mlff.models import available
from mlff.train.config import load_config
from mlff.train.trainer import train
from tests.models.conftest import SMALL

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "configs")


@pytest.mark.parametrize("family", available())
def test_example_config_validates_and_trains_one_epoch(family, data_dir, tmp_path):
    path = os.path.join(CONFIGS, f"{family}.yaml")
    assert os.path.isfile(path), f"no example config for model family {family!r}"
    small = {key: list(value) if isinstance(value, tuple) else value for key, value in SMALL[family].items()}
    small.pop("avg_num_neighbors", None)  # measured on the data
    overrides = [f"model.{key}={json.dumps(value)}" for key, value in small.items()] + [
        f"data.train={os.path.join(data_dir, 'train.xyz')}",
        "data.validation_fraction=0.2",
        f"output_dir={tmp_path / 'out'}",
        "model.cutoff=3.5",
        "training.epochs=1",
        "training.batch_size=12",
        "deploy=false",
        "plots=false",
    ]
    config = load_config(path, overrides)
    assert config.family == family
    results = train(config)
    assert results["epochs"] == 1 and results["validation"]["forces_mae"] > 0


@pytest.mark.parametrize("family", available())
def test_commented_second_stage_is_valid_when_uncommented(family, data_dir, tmp_path):
    with open(os.path.join(CONFIGS, f"{family}.yaml")) as handle:
        text = handle.read()
    assert "  # second_stage:" in text and "max_minutes:" in text
    text = re.sub(r"^  # (second_stage:.*)$", r"  \1", text, flags=re.M)
    text = re.sub(r"^  #   (\w+:.*)$", r"    \1", text, flags=re.M)
    path = tmp_path / "uncommented.yaml"
    path.write_text(text)
    config = load_config(str(path), [f"data.train={os.path.join(data_dir, 'train.xyz')}"])
    stage = config.training.second_stage
    assert stage is not None and stage.start_fraction == 0.8 and stage.learning_rate == 0.001
    assert config.plots and config.training.max_minutes is None
