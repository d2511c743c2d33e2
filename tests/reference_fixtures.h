// Small normal references the reference tests build (test_reference.cpp, test_reference_parts.cpp).
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include "fixtures.h"
#include "lriad/reference/reference.h"

namespace lriad::test {

// A flat grey image with mild pixel noise; `defect` paints a dark 4x4 square at (x, y).
inline cv::Mat grey(int size, uint64_t seed, int defect_x = -1, int defect_y = -1) {
  cv::Mat img(size, size, CV_32FC3, cv::Scalar(0.5, 0.5, 0.5));
  cv::Mat noise(size, size, CV_32FC3);
  cv::RNG rng(seed);
  rng.fill(noise, cv::RNG::NORMAL, 0.0, 0.02);
  img += noise;
  if (defect_x >= 0) img(cv::Rect(defect_x, defect_y, 4, 4)).setTo(cv::Scalar(0.05, 0.05, 0.05));
  return img;
}

inline reference::NormalReference grey_reference() {
  std::map<std::string, std::array<std::vector<cv::Mat>, 2>> halves;
  for (int i = 0; i < 6; ++i) halves["plate"][size_t(i % 2)].push_back(grey(24, 100 + uint64_t(i)));
  reference::NormalReference::Options o;
  o.patch = 3;
  o.bank_size = 600;
  return reference::NormalReference::build(halves, o);
}

// A texture's reference: 5x5 patches, `bank` of them kept, maps at `side`, the fine comparison at `fine`.
inline reference::NormalReference::Options texture_options(int side, int fine, int bank) {
  reference::NormalReference::Options o;
  o.patch = 5;
  o.bank_size = bank;
  o.side = side;
  o.fine_side = fine;
  return o;
}

// `ref` written to a temporary file named `name` and read back.
inline reference::NormalReference saved_and_loaded(const reference::NormalReference& ref, const std::string& name) {
  const std::string path = ::testing::TempDir() + "/" + name + ".safetensors";
  ref.save(path);
  auto back = reference::NormalReference::load(path);
  std::remove(path.c_str());
  return back;
}

// Eight noisy grey plates (seeds first .. first + 7) in two halves, every 3x3 patch kept.
inline reference::NormalReference plate_reference(uint64_t first, bool colour = true) {
  std::map<std::string, std::array<std::vector<cv::Mat>, 2>> halves;
  for (int i = 0; i < 8; ++i) halves["plate"][size_t(i % 2)].push_back(grey(24, first + uint64_t(i)));
  reference::NormalReference::Options o;
  o.patch = 3;
  o.bank_size = 100000;
  o.colour = colour;
  return reference::NormalReference::build(halves, o);
}

}  // namespace lriad::test
