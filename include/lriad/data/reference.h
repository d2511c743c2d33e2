// Normal-reference evidence (model.reference = "knn"): for each category, banks of K x K colour
// patches from its normal training images; an image's deviation map is, at every pixel, the
// distance from the patch there to its nearest bank patch, divided by the category's typical
// peak on normal images (so normal images peak near 1 and a defect stands out). It is made from
// normal images only (mask-free) and does not depend on how anomalies are synthesised.
//
// The bank keeps a greedy coreset of the patches (each next patch the farthest from those kept,
// measured in a seeded 24-d random projection), so rare normal patches such as an object's edges
// at some angle are covered, which a random subset of mostly background patches misses.
//
// Two banks per category, from the two halves of its normal images: an image from half h is
// compared with bank 1 - h (never with itself), any other image with bank 0.
// Shapes: S = image side.
#pragma once
#include <array>
#include <map>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <torch/types.h>

namespace lriad::data {

class NormalReference {
 public:
  struct Options {
    int patch = 5;        // patch side in pixels
    int bank_size = 8000; // patches kept per bank: a greedy coreset (farthest-point) of the image patches
    int rotations = 0;    // also bank each normal image rotated by k*360/(rotations+1) degrees
    uint64_t seed = 0;
  };
  NormalReference() = default;

  // halves[category] = {images of half 0, images of half 1}, CV_32FC3 RGB [0,1], all S x S.
  // A category needs at least one image in each half.
  static NormalReference build(const std::map<std::string, std::array<std::vector<cv::Mat>, 2>>& halves,
                               const Options& options);

  // Deviation map (S,S) float >= 0 of `image` against `bank` (0 or 1) of `category`.
  torch::Tensor deviation(const cv::Mat& image, const std::string& category, int bank = 0) const;
  // RGB (3,S,S) with the deviation map as a fourth channel -> (4,S,S).
  torch::Tensor with_deviation(const cv::Mat& image, const std::string& category, int bank = 0) const;

  bool has(const std::string& category) const { return banks_.count(category) > 0; }
  std::vector<std::string> categories() const;
  double scale(const std::string& category, int bank) const;  // the normalising peak

  // reference.safetensors: "<category>/bank0", "<category>/bank1" (M, 3K^2), "<category>/scale" (2).
  void save(const std::string& path) const;
  static NormalReference load(const std::string& path);

 private:
  struct Banks {
    std::array<torch::Tensor, 2> patches;  // (M, 3K^2)
    std::array<torch::Tensor, 2> norms;    // (M) squared norms
    std::array<double, 2> scale = {1.0, 1.0};
  };
  torch::Tensor raw_deviation(const cv::Mat& image, const Banks& b, int bank) const;  // (S,S)
  Options options_;
  std::map<std::string, Banks> banks_;
};

}  // namespace lriad::data
