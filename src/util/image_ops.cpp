#include "lriad/util/image_ops.h"

#include <algorithm>
#include <vector>

#include <opencv2/imgproc.hpp>

namespace lriad::util {

cv::Mat colourize(const cv::Mat& t, const cv::Vec3f& dark, const cv::Vec3f& light) {
  cv::Mat out(t.size(), CV_32FC3);
  for (int y = 0; y < t.rows; ++y) {
    const float* src = t.ptr<float>(y);
    cv::Vec3f* dst = out.ptr<cv::Vec3f>(y);
    for (int x = 0; x < t.cols; ++x) dst[x] = dark + (light - dark) * src[x];
  }
  return out;
}

cv::Mat grey3(const cv::Mat& field) {
  cv::Mat out;
  cv::merge(std::vector<cv::Mat>{field, field, field}, out);
  return out;
}

cv::Mat mul3(const cv::Mat& image, const cv::Mat& field) {
  cv::Mat out;
  cv::multiply(image, grey3(field), out);
  return out;
}

void blend(cv::Mat& image, const cv::Mat& alpha, const cv::Mat& target) {
  for (int y = 0; y < image.rows; ++y) {
    cv::Vec3f* dst = image.ptr<cv::Vec3f>(y);
    const cv::Vec3f* tg = target.ptr<cv::Vec3f>(y);
    const float* a = alpha.ptr<float>(y);
    for (int x = 0; x < image.cols; ++x) dst[x] += (tg[x] - dst[x]) * a[x];
  }
}

cv::Mat blur(const cv::Mat& m, double sigma) {
  if (sigma <= 0.05) return m.clone();
  cv::Mat out;
  cv::GaussianBlur(m, out, cv::Size(0, 0), sigma, sigma, cv::BORDER_REFLECT101);
  return out;
}

float smoothstep(float e0, float e1, float x) {
  const float t = std::clamp((x - e0) / (e1 - e0), 0.f, 1.f);
  return t * t * (3.f - 2.f * t);
}

cv::Point pixel_of(const cv::Point2f& p, const cv::Size& size) {
  const cv::Point q(p);  // cvRound of each coordinate, as every reader did before
  return {std::clamp(q.x, 0, std::max(0, size.width - 1)), std::clamp(q.y, 0, std::max(0, size.height - 1))};
}

}  // namespace lriad::util
