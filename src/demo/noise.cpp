// Portable randomness, value noise / fBm fields and soft anti-aliased shapes for the generator.
#include <algorithm>
#include <cmath>

#include <opencv2/imgproc.hpp>

#include "internal.h"

namespace lriad::demo {

cv::Mat value_noise(Rng& rng, cv::Size size, double cell_x, double cell_y) {
  cell_x = std::max(cell_x, 1.0);
  cell_y = std::max(cell_y, 1.0);
  const int gw = static_cast<int>(std::ceil(size.width / cell_x)) + 4;
  const int gh = static_cast<int>(std::ceil(size.height / cell_y)) + 4;
  cv::Mat grid(gh, gw, CV_32F);
  for (int y = 0; y < gh; ++y)
    for (int x = 0; x < gw; ++x) grid.at<float>(y, x) = static_cast<float>(rng.uniform(-1, 1));
  const cv::Size big(static_cast<int>(std::lround(gw * cell_x)), static_cast<int>(std::lround(gh * cell_y)));
  cv::Mat up;
  cv::resize(grid, up, big, 0, 0, cv::INTER_CUBIC);
  // A random sub-cell offset hides the grid alignment between images.
  const int ox = static_cast<int>(cell_x) + rng.uniform_int(0, static_cast<int>(cell_x));
  const int oy = static_cast<int>(cell_y) + rng.uniform_int(0, static_cast<int>(cell_y));
  const int x0 = std::min(ox, big.width - size.width);
  const int y0 = std::min(oy, big.height - size.height);
  return up(cv::Rect(x0, y0, size.width, size.height)).clone();
}

cv::Mat fbm(Rng& rng, cv::Size size, double cell, int octaves, double gain, double aspect) {
  cv::Mat sum = cv::Mat::zeros(size, CV_32F);
  double amp = 1.0, total = 0.0;
  for (int o = 0; o < octaves && cell >= 1.0; ++o) {
    cv::Mat n = value_noise(rng, size, cell * aspect, cell);
    cv::scaleAdd(n, amp, sum, sum);
    total += amp;
    amp *= gain;
    cell *= 0.5;
  }
  if (total > 0) sum /= total;
  return sum;
}

cv::Mat lighting(Rng& rng, cv::Size size, double gradient, double vignette) {
  const double angle = rng.uniform(0, 2 * M_PI);
  const double g = gradient * rng.uniform(0.4, 1.0);
  const double cx = size.width * rng.uniform(0.35, 0.65), cy = size.height * rng.uniform(0.35, 0.65);
  const double diag = std::hypot(size.width, size.height) * 0.5;
  cv::Mat out(size, CV_32F);
  for (int y = 0; y < size.height; ++y) {
    float* row = out.ptr<float>(y);
    for (int x = 0; x < size.width; ++x) {
      const double u = ((x - size.width * 0.5) * std::cos(angle) + (y - size.height * 0.5) * std::sin(angle)) / diag;
      const double r = std::hypot(x - cx, y - cy) / diag;
      row[x] = static_cast<float>(1.0 + g * u - vignette * r * r);
    }
  }
  return out;
}

cv::Mat rotate_crop(const cv::Mat& image, double degrees, cv::Size out) {
  const cv::Point2f c(image.cols * 0.5f, image.rows * 0.5f);
  cv::Mat m = cv::getRotationMatrix2D(c, degrees, 1.0);
  m.at<double>(0, 2) -= (image.cols - out.width) * 0.5;
  m.at<double>(1, 2) -= (image.rows - out.height) * 0.5;
  cv::Mat dst;
  cv::warpAffine(image, dst, m, out, cv::INTER_LINEAR, cv::BORDER_REFLECT101);
  return dst;
}

void add_sensor_noise(cv::Mat& image, Rng& rng, double sigma, bool colour) {
  for (int y = 0; y < image.rows; ++y) {
    cv::Vec3f* p = image.ptr<cv::Vec3f>(y);
    for (int x = 0; x < image.cols; ++x) {
      if (colour) {
        for (int c = 0; c < 3; ++c) p[x][c] += static_cast<float>(rng.normal(0, sigma));
      } else {
        const float n = static_cast<float>(rng.normal(0, sigma));
        p[x] += cv::Vec3f(n, n, n);
      }
    }
  }
}

cv::Mat stroke_alpha(cv::Size size, const std::vector<cv::Point2f>& path, double width, double softness) {
  // Drawn 4x supersampled (shift = 2 fractional bits), then area-averaged: thin strokes keep
  // a sub-pixel width instead of snapping to 1 px.
  const int k = 4;
  cv::Mat big = cv::Mat::zeros(size * k, CV_8U);
  std::vector<cv::Point> pts;
  for (const auto& p : path)
    pts.emplace_back(static_cast<int>(std::lround(p.x * k * 4)), static_cast<int>(std::lround(p.y * k * 4)));
  const int thick = std::max(1, static_cast<int>(std::lround(width * k)));
  cv::polylines(big, std::vector<std::vector<cv::Point>>{pts}, false, cv::Scalar(255), thick, cv::LINE_8, 2);
  cv::Mat small;
  cv::resize(big, small, size, 0, 0, cv::INTER_AREA);
  small.convertTo(small, CV_32F, 1.0 / 255);
  return blur(small, softness);
}

cv::Mat blob_alpha(Rng& rng, cv::Size size, cv::Point2f center, double radius, double aspect, double angle,
                   double irregularity, double softness) {
  // Polar radius r(t) = R (1 + sum of a few random harmonics): lumpy, never a clean ellipse.
  double amp[5], phase[5];
  for (int h = 0; h < 5; ++h) {
    amp[h] = irregularity * rng.uniform(0.2, 1.0) / (h + 1);
    phase[h] = rng.uniform(0, 2 * M_PI);
  }
  const int k = 4, n = 96;
  std::vector<cv::Point> poly;
  const double ca = std::cos(angle), sa = std::sin(angle);
  for (int i = 0; i < n; ++i) {
    const double t = 2 * M_PI * i / n;
    double r = 1.0;
    for (int h = 0; h < 5; ++h) r += amp[h] * std::sin((h + 2) * t + phase[h]);
    const double ex = radius * r * aspect * std::cos(t), ey = radius * r * std::sin(t);
    const double x = center.x + ex * ca - ey * sa, y = center.y + ex * sa + ey * ca;
    poly.emplace_back(static_cast<int>(std::lround(x * k * 4)), static_cast<int>(std::lround(y * k * 4)));
  }
  cv::Mat big = cv::Mat::zeros(size * k, CV_8U);
  cv::fillPoly(big, std::vector<std::vector<cv::Point>>{poly}, cv::Scalar(255), cv::LINE_8, 2);
  cv::Mat small;
  cv::resize(big, small, size, 0, 0, cv::INTER_AREA);
  small.convertTo(small, CV_32F, 1.0 / 255);
  return blur(small, softness);
}

std::vector<cv::Point2f> curved_path(Rng& rng, cv::Point2f start, double angle, double length, double bend) {
  // Quadratic Bezier whose control point is pushed sideways by `bend` * length.
  const cv::Point2f dir(static_cast<float>(std::cos(angle)), static_cast<float>(std::sin(angle)));
  const cv::Point2f normal(-dir.y, dir.x);
  const cv::Point2f end = start + dir * static_cast<float>(length);
  const cv::Point2f ctrl = (start + end) * 0.5f + normal * static_cast<float>(bend * length * rng.uniform(-1, 1));
  std::vector<cv::Point2f> pts;
  const int n = std::max(8, static_cast<int>(length / 2));
  for (int i = 0; i <= n; ++i) {
    const float t = static_cast<float>(i) / n;
    pts.push_back(start * (1 - t) * (1 - t) + ctrl * 2.f * t * (1 - t) + end * t * t);
  }
  return pts;
}

std::vector<cv::Point2f> jagged_path(Rng& rng, cv::Point2f start, double angle, double length, double step,
                                     double jitter) {
  std::vector<cv::Point2f> pts{start};
  cv::Point2f p = start;
  double a = angle;
  for (double s = 0; s < length; s += step) {
    a += rng.normal(0, jitter);
    a += (angle - a) * 0.25;  // wander, but keep the overall direction
    p += cv::Point2f(static_cast<float>(std::cos(a) * step), static_cast<float>(std::sin(a) * step));
    pts.push_back(p);
  }
  return pts;
}

}  // namespace lriad::demo
