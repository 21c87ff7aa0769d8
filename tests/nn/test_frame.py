"""Regularised Gram-Schmidt frames: orthonormal when defined, smoothly vanishing when not."""

import torch

from mlff.nn.frame import regularized_gram_schmidt

EPSILON = 0.1


def test_well_defined_vectors_give_orthonormal_axes():
    generator = torch.Generator().manual_seed(0)
    vectors = 1e3 * torch.randn(5, 3, 3, generator=generator, dtype=torch.float64)
    axes = regularized_gram_schmidt(vectors, EPSILON)
    gram = axes @ axes.transpose(1, 2)
    torch.testing.assert_close(gram, torch.eye(3, dtype=torch.float64).expand(5, 3, 3), atol=1e-4, rtol=0)
    # the first axis points along the first vector, the second lies in the plane of the first two
    cosine = (axes[:, 0] * vectors[:, 0]).sum(-1) / vectors[:, 0].norm(dim=-1)
    torch.testing.assert_close(cosine, torch.ones(5, dtype=torch.float64), atol=1e-6, rtol=0)


def test_improper_rotation_maps_axes():
    generator = torch.Generator().manual_seed(1)
    vectors = torch.randn(4, 3, 3, generator=generator, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=generator, dtype=torch.float64))
    reflection = q @ torch.diag(torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64))
    axes = regularized_gram_schmidt(vectors, EPSILON)
    moved = regularized_gram_schmidt(vectors @ reflection.T, EPSILON)
    torch.testing.assert_close(moved, axes @ reflection.T)


def test_zero_vectors_give_zero_axes_and_finite_gradients():
    vectors = torch.zeros(1, 3, 3, dtype=torch.float64, requires_grad=True)
    axes = regularized_gram_schmidt(vectors, EPSILON)
    assert torch.equal(axes, torch.zeros_like(axes))
    assert torch.autograd.gradcheck(lambda v: regularized_gram_schmidt(v, EPSILON), (vectors,))


def test_dependent_vectors_give_vanishing_axes_smoothly():
    direction = torch.tensor([0.6, 0.0, 0.8], dtype=torch.float64)
    vectors = torch.stack([5.0 * direction, -2.0 * direction, 3.0 * direction]).unsqueeze(0).requires_grad_(True)
    axes = regularized_gram_schmidt(vectors, EPSILON)
    assert axes[0, 0].norm() > 0.99
    # what survives of the dependent vectors is O(eps^3 / |u|^4): the projection is nearly exact
    assert axes[0, 1].norm() < 1e-4 and axes[0, 2].norm() < 1e-4
    assert torch.autograd.gradcheck(lambda v: regularized_gram_schmidt(v, EPSILON), (vectors,))


def test_axes_never_exceed_unit_length():
    generator = torch.Generator().manual_seed(2)
    vectors = torch.randn(100, 3, 3, generator=generator, dtype=torch.float64) * torch.logspace(-4, 2, 100, dtype=torch.float64).view(-1, 1, 1)
    norms = regularized_gram_schmidt(vectors, EPSILON).norm(dim=-1)
    assert torch.isfinite(norms).all() and (norms < 1.0).all()
