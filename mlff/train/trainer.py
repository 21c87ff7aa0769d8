"""The training loop: a config in, checkpoints, logs, plots and a deployed potential out.

:func:`train` does, in order:

1. read and check the data (:mod:`mlff.train.splits`), before any model is built;
2. build every graph once (:func:`mlff.train.dataset.build_samples`);
3. set E0, the energy scale and the average number of neighbours from the training set
   (:mod:`mlff.train.statistics`) and build the model;
4. optimise with AdamW under the configured schedule, gradient clipping and an exponential
   moving average (EMA) of the weights; validate the EMA weights every epoch; optionally
   switch to a second stage (reweighted loss, constant learning rate) for the last epochs;
5. write ``last.pt`` every epoch and ``best.pt`` on a better validation loss (atomically: a
   killed run leaves the previous checkpoint intact), ``log.csv`` and TensorBoard events
   (:mod:`mlff.train.logs`); stop early at ``epochs``, on early stopping or once
   ``max_minutes`` of epochs are spent;
6. at the end, report MAE/RMSE of the best weights on validation and test (``metrics.json``),
   draw ``learning_curves.png`` and ``parity_<split>.png`` (:mod:`mlff.train.plots`) and
   deploy the best weights to ``potential.pt``.

``resume=True`` continues from ``last.pt`` exactly: weights, EMA, optimiser, scheduler, the
data-order generator, torch's random state, the epoch, the early-stopping counters, the time
spent and the stage are all in the checkpoint.

Under torchrun every process runs this function (:mod:`mlff.train.distributed`): the training
batches of each epoch are sharded across ranks, DistributedDataParallel averages gradients,
validation sums are reduced, and rank 0 alone writes files and prints.
"""

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
from mlff.train import distributed, plots
from mlff.train.checkpoint import (
    BEST,
    METRICS,
    checkpoint_of_deployed,
    deployment_metadata,
    is_deployed_potential,
    load_checkpoint,
    save_checkpoint,
)
from mlff.train.config import Config, to_plain
from mlff.train.dataset import Sample, batches, build_samples
from mlff.train.ema import ExponentialMovingAverage
from mlff.train.evaluate import metrics, potential_predictor, predictions
from mlff.train.logs import open_tensorboard, write_csv
from mlff.train.loss import WeightedLoss
from mlff.train.metrics import ErrorAccumulator, errors_result, format_table
from mlff.train.progress import ProgressLine
from mlff.train.splits import fingerprint, load_splits
from mlff.train.statistics import average_num_neighbors, energy_scale, reference_energies

LAST = "last.pt"
LOG = "log.csv"
DEPLOYED = "potential.pt"
LEARNING_CURVES = "learning_curves.png"
PARITY = "parity_{split}.png"


def train(config: Config, resume: bool = False, stream: Optional[TextIO] = None) -> Dict[str, Any]:
    """Train as ``config`` says; returns ``{"validation": metrics, "test": metrics, ...}``.

    Metrics are MAE/RMSE in eV units of the best (EMA) weights. Raises ValueError or
    FileNotFoundError for bad configs, data or a missing checkpoint on ``resume``. Started by
    torchrun, joins the other processes (see :mod:`mlff.train.distributed`); every rank
    returns the same results.
    """
    context, device = distributed.setup(config.device)
    quiet = None if context.is_main else open(os.devnull, "w")
    try:
        stream = quiet if quiet is not None else (stream if stream is not None else sys.stdout)
        results = _train(config, resume, stream, context, device)
    finally:
        if quiet is not None:
            quiet.close()
    distributed.shutdown(context)
    return results


def _train(config: Config, resume: bool, stream: TextIO, context: distributed.Context, device: torch.device) -> Dict[str, Any]:
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
    initial_state: Optional[Dict[str, Any]] = None
    if checkpoint_state is None and config.training.initial_weights is not None:
        initial_state = _initial_state(config)
    if initial_state is not None:
        splits = load_splits(config, initial_state["config"]["species"], "training.initial_weights: the model's species")
    else:
        splits = load_splits(config, hyperparameters.get("species"))
    dtype = getattr(torch, config.dtype)
    # the graphs' cutoff is the model's: the initial weights' when they set the architecture
    architecture = initial_state["config"] if initial_state is not None else hyperparameters
    cutoff = make_config(config_class(config.family), architecture).cutoff
    _say(stream, f"data: {len(splits.train)} training, {len(splits.validation)} validation, {len(splits.test)} test configurations; species {splits.species}")
    if context.distributed:
        backend = "NCCL" if device.type == "cuda" else "gloo"
        _say(stream, f"processes: {context.world_size} ({backend}), each training on 1/{context.world_size} of every epoch, in batches of {config.training.batch_size}")

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
    elif initial_state is not None:
        model_settings = dict(initial_state["config"])
        e0, scale = {}, 1.0  # the initial weights' buffers replace them below
        origin = "a deployed potential" if "deployed_file" in initial_state["metadata"] else f"epoch {initial_state['metadata'].get('epoch', '?')} of its run"
        _say(stream, f"initial weights: {config.training.initial_weights} ({origin}); "
                     "statistics from it, optimiser and schedule afresh")
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
    if initial_state is not None:
        potential.load_state_dict(initial_state["potential"])
    shadow = Potential(build(config.family, **model_settings)).to(dtype).to(device)
    trainer = _Trainer(config, potential, shadow, train_samples, validation_samples, stream, context, device)
    trainer.training_data_sha256 = fingerprint(splits.train)
    if checkpoint_state is not None:
        trainer.restore(checkpoint_state)
        _say(stream, f"resumed from {last_path} after epoch {trainer.epoch}")
    try:
        trainer.run()
    finally:
        trainer.close()
    outcome: Any = None
    if context.is_main:
        try:
            outcome = trainer.finish(test_samples)
        except Exception as error:  # the other ranks wait for rank 0's results: tell them
            if not context.distributed:
                raise
            outcome = error
    outcome = distributed.from_main(context, outcome)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def _initial_state(config: Config) -> Dict[str, Any]:
    """The checkpoint named by ``training.initial_weights``, checked against the config's model section."""
    path = config.training.initial_weights
    state = checkpoint_of_deployed(path) if is_deployed_potential(path) else load_checkpoint(path)[1]
    if state["family"] != config.family:
        raise ValueError(f"training.initial_weights: {path} holds a {state['family']!r} model, the config a {config.family!r} one")
    # compared as validated configs, so that 5 and 5.0 or a list and a tuple agree
    cls = config_class(config.family)
    theirs = make_config(cls, state["config"])
    mine = make_config(cls, {**state["config"], **config.hyperparameters})
    differing = {
        name: (getattr(mine, name), getattr(theirs, name))
        for name in config.hyperparameters
        if getattr(mine, name) != getattr(theirs, name)
    }
    if differing:
        listed = ", ".join(f"{name}: config {given!r}, checkpoint {stored!r}" for name, (given, stored) in sorted(differing.items()))
        raise ValueError(
            f"training.initial_weights: {path} was built with other hyperparameters ({listed}): "
            "make the model section agree with it, or leave those keys out"
        )
    return state


class _Trainer:
    """State of one training run; see :func:`train`."""

    def __init__(
        self,
        config: Config,
        potential: Potential,
        shadow: Potential,
        train_samples: List[Sample],
        validation_samples: List[Sample],
        stream: TextIO,
        context: distributed.Context = distributed.Context(),
        device: Optional[torch.device] = None,
    ):
        recipe = config.training
        self.config = config
        self.training_data_sha256: Optional[str] = None  # set by train(): content hash of the training set
        self.recipe = recipe
        self.potential = potential
        self.train_samples = train_samples
        self.validation_samples = validation_samples
        self.stream = stream
        self.context = context
        self.device = device if device is not None else torch.device(config.device)
        self.step = distributed.wrap(_Step(potential), context, self.device)
        self.loss = WeightedLoss(recipe.energy_weight, recipe.forces_weight, recipe.stress_weight, recipe.loss, recipe.huber_delta)
        self.optimizer = torch.optim.AdamW(
            potential.parameters(), lr=recipe.learning_rate, weight_decay=recipe.weight_decay, amsgrad=recipe.amsgrad
        )
        self.scheduler = _scheduler(self.optimizer, recipe)
        self.ema = ExponentialMovingAverage(potential, recipe.ema_decay, shadow)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.epoch = 0  # epochs completed
        self.best_loss = math.inf
        self.best_epoch = 0
        self.stale_epochs = 0
        self.elapsed = 0.0  # seconds spent in epochs, over all resumed runs (for max_minutes)
        self.second_stage_epoch: Optional[int] = None  # first epoch of the second stage, once started
        self.history: List[Dict[str, float]] = []
        self.tensorboard = None
        if context.is_main:
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
            "elapsed_seconds": self.elapsed,
            "second_stage_epoch": self.second_stage_epoch,
            "history": self.history,
            "ema_updates": self.ema.updates,
        }

    def restore(self, checkpoint: Dict[str, Any]) -> None:
        state = checkpoint["training_state"]
        self.potential.load_state_dict(state["model"])
        self.ema.module.load_state_dict(checkpoint["potential"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
            if isinstance(self.scheduler, torch.optim.lr_scheduler.LambdaLR):
                # LambdaLR restores its schedule object's fields too: the config's horizon must
                # win, so that a run resumed with another training.epochs anneals to its new end
                horizon = self.recipe
                schedule = _CosineWithWarmup(horizon.epochs, horizon.warmup_epochs, horizon.min_learning_rate / horizon.learning_rate)
                self.scheduler.lr_lambdas[0] = schedule
                if state.get("second_stage_epoch") is None:  # the second stage holds its own rate
                    for group, base in zip(self.optimizer.param_groups, self.scheduler.base_lrs):
                        group["lr"] = base * schedule(self.scheduler.last_epoch)
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        self.epoch = int(state["epoch"])
        self.best_loss = float(state["best_loss"])
        self.best_epoch = int(state["best_epoch"])
        self.stale_epochs = int(state["stale_epochs"])
        self.history = list(state["history"])
        self.ema.updates = int(state.get("ema_updates", 10**9))  # earlier checkpoints: warmed up long ago
        # checkpoints of earlier versions lack these: their epochs' seconds are in the history
        self.elapsed = float(state.get("elapsed_seconds", sum(row.get("seconds", 0.0) for row in self.history)))
        stage_epoch = state.get("second_stage_epoch")
        if stage_epoch is not None:
            if self.recipe.second_stage is None:
                raise ValueError(
                    f"--resume: the checkpoint is in the second stage (since epoch {stage_epoch}) but the config has no "
                    "training.second_stage: restore that section to continue"
                )
            self.second_stage_epoch = int(stage_epoch)
            self._second_stage_loss()  # the learning rate is in the optimiser's state

    def _save(self, path: str) -> None:
        metadata = {
            "epoch": self.epoch,
            "best_epoch": self.best_epoch,
            "best_validation_loss": self.best_loss,
            "training_data_sha256": self.training_data_sha256,
        }
        save_checkpoint(self.ema.module, path, metadata, training_state=self.state(), train_config=to_plain(self.config))

    # --- the loop ----------------------------------------------------------------------------

    def run(self) -> None:
        recipe = self.recipe
        if self.context.is_main:
            self.tensorboard = open_tensorboard(self.config.output_dir, first_epoch=self.epoch + 1)
        if recipe.max_minutes is not None:
            _say(self.stream, f"time budget: {recipe.max_minutes:g} min of epochs ({self.elapsed / 60:.2f} spent)")
        while self.epoch < recipe.epochs:
            if recipe.early_stopping_patience is not None and self.stale_epochs >= recipe.early_stopping_patience:
                _say(self.stream, f"early stop: no better validation loss for {self.stale_epochs} epochs")
                break
            if self._out_of_time():
                break
            if self.second_stage_epoch is None and self._second_stage_due():
                self._enter_second_stage()
            started = time.perf_counter()
            train_parts = self._train_epoch()
            validation_loss, validation_metrics = self._validate()
            monitored = validation_loss if self.validation_samples else train_parts["loss"]
            if self.scheduler is not None and self.second_stage_epoch is None:
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
            }
            if recipe.second_stage is not None:
                row["stage"] = 1 if self.second_stage_epoch is None else 2
            if self.context.is_main:
                # log, best, then last: a kill in between only repeats this epoch on resume (which
                # rewrites the log from the checkpoint's history)
                row["seconds"] = time.perf_counter() - started
                self.history.append(row)
                write_csv(os.path.join(self.config.output_dir, LOG), self.history)
                if self.tensorboard is not None:
                    self.tensorboard.write(row)
                if improved:
                    self._save(os.path.join(self.config.output_dir, BEST))
            # every rank counts rank 0's time, so that all stop after the same epoch
            seconds = distributed.from_main(self.context, time.perf_counter() - started)
            self.elapsed += seconds
            if self.context.is_main:
                self._save(os.path.join(self.config.output_dir, LAST))
            else:
                self.history.append(dict(row, seconds=seconds))
            _say(self.stream, _summary(self.history[-1], recipe.epochs, improved))

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
            self.tensorboard = None

    def _out_of_time(self) -> bool:
        budget = self.recipe.max_minutes
        if budget is None or self.elapsed < 60.0 * budget:
            return False
        _say(self.stream, f"time budget: {self.elapsed / 60:.2f} of training.max_minutes={budget:g} spent after epoch {self.epoch}")
        return True

    def _second_stage_due(self) -> bool:
        stage, recipe = self.recipe.second_stage, self.recipe
        return stage is not None and stage.due(self.epoch + 1, recipe.epochs, self.elapsed / 60.0, recipe.max_minutes)

    def _second_stage_loss(self) -> None:
        recipe = self.recipe
        energy, forces, stress = recipe.second_stage.weights(recipe)
        self.loss = WeightedLoss(energy, forces, stress, recipe.loss, recipe.huber_delta)

    def _enter_second_stage(self) -> None:
        stage = self.recipe.second_stage
        self.second_stage_epoch = self.epoch + 1
        self._second_stage_loss()
        if stage.learning_rate is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = stage.learning_rate
        # the validation loss now weighs errors differently: compare second-stage epochs only
        self.best_loss, self.stale_epochs = math.inf, 0
        loss = self.loss
        _say(
            self.stream,
            f"second stage from epoch {self.second_stage_epoch}: loss weights energy {loss.energy_weight:g}, "
            f"forces {loss.forces_weight:g}, stress {loss.stress_weight:g}; learning rate {self.optimizer.param_groups[0]['lr']:.2e} (constant)",
        )

    def _train_epoch(self) -> Dict[str, float]:
        context = self.context
        self.potential.train()
        totals: Dict[str, float] = {}
        n_local = -(-len(self.train_samples) // context.world_size)  # this rank's samples (see dataset.shard)
        n_batches = math.ceil(n_local / self.recipe.batch_size)
        progress = ProgressLine(f"epoch {self.epoch + 1}/{self.recipe.epochs}", n_batches, stream=None if context.is_main else self.stream)
        count = 0
        for batch in batches(self.train_samples, self.recipe.batch_size, self.generator, context.rank, context.world_size):
            batch = batch.to(self.device)
            self.optimizer.zero_grad(set_to_none=True)
            parts = self.step(batch, self.loss)
            parts["total"].backward()  # DistributedDataParallel averages the gradients over ranks here
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
        keys = sorted(totals)
        summed = distributed.sum_over_ranks(context, [totals[key] for key in keys] + [count], self.device)
        n = max(summed[-1], 1)
        return {("loss" if key == "total" else f"loss_{key}"): value / n for key, value in zip(keys, summed)}

    def _validate(self):
        if not self.validation_samples:
            return math.nan, {}
        context = self.context
        accumulator = ErrorAccumulator()
        total, count = 0.0, 0
        shard = self.validation_samples[context.rank :: context.world_size]
        for batch in batches(shard, self.recipe.eval_batch_size):
            batch = batch.to(self.device)
            predicted = self.ema.module(batch.graph, self.loss.needs_forces, self.loss.needs_stress)
            parts = self.loss({k: v.detach() for k, v in predicted.items()}, batch)
            total += float(parts["total"]) * int(batch.weight.numel())
            count += int(batch.weight.numel())
            accumulator.add("energy_per_atom", ((predicted["energy"].detach() - batch.energy) / batch.n_atoms)[batch.energy_mask.bool()].cpu().numpy())
            if "forces" in predicted:
                accumulator.add("forces", (predicted["forces"].detach() - batch.forces)[batch.forces_mask.bool()].cpu().numpy())
        total, count = distributed.sum_over_ranks(context, [total, count], self.device)
        return total / count, errors_result(distributed.gather_arrays(context, accumulator.errors()))

    def finish(self, test_samples: Sequence[Sample]) -> Dict[str, Any]:
        """Evaluate the best weights on validation and test; write metrics.json, the plots and potential.pt."""
        output = self.config.output_dir
        best_path = os.path.join(output, BEST)
        if not os.path.isfile(best_path):  # e.g. every epoch diverged to NaN
            raise ValueError(f"training produced no best checkpoint in {output} (did the loss become NaN?)")
        best, state = load_checkpoint(best_path)
        best.to(self.device)
        predict = potential_predictor(best, self.device)
        batch_size = self.recipe.eval_batch_size
        values = {
            split: predictions(predict, samples, batch_size)
            for split, samples in (("validation", self.validation_samples), ("test", test_samples))
            if samples
        }
        results: Dict[str, Any] = {
            "validation": metrics(values["validation"]) if "validation" in values else None,
            "test": metrics(values["test"]) if "test" in values else None,
            "best_epoch": self.best_epoch,
            "epochs": self.epoch,
            "training_minutes": self.elapsed / 60.0,
            "processes": self.context.world_size,
        }
        with open(os.path.join(output, METRICS), "w") as handle:
            json.dump(results, handle, indent=2)
        _say(self.stream, f"best epoch {self.best_epoch}; errors of its EMA weights (meV units):")
        _say(self.stream, format_table({"validation": results["validation"], "test": results["test"]}))
        if self.config.plots:
            figures = {"learning curves": plots.write_learning_curves(self.history, os.path.join(output, LEARNING_CURVES))}
            for split, split_values in values.items():
                title = f"{split} set, best epoch {self.best_epoch}"
                figures[split] = plots.write_parity(split_values, os.path.join(output, PARITY.format(split=split)), title)
            _say(self.stream, plots.describe(figures))
        if self.config.deploy:
            from mlff.export import deploy

            deployed = os.path.join(output, DEPLOYED)
            try:
                deploy(best.cpu(), deployed, deployment_metadata(state, results))
            except Exception as error:  # e.g. mlff's source edited or upgraded while the run trained
                raise RuntimeError(
                    f"deploying the best weights to {deployed} failed: {error}\nThe checkpoints, metrics.json and plots "
                    f"are written; deploy again with: mlff deploy {best_path} -o {deployed}"
                ) from error
            _say(self.stream, f"deployed the best weights to {deployed}")
        return results


class _Step(torch.nn.Module):
    """A training step's forward: the loss parts of a batch (see :class:`WeightedLoss`).

    DistributedDataParallel wraps this rather than the potential, so that it sees which
    parameters the loss reaches (with ``energy_weight`` 0, for instance, a per-species energy
    shift gets no gradient) and does not wait for their gradients.
    """

    def __init__(self, potential: Potential):
        super().__init__()
        self.potential = potential

    def forward(self, batch, loss: WeightedLoss) -> Dict[str, torch.Tensor]:
        predicted = self.potential(batch.graph, loss.needs_forces, loss.needs_stress)
        return loss(predicted, batch)


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
