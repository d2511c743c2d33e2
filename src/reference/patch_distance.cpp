// The normal reference's distance kernels (see patch_distance.h).
#include "lriad/reference/patch_distance.h"

#include <algorithm>

#include <torch/torch.h>

namespace lriad::reference {

torch::Tensor nearest_distances(const torch::Tensor& q_in, const torch::Tensor& bp, const torch::Tensor& bn) {
  const auto q = q_in.to(bp.device());  // computed where the bank is (a GPU's, with --device cuda)
  auto best = torch::empty({q.size(0)}, q.options().dtype(torch::kFloat32));
  // Rows a product: a (c,M) block of 512 x 8000 floats (16 MB) stays in a CPU's cache; a GPU takes
  // more rows (2048: 66 MB a block, beside the training step's memory).
  const int64_t chunk = bp.is_cuda() ? 2048 : 512;
  for (int64_t i = 0; i < q.size(0); i += chunk) {
    const auto qi = q.narrow(0, i, std::min(chunk, q.size(0) - i));  // (c,D)
    // One fused product for |b|^2 - 2 q.b: the separate product, doubling and subtraction made
    // two (c,M) temporaries and half a texture map's time (measured: 170 -> 82 ms, one thread).
    const auto d2 = torch::addmm(bn.unsqueeze(0), qi, bp.t(), 1, -2).amin(1) + qi.pow(2).sum(1);  // (c)
    best.narrow(0, i, qi.size(0)).copy_(d2.clamp_min(0).sqrt());
  }
  return best.to(q_in.device());
}

// LibTorch's avg_pool2d reads K^2 values a window, which made it three quarters of a pose-aligned
// map's time (measured: 241 -> 33 ms a map of a photographed coin, one thread).
torch::Tensor box_sum(const torch::Tensor& e, int64_t k) {
  const int64_t h = e.size(2) - k + 1, w = e.size(3) - k + 1;
  auto rows = e.narrow(3, 0, w).clone();  // (M,1,H,w)
  for (int64_t i = 1; i < k; ++i) rows.add_(e.narrow(3, i, w));
  auto out = rows.narrow(2, 0, h).clone();  // (M,1,h,w)
  for (int64_t i = 1; i < k; ++i) out.add_(rows.narrow(2, i, h));
  return out;
}

// All shifts of a row at once (through unfold) measured slower: the strided copies and reductions
// cost more than the calls they save.
torch::Tensor positional_distance(const torch::Tensor& chw, const torch::Tensor& normals, int64_t k, int64_t shift) {
  namespace F = torch::nn::functional;
  const int64_t S = chw.size(1);
  const auto padded = F::pad(normals, F::PadFuncOptions({shift, shift, shift, shift}).mode(torch::kReplicate));
  const auto q = chw.to(normals.device()).unsqueeze(0);  // (1,C,S,S): computed where the normals are
  torch::Tensor best;
  for (int64_t dy = -shift; dy <= shift; ++dy)
    for (int64_t dx = -shift; dx <= shift; ++dx) {
      const auto diff = padded.narrow(2, shift + dy, S).narrow(3, shift + dx, S) - q;  // (N,C,S,S)
      const auto e = diff.mul_(diff).sum(1, true);                                     // (N,1,S,S)
      const auto d = box_sum(e, k).amin(0);                                            // (1,g,g)
      best = best.defined() ? torch::minimum(best, d) : d;
    }
  return best.clamp_min(0).sqrt()[0].to(chw.device());
}

}  // namespace lriad::reference
