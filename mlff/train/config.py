"""Training configuration: a YAML file read into frozen dataclasses and validated up front.

A config has four sections beside a few top-level settings::

    seed: 0
    dtype: float64            # float32 | float64
    device: cpu               # cpu | cuda | cuda:N
    output_dir: run           # checkpoints, log.csv, metrics.json, potential.pt
    deploy: true              # write output_dir/potential.pt (best EMA weights) at the end
    plots: true               # write learning-curve and parity PNGs at the end (needs matplotlib)
    model: {family: mace, cutoff: 5.0, ...}    # family + hyperparameters (see mlff.models)
    data: {train: train.xyz, ...}              # DataConfig
    training: {epochs: 100, ...}               # TrainingConfig

Every section rejects unknown keys, impossible values raise ValueError naming the key, and data
files must exist. Relative paths are relative to the config file's directory. ``key=value``
overrides (``training.epochs=5``) are applied to the raw mapping before validation; values are
parsed as YAML (``5`` is an int, ``[a.xyz, b.xyz]`` a list). Configs are never mutated after
loading: derived values (species, statistics) live in the trainer and the checkpoint.
"""

import dataclasses
import math
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Type, TypeVar, Union

from mlff.models.config import make_config
from mlff.models.registry import available, config_class

T = TypeVar("T")

DTYPES = ("float32", "float64")
LOSSES = ("mse", "huber")
SCHEDULERS = ("none", "plateau", "cosine")
REFERENCE_ENERGY_MODES = ("least_squares", "isolated", "zero")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the data come from and how labels are read.

    Parameters
    ----------
    train : list of str
        Files read with ``ase.io.read(path, ":")``; any format ASE reads.
    validation, test : list of str
        Separate files; when empty, a seeded random part of ``train`` is held out instead.
    validation_fraction, validation_count, test_fraction, test_count :
        Size of the held-out parts (a fraction in [0, 1) or a count; at most one of each pair).
        Without a validation file and without either, 10% of ``train`` validates.
    energy_key, forces_key, stress_key : str
        Names of the labels, looked up in ``atoms.info`` / ``atoms.arrays`` and then among the
        calculator results (energy eV, forces eV/Angstrom, stress eV/Angstrom^3 as in ASE:
        Voigt ``xx yy zz yz xz xy`` or 3x3).
    virial_key : str, optional
        Read a virial (eV, 3x3 or Voigt) instead of stress: ``stress = -virial / volume``.
    config_type_key : str
        ``atoms.info`` entry naming a configuration's type.
    config_type_weights : mapping of str to float
        Loss weight per configuration type (others weigh 1).
    reference_energies : "least_squares" | "isolated" | "zero" | mapping of int to float
        E0 per species (eV): fitted to the training energies, taken from single-atom
        configurations in the training files, zero, or given.
    skip_bad : bool
        Skip configurations with NaN/inf or inconsistent labels (with a warning and a count)
        instead of stopping with an error.
    format : str, optional
        ASE format name, when ASE cannot guess it from the file name.
    """

    train: Tuple[str, ...]
    validation: Tuple[str, ...] = ()
    test: Tuple[str, ...] = ()
    validation_fraction: Optional[float] = None
    validation_count: Optional[int] = None
    test_fraction: Optional[float] = None
    test_count: Optional[int] = None
    energy_key: str = "energy"
    forces_key: str = "forces"
    stress_key: str = "stress"
    virial_key: Optional[str] = None
    config_type_key: str = "config_type"
    config_type_weights: Mapping[str, float] = dataclasses.field(default_factory=dict)
    reference_energies: Union[str, Mapping[int, float]] = "least_squares"
    skip_bad: bool = False
    format: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class SecondStageConfig:
    """The last part of training with another loss weighting and a constant learning rate
    (MACE's "stage two"): typically a larger ``energy_weight`` to refine energies once forces
    have been learnt.

    Parameters
    ----------
    start_epoch : int, optional
        First epoch (counted from 1, as in log.csv) trained in the second stage.
    start_fraction : float, optional
        Instead of ``start_epoch``: the stage starts after this fraction of ``epochs`` (epoch
        ``floor(start_fraction * epochs) + 1``) or, with ``training.max_minutes``, once this
        fraction of the time budget is spent, whichever comes first. Give exactly one of the two.
    energy_weight, forces_weight, stress_weight : float, optional
        Loss weights from then on (default: those of the first stage).
    learning_rate : float, optional
        Held constant from then on (default: the learning rate the schedule had reached); the
        scheduler no longer changes it.

    On entering the stage the best validation loss is forgotten (it is measured with other
    weights), so ``best.pt`` and early stopping then consider second-stage epochs only.
    """

    start_epoch: Optional[int] = None
    start_fraction: Optional[float] = None
    energy_weight: Optional[float] = None
    forces_weight: Optional[float] = None
    stress_weight: Optional[float] = None
    learning_rate: Optional[float] = None

    def first_epoch(self, epochs: int) -> int:
        """The epoch (from 1) at which the stage starts on the epoch count alone."""
        if self.start_epoch is not None:
            return self.start_epoch
        return int(math.floor(float(self.start_fraction) * epochs)) + 1

    def due(self, next_epoch: int, epochs: int, spent_minutes: float = 0.0, max_minutes: Optional[float] = None) -> bool:
        """Whether epoch ``next_epoch`` (from 1) is trained in this stage, given the minutes spent
        so far and the time budget (see ``start_fraction``)."""
        if next_epoch >= self.first_epoch(epochs):
            return True
        return self.start_fraction is not None and max_minutes is not None and spent_minutes >= self.start_fraction * max_minutes

    def weights(self, recipe: "TrainingConfig") -> Tuple[float, float, float]:
        """(energy, forces, stress) loss weights of the stage, defaults from ``recipe``."""
        return (
            recipe.energy_weight if self.energy_weight is None else self.energy_weight,
            recipe.forces_weight if self.forces_weight is None else self.forces_weight,
            recipe.stress_weight if self.stress_weight is None else self.stress_weight,
        )


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """The optimisation recipe.

    Parameters
    ----------
    epochs : int
    batch_size, eval_batch_size : int
        Configurations per step (training; validation and test).
    learning_rate, weight_decay : float
        AdamW settings.
    amsgrad : bool
        AdamW's AMSGrad variant (steps scaled by the largest second moment seen so far, as
        mace-torch trains by default).
    energy_weight, forces_weight, stress_weight : float
        Loss weights on energy per atom (eV/atom)^2, force components (eV/Angstrom)^2 and
        stress components (eV/Angstrom^3)^2.
    loss : "mse" | "huber"
    huber_delta : float
        Where the Huber loss turns linear (in the label's unit).
    scheduler : "none" | "plateau" | "cosine"
        ``plateau`` divides the learning rate by ``1/plateau_factor`` when the validation loss
        stalls for ``plateau_patience`` epochs; ``cosine`` warms up linearly for
        ``warmup_epochs`` then decays to ``min_learning_rate`` at ``epochs``.
    gradient_clip : float, optional
        Maximal gradient norm (none when null).
    ema_decay : float
        Exponential moving average of the weights, used for validation, checkpoints of the
        best model and export; 0 disables it.
    early_stopping_patience : int, optional
        Stop after this many epochs without a better validation loss.
    max_minutes : float, optional
        Wall-clock budget of the epochs (training, validation, checkpoints; not the data setup
        nor the final evaluation), summed over resumed runs: training stops after the epoch
        that crosses it, then evaluates and deploys as usual. Resuming with a larger budget
        (``training.max_minutes=...``) continues.
    second_stage : SecondStageConfig, optional
        Reweighted loss and constant learning rate for the last part of training.
    initial_weights : str, optional
        An mlff checkpoint (``best.pt`` or ``last.pt`` of an earlier run), or a deployed
        TorchScript potential (``potential.pt``, ``mlff deploy`` output, a shipped
        ``potentials/*.pt``), whose weights start this run: fine-tuning, or a new learning-rate
        cycle after a finished one. Its moving average (the validated weights, the only ones
        a deployed file holds) is loaded; architecture, species, reference energies
        and scale come from it, and any hyperparameter the model section gives must agree.
        Optimiser, schedule and moving average start afresh. ``--resume`` ignores it (the
        run's own ``last.pt`` already holds its weights).
    """

    epochs: int = 100
    batch_size: int = 8
    eval_batch_size: int = 16
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    amsgrad: bool = False
    energy_weight: float = 1.0
    forces_weight: float = 10.0
    stress_weight: float = 0.0
    loss: str = "mse"
    huber_delta: float = 0.01
    scheduler: str = "plateau"
    plateau_factor: float = 0.5
    plateau_patience: int = 10
    warmup_epochs: int = 0
    min_learning_rate: float = 0.0
    gradient_clip: Optional[float] = 10.0
    ema_decay: float = 0.99
    early_stopping_patience: Optional[int] = None
    max_minutes: Optional[float] = None
    second_stage: Optional[SecondStageConfig] = None
    initial_weights: Optional[str] = None

    def uses_energy(self) -> bool:
        """Whether some stage puts weight on energies (then every configuration needs one)."""
        return self._weight_anywhere(0)

    def uses_forces(self) -> bool:
        return self._weight_anywhere(1)

    def uses_stress(self) -> bool:
        return self._weight_anywhere(2)

    def _weight_anywhere(self, index: int) -> bool:
        weights = [(self.energy_weight, self.forces_weight, self.stress_weight)[index]]
        if self.second_stage is not None:
            weights.append(self.second_stage.weights(self)[index])
        return max(weights) > 0


@dataclasses.dataclass(frozen=True)
class Config:
    """A whole, validated training config (see the module docstring).

    ``model`` is the family name plus hyperparameters as given; ``species`` may be left out
    (the training data's elements are used) and so may ``avg_num_neighbors`` for the families
    that have it (set from the training data).
    """

    model: Mapping[str, Any]
    data: DataConfig
    training: TrainingConfig = TrainingConfig()
    seed: int = 0
    dtype: str = "float64"
    device: str = "cpu"
    output_dir: str = "run"
    deploy: bool = True
    plots: bool = True

    @property
    def family(self) -> str:
        return str(self.model["family"])

    @property
    def hyperparameters(self) -> Dict[str, Any]:
        """The model's hyperparameters without ``family``."""
        return {key: value for key, value in self.model.items() if key != "family"}


def load_config(path: str, overrides: Sequence[str] = ()) -> Config:
    """Read, override and validate a YAML training config.

    Parameters
    ----------
    path : str
        The YAML file; relative paths inside it are relative to its directory.
    overrides : list of str
        ``dotted.key=value`` items; the value is parsed as YAML.

    Raises
    ------
    FileNotFoundError
        For a missing config file or data file.
    ValueError
        For bad YAML, unknown keys or impossible values, naming the key.
    """
    import yaml

    from mlff import config_yaml

    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file {path} does not exist")
    with open(path) as handle:
        try:
            raw = config_yaml.load(handle)
        except yaml.YAMLError as error:
            raise ValueError(f"{path} is not valid YAML: {error}") from error
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: the config must be a mapping of keys to values, got {type(raw).__name__}")
    for item in overrides:
        apply_override(raw, item)
    return config_from_dict(raw, base_dir=os.path.dirname(os.path.abspath(path)), source=path)


def apply_override(raw: Dict[str, Any], item: str) -> None:
    """Set ``dotted.key=value`` (value parsed as YAML) in the raw config mapping, in place."""
    import yaml

    from mlff import config_yaml

    if "=" not in item:
        raise ValueError(f"override {item!r} is not of the form key=value (e.g. training.epochs=5)")
    key, text = item.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ValueError(f"override {item!r}: empty key")
    try:
        value = config_yaml.load(text) if text.strip() else None
    except yaml.YAMLError as error:
        raise ValueError(f"override {item!r}: the value is not valid YAML ({error})") from error
    target = raw
    for part in parts[:-1]:
        child = target.setdefault(part, {})
        if not isinstance(child, dict):
            raise ValueError(f"override {item!r}: {part!r} is not a section")
        target = child
    target[parts[-1]] = value


def config_from_dict(raw: Mapping[str, Any], base_dir: str = ".", source: str = "config") -> Config:
    """Validate a raw config mapping (as read from YAML) into a :class:`Config`."""
    top = _fields(Config)
    _reject_unknown(raw, top, source)
    for required in ("model", "data"):
        if required not in raw or raw[required] is None:
            raise ValueError(f"{source}: the section {required!r} is required")
    model = _model_section(raw["model"], source)
    data = _data_section(raw["data"], base_dir, source)
    training = _training_section(raw.get("training") or {}, base_dir, source)
    config = Config(
        model=model,
        data=data,
        training=training,
        seed=_typed(raw.get("seed", 0), int, "seed", source),
        dtype=str(raw.get("dtype", "float64")),
        device=str(raw.get("device", "cpu")),
        output_dir=_resolve(str(raw.get("output_dir", "run")), base_dir),
        deploy=_typed(raw.get("deploy", True), bool, "deploy", source),
        plots=_typed(raw.get("plots", True), bool, "plots", source),
    )
    if config.dtype not in DTYPES:
        raise ValueError(f"{source}: dtype must be one of {list(DTYPES)}, got {config.dtype!r}")
    if not (config.device == "cpu" or config.device.startswith("cuda")):
        raise ValueError(f"{source}: device must be 'cpu', 'cuda' or 'cuda:N', got {config.device!r}")
    return config


def to_plain(config: Config) -> Dict[str, Any]:
    """YAML/JSON/checkpoint-safe nested dict of a config (tuples become lists)."""

    def plain(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(key): plain(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(item) for item in value]
        return value

    return plain(dataclasses.asdict(config))


# --- sections -------------------------------------------------------------------------------


def _model_section(raw: Any, source: str) -> Dict[str, Any]:
    if not isinstance(raw, Mapping) or "family" not in raw:
        raise ValueError(f"{source}: model must be a mapping with a 'family' ({available()}) and hyperparameters")
    family = raw["family"]
    if family not in available():
        raise ValueError(f"{source}: model.family {family!r} is unknown; available: {available()}")
    hyperparameters = {key: value for key, value in raw.items() if key != "family"}
    try:
        # validates names and values now; species/statistics are filled in by the trainer
        make_config(config_class(family), hyperparameters)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{source}: model: {error}") from error
    return dict(raw)


def _data_section(raw: Any, base_dir: str, source: str) -> DataConfig:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{source}: data must be a mapping")
    _reject_unknown(raw, _fields(DataConfig), f"{source}: data")
    values = dict(raw)
    if not values.get("train"):
        raise ValueError(f"{source}: data.train must name at least one file")
    for name in ("train", "validation", "test"):
        files = values.get(name) or []
        files = [files] if isinstance(files, str) else list(files)
        resolved = tuple(_resolve(str(file), base_dir) for file in files)
        for file in resolved:
            if not os.path.isfile(file):
                raise FileNotFoundError(f"{source}: data.{name}: file {file} does not exist")
        values[name] = resolved
    for name in ("validation", "test"):
        fraction, count = values.get(f"{name}_fraction"), values.get(f"{name}_count")
        if fraction is not None and count is not None:
            raise ValueError(f"{source}: give data.{name}_fraction or data.{name}_count, not both")
        if values[name] and (fraction is not None or count is not None):
            raise ValueError(f"{source}: data.{name} files are given: data.{name}_fraction/_count cannot be used too")
        if fraction is not None and not (isinstance(fraction, (int, float)) and 0.0 <= fraction < 1.0):
            raise ValueError(f"{source}: data.{name}_fraction must be in [0, 1), got {fraction!r}")
        if count is not None and not (isinstance(count, int) and not isinstance(count, bool) and count >= 0):
            raise ValueError(f"{source}: data.{name}_count must be a non-negative integer, got {count!r}")
    weights = values.get("config_type_weights") or {}
    if not isinstance(weights, Mapping) or any(
        not isinstance(w, (int, float)) or isinstance(w, bool) or not w >= 0 or not math.isfinite(w) for w in weights.values()
    ):
        raise ValueError(f"{source}: data.config_type_weights must map config types to non-negative numbers, got {weights!r}")
    values["config_type_weights"] = {str(key): float(w) for key, w in weights.items()}
    reference = values.get("reference_energies", "least_squares")
    if isinstance(reference, Mapping):
        try:
            reference = {int(z): float(e) for z, e in reference.items()}
        except (TypeError, ValueError) as error:
            raise ValueError(f"{source}: data.reference_energies must map atomic numbers to energies (eV)") from error
    elif reference not in REFERENCE_ENERGY_MODES:
        raise ValueError(
            f"{source}: data.reference_energies must be one of {list(REFERENCE_ENERGY_MODES)} or a mapping Z -> eV, "
            f"got {reference!r}"
        )
    values["reference_energies"] = reference
    values["skip_bad"] = _typed(values.get("skip_bad", False), bool, "data.skip_bad", source)
    return DataConfig(**values)


def _training_section(raw: Any, base_dir: str, source: str) -> TrainingConfig:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{source}: training must be a mapping")
    _reject_unknown(raw, _fields(TrainingConfig), f"{source}: training")
    defaults = TrainingConfig()
    values: Dict[str, Any] = {}
    for field in dataclasses.fields(TrainingConfig):
        value = raw.get(field.name, getattr(defaults, field.name))
        kind = type(getattr(defaults, field.name))
        if value is not None and kind in (int, float):
            value = _typed(value, kind, f"training.{field.name}", source)
        values[field.name] = value
    if values["max_minutes"] is not None:
        values["max_minutes"] = _typed(values["max_minutes"], float, "training.max_minutes", source)
    if values["early_stopping_patience"] is not None:
        values["early_stopping_patience"] = _typed(values["early_stopping_patience"], int, "training.early_stopping_patience", source)
    values["second_stage"] = _second_stage_section(values["second_stage"], values["epochs"], source)
    if values["initial_weights"] is not None:
        values["initial_weights"] = _resolve(str(values["initial_weights"]), base_dir)
        if not os.path.isfile(values["initial_weights"]):
            raise FileNotFoundError(f"{source}: training.initial_weights: checkpoint {values['initial_weights']} does not exist")
    config = TrainingConfig(**values)
    problems: List[str] = []

    def need(condition: bool, text: str) -> None:
        if not condition:
            problems.append(text)

    need(config.epochs >= 1, f"epochs must be >= 1 (got {config.epochs})")
    need(config.batch_size >= 1, f"batch_size must be >= 1 (got {config.batch_size})")
    need(config.eval_batch_size >= 1, f"eval_batch_size must be >= 1 (got {config.eval_batch_size})")
    need(config.learning_rate > 0 and math.isfinite(config.learning_rate), f"learning_rate must be positive (got {config.learning_rate})")
    need(config.weight_decay >= 0, f"weight_decay must be >= 0 (got {config.weight_decay})")
    for name in ("energy_weight", "forces_weight", "stress_weight"):
        value = getattr(config, name)
        need(value >= 0 and math.isfinite(value), f"{name} must be >= 0 (got {value})")
    need(
        config.energy_weight + config.forces_weight + config.stress_weight > 0,
        "at least one of energy_weight, forces_weight, stress_weight must be positive",
    )
    need(config.loss in LOSSES, f"loss must be one of {list(LOSSES)} (got {config.loss!r})")
    need(config.huber_delta > 0, f"huber_delta must be positive (got {config.huber_delta})")
    need(config.scheduler in SCHEDULERS, f"scheduler must be one of {list(SCHEDULERS)} (got {config.scheduler!r})")
    need(0 < config.plateau_factor < 1, f"plateau_factor must be in (0, 1) (got {config.plateau_factor})")
    need(config.plateau_patience >= 0, f"plateau_patience must be >= 0 (got {config.plateau_patience})")
    need(0 <= config.warmup_epochs < config.epochs or config.warmup_epochs == 0, f"warmup_epochs must be in [0, epochs) (got {config.warmup_epochs})")
    need(0 <= config.min_learning_rate <= config.learning_rate, f"min_learning_rate must be in [0, learning_rate] (got {config.min_learning_rate})")
    need(config.gradient_clip is None or config.gradient_clip > 0, f"gradient_clip must be positive or null (got {config.gradient_clip})")
    need(0 <= config.ema_decay < 1, f"ema_decay must be in [0, 1) (got {config.ema_decay})")
    need(
        config.early_stopping_patience is None or (isinstance(config.early_stopping_patience, int) and config.early_stopping_patience >= 1),
        f"early_stopping_patience must be a positive integer or null (got {config.early_stopping_patience})",
    )
    if config.second_stage is not None:
        need(sum(config.second_stage.weights(config)) > 0, "second_stage: at least one of its loss weights must be positive")
    need(
        config.max_minutes is None or (config.max_minutes > 0 and math.isfinite(config.max_minutes)),
        f"max_minutes must be a positive number of minutes or null (got {config.max_minutes})",
    )
    if problems:
        raise ValueError(f"{source}: training: " + "; ".join(problems))
    return config


def _second_stage_section(raw: Any, epochs: int, source: str) -> Optional[SecondStageConfig]:
    if raw is None or raw is False:
        return None
    where = f"{source}: training.second_stage"
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where} must be a mapping such as {{start_fraction: 0.8, energy_weight: 1000.0}} or null, got {raw!r}")
    _reject_unknown(raw, _fields(SecondStageConfig), where)
    values: Dict[str, Any] = {}
    for name in _fields(SecondStageConfig):
        value = raw.get(name)
        if value is not None:
            value = _typed(value, int if name == "start_epoch" else float, f"training.second_stage.{name}", source)
        values[name] = value
    stage = SecondStageConfig(**values)
    if (stage.start_epoch is None) == (stage.start_fraction is None):
        raise ValueError(f"{where}: give exactly one of start_epoch or start_fraction")
    if stage.start_epoch is not None and not 2 <= stage.start_epoch <= epochs:
        raise ValueError(f"{where}.start_epoch must be in [2, epochs={epochs}] (got {stage.start_epoch}): epochs count from 1")
    if stage.start_fraction is not None and not 0.0 < stage.start_fraction < 1.0:
        raise ValueError(f"{where}.start_fraction must be in (0, 1) (got {stage.start_fraction})")
    for name in ("energy_weight", "forces_weight", "stress_weight"):
        value = getattr(stage, name)
        if value is not None and not (value >= 0 and math.isfinite(value)):
            raise ValueError(f"{where}.{name} must be >= 0 (got {value})")
    if stage.learning_rate is not None and not (stage.learning_rate > 0 and math.isfinite(stage.learning_rate)):
        raise ValueError(f"{where}.learning_rate must be positive (got {stage.learning_rate})")
    return stage


# --- helpers --------------------------------------------------------------------------------


def _fields(cls: Type[Any]) -> List[str]:
    return [field.name for field in dataclasses.fields(cls)]


def _reject_unknown(raw: Mapping[str, Any], names: Sequence[str], where: str) -> None:
    unknown = sorted(str(key) for key in set(raw) - set(names))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; valid keys are {sorted(names)}")


def _typed(value: Any, kind: Type[T], name: str, source: str) -> T:
    """``value`` as ``kind`` (an int is a valid float; bools are only bools)."""
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{source}: {name} must be true or false, got {value!r}")
        return value  # type: ignore[return-value]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{source}: {name} must be a number, got {value!r}")
    if kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"{source}: {name} must be an integer, got {value!r}")
        return int(value)  # type: ignore[return-value]
    return float(value)  # type: ignore[return-value]


def _resolve(path: str, base_dir: str) -> str:
    path = os.path.expanduser(path)
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(base_dir, path))
