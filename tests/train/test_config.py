"""Config validation: every mistake is reported before any work, naming the key."""

import os

import pytest

from mlff.train.config import load_config
from tests.train.conftest import base_settings, write_config


def settings(data_dir, tmp_path, **training):
    return base_settings(data_dir, str(tmp_path / "out"), **training)


def test_valid_config_loads_with_overrides(data_dir, tmp_path):
    path = write_config(str(tmp_path), settings(data_dir, tmp_path))
    config = load_config(path, ["training.epochs=7", "training.scheduler=cosine", "model.n_features=4", "seed=3"])
    assert config.training.epochs == 7
    assert config.training.scheduler == "cosine"
    assert config.model["n_features"] == 4
    assert config.seed == 3
    assert config.family == "schnet"


def test_exponent_numbers_without_a_decimal_point_are_numbers(data_dir, tmp_path):
    """``5e-4`` is a float as in YAML 1.2 (PyYAML alone reads it as the string "5e-4")."""
    path = write_config(str(tmp_path), settings(data_dir, tmp_path))
    with open(path) as handle:
        text = handle.read().replace("learning_rate: 0.005", "learning_rate: 5e-4")
    assert "learning_rate: 5e-4" in text
    with open(path, "w") as handle:
        handle.write(text)
    config = load_config(path, ["training.min_learning_rate=1e-12", "training.forces_weight=1E3"])
    assert config.training.learning_rate == 5e-4
    assert config.training.min_learning_rate == 1e-12
    assert config.training.forces_weight == 1000.0


def test_relative_paths_are_relative_to_the_config_file(data_dir, tmp_path):
    raw = settings(data_dir, tmp_path)
    raw["data"]["train"] = os.path.relpath(os.path.join(data_dir, "train.xyz"), str(tmp_path))
    raw["output_dir"] = "out"
    config = load_config(write_config(str(tmp_path), raw))
    assert config.data.train == (os.path.join(data_dir, "train.xyz"),)
    assert config.output_dir == str(tmp_path / "out")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda raw: raw.update(learning_rate=0.1), "unknown key(s) ['learning_rate']"),
        (lambda raw: raw["training"].update(lerning_rate=0.1), "training: unknown key(s) ['lerning_rate']"),
        (lambda raw: raw["data"].update(trian="x.xyz"), "data: unknown key(s) ['trian']"),
        (lambda raw: raw["model"].update(n_featurs=3), "n_featurs"),
        (lambda raw: raw["model"].update(family="transformer"), "model.family 'transformer' is unknown"),
        (lambda raw: raw["model"].update(cutoff=-1.0), "cutoff must be positive"),
        (lambda raw: raw["training"].update(epochs=0), "epochs must be >= 1"),
        (lambda raw: raw["training"].update(learning_rate=-1e-3), "learning_rate must be positive"),
        (lambda raw: raw["training"].update(ema_decay=1.0), "ema_decay must be in [0, 1)"),
        (lambda raw: raw["training"].update(loss="l1"), "loss must be one of"),
        (lambda raw: raw["training"].update(energy_weight=0, forces_weight=0), "at least one of"),
        (lambda raw: raw["training"].update(batch_size="four"), "batch_size must be a number"),
        (lambda raw: raw["data"].update(validation_count=None, validation_fraction=1.5), "validation_fraction must be in [0, 1)"),
        (lambda raw: raw["data"].update(validation_fraction=0.2), "not both"),
        (lambda raw: raw.update(dtype="float16"), "dtype must be one of"),
        (lambda raw: raw["data"].update(reference_energies="magic"), "data.reference_energies"),
        (lambda raw: raw.pop("model"), "'model' is required"),
    ],
)
def test_bad_configs_raise_clear_errors(data_dir, tmp_path, change, message):
    raw = settings(data_dir, tmp_path)
    change(raw)
    path = write_config(str(tmp_path), raw)
    with pytest.raises(ValueError) as error:
        load_config(path)
    assert message in str(error.value)


def test_missing_data_file(data_dir, tmp_path):
    raw = settings(data_dir, tmp_path)
    raw["data"]["test"] = [str(tmp_path / "nowhere.xyz")]
    with pytest.raises(FileNotFoundError, match="nowhere.xyz does not exist"):
        load_config(write_config(str(tmp_path), raw))


def test_missing_config_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="config file"):
        load_config(str(tmp_path / "absent.yaml"))


def test_bad_override(data_dir, tmp_path):
    path = write_config(str(tmp_path), settings(data_dir, tmp_path))
    with pytest.raises(ValueError, match="key=value"):
        load_config(path, ["training.epochs"])
    with pytest.raises(ValueError, match="unknown key"):
        load_config(path, ["training.epoch=3"])


def test_species_in_test_not_in_train(data_dir, tmp_path):
    import ase.io

    from mlff.train.splits import load_splits
    from tests.train.conftest import emt_configurations

    only_cu = str(tmp_path / "cu.xyz")
    ase.io.write(only_cu, emt_configurations(8, seed=5, elements=("Cu",)))
    raw = settings(data_dir, tmp_path)
    raw["data"]["train"] = [only_cu]
    config = load_config(write_config(str(tmp_path), raw))
    with pytest.raises(ValueError, match=r"test data contain species \[13\]"):
        load_splits(config)
