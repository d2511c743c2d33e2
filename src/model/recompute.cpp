// Activation recomputation as a custom autograd Function (reentrant, like torch.utils.checkpoint).
#include "lriad/model/recompute.h"

#include <utility>

namespace lriad::model {

namespace {

using Block = std::function<torch::Tensor(const torch::Tensor&)>;

// Holds the block for the backward pass. std::function cannot be an IValue, so the node's context
// keeps it as a capsule (an intrusive_ptr): it is freed with the graph, whether or not backward runs.
struct BlockHolder : torch::CustomClassHolder {
  explicit BlockHolder(Block b) : block(std::move(b)) {}
  Block block;
};

struct RecomputeFunction : torch::autograd::Function<RecomputeFunction> {
  // dummy: a 0-element tensor that requires grad when `x` does not, so that the node is recorded
  // (and the parameters inside the block reached) even then; it never receives a gradient.
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& dummy, const c10::intrusive_ptr<BlockHolder>& holder) {
    (void)dummy;
    ctx->saved_data["block"] = c10::IValue::make_capsule(holder);
    ctx->saved_data["x_requires_grad"] = x.requires_grad();
    ctx->save_for_backward({x});
    torch::NoGradGuard no_grad;  // Function::apply already turns grad mode off; this says so here
    return holder->block(x);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const torch::Tensor x = ctx->get_saved_variables()[0];
    auto holder = c10::static_intrusive_pointer_cast<BlockHolder>(ctx->saved_data["block"].toCapsule());
    const bool x_requires_grad = ctx->saved_data["x_requires_grad"].toBool();

    torch::Tensor x2 = x.detach().requires_grad_(x_requires_grad);
    {
      torch::AutoGradMode enable(true);
      torch::Tensor y = holder->block(x2);
      // Nothing inside the block requires grad (possible when `x` does not): nothing to do.
      if (y.requires_grad()) torch::autograd::backward({y}, {grad_outputs[0]});
    }
    // One entry per forward argument: x, dummy, holder.
    return {x_requires_grad ? x2.grad() : torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor recompute(const Block& block, const torch::Tensor& x) {
  if (!torch::GradMode::is_enabled()) return block(x);
  auto holder = c10::make_intrusive<BlockHolder>(block);
  torch::Tensor dummy = torch::empty({0}, torch::TensorOptions().device(x.device()).requires_grad(!x.requires_grad()));
  return RecomputeFunction::apply(x, dummy, holder);
}

}  // namespace lriad::model
