// PaiNN's message block as one pass over the edges (CPU), forward and backward.
//
// For every edge e with sender j and receiver i, filters w = [w_s | w_v | w_r] (3F, envelope
// included), sender features x = [x_s | x_v | x_r] (3F, phi(s_j)), sender vectors v_j (3, F)
// and unit direction u_e (3):
//
//     ds_i      += w_s x_s
//     dv_i[d]   += (w_v x_v) v_j[d] + (w_r x_r) u_e[d]
//
// Written with tensors this materialises several (n_edges, 3, F) arrays per layer and as many
// again in the backward pass; here nothing per edge is written in the forward pass and only
// the gradients that are per edge by nature (filters, directions) in the backward pass. Sums
// into atoms go to one buffer per thread (edges are in any order), added up at the end in a
// fixed order: results do not depend on scheduling, only on the number of threads.
//
// Autograd (registered here, so that TorchScript and C++ engines differentiate it too): the
// backward kernel when no graph of the derivatives is being built (forces for MD); otherwise
// (training differentiates forces again) the same gradients composed of differentiable ATen
// operations, so that every order is exact.

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <algorithm>
#include <tuple>
#include <vector>

namespace {

using at::Tensor;

void check_inputs(const Tensor& filters, const Tensor& features, const Tensor& vectors, const Tensor& directions,
                  const Tensor& sender, const Tensor& receiver) {
    TORCH_CHECK(filters.dim() == 2 && filters.size(1) % 3 == 0, "painn_messages: filters must be (n_edges, 3F)");
    const int64_t n_edges = filters.size(0);
    const int64_t width = filters.size(1) / 3;
    TORCH_CHECK(features.dim() == 2 && features.size(1) == 3 * width, "painn_messages: features must be (n_atoms, 3F)");
    TORCH_CHECK(vectors.dim() == 3 && vectors.size(0) == features.size(0) && vectors.size(1) == 3 && vectors.size(2) == width,
                "painn_messages: vectors must be (n_atoms, 3, F)");
    TORCH_CHECK(directions.dim() == 2 && directions.size(0) == n_edges && directions.size(1) == 3,
                "painn_messages: directions must be (n_edges, 3)");
    TORCH_CHECK(sender.dim() == 1 && sender.size(0) == n_edges && receiver.dim() == 1 && receiver.size(0) == n_edges,
                "painn_messages: sender and receiver must be (n_edges,)");
    TORCH_CHECK(sender.scalar_type() == at::kLong && receiver.scalar_type() == at::kLong,
                "painn_messages: sender and receiver must be int64");
    for (const Tensor* t : {&features, &vectors, &directions}) {
        TORCH_CHECK(t->scalar_type() == filters.scalar_type(), "painn_messages: all float inputs must have one dtype");
    }
    for (const Tensor* t : {&filters, &features, &vectors, &directions, &sender, &receiver}) {
        TORCH_CHECK(t->device().is_cpu(), "painn_messages: CPU tensors expected");
    }
}

// Splits [0, n) into `parts` contiguous ranges; range p is [bounds[p], bounds[p + 1]).
std::vector<int64_t> split_range(int64_t n, int64_t parts) {
    std::vector<int64_t> bounds(parts + 1);
    for (int64_t p = 0; p <= parts; ++p) bounds[p] = n * p / parts;
    return bounds;
}

int64_t n_parts(int64_t n_edges) {
    // no point in threads for a few thousand edges
    return std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), n_edges / 4096));
}

// Adds buffers[1..] into buffers[0].
void reduce_into_first(std::vector<Tensor>& buffers) {
    for (size_t p = 1; p < buffers.size(); ++p) buffers[0].add_(buffers[p]);
}

template <typename scalar_t>
void forward_kernel(const Tensor& filters, const Tensor& features, const Tensor& vectors, const Tensor& directions,
                    const Tensor& sender, const Tensor& receiver, Tensor& d_scalars, Tensor& d_vectors) {
    const int64_t n_edges = filters.size(0);
    const int64_t F = filters.size(1) / 3;
    const int64_t n_atoms = features.size(0);
    const scalar_t* w_all = filters.data_ptr<scalar_t>();
    const scalar_t* x_all = features.data_ptr<scalar_t>();
    const scalar_t* v_all = vectors.data_ptr<scalar_t>();
    const scalar_t* u_all = directions.data_ptr<scalar_t>();
    const int64_t* snd = sender.data_ptr<int64_t>();
    const int64_t* rcv = receiver.data_ptr<int64_t>();

    const int64_t parts = n_parts(n_edges);
    const auto bounds = split_range(n_edges, parts);
    // per part: (n_atoms, 4F) = [ds | dv_x | dv_y | dv_z]
    std::vector<Tensor> buffers(parts);
    for (int64_t p = 0; p < parts; ++p) buffers[p] = at::zeros({n_atoms, 4 * F}, filters.options());

    at::parallel_for(0, parts, 1, [&](int64_t first, int64_t last) {
        std::vector<scalar_t> a(F), b(F);
        for (int64_t p = first; p < last; ++p) {
            scalar_t* out = buffers[p].data_ptr<scalar_t>();
            for (int64_t e = bounds[p]; e < bounds[p + 1]; ++e) {
                const int64_t i = rcv[e];
                const int64_t j = snd[e];
                TORCH_CHECK(i >= 0 && i < n_atoms && j >= 0 && j < n_atoms, "painn_messages: edge ", e, " has an atom index out of range");
                const scalar_t* __restrict w = w_all + e * 3 * F;
                const scalar_t* __restrict x = x_all + j * 3 * F;
                const scalar_t* __restrict v = v_all + j * 3 * F;
                const scalar_t* u = u_all + e * 3;
                scalar_t* __restrict o = out + i * 4 * F;
                for (int64_t f = 0; f < F; ++f) {
                    o[f] += w[f] * x[f];
                    a[f] = w[F + f] * x[F + f];
                    b[f] = w[2 * F + f] * x[2 * F + f];
                }
                for (int64_t d = 0; d < 3; ++d) {
                    scalar_t* __restrict od = o + (1 + d) * F;
                    const scalar_t* __restrict vd = v + d * F;
                    const scalar_t ud = u[d];
                    for (int64_t f = 0; f < F; ++f) od[f] += a[f] * vd[f] + b[f] * ud;
                }
            }
        }
    });
    reduce_into_first(buffers);
    d_scalars = buffers[0].narrow(1, 0, F).contiguous();
    d_vectors = buffers[0].narrow(1, F, 3 * F).reshape({n_atoms, 3, F});
}

std::tuple<Tensor, Tensor> painn_messages_cpu(const Tensor& filters, const Tensor& features, const Tensor& vectors,
                                              const Tensor& directions, const Tensor& sender, const Tensor& receiver) {
    check_inputs(filters, features, vectors, directions, sender, receiver);
    const auto w = filters.contiguous(), x = features.contiguous(), v = vectors.contiguous(), u = directions.contiguous();
    const auto s = sender.contiguous(), r = receiver.contiguous();
    Tensor d_scalars, d_vectors;
    AT_DISPATCH_FLOATING_TYPES(w.scalar_type(), "painn_messages", [&] {
        forward_kernel<scalar_t>(w, x, v, u, s, r, d_scalars, d_vectors);
    });
    return {d_scalars, d_vectors};
}

template <typename scalar_t>
void backward_kernel(const Tensor& grad_scalars, const Tensor& grad_vectors, const Tensor& filters, const Tensor& features,
                     const Tensor& vectors, const Tensor& directions, const Tensor& sender, const Tensor& receiver,
                     Tensor& grad_filters, Tensor& grad_features, Tensor& grad_vectors_in, Tensor& grad_directions) {
    const int64_t n_edges = filters.size(0);
    const int64_t F = filters.size(1) / 3;
    const int64_t n_atoms = features.size(0);
    const scalar_t* gs_all = grad_scalars.data_ptr<scalar_t>();
    const scalar_t* gv_all = grad_vectors.data_ptr<scalar_t>();
    const scalar_t* w_all = filters.data_ptr<scalar_t>();
    const scalar_t* x_all = features.data_ptr<scalar_t>();
    const scalar_t* v_all = vectors.data_ptr<scalar_t>();
    const scalar_t* u_all = directions.data_ptr<scalar_t>();
    const int64_t* snd = sender.data_ptr<int64_t>();
    const int64_t* rcv = receiver.data_ptr<int64_t>();
    scalar_t* gw_all = grad_filters.data_ptr<scalar_t>();
    scalar_t* gu_all = grad_directions.data_ptr<scalar_t>();

    const int64_t parts = n_parts(n_edges);
    const auto bounds = split_range(n_edges, parts);
    // per part: (n_atoms, 6F) = [grad features (3F) | grad vectors (3F)], summed at senders
    std::vector<Tensor> buffers(parts);
    for (int64_t p = 0; p < parts; ++p) buffers[p] = at::zeros({n_atoms, 6 * F}, filters.options());

    at::parallel_for(0, parts, 1, [&](int64_t first, int64_t last) {
        std::vector<scalar_t> t_v(F), t_r(F);
        for (int64_t p = first; p < last; ++p) {
            scalar_t* acc = buffers[p].data_ptr<scalar_t>();
            for (int64_t e = bounds[p]; e < bounds[p + 1]; ++e) {
                const int64_t i = rcv[e];
                const int64_t j = snd[e];
                TORCH_CHECK(i >= 0 && i < n_atoms && j >= 0 && j < n_atoms, "painn_messages: edge ", e, " has an atom index out of range");
                const scalar_t* __restrict w = w_all + e * 3 * F;
                const scalar_t* __restrict x = x_all + j * 3 * F;
                const scalar_t* __restrict v = v_all + j * 3 * F;
                const scalar_t* u = u_all + e * 3;
                const scalar_t* __restrict gs = gs_all + i * F;
                const scalar_t* __restrict gv = gv_all + i * 3 * F;
                scalar_t* __restrict gw = gw_all + e * 3 * F;
                scalar_t* __restrict gx = acc + j * 6 * F;
                scalar_t* __restrict gvj = gx + 3 * F;
                scalar_t gu[3] = {0, 0, 0};
                for (int64_t f = 0; f < F; ++f) {
                    t_v[f] = gv[f] * v[f] + gv[F + f] * v[F + f] + gv[2 * F + f] * v[2 * F + f];
                    t_r[f] = gv[f] * u[0] + gv[F + f] * u[1] + gv[2 * F + f] * u[2];
                }
                for (int64_t f = 0; f < F; ++f) {
                    gw[f] = gs[f] * x[f];
                    gw[F + f] = t_v[f] * x[F + f];
                    gw[2 * F + f] = t_r[f] * x[2 * F + f];
                    gx[f] += gs[f] * w[f];
                    gx[F + f] += t_v[f] * w[F + f];
                    gx[2 * F + f] += t_r[f] * w[2 * F + f];
                }
                for (int64_t d = 0; d < 3; ++d) {
                    const scalar_t* __restrict gvd = gv + d * F;
                    scalar_t* __restrict gvjd = gvj + d * F;
                    scalar_t sum = 0;
                    for (int64_t f = 0; f < F; ++f) {
                        const scalar_t a = w[F + f] * x[F + f];
                        const scalar_t b = w[2 * F + f] * x[2 * F + f];
                        gvjd[f] += a * gvd[f];
                        sum += b * gvd[f];
                    }
                    gu[d] = sum;
                }
                for (int64_t d = 0; d < 3; ++d) gu_all[e * 3 + d] = gu[d];
            }
        }
    });
    reduce_into_first(buffers);
    grad_features = buffers[0].narrow(1, 0, 3 * F).contiguous();
    grad_vectors_in = buffers[0].narrow(1, 3 * F, 3 * F).reshape({n_atoms, 3, F});
}

std::tuple<Tensor, Tensor, Tensor, Tensor> painn_messages_backward_cpu(
    const Tensor& grad_scalars, const Tensor& grad_vectors, const Tensor& filters, const Tensor& features,
    const Tensor& vectors, const Tensor& directions, const Tensor& sender, const Tensor& receiver) {
    check_inputs(filters, features, vectors, directions, sender, receiver);
    const int64_t F = filters.size(1) / 3;
    TORCH_CHECK(grad_scalars.dim() == 2 && grad_scalars.size(0) == features.size(0) && grad_scalars.size(1) == F,
                "painn_messages_backward: grad_scalars must be (n_atoms, F)");
    TORCH_CHECK(grad_vectors.sizes() == vectors.sizes(), "painn_messages_backward: grad_vectors must be (n_atoms, 3, F)");
    TORCH_CHECK(grad_scalars.scalar_type() == filters.scalar_type() && grad_vectors.scalar_type() == filters.scalar_type(),
                "painn_messages_backward: gradients must have the dtype of the inputs");
    const auto gs = grad_scalars.contiguous(), gv = grad_vectors.contiguous();
    const auto w = filters.contiguous(), x = features.contiguous(), v = vectors.contiguous(), u = directions.contiguous();
    const auto s = sender.contiguous(), r = receiver.contiguous();
    Tensor grad_filters = at::empty_like(w);
    Tensor grad_directions = at::empty_like(u);
    Tensor grad_features, grad_vectors_in;
    AT_DISPATCH_FLOATING_TYPES(w.scalar_type(), "painn_messages_backward", [&] {
        backward_kernel<scalar_t>(gs, gv, w, x, v, u, s, r, grad_filters, grad_features, grad_vectors_in, grad_directions);
    });
    return {grad_filters, grad_features, grad_vectors_in, grad_directions};
}

// The gradients of the backward kernel as differentiable ATen operations (used while a graph of
// the derivatives is built).
std::tuple<Tensor, Tensor, Tensor, Tensor> painn_messages_backward_composite(
    const Tensor& grad_scalars, const Tensor& grad_vectors, const Tensor& filters, const Tensor& features,
    const Tensor& vectors, const Tensor& directions, const Tensor& sender, const Tensor& receiver) {
    const int64_t n_atoms = features.size(0);
    const int64_t F = filters.size(1) / 3;
    auto w = filters.split(F, 1);  // w_s, w_v, w_r: (n_edges, F)
    auto x = features.index_select(0, sender).split(F, 1);
    const Tensor v = vectors.index_select(0, sender);  // (n_edges, 3, F)
    const Tensor g_s = grad_scalars.index_select(0, receiver);  // (n_edges, F)
    const Tensor g_v = grad_vectors.index_select(0, receiver);  // (n_edges, 3, F)
    const Tensor t_v = (g_v * v).sum(1);
    const Tensor t_r = (g_v * directions.unsqueeze(-1)).sum(1);
    const Tensor grad_filters = at::cat({g_s * x[0], t_v * x[1], t_r * x[2]}, 1);
    const auto scatter = [&](const Tensor& src) { return at::zeros({n_atoms, src.size(1)}, src.options()).index_add(0, sender, src); };
    const Tensor grad_features = scatter(at::cat({g_s * w[0], t_v * w[1], t_r * w[2]}, 1));
    const Tensor grad_vectors_in =
        scatter(((w[1] * x[1]).unsqueeze(1) * g_v).reshape({-1, 3 * F})).reshape({n_atoms, 3, F});
    const Tensor grad_directions = (g_v * (w[2] * x[2]).unsqueeze(1)).sum(-1);
    return {grad_filters, grad_features, grad_vectors_in, grad_directions};
}

class PaiNNMessagesFunction : public torch::autograd::Function<PaiNNMessagesFunction> {
  public:
    static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const Tensor& filters,
                                                  const Tensor& features, const Tensor& vectors, const Tensor& directions,
                                                  const Tensor& sender, const Tensor& receiver) {
        ctx->save_for_backward({filters, features, vectors, directions, sender, receiver});
        at::AutoDispatchBelowADInplaceOrView guard;  // through the dispatcher: fake tensors trace it
        static auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("mlff::painn_messages", "")
                             .typed<std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                                               const Tensor&, const Tensor&)>();
        auto [d_scalars, d_vectors] = op.call(filters, features, vectors, directions, sender, receiver);
        return {d_scalars, d_vectors};
    }

    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                   torch::autograd::variable_list grads) {
        const auto saved = ctx->get_saved_variables();
        Tensor grad_scalars = grads[0], grad_vectors = grads[1];
        if (!grad_scalars.defined()) grad_scalars = at::zeros({saved[1].size(0), saved[0].size(1) / 3}, saved[0].options());
        if (!grad_vectors.defined()) grad_vectors = at::zeros_like(saved[2]);
        std::tuple<Tensor, Tensor, Tensor, Tensor> result;
        if (at::GradMode::is_enabled()) {
            result = painn_messages_backward_composite(grad_scalars, grad_vectors, saved[0], saved[1], saved[2], saved[3],
                                                       saved[4], saved[5]);
        } else {
            static auto op = c10::Dispatcher::singleton()
                                 .findSchemaOrThrow("mlff::painn_messages_backward", "")
                                 .typed<std::tuple<Tensor, Tensor, Tensor, Tensor>(
                                     const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                     const Tensor&, const Tensor&, const Tensor&)>();
            result = op.call(grad_scalars, grad_vectors, saved[0], saved[1], saved[2], saved[3], saved[4], saved[5]);
        }
        auto [grad_filters, grad_features, grad_vectors_in, grad_directions] = result;
        return {grad_filters, grad_features, grad_vectors_in, grad_directions, Tensor(), Tensor()};
    }
};

std::tuple<Tensor, Tensor> painn_messages_autograd(const Tensor& filters, const Tensor& features, const Tensor& vectors,
                                                   const Tensor& directions, const Tensor& sender, const Tensor& receiver) {
    auto outputs = PaiNNMessagesFunction::apply(filters, features, vectors, directions, sender, receiver);
    return {outputs[0], outputs[1]};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(mlff, m) {
    m.def("painn_messages(Tensor filters, Tensor features, Tensor vectors, Tensor directions, Tensor sender, "
          "Tensor receiver) -> (Tensor, Tensor)");
    m.def("painn_messages_backward(Tensor grad_scalars, Tensor grad_vectors, Tensor filters, Tensor features, "
          "Tensor vectors, Tensor directions, Tensor sender, Tensor receiver) -> (Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(mlff, CPU, m) {
    m.impl("painn_messages", &painn_messages_cpu);
    m.impl("painn_messages_backward", &painn_messages_backward_cpu);
}

TORCH_LIBRARY_IMPL(mlff, Autograd, m) { m.impl("painn_messages", &painn_messages_autograd); }
