"""Labelled configurations: read from any ASE file, checked, turned into graphs once.

Reading is in two steps so that a config can be validated before any graph is built:
:func:`read_configurations` reads files into :class:`Configuration` records (numpy arrays, ASE
units: Angstrom, eV, eV/Angstrom, eV/Angstrom^3), checking every one and naming the file and
index of a bad one; :func:`build_samples` then builds each configuration's neighbour graph once
(the graphs are cached in memory for the whole training), and :func:`batches` collates samples
into batches in a seeded order.
"""

import dataclasses
import os
import warnings
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from mlff.graph.atomic_graph import AtomicGraph, collate, from_atoms


class BadDataError(ValueError):
    """A configuration with NaN/inf or inconsistent labels, or an empty file."""


@dataclasses.dataclass
class Configuration:
    """One labelled structure, as read (numpy, float64).

    Attributes
    ----------
    atoms : ase.Atoms
    energy : float or None, eV
    forces : ndarray (n_atoms, 3) or None, eV/Angstrom
    stress : ndarray (3, 3) or None, eV/Angstrom^3
    weight : float
        Loss weight of this configuration (from its config type).
    config_type : str
    source : str
        ``file:index`` for messages.
    """

    atoms: object
    energy: Optional[float]
    forces: Optional[np.ndarray]
    stress: Optional[np.ndarray]
    weight: float
    config_type: str
    source: str

    @property
    def n_atoms(self) -> int:
        return len(self.atoms)


@dataclasses.dataclass
class LabelKeys:
    """Where the labels are (see :class:`mlff.train.config.DataConfig`)."""

    energy: str = "energy"
    forces: str = "forces"
    stress: str = "stress"
    virial: Optional[str] = None
    config_type: str = "config_type"


@dataclasses.dataclass
class Requirements:
    """Labels every configuration must have (because the loss uses them)."""

    energy: bool = False
    forces: bool = False


def read_configurations(
    paths: Sequence[str],
    keys: LabelKeys = LabelKeys(),
    requirements: Requirements = Requirements(),
    config_type_weights: Optional[Mapping[str, float]] = None,
    skip_bad: bool = False,
    format: Optional[str] = None,
) -> List[Configuration]:
    """Read and check every configuration of ``paths``.

    Raises
    ------
    FileNotFoundError
        For a missing file.
    BadDataError
        For an empty or unreadable file, or (unless ``skip_bad``) the first bad configuration,
        naming its file and 0-based index. With ``skip_bad``, bad configurations are dropped
        with one warning per file giving the count and the first reason.
    """
    import ase.io

    weights = dict(config_type_weights or {})
    configurations: List[Configuration] = []
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"data file {path} does not exist")
        if os.path.getsize(path) == 0:
            raise BadDataError(f"{path}: the file is empty")
        try:
            frames = ase.io.read(path, ":", format=format)
        except Exception as error:  # ASE raises many types for unreadable files
            raise BadDataError(f"{path}: cannot be read by ASE ({type(error).__name__}: {error})") from error
        if not isinstance(frames, list):
            frames = [frames]
        if len(frames) == 0:
            raise BadDataError(f"{path}: the file contains no configurations")
        skipped: List[str] = []
        for index, atoms in enumerate(frames):
            source = f"{path}: configuration {index}"
            try:
                configurations.append(_configuration(atoms, keys, requirements, weights, source))
            except BadDataError as error:
                if not skip_bad:
                    raise
                skipped.append(str(error))
        if skipped:
            warnings.warn(f"{path}: skipped {len(skipped)} bad configuration(s) of {len(frames)}; first: {skipped[0]}")
    return configurations


def _configuration(atoms, keys: LabelKeys, requirements: Requirements, weights: Mapping[str, float], source: str) -> Configuration:
    n_atoms = len(atoms)
    if n_atoms == 0:
        raise BadDataError(f"{source}: has no atoms")
    positions = np.asarray(atoms.get_positions(), dtype=float)
    if not np.all(np.isfinite(positions)):
        raise BadDataError(f"{source}: positions contain NaN or inf")
    if atoms.pbc.any() and not np.all(np.isfinite(np.asarray(atoms.get_cell()))):
        raise BadDataError(f"{source}: the cell contains NaN or inf")

    energy = _label(atoms, keys.energy)
    if energy is not None:
        try:
            energy = float(np.asarray(energy, dtype=float).reshape(()))
        except (TypeError, ValueError) as error:
            raise BadDataError(f"{source}: energy {keys.energy!r} is not one number") from error
        if not np.isfinite(energy):
            raise BadDataError(f"{source}: energy {keys.energy!r} is {energy}")
    elif requirements.energy:
        raise BadDataError(f"{source}: no energy {keys.energy!r} (needed by the loss: energy_weight > 0)")

    forces = _label(atoms, keys.forces)
    if forces is not None:
        forces = np.asarray(forces, dtype=float)
        if forces.ndim != 2 or forces.shape[1] != 3 or forces.shape[0] != n_atoms:
            raise BadDataError(f"{source}: forces {keys.forces!r} have shape {forces.shape}, but there are {n_atoms} atoms")
        if not np.all(np.isfinite(forces)):
            raise BadDataError(f"{source}: forces {keys.forces!r} contain NaN or inf")
    elif requirements.forces:
        raise BadDataError(f"{source}: no forces {keys.forces!r} (needed by the loss: forces_weight > 0)")

    stress = None
    if keys.virial is not None:
        virial = _label(atoms, keys.virial)
        if virial is not None:
            volume = abs(float(np.linalg.det(np.asarray(atoms.get_cell())))) if atoms.pbc.all() else 0.0
            if volume <= 0:
                raise BadDataError(f"{source}: a virial is given but the structure has no 3D periodic cell")
            stress = -_full_3x3(virial, source, keys.virial) / volume
    else:
        raw = _label(atoms, keys.stress)
        if raw is not None:
            stress = _full_3x3(raw, source, keys.stress)
    if stress is not None and not np.all(np.isfinite(stress)):
        raise BadDataError(f"{source}: stress contains NaN or inf")

    config_type = str(atoms.info.get(keys.config_type, "Default"))
    return Configuration(
        atoms=atoms,
        energy=energy,
        forces=forces,
        stress=stress,
        weight=float(weights.get(config_type, 1.0)),
        config_type=config_type,
        source=source,
    )


def _label(atoms, key: str):
    """A label from ``atoms.info``, ``atoms.arrays`` or the attached calculator's results."""
    if key in atoms.info:
        return atoms.info[key]
    if key in atoms.arrays:
        return atoms.arrays[key]
    calc = getattr(atoms, "calc", None)
    results = getattr(calc, "results", None) or {}
    return results.get(key)


def _full_3x3(value, source: str, key: str) -> np.ndarray:
    array = np.asarray(value, dtype=float).reshape(-1)
    if array.size == 9:
        return array.reshape(3, 3)
    if array.size == 6:  # ASE Voigt order: xx yy zz yz xz xy
        xx, yy, zz, yz, xz, xy = array
        return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
    raise BadDataError(f"{source}: {key!r} has {array.size} components; expected 6 (Voigt) or 9")


def species_of(configurations: Sequence[Configuration]) -> List[int]:
    """Sorted atomic numbers present in ``configurations``."""
    found = set()
    for configuration in configurations:
        found.update(int(z) for z in configuration.atoms.get_atomic_numbers())
    return sorted(found)


# --- graphs and batches ----------------------------------------------------------------------


@dataclasses.dataclass
class Sample:
    """A configuration ready for training: its graph (built once) and labels as tensors."""

    graph: AtomicGraph
    energy: Optional[Tensor]  # [] eV
    forces: Optional[Tensor]  # [n_atoms, 3] eV/Angstrom
    stress: Optional[Tensor]  # [3, 3] eV/Angstrom^3
    weight: float
    n_atoms: int


def build_samples(configurations: Sequence[Configuration], cutoff: float, dtype: torch.dtype) -> List[Sample]:
    """Neighbour graphs (cutoff in Angstrom) and label tensors in ``dtype``, computed once."""

    def tensor(value) -> Optional[Tensor]:
        return None if value is None else torch.as_tensor(np.asarray(value), dtype=dtype)

    return [
        Sample(
            graph=from_atoms(c.atoms, cutoff=cutoff, dtype=dtype),
            energy=tensor(c.energy),
            forces=tensor(c.forces),
            stress=tensor(c.stress),
            weight=c.weight,
            n_atoms=c.n_atoms,
        )
        for c in configurations
    ]


@dataclasses.dataclass
class Batch:
    """Collated samples. Missing labels are zeros with a zero mask.

    Attributes
    ----------
    graph : AtomicGraph
    energy : Tensor [n_graphs] eV; energy_mask [n_graphs]
    forces : Tensor [n_atoms, 3] eV/Angstrom; forces_mask [n_atoms]
    stress : Tensor [n_graphs, 3, 3] eV/Angstrom^3; stress_mask [n_graphs]
    weight : Tensor [n_graphs]
    n_atoms : Tensor [n_graphs]
    """

    graph: AtomicGraph
    energy: Tensor
    energy_mask: Tensor
    forces: Tensor
    forces_mask: Tensor
    stress: Tensor
    stress_mask: Tensor
    weight: Tensor
    n_atoms: Tensor

    def to(self, device: torch.device) -> "Batch":
        moved = {
            name: (value.to(device) if isinstance(value, Tensor) else value)
            for name, value in dataclasses.asdict(self).items()
            if name != "graph"
        }
        graph = AtomicGraph(*[t.to(device) for t in self.graph])
        return Batch(graph=graph, **moved)


def collate_samples(samples: Sequence[Sample]) -> Batch:
    """One :class:`Batch` from samples."""
    graph = collate([s.graph for s in samples])
    dtype = graph.positions.dtype

    def per_graph(values: List[Optional[Tensor]], shape: Tuple[int, ...]) -> Tuple[Tensor, Tensor]:
        mask = torch.tensor([v is not None for v in values], dtype=dtype)
        stacked = torch.stack([v if v is not None else torch.zeros(shape, dtype=dtype) for v in values])
        return stacked, mask

    energy, energy_mask = per_graph([s.energy for s in samples], ())
    stress, stress_mask = per_graph([s.stress for s in samples], (3, 3))
    forces = torch.cat([s.forces if s.forces is not None else torch.zeros(s.n_atoms, 3, dtype=dtype) for s in samples])
    forces_mask = torch.cat(
        [torch.full((s.n_atoms,), 1.0 if s.forces is not None else 0.0, dtype=dtype) for s in samples]
    )
    return Batch(
        graph=graph,
        energy=energy,
        energy_mask=energy_mask,
        forces=forces,
        forces_mask=forces_mask,
        stress=stress,
        stress_mask=stress_mask,
        weight=torch.tensor([s.weight for s in samples], dtype=dtype),
        n_atoms=torch.tensor([s.n_atoms for s in samples], dtype=dtype),
    )


def batches(
    samples: Sequence[Sample],
    batch_size: int,
    generator: Optional[torch.Generator] = None,
    rank: int = 0,
    world_size: int = 1,
) -> Iterator[Batch]:
    """Batches of ``batch_size`` samples (the last may be smaller); shuffled with ``generator``
    when given, in order otherwise. With ``world_size > 1``, only this rank's part of the order
    (see :func:`shard`); every rank must pass a generator in the same state."""
    order = torch.randperm(len(samples), generator=generator).tolist() if generator is not None else list(range(len(samples)))
    if world_size > 1:
        order = shard(order, rank, world_size)
    for start in range(0, len(order), batch_size):
        yield collate_samples([samples[i] for i in order[start : start + batch_size]])


def shard(order: Sequence[int], rank: int, world_size: int) -> List[int]:
    """Rank ``rank``'s part of an epoch's sample order.

    The order is padded by repeating it from its start up to a multiple of ``world_size``, then
    rank r takes positions r, r + world_size, ...: the parts are disjoint apart from the padding
    and of equal length, so every rank takes the same number of steps.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in [0, {world_size})")
    order = list(order)
    if not order:
        return []
    total = -(-len(order) // world_size) * world_size
    padded = (order * (-(-total // len(order))))[:total]
    return padded[rank::world_size]


def split(
    n: int, seed: int, fraction: Optional[float], count: Optional[int]
) -> Tuple[List[int], List[int]]:
    """Seeded split of ``range(n)`` into (kept, held out): ``count`` or ``fraction * n`` held out."""
    if count is None:
        count = int(round((fraction or 0.0) * n))
    if count >= n:
        raise ValueError(f"cannot hold out {count} of {n} training configurations: nothing would be left to train on")
    order = np.random.default_rng(seed).permutation(n)
    held = sorted(order[:count].tolist())
    kept = sorted(order[count:].tolist())
    return kept, held


def count_by_config_type(configurations: Sequence[Configuration]) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for c in configurations:
        counts[c.config_type] = counts.get(c.config_type, 0) + 1
    return counts
