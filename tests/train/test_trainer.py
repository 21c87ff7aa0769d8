"""Training end to end on tiny EMT data: the loss falls, resume is exact, kills are harmless,
and the CLI trains and evaluates checkpoints and deployed files."""

import csv
import io
import math
import os
import signal
import subprocess
import sys
import time

import ase.io
import pytest
import torch

import mlff.export
from mlff.cli import main
from mlff.export import read_metadata
from mlff.train.checkpoint import load_checkpoint, run_errors
from mlff.train.config import load_config
from mlff.train.trainer import _Trainer, train
from tests.train.conftest import TINY_MODEL, base_settings, emt_configurations, write_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def config_for(data_dir, tmp_path, name="run", overrides=(), **training):
    raw = base_settings(data_dir, str(tmp_path / name), **training)
    return load_config(write_config(str(tmp_path), raw, f"{name}.yaml"), list(overrides))


def history(output_dir):
    with open(os.path.join(output_dir, "log.csv")) as handle:
        return list(csv.DictReader(handle))


def test_loss_falls_and_outputs_are_written(data_dir, tmp_path):
    config = config_for(data_dir, tmp_path, epochs=8, learning_rate=0.01, stress_weight=1.0)
    results = train(config)
    rows = history(config.output_dir)
    assert len(rows) == 8
    losses = [float(row["train_loss"]) for row in rows]
    assert losses[-1] < 0.7 * losses[0]
    assert float(rows[-1]["validation_loss"]) < float(rows[0]["validation_loss"])
    for name in ("last.pt", "best.pt", "metrics.json"):
        assert os.path.isfile(os.path.join(config.output_dir, name))
    for split in ("validation", "test"):
        assert {"energy_per_atom_mae", "energy_rmse", "forces_mae", "stress_rmse"} <= set(results[split])
        assert all(math.isfinite(v) for v in results[split].values())


def _parameters(path):
    state = torch.load(path, weights_only=True)
    return state["potential"], state["training_state"]["model"], state["training_state"]["optimizer"]


def test_resume_continues_exactly(data_dir, tmp_path, monkeypatch):
    # AMSGrad's extra optimiser state and the moving average's warm-up (decay 0.99 warms up over
    # about 900 steps, so it is still warming at the interruption) must both be restored
    settings = dict(epochs=4, scheduler="cosine", warmup_epochs=1, min_learning_rate=1e-4, loss="huber", huber_delta=0.1, amsgrad=True, ema_decay=0.99)
    uninterrupted = config_for(data_dir, tmp_path, "full", **settings)
    train(uninterrupted)

    interrupted = config_for(data_dir, tmp_path, "split", **settings)
    original_save = _Trainer._save

    def save_then_stop(self, path):
        original_save(self, path)
        if self.epoch == 2 and path.endswith("last.pt"):
            raise KeyboardInterrupt  # as if killed right after the epoch-2 checkpoint

    monkeypatch.setattr(_Trainer, "_save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        train(interrupted)
    monkeypatch.setattr(_Trainer, "_save", original_save)
    assert len(history(interrupted.output_dir)) == 2
    train(interrupted, resume=True)

    ema_a, model_a, optimizer_a = _parameters(os.path.join(uninterrupted.output_dir, "last.pt"))
    ema_b, model_b, optimizer_b = _parameters(os.path.join(interrupted.output_dir, "last.pt"))
    for key in model_a:
        assert torch.equal(model_a[key], model_b[key]), key
        assert torch.equal(ema_a[key], ema_b[key]), key
    assert optimizer_a["param_groups"][0]["lr"] == optimizer_b["param_groups"][0]["lr"]
    rows_a, rows_b = history(uninterrupted.output_dir), history(interrupted.output_dir)
    assert [r["train_loss"] for r in rows_a] == [r["train_loss"] for r in rows_b]


def test_resume_without_checkpoint(data_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(config_for(data_dir, tmp_path), resume=True)


def test_killed_mid_run_leaves_an_intact_checkpoint(data_dir, tmp_path):
    raw = base_settings(data_dir, str(tmp_path / "killed"), epochs=1000)
    path = write_config(str(tmp_path), raw)
    process = subprocess.Popen([sys.executable, "-m", "mlff", "train", path], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    last = tmp_path / "killed" / "last.pt"
    try:
        deadline = time.time() + 180  # generous: a busy CI machine starts torch slowly
        while not last.exists() and time.time() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert last.exists(), process.stderr.read().decode() if process.poll() is not None else "no checkpoint after 180 s"
        time.sleep(0.7)  # somewhere inside a later epoch, possibly inside a checkpoint write
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    potential, state = load_checkpoint(str(last))
    done = state["training_state"]["epoch"]
    assert done >= 1
    config = load_config(path, [f"training.epochs={done + 1}"])
    results = train(config, resume=True)
    assert results["epochs"] == done + 1


def test_early_stopping(data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(_Trainer, "_validate", lambda self: (1.0, {}))  # never improves after epoch 1
    config = config_for(data_dir, tmp_path, epochs=10, early_stopping_patience=2)
    results = train(config)
    assert results["epochs"] == 3 and results["best_epoch"] == 1


def test_float32_training(data_dir, tmp_path):
    config = config_for(data_dir, tmp_path, overrides=["dtype=float32"], epochs=2, ema_decay=0.0)
    train(config)
    potential, _ = load_checkpoint(os.path.join(config.output_dir, "best.pt"))
    assert potential.scale.dtype == torch.float32


def test_cli_train_and_eval_on_checkpoint_and_deployed_file(data_dir, tmp_path, capsys):
    raw = base_settings(data_dir, str(tmp_path / "cli"), epochs=2)
    raw["deploy"] = True
    path = write_config(str(tmp_path), raw)
    assert main(["train", path, "training.batch_size=6"]) == 0
    out = capsys.readouterr().out
    assert "F MAE" in out and "validation" in out and "test" in out
    test_file = os.path.join(data_dir, "test.xyz")
    tables = []
    for name in ("best.pt", "potential.pt"):
        assert main(["eval", str(tmp_path / "cli" / name), test_file, "--no-plot"]) == 0
        tables.append(capsys.readouterr().out.splitlines()[-1])
    assert tables[0] == tables[1]  # same weights, same numbers (to 3 decimals in meV)

    # `mlff deploy` of the run's best.pt writes what training deployed: errors and data included
    run = tmp_path / "cli"
    assert main(["deploy", str(run / "best.pt"), "-o", str(tmp_path / "again.pt")]) == 0
    trained, again = read_metadata(str(run / "potential.pt")), read_metadata(str(tmp_path / "again.pt"))
    for key in ("test_errors", "validation_errors", "training_data_sha256", "training_files", "hyperparameters"):
        assert again[key] == trained[key], key
    assert trained["training_files"] == ["train.xyz"] and trained["test_errors"]["forces_mae"] > 0
    _, last = load_checkpoint(str(run / "last.pt"))
    assert run_errors(str(run / "last.pt"), last) is None  # metrics.json describes best.pt's weights only


def test_failed_deploy_keeps_the_run_and_says_how_to_redeploy(data_dir, tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("cannot script the model")

    monkeypatch.setattr(mlff.export, "deploy", fail)
    raw = base_settings(data_dir, str(tmp_path / "run"), epochs=1)
    raw["deploy"] = True
    with pytest.raises(RuntimeError, match=r"cannot script the model\nThe checkpoints.*deploy again with: mlff deploy .*best\.pt -o .*potential\.pt"):
        train(load_config(write_config(str(tmp_path), raw)))
    assert {"best.pt", "last.pt", "metrics.json"} <= set(os.listdir(tmp_path / "run"))


def test_cli_reports_errors_in_one_line(data_dir, tmp_path, capsys):
    raw = base_settings(data_dir, str(tmp_path / "bad"))
    raw["training"]["epoch"] = 3
    assert main(["train", write_config(str(tmp_path), raw)]) == 1
    assert "unknown key(s) ['epoch']" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "missing.pt"), os.path.join(data_dir, "test.xyz")]) == 1


def test_cli_bad_data_error_and_skip(data_dir, tmp_path, capsys):
    frames = emt_configurations(12, seed=7)
    positions = frames[5].get_positions()
    positions[2, 1] = float("nan")
    frames[5].set_positions(positions)
    bad = str(tmp_path / "bad.xyz")
    ase.io.write(bad, frames)
    raw = base_settings(data_dir, str(tmp_path / "skip"), epochs=1)
    raw["data"]["train"] = [bad]
    path = write_config(str(tmp_path), raw)
    assert main(["train", path]) == 1
    assert f"{bad}: configuration 5: positions contain NaN or inf" in capsys.readouterr().err
    with pytest.warns(UserWarning, match="skipped 1 bad configuration"):
        assert main(["train", path, "data.skip_bad=true"]) == 0


def test_resume_refuses_other_species(data_dir, tmp_path):
    config = config_for(data_dir, tmp_path, "species", epochs=1)
    train(config)
    only_cu = str(tmp_path / "cu.xyz")
    ase.io.write(only_cu, emt_configurations(10, seed=9, elements=("Cu",)))
    raw = base_settings(data_dir, config.output_dir, epochs=2)
    raw["data"] = {"train": [only_cu], "validation_count": 2}
    changed = load_config(write_config(str(tmp_path), raw, "changed.yaml"))
    with pytest.raises(ValueError, match="was trained for species"):
        train(changed, resume=True)


def test_deployed_file_records_the_training_data(data_dir, tmp_path):
    from mlff.export import read_metadata
    from mlff.train.splits import fingerprint, load_splits

    config = config_for(data_dir, tmp_path, epochs=1, overrides=["deploy=true"])
    results = train(config)
    metadata = read_metadata(os.path.join(config.output_dir, "potential.pt"))
    assert metadata["training_data_sha256"] == fingerprint(load_splits(config).train)
    assert metadata["test_errors"] == pytest.approx(results["test"])
    assert metadata["training_files"] == [os.path.basename(path) for path in config.data.train]
    # the hash follows the content: one changed label changes it
    configurations = load_splits(config).train
    configurations[0].energy += 1e-6
    assert fingerprint(configurations) != metadata["training_data_sha256"]


def test_resume_with_fewer_epochs_anneals_to_the_new_end(data_dir, tmp_path):
    settings = dict(scheduler="cosine", warmup_epochs=0, learning_rate=0.01, min_learning_rate=1e-4)
    config = config_for(data_dir, tmp_path, "long", epochs=20, **settings)
    original_save = _Trainer._save

    def save_then_stop(self, path):
        original_save(self, path)
        if self.epoch == 2 and path.endswith("last.pt"):
            raise KeyboardInterrupt

    _Trainer._save = save_then_stop
    try:
        with pytest.raises(KeyboardInterrupt):
            train(config)
    finally:
        _Trainer._save = original_save
    shorter = config_for(data_dir, tmp_path, "long", overrides=["training.epochs=4"], epochs=20, **settings)
    train(shorter, resume=True)
    rows = history(shorter.output_dir)
    assert len(rows) == 4
    # the cosine ends at min_learning_rate after the 4th epoch, not 16 epochs later
    assert float(rows[-1]["learning_rate"]) == pytest.approx(1e-4)


def test_initial_weights_start_a_new_run_from_a_checkpoint(data_dir, tmp_path):
    first = config_for(data_dir, tmp_path, "first", epochs=6, learning_rate=0.01)
    train(first)
    best = os.path.join(first.output_dir, "best.pt")
    trained, state = load_checkpoint(best)
    best_loss = state["metadata"]["best_validation_loss"]

    # a learning rate too small to move the weights: the new run validates as the checkpoint did
    # (the moving average starts at the loaded weights), far below an untrained model
    frozen = dict(epochs=1, learning_rate=1e-12, ema_decay=0.0)
    fine = config_for(data_dir, tmp_path, "fine", overrides=[f"training.initial_weights={best}"], **frozen)
    train(fine)
    scratch = config_for(data_dir, tmp_path, "scratch", **frozen)
    train(scratch)
    assert float(history(fine.output_dir)[0]["validation_loss"]) == pytest.approx(best_loss, rel=1e-6)
    assert float(history(scratch.output_dir)[0]["validation_loss"]) > 2 * best_loss
    # the model section may leave the architecture out: the checkpoint's (its cutoff included) is used
    raw = base_settings(data_dir, str(tmp_path / "bare"), initial_weights=best, **frozen)
    raw["model"] = {"family": "schnet"}
    bare = load_config(write_config(str(tmp_path), raw, "bare.yaml"))
    assert bare.hyperparameters == {}
    said = io.StringIO()
    train(bare, stream=said)
    assert f"(cutoff {TINY_MODEL['cutoff']} A)" in said.getvalue()
    assert float(history(bare.output_dir)[0]["validation_loss"]) == pytest.approx(best_loss, rel=1e-6)
    loaded, _ = load_checkpoint(os.path.join(fine.output_dir, "best.pt"))
    for name, value in trained.state_dict().items():  # statistics (E0, scale) included
        torch.testing.assert_close(loaded.state_dict()[name], value, rtol=0, atol=1e-9)  # Adam moves each weight by about lr per step


def test_initial_weights_from_a_deployed_potential(data_dir, tmp_path):
    """Fine-tuning starts from a deployed file (a shipped potentials/*.pt) as from its checkpoint."""
    first = config_for(data_dir, tmp_path, "first", overrides=["deploy=true"], epochs=4, learning_rate=0.01)
    train(first)
    deployed = os.path.join(first.output_dir, "potential.pt")
    _, state = load_checkpoint(os.path.join(first.output_dir, "best.pt"))
    frozen = dict(epochs=1, learning_rate=1e-12, ema_decay=0.0)
    said = io.StringIO()
    fine = config_for(data_dir, tmp_path, "fine", overrides=[f"training.initial_weights={deployed}"], **frozen)
    train(fine, stream=said)
    assert f"initial weights: {deployed} (a deployed potential)" in said.getvalue()
    best_loss = state["metadata"]["best_validation_loss"]
    assert float(history(fine.output_dir)[0]["validation_loss"]) == pytest.approx(best_loss, rel=1e-6)


def test_initial_weights_refuse_another_model(data_dir, tmp_path):
    first = config_for(data_dir, tmp_path, "first", epochs=1)
    train(first)
    best = os.path.join(first.output_dir, "best.pt")
    wider = config_for(data_dir, tmp_path, "wider", overrides=[f"training.initial_weights={best}", "model.n_features=16"])
    with pytest.raises(ValueError, match="n_features: config 16, checkpoint 8"):
        train(wider)
    raw = base_settings(data_dir, str(tmp_path / "painn"), epochs=1, initial_weights=best)
    raw["model"] = {"family": "painn", "cutoff": 3.5, "n_features": 8, "n_interactions": 1, "n_basis": 6}
    other_family = load_config(write_config(str(tmp_path), raw, "painn.yaml"))
    with pytest.raises(ValueError, match="holds a 'schnet' model"):
        train(other_family)
    with_nickel = str(tmp_path / "cu_ni.xyz")
    ase.io.write(with_nickel, emt_configurations(6, seed=3, elements=("Cu", "Ni")))
    raw = base_settings(data_dir, str(tmp_path / "ni"), epochs=1, initial_weights=best)
    raw["data"] = {"train": [with_nickel], "validation_count": 2}
    with pytest.raises(ValueError, match=r"initial_weights: the model's species \[13, 29\] lacks species \[28\]"):
        train(load_config(write_config(str(tmp_path), raw, "ni.yaml")))
    with pytest.raises(FileNotFoundError, match="initial_weights: checkpoint .*missing.pt does not exist"):
        config_for(data_dir, tmp_path, "missing", initial_weights=str(tmp_path / "missing.pt"))
