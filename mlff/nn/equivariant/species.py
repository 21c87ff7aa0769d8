"""Species partitions: atoms grouped by species, for blocks whose weights depend on the species.

Indexing a per-species weight tensor by atom would copy the weights once per atom (for an
equivariant linear of 32 channels and six irreps, 6k numbers per atom). Grouping atoms by
species instead applies each species' weights once, to all of its atoms together. Only the
species present are visited, so a model built for the whole periodic table pays for the few
elements of the system at hand.
"""

from typing import List, NamedTuple

import torch
from torch import Tensor


class SpeciesPartition(NamedTuple):
    """Atoms of a graph grouped by species.

    Attributes
    ----------
    species : List[int]
        Species indices present, ascending.
    indices : List[Tensor]
        ``indices[g]``, shape (n_atoms_g,), int64: the atoms of species ``species[g]``,
        ascending.
    inverse : Tensor, shape (n_atoms,), int64
        Row of each atom in ``torch.cat(indices)``: a result computed group by group and
        concatenated is put back in atom order by ``result.index_select(0, inverse)``.
    """

    species: List[int]
    indices: List[Tensor]
    inverse: Tensor


def partition_by_species(species: Tensor, n_species: int) -> SpeciesPartition:
    """Group atoms by species index.

    Parameters
    ----------
    species : Tensor, shape (n_atoms,), int64
        Species index of each atom, in 0..n_species-1.
    n_species : int

    Returns
    -------
    SpeciesPartition
    """
    order = torch.argsort(species, stable=True)
    counts = torch.bincount(species, minlength=n_species)
    present = torch.nonzero(counts).reshape(-1)
    sizes: List[int] = counts.index_select(0, present).tolist()
    present_list: List[int] = present.tolist()
    indices = list(torch.split(order, sizes))
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(order.size(0), dtype=order.dtype, device=order.device)
    return SpeciesPartition(present_list, indices, inverse)
