// Images as LibTorch tensors: (C,H,W) float in [0,1], resized to the model's input size.
#pragma once
#include <string>

#include <opencv2/core.hpp>
#include <torch/types.h>

namespace lriad::data {

// CV_32FC3 RGB image (H,W,3) -> tensor (3,H,W), copied (owns its memory).
torch::Tensor image_to_tensor(const cv::Mat& rgb);

// Decodes `path` (see read_image), resizes to size x size, returns (3,size,size).
torch::Tensor load_image_tensor(const std::string& path, int size);

}  // namespace lriad::data
