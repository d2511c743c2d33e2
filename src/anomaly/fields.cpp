// Fields for the training-anomaly painters: Perlin gradient noise, noise-shaped blobs,
// anti-aliased polygons and tapered strokes, background estimates and re-added sensor noise.
#include <algorithm>
#include <array>
#include <cmath>

#include <opencv2/imgproc.hpp>

#include "internal.h"

namespace lriad::anomaly::detail {
namespace {

constexpr int kSuper = 4;  // supersampling factor of the drawn shapes

// Improved Perlin noise: a shuffled permutation picks one of 256 random unit gradients per
// lattice corner; the corner ramps are blended with the quintic 6t^5 - 15t^4 + 10t^3.
class Perlin {
 public:
  explicit Perlin(Rng& rng) {
    for (int i = 0; i < 256; ++i) perm_[static_cast<size_t>(i)] = static_cast<uint8_t>(i);
    for (int i = 255; i > 0; --i)
      std::swap(perm_[static_cast<size_t>(i)], perm_[static_cast<size_t>(rng.uniform_int(0, i))]);
    for (size_t i = 0; i < 256; ++i) {
      const double a = rng.uniform(0, 2 * M_PI);
      gx_[i] = static_cast<float>(std::cos(a));
      gy_[i] = static_cast<float>(std::sin(a));
    }
  }

  float at(float x, float y) const {
    const float fx0 = std::floor(x), fy0 = std::floor(y);
    const int xi = static_cast<int>(fx0), yi = static_cast<int>(fy0);
    const float fx = x - fx0, fy = y - fy0;
    const float u = fade(fx), v = fade(fy);
    const float n00 = ramp(xi, yi, fx, fy), n10 = ramp(xi + 1, yi, fx - 1, fy);
    const float n01 = ramp(xi, yi + 1, fx, fy - 1), n11 = ramp(xi + 1, yi + 1, fx - 1, fy - 1);
    const float a = n00 + (n10 - n00) * u, b = n01 + (n11 - n01) * u;
    return (a + (b - a) * v) * 1.41421356f;  // gradient noise peaks at +-sqrt(1/2)
  }

 private:
  static float fade(float t) { return t * t * t * (t * (t * 6.f - 15.f) + 10.f); }
  float ramp(int i, int j, float dx, float dy) const {
    const size_t k = perm_[(perm_[static_cast<size_t>(i & 255)] + static_cast<size_t>(j & 255)) & 255];
    return gx_[k] * dx + gy_[k] * dy;
  }
  std::array<uint8_t, 256> perm_{};
  std::array<float, 256> gx_{}, gy_{};
};

}  // namespace

cv::Mat perlin_fbm(Rng& rng, cv::Size size, double cell, int octaves, double gain) {
  Perlin noise(rng);
  // A random lattice offset and a rotation per octave keep the grid from showing.
  struct Octave {
    float freq, amp, ox, oy, ca, sa;
  };
  std::vector<Octave> oct;
  double freq = 1.0 / std::max(cell, 1.0), amp = 1.0, total = 0.0;
  for (int o = 0; o < octaves; ++o) {
    const double a = rng.uniform(0, 2 * M_PI);
    oct.push_back({static_cast<float>(freq), static_cast<float>(amp), static_cast<float>(rng.uniform(0, 256)),
                   static_cast<float>(rng.uniform(0, 256)), static_cast<float>(std::cos(a)),
                   static_cast<float>(std::sin(a))});
    total += amp;
    freq *= 2.0;
    amp *= gain;
  }
  cv::Mat out(size, CV_32F);
  const float norm = static_cast<float>(1.0 / std::max(total, 1e-9));
  for (int y = 0; y < size.height; ++y) {
    float* row = out.ptr<float>(y);
    for (int x = 0; x < size.width; ++x) {
      float s = 0.f;
      for (const auto& o : oct) {
        const float u = (o.ca * x - o.sa * y) * o.freq + o.ox, v = (o.sa * x + o.ca * y) * o.freq + o.oy;
        s += o.amp * noise.at(u, v);
      }
      row[x] = s * norm;
    }
  }
  return out;
}

cv::Mat noisy_blob(Rng& rng, cv::Size size, cv::Point2f center, double r, double aspect, double angle, double amp,
                   double cell, double soft) {
  // v = 1 - d^2 + amp*n <= 1 - d^2 + amp, so nothing survives beyond d^2 = 0.5 + soft + amp.
  const double reach = r * std::sqrt(0.5 + soft + amp) * std::max(aspect, 1.0 / aspect) + 2;
  const cv::Rect roi =
      cv::Rect(cv::Point(static_cast<int>(center.x - reach), static_cast<int>(center.y - reach)),
               cv::Point(static_cast<int>(center.x + reach) + 2, static_cast<int>(center.y + reach) + 2)) &
      cv::Rect(cv::Point(0, 0), size);
  cv::Mat out = cv::Mat::zeros(size, CV_32F);
  if (roi.empty()) return out;
  const cv::Mat field = perlin_fbm(rng, roi.size(), cell, 3);
  const double ca = std::cos(angle), sa = std::sin(angle), ax = r * std::sqrt(aspect), ay = r / std::sqrt(aspect);
  for (int y = 0; y < roi.height; ++y) {
    const float* n = field.ptr<float>(y);
    float* o = out.ptr<float>(y + roi.y) + roi.x;
    for (int x = 0; x < roi.width; ++x) {
      const double dx = x + roi.x + 0.5 - center.x, dy = y + roi.y + 0.5 - center.y;
      const double ex = (dx * ca + dy * sa) / ax, ey = (-dx * sa + dy * ca) / ay;
      const double v = 1.0 - (ex * ex + ey * ey) + amp * n[x];
      o[x] = util::smoothstep(static_cast<float>(0.5 - soft), static_cast<float>(0.5 + soft), static_cast<float>(v));
    }
  }
  return out;
}

cv::Mat polygon_alpha(cv::Size size, const std::vector<cv::Point2f>& poly) {
  cv::Mat big = cv::Mat::zeros(size * kSuper, CV_8U);
  std::vector<cv::Point> pts;
  for (const auto& q : poly)  // 2 fractional bits on top of the supersampling
    pts.emplace_back(static_cast<int>(std::lround(q.x * kSuper * 4)), static_cast<int>(std::lround(q.y * kSuper * 4)));
  cv::fillPoly(big, std::vector<std::vector<cv::Point>>{pts}, cv::Scalar(255), cv::LINE_8, 2);
  cv::Mat small;
  cv::resize(big, small, size, 0, 0, cv::INTER_AREA);
  small.convertTo(small, CV_32F, 1.0 / 255);
  return small;
}

cv::Mat tapered_stroke(cv::Size size, const std::vector<cv::Point2f>& path, const std::vector<float>& width,
                       const std::vector<float>& strength) {
  cv::Mat big = cv::Mat::zeros(size * kSuper, CV_8U);
  auto fixed = [](cv::Point2f q) {
    return cv::Point(static_cast<int>(std::lround(q.x * kSuper * 4)), static_cast<int>(std::lround(q.y * kSuper * 4)));
  };
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    const int thick = std::max(1, static_cast<int>(std::lround(width[i] * kSuper)));
    const double level = 255.0 * std::clamp(strength[i], 0.f, 1.f);
    cv::line(big, fixed(path[i]), fixed(path[i + 1]), cv::Scalar(level), thick, cv::LINE_8, 2);
  }
  cv::Mat small;
  cv::resize(big, small, size, 0, 0, cv::INTER_AREA);
  small.convertTo(small, CV_32F, 1.0 / 255);
  return small;
}

cv::Mat box_smooth(const cv::Mat& m, int radius) {
  if (radius < 1) return m.clone();
  const cv::Size k(2 * radius + 1, 2 * radius + 1);
  cv::Mat a, b;
  cv::blur(m, a, k, cv::Point(-1, -1), cv::BORDER_REFLECT101);
  cv::blur(a, b, k, cv::Point(-1, -1), cv::BORDER_REFLECT101);
  return b;
}

cv::Mat background_fill(const Context& c, double worn_sigma) {
  const int radius = std::max(1, static_cast<int>(worn_sigma));
  if (!c.part) return box_smooth(c.image, radius);  // the texture, worn smooth
  // Parts: normalised convolution of the visible background, so a lighting gradient under
  // the part carries on; deep inside large parts fall back to the border median.
  cv::Mat bg_mask;
  cv::dilate(c.fg, bg_mask, cv::Mat(), cv::Point(-1, -1), 2);
  bg_mask = 1 - bg_mask;
  cv::Mat w;
  bg_mask.convertTo(w, CV_32F);
  const int r = std::max(2, c.side / 8);
  cv::Mat num = box_smooth(util::mul3(c.image, w), r), den = box_smooth(w, r);
  cv::Mat out(c.image.size(), CV_32FC3);
  for (int y = 0; y < out.rows; ++y) {
    const cv::Vec3f* n = num.ptr<cv::Vec3f>(y);
    const float* d = den.ptr<float>(y);
    cv::Vec3f* o = out.ptr<cv::Vec3f>(y);
    for (int x = 0; x < out.cols; ++x) {
      const float t = util::smoothstep(0.f, 0.1f, d[x]);
      const cv::Vec3f local = d[x] > 1e-4f ? n[x] / d[x] : c.border_median;
      o[x] = c.border_median + (local - c.border_median) * t;
    }
  }
  return out;
}

void add_noise(cv::Mat& image, const cv::Mat& alpha, Rng& rng, double sigma, bool grey) {
  if (sigma <= 0) return;
  for (int y = 0; y < image.rows; ++y) {
    cv::Vec3f* p = image.ptr<cv::Vec3f>(y);
    const float* a = alpha.ptr<float>(y);
    for (int x = 0; x < image.cols; ++x) {
      if (a[x] <= 0.f) continue;
      const float s = static_cast<float>(sigma) * a[x];
      if (grey) {
        const float n = static_cast<float>(rng.normal()) * s;
        p[x] += cv::Vec3f(n, n, n);
      } else {
        for (int ch = 0; ch < 3; ++ch) p[x][ch] += static_cast<float>(rng.normal()) * s;
      }
    }
  }
}

float luma(const cv::Vec3f& v) { return 0.299f * v[0] + 0.587f * v[1] + 0.114f * v[2]; }

}  // namespace lriad::anomaly::detail
