"""The training loop: a config in, checkpoints, a log and a deployed potential out.

:func:`train` does, in order:

1. read and check the data (:mod:`mlff.train.splits`), before any model is built;
2. build every graph once (:func:`mlff.train.dataset.build_samples`);
3. set E0, the energy scale and the average number of neighbours from the training set
   (:mod:`mlff.train.statistics`) and build the model;
4. optimise with AdamW under the configured schedule, gradient clipping and an exponential
   moving average (EMA) of the weights; validate the EMA weights every epoch;
5. write ``last.pt`` every epoch and ``best.pt`` on a better validation loss (atomically: a
   killed run leaves the previous checkpoint intact), and ``log.csv``;
6. at the end, report MAE/RMSE of the best weights on validation and test (``metrics.json``)
   and deploy them to ``potential.pt``.

``resume=True`` continues from ``last.pt`` exactly: weights, EMA, optimiser, scheduler, the
data-order generator, torch's random state, the epoch and the early-stopping counters are all
in the checkpoint. Extension points: multi-process training would shard ``batches`` and
wrap ``potential`` (rank 0 alone calling :func:`_write_epoch`); further loggers (TensorBoard)
would consume the ``history`` rows that :func:`_write_csv` writes.
"""

import csv
import json
import math
import os
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, TextIO

import torch

from mlff.models.config import make_config
from mlff.models.registry import build, config_class
from mlff.potential import Potential
from mlff.train.checkpoint import load_checkpoint, save_checkpoint
from mlff.train.config import Config, to_plain
from mlff.train.dataset import Sample, batches, build_samples
from mlff.train.ema import ExponentialMovingAverage
from mlff.train.evaluate import evaluate, potential_predictor
from mlff.train.loss import WeightedLoss
from mlff.train.metrics import ErrorAccumulator, format_table
from mlff.train.progress import ProgressLine
from mlff.train.splits import load_splits
from mlff.train.statistics import average_num_neighbors, energy_scale, reference_energies

LAST = "last.pt"
BEST = "best.pt"
LOG = "log.csv"
METRICS = "metrics.json"
DEPLOYED = "potential.pt"


def train(config: Config, resume: bool = False, stream: Optional[TextIO] = None) -> Dict[str, Any]:
    """Train as ``config`` says; returns ``{"validation": metrics, "test": metrics, ...}``.

    Metrics are MAE/RMSE in eV units of the best (EMA) weights. Raises ValueError or
    FileNotFoundError for bad configs, data or a missing checkpoint on ``resume``.
    """
    stream = stream if stream is not None else sys.stdout
    output = config.output_dir
    last_path = os.path.join(output, LAST)
    checkpoint_state: Optional[Dict[str, Any]] = None
    if resume:
        if not os.path.isfile(last_path):
            raise FileNotFoundError(f"--resume: no checkpoint {last_path} to resume from")
        _, checkpoint_state = load_checkpoint(last_path)
        if checkpoint_state["family"] != config.family:
            raise ValueError(f"--resume: {last_path} holds a {checkpoint_state['family']!r} model, the config a {config.family!r} one")

    hyperparameters = config.hyperparameters
    given_species = hyperparameters.get("species")
    splits = load_splits(config, given_species)
    dtype = getattr(torch, config.dtype)
    device = torch.device(config.device)
    cutoff = make_config(config_class(config.family), hyperparameters).cutoff
    _say(stream, f"data: {len(splits.train)} training, {len(splits.validation)} validation, {len(splits.test)} test configurations; species {splits.species}")

    started = time.perf_counter()
    train_samples = build_samples(splits.train, cutoff, dtype)
    validation_samples = build_samples(splits.validation, cutoff, dtype)
    test_samples = build_samples(splits.test, cutoff, dtype)
    _say(stream, f"graphs: built once in {time.perf_counter() - started:.1f} s (cutoff {cutoff} A)")

    if checkpoint_state is not None:
        model_settings = dict(checkpoint_state["config"])
        if sorted(model_settings["species"]) != splits.species:
            raise ValueError(
                f"--resume: {last_path} was trained for species {model_settings['species']}, "
                f"the data now give {splits.species}: start a new run (another output_dir) instead"
            )
        e0, scale = {}, 1.0  # the checkpoint's buffers replace them below
    else:
        e0 = reference_energies(config.data.reference_energies, splits.train, splits.species)
        scale = energy_scale(splits.train, e0)
        model_settings = dict(hyperparameters, species=splits.species)
        if "avg_num_neighbors" in _field_names(config.family) and "avg_num_neighbors" not in hyperparameters:
            model_settings["avg_num_neighbors"] = average_num_neighbors(train_samples)
        _say(stream, f"statistics: E0 {_rounded(e0)} eV, scale {scale:.4g}" + (
            f", avg_num_neighbors {model_settings['avg_num_neighbors']:.3g}" if "avg_num_neighbors" in model_settings else ""))

    torch.manual_seed(config.seed)
    potential = Potential(build(config.family, **model_settings), e0, scale=scale).to(dtype).to(device)
    shadow = Potential(build(config.family, **model_settings)).to(dtype).to(device)
    trainer = _Trainer(config, potential, shadow, train_samples, validation_samples, stream)
    if checkpoint_state is not None:
        trainer.restore(checkpoint_state)
        _say(stream, f"resumed from {last_path} after epoch {trainer.epoch}")
    trainer.run()
    return trainer.finish(test_samples)


class _Trainer:
    """State of one training run; see :func:`train`."""

    def __init__(self, config: Config, potential: Potential, shadow: Potential, train_samples: List[Sample], validation_samples: List[Sample], stream: TextIO):
        recipe = config.training
        self.config = config
        self.recipe = recipe
        self.potential = potential
        self.train_samples = train_samples
        self.validation_samples = validation_samples
        self.stream = stream
        self.device = torch.device(config.device)
        self.loss = WeightedLoss(recipe.energy_weight, recipe.forces_weight, recipe.stress_weight, recipe.loss, recipe.huber_delta)
        self.optimizer = torch.optim.AdamW(potential.parameters(), lr=recipe.learning_rate, weight_decay=recipe.weight_decay)
        self.scheduler = _scheduler(self.optimizer, recipe)
        self.ema = ExponentialMovingAverage(potential, recipe.ema_decay, shadow)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.epoch = 0  # epochs completed
        self.best_loss = math.inf
        self.best_epoch = 0
        self.stale_epochs = 0
        self.history: List[Dict[str, float]] = []
        os.makedirs(config.output_dir, exist_ok=True)

    # --- checkpoint state --------------------------------------------------------------------

    def state(self) -> Dict[str, Any]:
        return {
            "epoch": self.epoch,
            "model": self.potential.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "best_loss": self.best_loss,
            "best_epoch": self.best_epoch,
            "stale_epochs": self.stale_epochs,
            "history": self.history,
        }

    def restore(self, checkpoint: Dict[str, Any]) -> None:
        state = checkpoint["training_state"]
        self.potential.load_state_dict(state["model"])
        self.ema.module.load_state_dict(checkpoint["potential"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        self.epoch = int(state["epoch"])
        self.best_loss = float(state["best_loss"])
        self.best_epoch = int(state["best_epoch"])
        self.stale_epochs = int(state["stale_epochs"])
        self.history = list(state["history"])

    def _save(self, path: str) -> None:
        metadata = {"epoch": self.epoch, "best_epoch": self.best_epoch, "best_validation_loss": self.best_loss}
        save_checkpoint(self.ema.module, path, metadata, training_state=self.state(), train_config=to_plain(self.config))

    # --- the loop ----------------------------------------------------------------------------

    def run(self) -> None:
        recipe = self.recipe
        while self.epoch < recipe.epochs:
            if recipe.early_stopping_patience is not None and self.stale_epochs >= recipe.early_stopping_patience:
                _say(self.stream, f"early stop: no better validation loss for {self.stale_epochs} epochs")
                break
            started = time.perf_counter()
            train_parts = self._train_epoch()
            validation_loss, validation_metrics = self._validate()
            monitored = validation_loss if self.validation_samples else train_parts["loss"]
            if self.scheduler is not None:
                if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    self.scheduler.step(monitored)
                else:
                    self.scheduler.step()
            self.epoch += 1
            improved = monitored < self.best_loss
            if improved:
                self.best_loss, self.best_epoch, self.stale_epochs = monitored, self.epoch, 0
            else:
                self.stale_epochs += 1
            row = {
                "epoch": self.epoch,
                "learning_rate": self.optimizer.param_groups[0]["lr"],
                **{f"train_{key}": value for key, value in train_parts.items()},
                "validation_loss": validation_loss,
                **{f"validation_{key}": value for key, value in validation_metrics.items()},
                "seconds": time.perf_counter() - started,
            }
            self.history.append(row)
            # log, best, then last: a kill in between only repeats this epoch on resume (which
            # rewrites the log from the checkpoint's history)
            _write_csv(os.path.join(self.config.output_dir, LOG), self.history)
            if improved:
                self._save(os.path.join(self.config.output_dir, BEST))
            self._save(os.path.join(self.config.output_dir, LAST))
            _say(self.stream, _summary(row, recipe.epochs, improved))

    def _train_epoch(self) -> Dict[str, float]:
        self.potential.train()
        totals: Dict[str, float] = {}
        n_batches = math.ceil(len(self.train_samples) / self.recipe.batch_size)
        progress = ProgressLine(f"epoch {self.epoch + 1}/{self.recipe.epochs}", n_batches)
        count = 0
        for batch in batches(self.train_samples, self.recipe.batch_size, self.generator):
            batch = batch.to(self.device)
            self.optimizer.zero_grad(set_to_none=True)
            predicted = self.potential(batch.graph, self.loss.needs_forces, self.loss.needs_stress)
            parts = self.loss(predicted, batch)
            parts["total"].backward()
            if self.recipe.gradient_clip is not None:
                torch.nn.utils.clip_grad_norm_(self.potential.parameters(), self.recipe.gradient_clip)
            self.optimizer.step()
            self.ema.update(self.potential)
            count += 1
            for key, value in parts.items():
                totals[key] = totals.get(key, 0.0) + float(value.detach())
            progress.update(count, {key: totals[key] / count for key in ("total", "energy", "forces")})
        progress.close()
        self.potential.eval()
        n = max(count, 1)
        return {("loss" if key == "total" else f"loss_{key}"): value / n for key, value in totals.items()}

    def _validate(self):
        if not self.validation_samples:
            return math.nan, {}
        accumulator = ErrorAccumulator()
        total, count = 0.0, 0
        for batch in batches(self.validation_samples, self.recipe.eval_batch_size):
            batch = batch.to(self.device)
            predicted = self.ema.module(batch.graph, self.loss.needs_forces, self.loss.needs_stress)
            parts = self.loss({k: v.detach() for k, v in predicted.items()}, batch)
            total += float(parts["total"]) * int(batch.weight.numel())
            count += int(batch.weight.numel())
            accumulator.add("energy_per_atom", ((predicted["energy"].detach() - batch.energy) / batch.n_atoms)[batch.energy_mask.bool()].cpu().numpy())
            if "forces" in predicted:
                accumulator.add("forces", (predicted["forces"].detach() - batch.forces)[batch.forces_mask.bool()].cpu().numpy())
        return total / count, accumulator.result()

    def finish(self, test_samples: Sequence[Sample]) -> Dict[str, Any]:
        """Evaluate the best weights on validation and test; write metrics.json and potential.pt."""
        output = self.config.output_dir
        best_path = os.path.join(output, BEST)
        if not os.path.isfile(best_path):  # e.g. every epoch diverged to NaN
            raise ValueError(f"training produced no best checkpoint in {output} (did the loss become NaN?)")
        best, state = load_checkpoint(best_path)
        best.to(self.device)
        predict = potential_predictor(best, self.device)
        batch_size = self.recipe.eval_batch_size
        results: Dict[str, Any] = {
            "validation": evaluate(predict, self.validation_samples, batch_size) if self.validation_samples else None,
            "test": evaluate(predict, test_samples, batch_size) if test_samples else None,
            "best_epoch": self.best_epoch,
            "epochs": self.epoch,
        }
        with open(os.path.join(output, METRICS), "w") as handle:
            json.dump(results, handle, indent=2)
        _say(self.stream, f"best epoch {self.best_epoch}; errors of its EMA weights (meV units):")
        _say(self.stream, format_table({"validation": results["validation"], "test": results["test"]}))
        if self.config.deploy:
            from mlff.export import deploy

            metadata = {"model_family": state["family"], "hyperparameters": state["config"], "test_errors": results["test"]}
            deploy(best.cpu(), os.path.join(output, DEPLOYED), metadata)
            _say(self.stream, f"deployed the best weights to {os.path.join(output, DEPLOYED)}")
        return results


# --- helpers ---------------------------------------------------------------------------------


def _scheduler(optimizer: torch.optim.Optimizer, recipe) -> Optional[Any]:
    if recipe.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=recipe.plateau_factor, patience=recipe.plateau_patience)
    if recipe.scheduler == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, _CosineWithWarmup(recipe.epochs, recipe.warmup_epochs, recipe.min_learning_rate / recipe.learning_rate))
    return None


class _CosineWithWarmup:
    """Learning-rate factor per completed epoch: linear warm-up, then cosine to ``floor``."""

    def __init__(self, epochs: int, warmup: int, floor: float):
        self.epochs, self.warmup, self.floor = epochs, warmup, floor

    def __call__(self, epoch: int) -> float:
        if epoch < self.warmup:
            return (epoch + 1) / (self.warmup + 1)
        progress = min(1.0, (epoch - self.warmup) / max(1, self.epochs - self.warmup))
        return self.floor + (1.0 - self.floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _field_names(family: str) -> List[str]:
    import dataclasses

    return [field.name for field in dataclasses.fields(config_class(family))]


def _write_csv(path: str, history: Sequence[Dict[str, float]]) -> None:
    """The whole history, rewritten atomically (so a resumed run's log matches its checkpoint)."""
    columns: List[str] = []
    for row in history:
        columns.extend(key for key in row if key not in columns)
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(history)
    os.replace(temporary, path)


def _summary(row: Dict[str, float], epochs: int, improved: bool) -> str:
    text = f"epoch {row['epoch']}/{epochs}  lr {row['learning_rate']:.2e}  train loss {row['train_loss']:.4g}"
    if not math.isnan(row["validation_loss"]):
        text += f"  valid loss {row['validation_loss']:.4g}"
    if "validation_energy_per_atom_mae" in row:
        text += f"  E MAE {1000 * row['validation_energy_per_atom_mae']:.2f} meV/atom"
    if "validation_forces_mae" in row:
        text += f"  F MAE {1000 * row['validation_forces_mae']:.2f} meV/A"
    return text + f"  ({row['seconds']:.1f} s){'  *best' if improved else ''}"


def _rounded(values: Dict[int, float]) -> Dict[int, float]:
    return {z: round(e, 4) for z, e in values.items()}


def _say(stream: TextIO, text: str) -> None:
    print(text, file=stream, flush=True)
