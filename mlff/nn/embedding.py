"""Species handling: atomic numbers to contiguous species indices, with a clear error for
elements the model was not built for."""

from typing import List

import torch
from torch import Tensor

MAX_ATOMIC_NUMBER = 118


class SpeciesIndex(torch.nn.Module):
    """Maps atomic numbers (any element, 1..118) to indices 0..n_species-1 of ``species``.

    Raises ValueError naming the offending atomic numbers when an element is not among the
    model's species.
    """

    def __init__(self, species: List[int]):
        super().__init__()
        if len(species) == 0:
            raise ValueError("SpeciesIndex: give at least one species (atomic numbers)")
        if len(set(species)) != len(species):
            raise ValueError(f"SpeciesIndex: species must be unique, got {species}")
        for z in species:
            if not 1 <= int(z) <= MAX_ATOMIC_NUMBER:
                raise ValueError(f"SpeciesIndex: atomic number {z} is not an element (1..{MAX_ATOMIC_NUMBER})")
        self.species: List[int] = [int(z) for z in species]
        table = torch.full((MAX_ATOMIC_NUMBER + 1,), -1, dtype=torch.long)
        table[torch.tensor(self.species, dtype=torch.long)] = torch.arange(len(species), dtype=torch.long)
        self.register_buffer("table", table)
        # False only where data-dependent errors cannot exist: a graph being compiled ahead of
        # time (mlff.export.compiled), whose caller checks the input eagerly instead
        self.validate = True

    @property
    def n_species(self) -> int:
        return len(self.species)

    def forward(self, atomic_numbers: Tensor) -> Tensor:
        """(n_atoms,) int64 atomic numbers -> (n_atoms,) int64 species indices."""
        if not self.validate:
            return self.table[atomic_numbers]
        highest = self.table.size(0) - 1
        valid = (atomic_numbers >= 0) & (atomic_numbers <= highest)
        index = self.table[atomic_numbers.clamp(0, highest)]
        unknown = (index < 0) | ~valid
        if bool(unknown.any()):
            bad: List[int] = torch.unique(atomic_numbers[unknown]).tolist()
            raise ValueError(
                "unknown element(s) with atomic number(s) "
                + str(bad)
                + ": this model was built for atomic numbers "
                + str(self.species)
            )
        return index
