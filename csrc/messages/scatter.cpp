// Sum of rows into segments, out[index[e]] += src[e], that keeps only `index` for its backward
// pass (a gather of the incoming gradient). Autograd's own index_add keeps `src` alive as well,
// and for the per-edge messages of a model `src` is the largest tensor there is.
//
// Any device (ATen operations only). The backward pass is differentiable (index_select, whose
// own backward is this sum), so training can differentiate forces.

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

namespace {

using at::Tensor;

// dim_size is a SymInt, so that tracing with symbolic shapes (torch.export) keeps the number of
// atoms symbolic instead of specialising it.
Tensor scatter_sum_kernel(const Tensor& src, const Tensor& index, c10::SymInt dim_size) {
    TORCH_CHECK(src.dim() >= 1, "scatter_sum: src must have at least one dimension");
    TORCH_CHECK(index.dim() == 1, "scatter_sum: index must be (n,) for src (n, ...)");
    TORCH_CHECK(index.scalar_type() == at::kLong, "scatter_sum: index must be int64");
    auto shape = src.sym_sizes().vec();
    shape[0] = dim_size;
    return at::zeros_symint(shape, src.options()).index_add_(0, index, src);
}

class ScatterSumFunction : public torch::autograd::Function<ScatterSumFunction> {
  public:
    static Tensor forward(torch::autograd::AutogradContext* ctx, const Tensor& src, const Tensor& index,
                          c10::SymInt dim_size) {
        ctx->save_for_backward({index});
        at::AutoDispatchBelowADInplaceOrView guard;  // through the dispatcher: fake tensors trace it
        static auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("mlff::scatter_sum", "")
                             .typed<Tensor(const Tensor&, const Tensor&, c10::SymInt)>();
        return op.call(src, index, dim_size);
    }

    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                   torch::autograd::variable_list grads) {
        const Tensor index = ctx->get_saved_variables()[0];
        return {grads[0].index_select(0, index), Tensor(), Tensor()};
    }
};

Tensor scatter_sum_autograd(const Tensor& src, const Tensor& index, c10::SymInt dim_size) {
    return ScatterSumFunction::apply(src, index, dim_size);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(mlff, m) { m.def("scatter_sum(Tensor src, Tensor index, SymInt dim_size) -> Tensor"); }

TORCH_LIBRARY_IMPL(mlff, CompositeExplicitAutograd, m) { m.impl("scatter_sum", &scatter_sum_kernel); }

TORCH_LIBRARY_IMPL(mlff, Autograd, m) { m.impl("scatter_sum", &scatter_sum_autograd); }
