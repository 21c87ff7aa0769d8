"""Statistics of the training set that set up a potential before training.

- reference energies E0 per species (eV): a least-squares fit of the energies to the element
  counts, the energies of single-atom configurations, or given;
- the energy scale: the RMS of the force components (eV/Angstrom), or, without forces, the
  standard deviation of the per-atom energy left after E0;
- the average number of neighbours within the cutoff, which some models divide their message
  sums by.
"""

from typing import Dict, List, Mapping, Sequence, Union

import numpy as np

from mlff.train.dataset import Configuration, Sample


def least_squares_reference_energies(configurations: Sequence[Configuration], species: Sequence[int]) -> Dict[int, float]:
    """E0 (eV) minimising sum_c (E_c - sum_z n_cz E0_z)^2 over configurations with an energy."""
    labelled = [c for c in configurations if c.energy is not None]
    if not labelled:
        raise ValueError("no training configuration has an energy: cannot fit reference energies (give them instead)")
    column = {z: i for i, z in enumerate(species)}
    counts = np.zeros((len(labelled), len(species)))
    for row, c in enumerate(labelled):
        for z in c.atoms.get_atomic_numbers():
            counts[row, column[int(z)]] += 1
    energies = np.array([c.energy for c in labelled])
    # rcond=None: minimum-norm solution where species always occur in fixed ratios
    solution = np.linalg.lstsq(counts, energies, rcond=None)[0]
    return {int(z): float(e) for z, e in zip(species, solution)}


def isolated_atom_energies(configurations: Sequence[Configuration], species: Sequence[int]) -> Dict[int, float]:
    """E0 (eV) from single-atom configurations; every species needs one."""
    found: Dict[int, float] = {}
    for c in configurations:
        if c.n_atoms == 1 and c.energy is not None:
            found[int(c.atoms.get_atomic_numbers()[0])] = float(c.energy)
    missing = sorted(set(species) - set(found))
    if missing:
        raise ValueError(f"reference_energies 'isolated': no single-atom configuration with an energy for species {missing}")
    return {z: found[z] for z in species}


def reference_energies(
    mode: Union[str, Mapping[int, float]], configurations: Sequence[Configuration], species: Sequence[int]
) -> Dict[int, float]:
    """E0 per species by ``mode``: "least_squares", "isolated", "zero" or a given mapping."""
    if isinstance(mode, Mapping):
        missing = sorted(set(species) - set(int(z) for z in mode))
        if missing:
            raise ValueError(f"data.reference_energies gives no energy for species {missing} of the training data")
        return {int(z): float(mode[z]) for z in species}
    if mode == "least_squares":
        return least_squares_reference_energies(configurations, species)
    if mode == "isolated":
        return isolated_atom_energies(configurations, species)
    if mode == "zero":
        return {int(z): 0.0 for z in species}
    raise ValueError(f"unknown reference energy mode {mode!r}")


def energy_scale(configurations: Sequence[Configuration], e0: Mapping[int, float]) -> float:
    """RMS of force components (eV/Angstrom); without forces, the std of E - E0 per atom (eV)."""
    forces = [c.forces for c in configurations if c.forces is not None]
    if forces:
        value = float(np.sqrt(np.mean(np.concatenate([f.reshape(-1) for f in forces]) ** 2)))
    else:
        residuals = [
            (c.energy - sum(e0[int(z)] for z in c.atoms.get_atomic_numbers())) / c.n_atoms
            for c in configurations
            if c.energy is not None
        ]
        value = float(np.std(residuals)) if len(residuals) > 1 else 1.0
    # a constant dataset would give 0 and freeze the model's output: fall back to 1
    return value if np.isfinite(value) and value > 1e-8 else 1.0


def average_num_neighbors(samples: Sequence[Sample]) -> float:
    """Mean number of edges per atom over the samples' graphs."""
    edges = sum(int(s.graph.edge_index.size(1)) for s in samples)
    atoms = sum(s.n_atoms for s in samples)
    return max(edges / max(atoms, 1), 1.0)


def species_not_in(configurations: Sequence[Configuration], species: Sequence[int]) -> List[int]:
    """Atomic numbers in ``configurations`` that are not in ``species``."""
    known = set(species)
    found = set()
    for c in configurations:
        found.update(int(z) for z in c.atoms.get_atomic_numbers())
    return sorted(found - known)
