"""The time budget (training.max_minutes) and the second stage (training.second_stage):
validation of their keys, what they do to the run, and exact resume across them."""

import csv
import os

import ase.io
import pytest
import torch
from ase.calculators.singlepoint import SinglePointCalculator

from mlff.train.config import SecondStageConfig, load_config
from mlff.train.ema import ExponentialMovingAverage
from mlff.train.trainer import _Trainer, train
from tests.train.conftest import base_settings, emt_configurations, write_config


def config_for(data_dir, tmp_path, name="run", overrides=(), **training):
    raw = base_settings(data_dir, str(tmp_path / name), **training)
    return load_config(write_config(str(tmp_path), raw, f"{name}.yaml"), list(overrides))


def rows_of(output_dir):
    with open(os.path.join(output_dir, "log.csv")) as handle:
        return list(csv.DictReader(handle))


def training_state(output_dir, name="last.pt"):
    return torch.load(os.path.join(output_dir, name), weights_only=True)["training_state"]


def assert_same_weights(dir_a, dir_b):
    a, b = training_state(dir_a), training_state(dir_b)
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert a["optimizer"]["param_groups"][0]["lr"] == b["optimizer"]["param_groups"][0]["lr"]


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stage, message",
    [
        ({"energy_weight": 100.0}, "exactly one of start_epoch or start_fraction"),
        ({"start_epoch": 3, "start_fraction": 0.5}, "exactly one of start_epoch or start_fraction"),
        ({"start_epoch": 1}, r"start_epoch must be in \[2, epochs=10\]"),
        ({"start_epoch": 11}, r"start_epoch must be in \[2, epochs=10\]"),
        ({"start_fraction": 1.0}, r"start_fraction must be in \(0, 1\)"),
        ({"start_fraction": 0.5, "energy_weight": -1.0}, "energy_weight must be >= 0"),
        ({"start_fraction": 0.5, "learning_rate": 0.0}, "learning_rate must be positive"),
        ({"start_fraction": 0.5, "energy_weight": 0, "forces_weight": 0}, "at least one of its loss weights"),
        ({"start_fraction": 0.5, "swa": True}, r"unknown key\(s\) \['swa'\]"),
        ({"start_fraction": "late"}, "start_fraction must be a number"),
        ("yes", "must be a mapping"),
    ],
)
def test_bad_second_stage_is_refused(data_dir, tmp_path, stage, message):
    with pytest.raises(ValueError, match=message):
        config_for(data_dir, tmp_path, epochs=10, second_stage=stage)


@pytest.mark.parametrize("value", [0, -1.0, "1h", True, float("inf")])
def test_bad_max_minutes_is_refused(data_dir, tmp_path, value):
    with pytest.raises(ValueError, match="max_minutes"):
        config_for(data_dir, tmp_path, max_minutes=value)


def test_plots_must_be_true_or_false(data_dir, tmp_path):
    with pytest.raises(ValueError, match="plots must be true or false"):
        config_for(data_dir, tmp_path, overrides=["plots=sometimes"])


def test_second_stage_weights_require_their_labels(data_dir, tmp_path):
    frames = emt_configurations(8, seed=3)
    for atoms in frames:  # energies and forces, no stress
        atoms.calc = SinglePointCalculator(atoms, energy=atoms.get_potential_energy(), forces=atoms.get_forces())
    no_stress = str(tmp_path / "no_stress.xyz")
    ase.io.write(no_stress, frames)
    config = config_for(data_dir, tmp_path, overrides=[f"data.train={no_stress}"], second_stage={"start_fraction": 0.5, "stress_weight": 1.0})
    assert config.training.uses_stress() and config.training.stress_weight == 0
    with pytest.raises(ValueError, match="second_stage.stress_weight"):
        train(config)


def test_second_stage_start():
    by_epoch = SecondStageConfig(start_epoch=7)
    assert [by_epoch.due(epoch, 10) for epoch in (6, 7, 10)] == [False, True, True]
    by_fraction = SecondStageConfig(start_fraction=0.8)
    assert by_fraction.first_epoch(10) == 9 and by_fraction.first_epoch(7) == 6
    # under a time budget, whichever comes first: 80% of the epochs or of the minutes
    assert not by_fraction.due(2, 10, spent_minutes=7.9, max_minutes=10.0)
    assert by_fraction.due(2, 10, spent_minutes=8.0, max_minutes=10.0)
    assert not by_epoch.due(2, 10, spent_minutes=9.0, max_minutes=10.0)  # start_epoch is epochs only


# --- the time budget -------------------------------------------------------------------------


def test_time_budget_stops_after_the_crossing_epoch_then_finishes(data_dir, tmp_path):
    config = config_for(data_dir, tmp_path, "budget", overrides=["deploy=true", "plots=true"], epochs=50, max_minutes=1e-6)
    results = train(config)
    assert results["epochs"] == 1 and len(rows_of(config.output_dir)) == 1
    for name in ("best.pt", "metrics.json", "potential.pt", "learning_curves.png"):
        assert os.path.isfile(os.path.join(config.output_dir, name)), name
    assert results["training_minutes"] > 1e-6
    assert training_state(config.output_dir)["elapsed_seconds"] == pytest.approx(60 * results["training_minutes"])

    # the budget is the run's, over resumes: resuming with it spent trains nothing more
    assert train(config, resume=True)["epochs"] == 1


def test_resume_after_the_budget_continues_exactly(data_dir, tmp_path):
    settings = dict(epochs=3, scheduler="cosine", warmup_epochs=1, min_learning_rate=1e-4)
    full = config_for(data_dir, tmp_path, "full", **settings)
    train(full)
    stopped = config_for(data_dir, tmp_path, "stopped", max_minutes=1e-6, **settings)
    assert train(stopped)["epochs"] == 1
    longer = config_for(data_dir, tmp_path, "stopped", overrides=["training.max_minutes=null"], **settings)
    assert train(longer, resume=True)["epochs"] == 3
    assert_same_weights(full.output_dir, stopped.output_dir)
    assert [r["train_loss"] for r in rows_of(full.output_dir)] == [r["train_loss"] for r in rows_of(stopped.output_dir)]


# --- the second stage ------------------------------------------------------------------------

STAGE = {"start_epoch": 3, "energy_weight": 100.0, "forces_weight": 1.0, "learning_rate": 2e-4}


def test_second_stage_reweights_the_loss_and_holds_the_learning_rate(data_dir, tmp_path):
    config = config_for(data_dir, tmp_path, epochs=4, learning_rate=0.01, scheduler="cosine", second_stage=STAGE)
    results = train(config)
    rows = rows_of(config.output_dir)
    assert [int(r["stage"]) for r in rows] == [1, 1, 2, 2]
    assert [float(r["learning_rate"]) for r in rows[2:]] == [2e-4, 2e-4]
    assert float(rows[1]["learning_rate"]) != 2e-4
    # MSE loss with unit configuration weights: w_E RMSE(E/atom)^2 + w_F RMSE(F)^2
    for row, (w_energy, w_forces) in zip(rows, [(1.0, 10.0)] * 2 + [(100.0, 1.0)] * 2):
        expected = w_energy * float(row["validation_energy_per_atom_rmse"]) ** 2 + w_forces * float(row["validation_forces_rmse"]) ** 2
        assert float(row["validation_loss"]) == pytest.approx(expected, rel=1e-9)
    assert results["best_epoch"] >= 3  # best.pt is chosen among second-stage epochs
    assert training_state(config.output_dir)["second_stage_epoch"] == 3


def test_resume_inside_the_second_stage_continues_exactly(data_dir, tmp_path, monkeypatch):
    settings = dict(epochs=4, learning_rate=0.01, second_stage=STAGE)
    full = config_for(data_dir, tmp_path, "full", **settings)
    train(full)
    split = config_for(data_dir, tmp_path, "split", **settings)
    original_save = _Trainer._save

    def save_then_stop(self, path):
        original_save(self, path)
        if self.epoch == 3 and path.endswith("last.pt"):
            raise KeyboardInterrupt  # killed right after the first second-stage epoch

    monkeypatch.setattr(_Trainer, "_save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        train(split)
    monkeypatch.setattr(_Trainer, "_save", original_save)
    train(split, resume=True)
    assert_same_weights(full.output_dir, split.output_dir)
    assert rows_of(full.output_dir) == [dict(r, seconds=a["seconds"]) for r, a in zip(rows_of(split.output_dir), rows_of(full.output_dir))]


def test_resume_in_second_stage_needs_the_section(data_dir, tmp_path):
    config = config_for(data_dir, tmp_path, epochs=3, second_stage={"start_epoch": 2})
    train(config)
    plain = config_for(data_dir, tmp_path, overrides=["training.second_stage=null", "training.epochs=4"], epochs=3)
    with pytest.raises(ValueError, match="restore that section"):
        train(plain, resume=True)


def test_checkpoints_without_the_new_state_still_resume(data_dir, tmp_path):
    config = config_for(data_dir, tmp_path, epochs=1)
    train(config)
    path = os.path.join(config.output_dir, "last.pt")
    state = torch.load(path, weights_only=True)
    for key in ("elapsed_seconds", "second_stage_epoch", "ema_updates"):
        del state["training_state"][key]
    torch.save(state, path)
    again = config_for(data_dir, tmp_path, overrides=["training.epochs=2"], epochs=1)
    assert train(again, resume=True)["epochs"] == 2


def test_moving_average_warms_up_then_keeps_its_decay():
    """d_n = min(decay, (1 + n) / (10 + n)): the first updates follow the trained weights."""
    trained = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(trained.weight)
    average = ExponentialMovingAverage(trained, 0.99)
    with torch.no_grad():
        trained.weight.fill_(1.0)
    average.update(trained)  # d_0 = 0.1
    assert average.module.weight.item() == pytest.approx(0.9)
    average.update(trained)  # d_1 = 2 / 11
    assert average.module.weight.item() == pytest.approx(1.0 - 0.1 * 2.0 / 11.0)
    for _ in range(2000):
        average.update(trained)
    assert average.current_decay() == 0.99
    assert ExponentialMovingAverage(trained, 0.0).current_decay() == 0.0
