"""The training, validation and test sets of a config, read and checked before any training.

:func:`load_splits` reads every file (stopping at the first bad configuration unless
``data.skip_bad``), holds out seeded validation/test parts of the training files when no
separate files are given, and checks that validation and test contain no species the training
set lacks (a model cannot learn an element it never sees).
"""

import dataclasses
import hashlib
from typing import List, Optional, Sequence

import numpy as np

from mlff.train.config import Config
from mlff.train.dataset import Configuration, LabelKeys, Requirements, read_configurations, species_of, split
from mlff.train.statistics import species_not_in


@dataclasses.dataclass
class Splits:
    """Configurations of each split, and the training set's species."""

    train: List[Configuration]
    validation: List[Configuration]
    test: List[Configuration]
    species: List[int]


def fingerprint(configurations: Sequence[Configuration]) -> str:
    """SHA-256 of the configurations' content (numbers, positions, cell, pbc, labels, weights).

    Independent of file format and names: the same data in another file gives the same hash.
    """
    digest = hashlib.sha256()
    for configuration in configurations:
        atoms = configuration.atoms
        for array in (atoms.numbers, atoms.positions, atoms.cell.array, atoms.pbc):
            digest.update(np.ascontiguousarray(array).tobytes())
        for label in (configuration.energy, configuration.forces, configuration.stress):
            digest.update(b"-" if label is None else np.ascontiguousarray(label, dtype=np.float64).tobytes())
        digest.update(np.float64(configuration.weight).tobytes())
    return digest.hexdigest()


def label_keys(config: Config) -> LabelKeys:
    data = config.data
    return LabelKeys(data.energy_key, data.forces_key, data.stress_key, data.virial_key, data.config_type_key)


def load_splits(config: Config, model_species: Optional[Sequence[int]] = None, species_source: str = "model.species") -> Splits:
    """Read and split the data of ``config``; raises ValueError with the reason and place.

    Parameters
    ----------
    model_species : list of int, optional
        Species the model is built for, when the config gives them; all data must be within.
    species_source : str
        Where those species come from, for the error message.
    """
    data, training = config.data, config.training
    requirements = Requirements(energy=training.uses_energy(), forces=training.uses_forces())

    def read(paths: Sequence[str]) -> List[Configuration]:
        return read_configurations(
            paths, label_keys(config), requirements, data.config_type_weights, skip_bad=data.skip_bad, format=data.format
        )

    pool = read(data.train)
    if not pool:
        raise ValueError(f"data.train: no usable configuration in {list(data.train)}")
    if data.validation:
        validation = read(data.validation)
    else:
        fraction = data.validation_fraction
        if fraction is None and data.validation_count is None:
            fraction = 0.1
        kept, held = split(len(pool), config.seed, fraction, data.validation_count)
        validation = [pool[i] for i in held]
        pool = [pool[i] for i in kept]
    if data.test:
        test = read(data.test)
    else:
        # a different stream than the validation split, so changing one leaves the other alone
        kept, held = split(len(pool), config.seed + 1, data.test_fraction, data.test_count)
        test = [pool[i] for i in held]
        pool = [pool[i] for i in kept]

    species = species_of(pool)
    for name, configurations in (("validation", validation), ("test", test)):
        unseen = species_not_in(configurations, species)
        if unseen:
            raise ValueError(f"the {name} data contain species {unseen} that the training data do not (training species: {species})")
    if model_species is not None:
        outside = species_not_in(pool + validation + test, model_species)
        if outside:
            raise ValueError(f"{species_source} {list(model_species)} lacks species {outside} found in the data")
        species = sorted(int(z) for z in model_species)
    if training.uses_stress() and not any(c.stress is not None for c in pool):
        raise ValueError(f"training.stress_weight (or second_stage.stress_weight) > 0 but no training configuration has a stress {data.stress_key!r}")
    return Splits(train=pool, validation=validation, test=test, species=species)
