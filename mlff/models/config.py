"""Model configuration: one typed, frozen dataclass per model family.

Every family's config derives from :class:`ModelConfig`, which holds what every model shares
(the cutoff and the species it was built for). Configs are values: built once, validated in
``__post_init__``, never mutated (``dataclasses.replace`` makes a changed copy). Unknown keys
are errors, so a typo in a hyperparameter never silently falls back to a default.
"""

import dataclasses
from typing import Any, Mapping, Tuple, Type, TypeVar

from mlff.nn.embedding import MAX_ATOMIC_NUMBER

#: Every element of the periodic table, as atomic numbers: the default species of a model.
ALL_SPECIES: Tuple[int, ...] = tuple(range(1, MAX_ATOMIC_NUMBER + 1))

ConfigT = TypeVar("ConfigT", bound="ModelConfig")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Hyperparameters shared by every model family.

    Parameters
    ----------
    cutoff : float
        Interaction cutoff in Angstrom; edges at or beyond it contribute nothing.
    species : tuple of int
        Atomic numbers the model accepts (default: every element). Given as any sequence,
        stored as a sorted tuple.
    """

    cutoff: float = 5.0
    species: Tuple[int, ...] = ALL_SPECIES

    def __post_init__(self) -> None:
        if not float(self.cutoff) > 0.0:
            raise ValueError(f"{type(self).__name__}: cutoff must be positive (Angstrom), got {self.cutoff}")
        species = tuple(sorted(int(z) for z in self.species))
        if len(species) == 0:
            raise ValueError(f"{type(self).__name__}: species must list at least one atomic number")
        if len(set(species)) != len(species):
            raise ValueError(f"{type(self).__name__}: species must be unique, got {list(self.species)}")
        bad = [z for z in species if not 1 <= z <= MAX_ATOMIC_NUMBER]
        if bad:
            raise ValueError(f"{type(self).__name__}: {bad} are not atomic numbers (1..{MAX_ATOMIC_NUMBER})")
        # frozen dataclass: normalise through object.__setattr__, once, at construction
        object.__setattr__(self, "cutoff", float(self.cutoff))
        object.__setattr__(self, "species", species)


def require_positive(config: ModelConfig, **values: float) -> None:
    """Raise ValueError naming every given hyperparameter that is not strictly positive."""
    bad = {name: value for name, value in values.items() if not value > 0}
    if bad:
        raise ValueError(f"{type(config).__name__}: these hyperparameters must be positive: {bad}")


def make_config(config_class: Type[ConfigT], overrides: Mapping[str, Any]) -> ConfigT:
    """Build ``config_class`` from defaults and ``overrides``, rejecting unknown keys.

    Raises
    ------
    ValueError
        When a key is not a field of ``config_class`` (the message lists the valid keys), or
        when the config's own validation fails.
    """
    names = [field.name for field in dataclasses.fields(config_class)]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise ValueError(f"{config_class.__name__}: unknown key(s) {unknown}; valid keys are {names}")
    return config_class(**overrides)


def config_to_dict(config: ModelConfig) -> dict:
    """Plain, YAML/JSON-safe dict of a config (tuples become lists)."""
    return {
        name: list(value) if isinstance(value, tuple) else value
        for name, value in dataclasses.asdict(config).items()
    }
