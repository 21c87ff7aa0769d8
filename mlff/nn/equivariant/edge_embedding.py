"""Edge embedding: an edge vector as radial features (invariant) and spherical harmonics of
its direction (equivariant), computed once per forward and shared by all layers."""

from typing import Tuple

import torch
from e3nn import o3
from torch import Tensor

from mlff.nn.cutoff import PolynomialCutoff
from mlff.nn.radial import BesselBasis


class EdgeEmbedding(torch.nn.Module):
    """Radial basis times envelope, and spherical harmonics of the unit edge vector.

    Parameters
    ----------
    radial : BesselBasis
        Radial basis, ``n_basis`` functions of the length (Angstrom).
    envelope : PolynomialCutoff
        Multiplies every basis function, so radial features and everything computed from them
        by maps that send 0 to 0 vanish smoothly at the cutoff.
    irreps_sh : o3.Irreps
        Spherical harmonics, e.g. ``o3.Irreps.spherical_harmonics(3)`` = 0e+1o+2e+3o,
        "component" normalization (each l has unit mean square over the sphere).

    Notes
    -----
    An edge of zero length (two atoms at the same position) has no direction and gives NaN
    here; :class:`mlff.Potential` refuses such inputs (and non-finite positions) with a clear
    error before the model runs, so the model does not check again.
    """

    def __init__(self, radial: BesselBasis, envelope: PolynomialCutoff, irreps_sh: o3.Irreps):
        super().__init__()
        self.radial = radial
        self.envelope = envelope
        self.irreps_sh = o3.Irreps(irreps_sh)
        self.spherical_harmonics = o3.SphericalHarmonics(self.irreps_sh, normalize=True, normalization="component")

    def forward(self, vectors: Tensor) -> Tuple[Tensor, Tensor]:
        """Embed edges.

        Parameters
        ----------
        vectors : Tensor, shape (n_edges, 3), Angstrom
            ``r_receiver - r_sender`` (with periodic shift).

        Returns
        -------
        radial : Tensor, shape (n_edges, n_basis)
            Basis times envelope.
        sh : Tensor, shape (n_edges, irreps_sh.dim)
            Spherical harmonics of the direction.
        """
        lengths = torch.linalg.norm(vectors, dim=1)  # (n_edges,)
        radial = self.radial(lengths) * self.envelope(lengths).unsqueeze(1)
        sh = self.spherical_harmonics(vectors)
        return radial, sh
