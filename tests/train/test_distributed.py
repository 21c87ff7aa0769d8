"""Training on several processes: sharding, and 2 CPU processes under torchrun (gloo).

On the EMT cells (all of 4 atoms) 2 ranks with batches of 2 average exactly the gradient one
process gets from batches of 4 made of the same samples, so the 2-process run must reproduce
the 1-process run, beside keeping its ranks' parameters identical.
"""

import csv
import json
import os
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from mlff.train.config import load_config
from mlff.train.dataset import shard
from mlff.train.distributed import from_environment
from mlff.train.trainer import train
from tests.train.conftest import base_settings, write_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Runs `mlff train` through the CLI under torchrun; after training, every rank saves what it
# holds (the trained and EMA weights) so the test can compare the ranks.
RANK_DUMP = textwrap.dedent(
    """
    import sys

    import torch

    from mlff.cli import main
    from mlff.train import trainer

    close = trainer._Trainer.close

    def close_and_dump(self):
        close(self)
        state = {"model": self.potential.state_dict(), "ema": self.ema.module.state_dict(), "epoch": self.epoch}
        torch.save(state, f"{sys.argv[1]}/rank{self.context.rank}.pt")

    trainer._Trainer.close = close_and_dump
    sys.exit(main(["train", *sys.argv[2:]]))
    """
)


def _environment():
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return env


def _rows(output_dir):
    with open(os.path.join(output_dir, "log.csv")) as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("n, world_size", [(20, 2), (21, 2), (7, 3), (2, 4), (5, 1)])
def test_shards_are_disjoint_equal_and_cover_the_order(n, world_size):
    order = torch.randperm(n, generator=torch.Generator().manual_seed(n)).tolist()
    parts = [shard(order, rank, world_size) for rank in range(world_size)]
    assert len({len(part) for part in parts}) == 1  # the same number of steps on every rank
    assert len(parts[0]) == -(-n // world_size)
    assert sorted(set(sum(parts, []))) == sorted(order)  # every sample, every epoch
    if n % world_size == 0:
        assert sorted(sum(parts, [])) == sorted(order)  # disjoint
    assert shard(order, 0, 1) == order


def test_shard_rejects_a_rank_outside_the_world():
    with pytest.raises(ValueError, match="rank 2 is not in"):
        shard([0, 1, 2], 2, 2)


def test_environment_without_torchrun_is_one_process(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    context = from_environment()
    assert (context.rank, context.world_size, context.is_main, context.distributed) == (0, 1, True, False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "5")
    with pytest.raises(ValueError, match="RANK=5 does not fit WORLD_SIZE=2"):
        from_environment()


@pytest.mark.slow
def test_two_processes_stay_identical_and_match_one_process(data_dir, tmp_path):
    epochs = 3
    # the last epoch fits forces alone: parameters that only shift energies get no gradient then
    stage = {"start_epoch": 3, "energy_weight": 0.0, "forces_weight": 10.0}
    raw = base_settings(data_dir, str(tmp_path / "ddp"), epochs=epochs, batch_size=2, learning_rate=0.01, second_stage=stage)
    raw["data"]["validation_count"] = 4  # 20 training cells of 4 atoms: 5 steps of 2 x 2 cells per epoch
    path = write_config(str(tmp_path), raw, "ddp.yaml")
    script = tmp_path / "rank_dump.py"
    script.write_text(RANK_DUMP)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script), str(tmp_path), path]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=_environment(), capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-3000:]

    ranks = [torch.load(tmp_path / f"rank{rank}.pt", weights_only=True) for rank in (0, 1)]
    assert ranks[0]["epoch"] == ranks[1]["epoch"] == epochs
    for part in ("model", "ema"):
        for key, value in ranks[0][part].items():
            assert torch.equal(value, ranks[1][part][key]), f"{part} {key} differs between ranks"

    rows = _rows(raw["output_dir"])
    losses = [float(row["train_loss"]) for row in rows]
    force_losses = [float(row["train_loss_forces"]) for row in rows]  # unweighted: comparable across stages
    assert len(rows) == epochs and force_losses[-1] < 0.8 * force_losses[0]
    assert [int(row["stage"]) for row in rows] == [1, 1, 2]
    assert done.stdout.count("epoch 1/") == 1, done.stdout  # rank 1 prints nothing
    assert "processes: 2 (gloo)" in done.stdout
    for name in ("best.pt", "last.pt", "metrics.json"):
        assert os.path.isfile(os.path.join(raw["output_dir"], name))
    with open(os.path.join(raw["output_dir"], "metrics.json")) as handle:
        assert json.load(handle)["processes"] == 2

    # one process with batches of 4 sees the same samples per step: the same training
    single = dict(raw, output_dir=str(tmp_path / "single"))
    single["training"] = dict(raw["training"], batch_size=4)
    train(load_config(write_config(str(tmp_path), single, "single.yaml")))
    with open(tmp_path / "single" / "metrics.json") as handle:
        assert json.load(handle)["processes"] == 1
    reference = torch.load(tmp_path / "single" / "last.pt", weights_only=True)["training_state"]["model"]
    for key, value in reference.items():
        torch.testing.assert_close(ranks[0]["model"][key], value, rtol=1e-9, atol=1e-12, msg=key)
    single_losses = [float(row["train_loss"]) for row in _rows(single["output_dir"])]
    assert losses == pytest.approx(single_losses, rel=1e-9)
    single_validation = [float(row["validation_forces_mae"]) for row in _rows(single["output_dir"])]
    assert [float(row["validation_forces_mae"]) for row in rows] == pytest.approx(single_validation, rel=1e-9)
    print(f"2-process torchrun training of {epochs} epochs: {seconds:.1f} s")


@pytest.mark.slow
def test_cli_nproc_launches_torchrun(data_dir, tmp_path):
    raw = base_settings(data_dir, str(tmp_path / "launched"), epochs=1, batch_size=2)
    path = write_config(str(tmp_path), raw)
    command = [sys.executable, "-m", "mlff", "train", path, "training.epochs=2", "--nproc", "2"]
    done = subprocess.run(command, cwd=ROOT, env=_environment(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "processes: 2 (gloo)" in done.stdout
    assert len(_rows(raw["output_dir"])) == 2  # the override reached the ranks
    assert os.path.isfile(os.path.join(raw["output_dir"], "metrics.json"))


def test_cli_nproc_refuses_inside_torchrun(data_dir, tmp_path, monkeypatch, capsys):
    from mlff.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    path = write_config(str(tmp_path), base_settings(data_dir, str(tmp_path / "nested")))
    assert main(["train", path, "--nproc", "2"]) == 1
    assert "--nproc cannot be used inside torchrun" in capsys.readouterr().err


def test_cli_nproc_must_be_positive(data_dir, tmp_path, monkeypatch, capsys):
    from mlff.cli import main

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    path = write_config(str(tmp_path), base_settings(data_dir, str(tmp_path / "none")))
    assert main(["train", path, "--nproc", "0"]) == 1
    assert "--nproc must be at least 1" in capsys.readouterr().err
