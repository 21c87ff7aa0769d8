"""The compiled PaiNN message op (torch.ops.mlff.painn_messages) against the same sums written
with tensor operations: values, first and second derivatives, threads, bad input."""

import pytest
import torch

from mlff.nn.fused import painn_messages, painn_messages_reference


def random_inputs(n_edges: int, n_atoms: int, n_features: int, dtype: torch.dtype, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)

    def normal(*shape):
        return torch.randn(*shape, generator=generator, dtype=dtype).requires_grad_()

    filters = normal(n_edges, 3 * n_features)
    features = normal(n_atoms, 3 * n_features)
    vectors = normal(n_atoms, 3, n_features)
    directions = normal(n_edges, 3)
    sender = torch.randint(0, n_atoms, (n_edges,), generator=generator)
    receiver = torch.randint(0, n_atoms, (n_edges,), generator=generator)
    return filters, features, vectors, directions, sender, receiver


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n_edges", [0, 50, 20000])  # 20000 edges: one buffer per thread
def test_matches_tensor_operations_with_gradients(dtype, n_edges):
    inputs = random_inputs(n_edges, 30, 8, dtype)
    # float32: sums of hundreds of terms in another order; absolute error relative to the largest
    epsilon = 1e-5 if dtype == torch.float32 else 1e-12

    def assert_close(actual, expected, what):
        scale = float(expected.detach().abs().max()) if expected.numel() else 1.0
        torch.testing.assert_close(actual, expected, rtol=epsilon, atol=epsilon * max(scale, 1.0), msg=lambda m: f"{what}: {m}")

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        fused = painn_messages(*inputs)
        reference = painn_messages_reference(*inputs)
        for what, a, b in zip(("scalar sums", "vector sums"), fused, reference):
            assert_close(a, b, what)

        def loss(outputs):
            return (outputs[0] * torch.linspace(-1, 1, outputs[0].numel(), dtype=dtype).view_as(outputs[0])).sum() + (
                outputs[1] ** 2
            ).sum()

        grads_fused = torch.autograd.grad(loss(fused), inputs[:4])
        grads_reference = torch.autograd.grad(loss(reference), inputs[:4])
        for name, a, b in zip(("filters", "features", "vectors", "directions"), grads_fused, grads_reference):
            assert_close(a, b, f"gradient of {name}")
    finally:
        torch.set_num_threads(previous_threads)


def test_first_and_second_derivatives_are_exact():
    filters, features, vectors, directions, sender, receiver = random_inputs(40, 7, 3, torch.float64)

    def messages(filters, features, vectors, directions):
        return torch.ops.mlff.painn_messages(filters, features, vectors, directions, sender, receiver)

    inputs = (filters, features, vectors, directions)
    assert torch.autograd.gradcheck(messages, inputs)  # compiled backward kernel
    assert torch.autograd.gradgradcheck(messages, inputs)  # differentiable backward (create_graph)


def test_differentiable_under_torchscript():
    inputs = random_inputs(60, 9, 4, torch.float64)
    scripted = torch.jit.script(painn_messages)
    expected = torch.autograd.grad(painn_messages_reference(*inputs)[1].square().sum(), inputs[:4])
    actual = torch.autograd.grad(scripted(*inputs)[1].square().sum(), inputs[:4])
    for a, b in zip(actual, expected):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_result_does_not_depend_on_the_thread_count_beyond_rounding():
    inputs = random_inputs(20000, 100, 4, torch.float64, seed=3)
    previous_threads = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            results.append(painn_messages(*inputs))
    finally:
        torch.set_num_threads(previous_threads)
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_bad_input_is_a_clear_error():
    filters, features, vectors, directions, sender, receiver = random_inputs(10, 4, 3, torch.float64)
    with pytest.raises(RuntimeError, match="out of range"):
        torch.ops.mlff.painn_messages(filters, features, vectors, directions, sender, receiver + 4)
    with pytest.raises(RuntimeError, match=r"vectors must be \(n_atoms, 3, F\)"):
        torch.ops.mlff.painn_messages(filters, features, vectors[:, :2], directions, sender, receiver)
    with pytest.raises(RuntimeError, match="one dtype"):
        torch.ops.mlff.painn_messages(filters, features.float(), vectors, directions, sender, receiver)
    with pytest.raises(RuntimeError, match="int64"):
        torch.ops.mlff.painn_messages(filters, features, vectors, directions, sender.int(), receiver)
