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
// `rgb` (CV_32FC3) with one gain and offset on every channel, so that its luminance (the channels'
// mean) has mean kPhotometricMean and standard deviation kPhotometricSpread over the image: a
// photograph's exposure and brightness drop out of the textures' patch comparisons (reference.h).
constexpr double kPhotometricMean = 0.45, kPhotometricSpread = 0.15;
struct Lighting {  // out = gain * rgb + offset, every channel alike
  double gain = 1, offset = 0;
};
Lighting lighting_of(const cv::Mat& rgb);                  // the one that normalises `rgb`
cv::Mat relit(const cv::Mat& rgb, const Lighting& light);  // CV_32FC3 or CV_32FC1
cv::Mat photometric(const cv::Mat& rgb);                   // relit(rgb, lighting_of(rgb))
// How far lighting `a` puts a pixel from where `b` puts it, at most, for the pixels within two
// standard deviations of `b`'s image's mean luminance (in normalised units, where the spread is
// kPhotometricSpread).
double lighting_change(const Lighting& a, const Lighting& b);
// An incremental map (changed_deviation) keeps the normal image's lighting for a changed copy while
// lighting_change is at most kRelightTolerance (a tenth of the normalised spread); a change that
// moves the image's statistics more is compared whole.
constexpr double kRelightTolerance = 0.015;
// A part's lighting (options.part_lighting): the smooth field, a quadratic in x and y, by which the
// luminance of `canonical_rgb` (CV_32FC3, a part in its canonical pose) is the luminance `reference`
// (CV_32FC1, the same side: the mean canonical normal image) times the field, fitted by least squares
// twice (the second time without the pixels the first fit leaves furthest off: a defect, a part's
// edge that lies elsewhere). CV_32FC1 >= 0.05, or empty where a reference cannot carry a fit (all
// black) or the field would fall below 0.05 somewhere.
cv::Mat part_field(const cv::Mat& canonical_rgb, const cv::Mat& reference);
// `canonical_rgb` divided by its part_field (as it is where there is none), so that a gradient of
// light across the frame or a brighter or darker photograph drops out. CV_32FC3.
cv::Mat part_relit(const cv::Mat& canonical_rgb, const cv::Mat& reference);
// `image` (CV_32FC3, a part photographed at `aspect`, at the side of `reference`) relit in its own
// frame: part_field fitted in its canonical pose (pose.h), moved back onto the image, and divided
// out; as it is where there is no field. What the comparison by place, the colour palette and the
// colour of regions see of a part with options.part_lighting.
cv::Mat relit_part(const cv::Mat& image, const cv::Mat& reference, double aspect);
// The mean luminance (channels' mean) of canonical normal images (N,3,S,S), summed in a fixed order
// in double, so that a reference built in memory and one loaded from its file agree bit for bit.
cv::Mat mean_luminance(const torch::Tensor& normals);
// Per pixel, the share of `normals` (N,3,S,S) whose part (part_mask) covers it: (S,S) CV_32FC1 in [0,1].
cv::Mat part_presence(const torch::Tensor& normals);
// v non-empty. The median: the mean of the middle two for an even count.
double median_of(std::vector<double> v);
// The q-quantile, linearly interpolated between order statistics; median_of itself at q = 0.5.
double quantile_of(std::vector<double> v, double q);

}  // namespace lriad::reference::detail
