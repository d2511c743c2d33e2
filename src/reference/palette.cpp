// Colour novelty against a category's normal colours (see palette.h).
#include "lriad/reference/palette.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <deque>

#include <opencv2/imgproc.hpp>

#include "lriad/io/error.h"

namespace lriad::reference {
namespace {

constexpr int B = ColourPalette::kBins;

int bin_of(float v) { return std::clamp(int(v * B), 0, B - 1); }
int cell_of(const cv::Vec3f& c) { return (bin_of(c[0]) * B + bin_of(c[1])) * B + bin_of(c[2]); }

void check_rgb(const cv::Mat& image, const char* what) {
  if (image.type() != CV_32FC3) throw Error(std::string("colour palette: ") + what + " must be CV_32FC3 RGB");
}

}  // namespace

ColourPalette ColourPalette::build(const std::vector<cv::Mat>& normal_images) {
  if (normal_images.empty()) throw Error("colour palette: no normal images to build it from");
  // 1. Which bins normal pixels fall in.
  std::vector<float> distance(size_t(kCells), -1.f);
  std::deque<int> frontier;
  for (const auto& image : normal_images) {
    check_rgb(image, "a normal image");
    for (int y = 0; y < image.rows; ++y)
      for (int x = 0; x < image.cols; ++x) {
        const int c = cell_of(image.at<cv::Vec3f>(y, x));
        if (distance[size_t(c)] < 0) {
          distance[size_t(c)] = 0;
          frontier.push_back(c);
        }
      }
  }
  // 2. Every other bin's city-block distance to them: breadth-first from all palette bins at once.
  while (!frontier.empty()) {
    const int c = frontier.front();
    frontier.pop_front();
    const std::array<int, 3> at = {c / (B * B), (c / B) % B, c % B};
    for (int axis = 0; axis < 3; ++axis)
      for (int step : {-1, 1}) {
        std::array<int, 3> n = at;
        n[size_t(axis)] += step;
        if (n[size_t(axis)] < 0 || n[size_t(axis)] >= B) continue;
        const int nc = (n[0] * B + n[1]) * B + n[2];
        if (distance[size_t(nc)] >= 0) continue;
        distance[size_t(nc)] = distance[size_t(c)] + 1;
        frontier.push_back(nc);
      }
  }
  ColourPalette p;
  p.distance_ = std::move(distance);
  return p;
}

ColourPalette ColourPalette::from_distances(std::vector<float> distances) {
  if (distances.size() != size_t(kCells))
    throw Error("colour palette: a saved table holds " + std::to_string(distances.size()) + " values, expected " +
                std::to_string(kCells));
  for (float d : distances)
    if (!(d >= 0) || !std::isfinite(d))
      throw Error("colour palette: a saved table holds a negative or non-finite distance");
  ColourPalette p;
  p.distance_ = std::move(distances);
  return p;
}

cv::Mat ColourPalette::novelty(const cv::Mat& image) const {
  check_rgb(image, "the image");
  cv::Mat out = cv::Mat::zeros(image.size(), CV_32FC1);
  if (empty()) return out;
  for (int y = 0; y < image.rows; ++y)
    for (int x = 0; x < image.cols; ++x)
      out.at<float>(y, x) = std::max(0.f, distance_[size_t(cell_of(image.at<cv::Vec3f>(y, x)))] - 1.f);
  cv::blur(out, out, cv::Size(3, 3), cv::Point(-1, -1), cv::BORDER_REPLICATE);
  return out;
}

}  // namespace lriad::reference
