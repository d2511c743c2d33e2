// Private parts of the normal reference shared by reference.cpp (whole maps, the build) and
// incremental.cpp (maps updated from a normal image's patch distances). Shapes as in reference.h.
#pragma once
#include <cstdint>
#include <vector>

#include <opencv2/core.hpp>
#include <torch/torch.h>

#include "lriad/reference/reference.h"

namespace lriad::reference::detail {

constexpr int kFineStride = NormalReference::kFineTextureStride;

// Every K x K patch at `stride`: (C,S,S) -> (g^2, CK^2), g = (S-K)/stride + 1.
torch::Tensor patches_of(const torch::Tensor& chw, int k, int stride = 1);
// The fine comparison of textures' patches per side at fine side F: ((F-K)/2 + 1).
int64_t fine_cells(int64_t F, int64_t k);
// Per-patch nearest distances (g*g) made a map: smoothed over 3x3 patches, brought back to (S,S).
torch::Tensor finish_map(torch::Tensor best, int64_t S, int64_t k);
// The fine comparison's image: luminance of the canonical RGB, minus its Gaussian blur (sigma px) or,
// for round parts (polar), minus its ring-by-ring fit. CV_32FC1.
cv::Mat fine_image(const cv::Mat& canonical_rgb, bool polar, double sigma);
torch::Tensor grey_to_tensor(const cv::Mat& m);  // CV_32FC1 (H,W) -> (1,H,W), copied
// v non-empty. The median: the mean of the middle two for an even count.
double median_of(std::vector<double> v);
// The q-quantile, linearly interpolated between order statistics; median_of itself at q = 0.5.
double quantile_of(std::vector<double> v, double q);

}  // namespace lriad::reference::detail
