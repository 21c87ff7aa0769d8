"""What a run writes beside its checkpoints: TensorBoard events that match log.csv, PNG learning
curves and parity plots of the right data, and `mlff eval`'s parity plot."""

import os

import ase.io
import numpy as np
import pytest
import torch

from mlff.cli import main
from mlff.graph.atomic_graph import from_atoms
from mlff.train import plots
from mlff.train.checkpoint import load_checkpoint
from mlff.train.config import load_config
from mlff.train.dataset import build_samples, read_configurations
from mlff.train.evaluate import metrics, potential_predictor, predictions
from mlff.train.logs import read_csv, tensorboard_tag
from mlff.train.trainer import _Trainer, train
from tests.train.conftest import base_settings, write_config

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def config_for(data_dir, tmp_path, name="run", overrides=(), **training):
    raw = base_settings(data_dir, str(tmp_path / name), **training)
    return load_config(write_config(str(tmp_path), raw, f"{name}.yaml"), list(overrides))


def assert_png(path, min_width=300):
    with open(path, "rb") as handle:
        assert handle.read(8) == PNG_SIGNATURE, f"{path} is not a PNG"
    from matplotlib.image import imread

    image = imread(path)
    assert image.ndim == 3 and image.shape[1] >= min_width
    assert image[..., :3].std() > 0.01  # something is drawn


def scalars(directory):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(directory)
    events.Reload()
    return {tag: [(s.step, s.value) for s in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_tensorboard_events_match_the_csv_log_across_a_resume(data_dir, tmp_path, monkeypatch):
    config = config_for(data_dir, tmp_path, epochs=3)
    original_save = _Trainer._save

    def stop_before_last(self, path):
        if self.epoch == 2 and path.endswith("last.pt"):
            raise KeyboardInterrupt  # killed after logging epoch 2, before its checkpoint
        original_save(self, path)

    monkeypatch.setattr(_Trainer, "_save", stop_before_last)
    with pytest.raises(KeyboardInterrupt):
        train(config)
    monkeypatch.setattr(_Trainer, "_save", original_save)
    train(config, resume=True)  # repeats epoch 2: its first events must disappear

    rows = read_csv(os.path.join(config.output_dir, "log.csv"))
    found = scalars(os.path.join(config.output_dir, "tensorboard"))
    assert {"train/loss", "train/loss_forces", "validation/loss", "validation/forces_mae", "learning_rate", "seconds"} <= set(found)
    for column in rows[0]:
        tag = tensorboard_tag(column)
        if tag is None:
            continue
        assert [step for step, _ in found[tag]] == [1, 2, 3], tag
        assert [value for _, value in found[tag]] == pytest.approx([row[column] for row in rows], rel=1e-6), tag


def test_tensorboard_tags():
    assert tensorboard_tag("train_loss_energy") == "train/loss_energy"
    assert tensorboard_tag("validation_energy_per_atom_mae") == "validation/energy_per_atom_mae"
    assert tensorboard_tag("learning_rate") == "learning_rate"
    assert tensorboard_tag("epoch") is None


def test_training_writes_learning_curves_and_parity_plots_of_its_data(data_dir, tmp_path):
    config = config_for(data_dir, tmp_path, overrides=["plots=true"], epochs=3, second_stage={"start_epoch": 3, "energy_weight": 10.0})
    results = train(config)
    output = config.output_dir
    for name in ("learning_curves.png", "parity_validation.png", "parity_test.png"):
        assert_png(os.path.join(output, name))

    # the learning curves plot log.csv: losses, validation errors in meV, the stage boundary
    rows = read_csv(os.path.join(output, "log.csv"))
    figure = plots.learning_curves_figure(rows)
    losses, errors, rates = figure.axes
    assert losses.get_yscale() == errors.get_yscale() == rates.get_yscale() == "log"
    lines = {line.get_label(): line for line in losses.get_lines() + errors.get_lines()}
    np.testing.assert_array_equal(lines["training"].get_xdata(), [1, 2, 3])
    np.testing.assert_allclose(lines["training"].get_ydata(), [row["train_loss"] for row in rows])
    np.testing.assert_allclose(lines["validation"].get_ydata(), [row["validation_loss"] for row in rows])
    np.testing.assert_allclose(lines["F MAE [meV/A]"].get_ydata(), [1000 * row["validation_forces_mae"] for row in rows])
    assert lines["second stage"].get_xdata()[0] == 3

    # the parity data: references are the file's labels, predictions the best weights' own
    best, _ = load_checkpoint(os.path.join(output, "best.pt"))
    test_file = os.path.join(data_dir, "test.xyz")
    configurations = read_configurations([test_file])
    values = predictions(potential_predictor(best), build_samples(configurations, best.cutoff, torch.float64), batch_size=4)
    frames = ase.io.read(test_file, ":")
    reference_energy = [atoms.get_potential_energy() / len(atoms) for atoms in frames]
    np.testing.assert_allclose(values["energy_per_atom"][0], reference_energy)
    np.testing.assert_allclose(values["forces"][0], np.concatenate([atoms.get_forces().reshape(-1) for atoms in frames]))
    one_by_one = [float(best(from_atoms(atoms, best.cutoff), compute_forces=False)["energy"].detach()) / len(atoms) for atoms in frames]
    np.testing.assert_allclose(values["energy_per_atom"][1], one_by_one, rtol=1e-10)
    assert metrics(values) == pytest.approx(results["test"], rel=1e-9)

    figure = plots.parity_figure(values)
    energy_axes, forces_axes, stress_axes = figure.axes
    np.testing.assert_allclose(energy_axes.collections[0].get_offsets(), np.column_stack(values["energy_per_atom"]))
    np.testing.assert_allclose(forces_axes.collections[0].get_offsets(), np.column_stack(values["forces"]))
    assert "MAE" in forces_axes.get_title() and "stress" in stress_axes.get_title()


def test_parity_figure_needs_labels():
    with pytest.raises(ValueError, match="no labelled energies"):
        plots.parity_figure({"forces": (np.zeros(0), np.zeros(0))})


def test_cli_eval_writes_a_parity_plot(data_dir, tmp_path, capsys):
    config = config_for(data_dir, tmp_path, epochs=1)
    train(config)
    capsys.readouterr()
    folder = tmp_path / "eval plots"
    checkpoint = os.path.join(config.output_dir, "best.pt")
    assert main(["eval", checkpoint, os.path.join(data_dir, "test.xyz"), "--plot-dir", str(folder)]) == 0
    assert f"parity plot: {folder / 'parity.png'}" in capsys.readouterr().out
    assert_png(str(folder / "parity.png"))
