// Fixed scenes (see scene.h).
#include "lriad/reference/scene.h"

#include <algorithm>
#include <cmath>

#include <opencv2/imgproc.hpp>

#include "lriad/io/error.h"

namespace lriad::reference {

double scene_agreement(const std::vector<cv::Mat>& images) {
  const int n = int(images.size());
  if (n < kSceneMinImages) return 0;
  std::vector<cv::Mat> lum;  // (kSceneSide, kSceneSide) CV_64FC1 each
  cv::Mat sum = cv::Mat::zeros(kSceneSide, kSceneSide, CV_64FC1);
  for (const auto& image : images) {
    if (image.empty() || image.type() != CV_32FC3)
      throw Error("scene_agreement: expected float RGB images (CV_32FC3)",
                  "pass the normal images as the reference is given them");
    cv::Mat small, grey, blurred;
    cv::resize(image, small, cv::Size(kSceneSide, kSceneSide), 0, 0, cv::INTER_AREA);
    cv::cvtColor(small, grey, cv::COLOR_RGB2GRAY);
    cv::GaussianBlur(grey, blurred, cv::Size(), kSceneBlur);
    blurred.convertTo(blurred, CV_64FC1);
    sum += blurred;
    lum.push_back(blurred);
  }
  auto correlation = [](const cv::Mat& a, const cv::Mat& b) {
    cv::Scalar ma, sa, mb, sb;
    cv::meanStdDev(a, ma, sa);
    cv::meanStdDev(b, mb, sb);
    if (sa[0] <= 1e-9 || sb[0] <= 1e-9) return 0.0;  // a flat image agrees with nothing
    return cv::mean((a - ma[0]).mul(b - mb[0]))[0] / (sa[0] * sb[0]);
  };
  std::vector<double> r;
  for (const auto& l : lum) r.push_back(correlation(l, (sum - l) / double(n - 1)));
  std::nth_element(r.begin(), r.begin() + n / 2, r.end());
  return r[size_t(n / 2)];
}

bool is_fixed_scene(const std::vector<cv::Mat>& images) { return scene_agreement(images) >= kSceneAgreement; }

}  // namespace lriad::reference
