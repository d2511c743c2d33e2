// Activation recomputation (what Python's torch.utils.checkpoint does with use_reentrant=True),
// which the C++ API of LibTorch does not provide.
//
// recompute(block, x) runs `block` on `x` without keeping the activations inside `block`: the
// forward pass runs under NoGradGuard and only `x` is saved. When the backward pass reaches the
// result, it runs `block` on a detached copy of `x` again with gradients on and back-propagates
// through that second run, so the parameters `block` reads get the same gradients as without
// recomputation (they are accumulated into their .grad by a nested backward call, as in the
// reentrant Python version). This trades one extra forward pass of `block` for the memory of its
// activations. Shapes: whatever `block` maps `x` to; the result has the shape of block(x).
//
// Limitations:
// - No RNG state is saved or restored: `block` must compute the same thing on both runs, so it
//   must not use dropout or other random operations.
// - `block` must be deterministic in general and must not modify `x` in place; the tensors and
//   modules it captures must outlive the backward pass.
// - Use backward(), not torch::autograd::grad: the parameters of `block` are not in the outer
//   graph, they are reached only by the nested backward call, which writes their .grad (so
//   torch::autograd::grad cannot return their gradients and fills their .grad as a side effect).
//   The nested backward builds no graph, so create_graph=true (double backward) is not supported.
// - With grad mode on, the result always requires grad, even when `x` does not: the parameters
//   `block` reads are unknown until it runs, so the autograd node is recorded with a tiny dummy
//   input that requires grad (Python's reentrant version instead gives no parameter gradients
//   when no input requires grad). A block that reads nothing trainable then runs a second time
//   during backward for nothing.
#pragma once
#include <functional>

#include <torch/torch.h>

namespace lriad::model {

// With grad mode off, this is block(x). Otherwise the result's grad_fn is the recomputation node
// (its name contains "RecomputeFunction"), whose only saved tensor is `x`.
torch::Tensor recompute(const std::function<torch::Tensor(const torch::Tensor&)>& block, const torch::Tensor& x);

}  // namespace lriad::model
