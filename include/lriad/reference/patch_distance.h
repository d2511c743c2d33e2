// The normal reference's distance kernels (reference/reference.h), pure functions of tensors: how far
// an image's patches lie from the nearest normal patches, by bank (nearest_distances) or by place
// (positional_distance). Float32, CPU or any device the tensors share. Golden-number tests in
// tests/test_model.cpp (PatchDistance.*) check them against loops written out.
#pragma once
#include <cstdint>

#include <torch/types.h>

namespace lriad::reference {

// Distance from each row of `q` (P,D) to its nearest row of the bank `bp` (M,D), whose squared
// norms are `bn` (M): sqrt(min_m |q - b_m|^2), computed as |b|^2 - 2 q.b (one fused product),
// nearest, + |q|^2, clamped at 0; in chunks of rows (512 on a CPU). Computed on the bank's device
// (the queries are moved there) and returned on the queries'. -> (P)
torch::Tensor nearest_distances(const torch::Tensor& q, const torch::Tensor& bp, const torch::Tensor& bn);

// Sum over every K x K window of `e` (M,1,H,W), as two passes of K - 1 additions (rows, then
// columns): -> (M,1,H-K+1,W-K+1).
torch::Tensor box_sum(const torch::Tensor& e, int64_t k);

// Distance from each K x K patch of `chw` (C,S,S) to the nearest patch of any of `normals`
// (N,C,S,S) at the same place displaced by at most `shift` pixels (normals' edges repeated):
// sqrt(min over (n, dy, dx) of the window's summed squared difference). Computed on the normals'
// device, returned on chw's. -> (g,g), g = S-K+1.
torch::Tensor positional_distance(const torch::Tensor& chw, const torch::Tensor& normals, int64_t k, int64_t shift);

}  // namespace lriad::reference
