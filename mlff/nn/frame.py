"""Local frames: three orthonormal axes per atom, built from its neighbourhood, smooth everywhere.

Projecting neighbour coordinates onto an atom's frame gives rotation-invariant features that
keep all angular information, so plain MLPs can process them (the "unconstrained" family).
A frame is only as good as the neighbourhood defines it: for a pair of atoms only one axis is
defined, for a symmetric site (the centre of a linear or tetrahedral molecule) none. Instead
of a frame that jumps or blows up there, mlff uses frames that shrink smoothly:

1. three *frame vectors* per atom are learned weighted sums of its neighbour vectors,
   ``u_k(i) = sum_j w_k(z_j, r_ij) f(r_ij) (r_j - r_i) / cutoff`` (dimensionless), with the
   cutoff envelope ``f`` so that they are continuous as neighbours enter or leave; they are
   polar vectors, so the frames follow rotations *and* reflections (energies are E(3)-invariant);
2. a *regularised* Gram-Schmidt (:func:`regularized_gram_schmidt`) turns them into axes.
   Where the ``u_k`` are well defined (residuals ``|w| >> eps``) the axes are orthonormal up
   to ``O(eps^2 / |w|^2)``; where they vanish or are linearly dependent (isolated atom, a lone
   pair of atoms, collinear or symmetric neighbours) the undefined axes go smoothly to zero,
   and so do the projections onto them. Everything is a composition of smooth functions:
   finite values and derivatives, bounded by about ``1 / eps``, for any geometry.
"""

from typing import List

import torch
from torch import Tensor

from mlff.nn.scatter import scatter_sum


def regularized_gram_schmidt(vectors: Tensor, epsilon: float) -> Tensor:
    """Smooth, approximately orthonormal axes from three vectors per atom.

    Gram-Schmidt with its two divisions regularised by ``epsilon``:

    * removing the part of ``u`` along an earlier residual ``w`` uses
      ``(u.w) w |w|^2 / (|w|^4 + eps^4)`` instead of ``(u.w) w / |w|^2``: exact to
      ``O(eps^4 / |w|^4)`` when ``|w| >> eps``, smoothly zero when ``w`` vanishes;
    * normalising the residual uses ``w / sqrt(|w|^2 + eps^2)``: unit length to
      ``O(eps^2 / |w|^2)``, smoothly zero when ``w`` vanishes.

    Both are rational functions with positive denominators: smooth (C-infinity) everywhere,
    with derivatives bounded by about ``1 / eps``.

    Parameters
    ----------
    vectors : Tensor, (n_atoms, 3, 3)
        ``vectors[:, k]`` is the k-th frame vector u_k (dimensionless).
    epsilon : float
        Regularisation length (same units as the vectors): residuals much shorter than it give
        vanishing axes.

    Returns
    -------
    Tensor, (n_atoms, 3, 3)
        ``axes[:, k]`` is axis e_k.
    """
    epsilon_squared = epsilon * epsilon
    epsilon_fourth = epsilon_squared * epsilon_squared
    residuals: List[Tensor] = []
    inverse_norms_squared: List[Tensor] = []  # |w|^2 / (|w|^4 + eps^4), a smooth 1 / |w|^2
    axes: List[Tensor] = []
    for k in range(3):
        residual = vectors[:, k]  # [n_atoms, 3]
        for previous, inverse in zip(residuals, inverse_norms_squared):
            residual = residual - (residual * previous).sum(dim=-1, keepdim=True) * inverse * previous
        norm_squared = (residual * residual).sum(dim=-1, keepdim=True)  # [n_atoms, 1]
        residuals.append(residual)
        inverse_norms_squared.append(norm_squared / (norm_squared * norm_squared + epsilon_fourth))
        axes.append(residual / torch.sqrt(norm_squared + epsilon_squared))
    return torch.stack(axes, dim=1)


class LocalFrame(torch.nn.Module):
    """Frames (n_atoms, 3, 3) from learned, envelope-weighted sums of neighbour vectors.

    The weight of neighbour j in frame vector k of atom i is ``a_k(radial_ij) * b_k(h_j)``: a
    linear map of the radial basis times a linear map of the neighbour's features.

    Parameters
    ----------
    n_features : int
        Size of the atom features the weights depend on.
    n_basis : int
        Size of the radial basis.
    cutoff : float
        Angstrom; neighbour vectors are divided by it.
    epsilon : float
        Regularisation of the Gram-Schmidt step (dimensionless, in units of the cutoff).
    """

    def __init__(self, n_features: int, n_basis: int, cutoff: float, epsilon: float):
        super().__init__()
        self.radial_weights = torch.nn.Linear(n_basis, 3)
        self.species_weights = torch.nn.Linear(n_features, 3)
        self.cutoff = float(cutoff)
        self.epsilon = float(epsilon)

    def forward(
        self,
        features: Tensor,
        neighbor_vectors: Tensor,
        radial: Tensor,
        envelope: Tensor,
        neighbor: Tensor,
        center: Tensor,
    ) -> Tensor:
        """Frames of all atoms.

        Parameters
        ----------
        features : Tensor, (n_atoms, n_features)
        neighbor_vectors : Tensor, (n_edges, 3), Angstrom, ``r_neighbor - r_center``
        radial : Tensor, (n_edges, n_basis)
        envelope : Tensor, (n_edges,)
        neighbor, center : Tensor, (n_edges,), int64
            The atom whose vector is summed, and the atom whose frame it enters.

        Returns
        -------
        Tensor, (n_atoms, 3, 3): ``frames[i, k]`` is axis k of atom i (Cartesian components).
        """
        weights = self.radial_weights(radial) * self.species_weights(features)[neighbor]  # [n_edges, 3]
        weights = weights * envelope.unsqueeze(-1)
        contributions = weights.unsqueeze(-1) * (neighbor_vectors / self.cutoff).unsqueeze(1)  # [n_edges, 3, 3]
        frame_vectors = scatter_sum(contributions, center, features.size(0))  # [n_atoms, 3, 3]
        return regularized_gram_schmidt(frame_vectors, self.epsilon)
