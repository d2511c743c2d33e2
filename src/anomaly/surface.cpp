// Surface-level training anomalies: tapered Bezier scratches, branching cracks with a lit
// rim, shaded pits, and mottled colour stains. Targets follow the local mean, so a defect
// keeps the scene's lighting.
#include <algorithm>
#include <cmath>

#include <opencv2/imgproc.hpp>

#include "internal.h"

namespace lriad::anomaly::detail {
namespace {

cv::Point2f polar(double angle, double len) {
  return {static_cast<float>(std::cos(angle) * len), static_cast<float>(std::sin(angle) * len)};
}

// A smooth random profile along a path (knots every `period` samples, cosine-interpolated).
std::vector<float> profile(Rng& rng, size_t n, double period, double floor) {
  const size_t knots = static_cast<size_t>(n / std::max(period, 1.0)) + 2;
  std::vector<float> k(knots);
  for (auto& v : k) v = static_cast<float>(rng.uniform(floor, 1.0));
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) {
    const double t = i / std::max(period, 1.0);
    const size_t j = static_cast<size_t>(t);
    const float f = static_cast<float>(0.5 - 0.5 * std::cos(M_PI * (t - j)));
    out[i] = k[j] + (k[j + 1] - k[j]) * f;
  }
  return out;
}

cv::Mat shifted(const cv::Mat& m, cv::Point2f by) {
  const cv::Mat t = (cv::Mat_<double>(2, 3) << 1, 0, by.x, 0, 1, by.y);
  cv::Mat out;
  cv::warpAffine(m, out, t, m.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT);
  return out;
}

// One scratch: a cubic Bezier, widest in the middle, intermittent in depth.
cv::Mat scratch_stroke(Rng& rng, const Context& c, cv::Point2f mid, double angle, double len, double width) {
  const cv::Point2f dir = polar(angle, 1.0), nrm(-dir.y, dir.x);
  const float l = static_cast<float>(len);
  const cv::Point2f p0 = mid - dir * (l / 2), p3 = mid + dir * (l / 2);
  const cv::Point2f p1 = p0 + dir * (l / 3) + nrm * static_cast<float>(len * rng.uniform(-0.25, 0.25));
  const cv::Point2f p2 = p0 + dir * (2 * l / 3) + nrm * static_cast<float>(len * rng.uniform(-0.25, 0.25));
  const size_t n = static_cast<size_t>(std::max(12.0, len / (0.7 * c.unit)));
  const double dip = rng.chance(0.5) ? rng.uniform(0.3, 0.8) : 0.0;
  std::vector<float> strength = profile(rng, n + 1, 10.0, 1.0 - dip);
  std::vector<cv::Point2f> path;
  std::vector<float> width_at;
  for (size_t i = 0; i <= n; ++i) {
    const float t = static_cast<float>(i) / n, u = 1 - t;
    path.push_back(p0 * (u * u * u) + p1 * (3 * u * u * t) + p2 * (3 * u * t * t) + p3 * (t * t * t));
    width_at.push_back(static_cast<float>(width * (0.35 + 0.65 * std::sqrt(std::sin(M_PI * t)))));
  }
  return tapered_stroke(c.image.size(), path, width_at, strength);
}

struct Branch {
  cv::Point2f from;
  double angle, length, width;
  int depth;
};

// A crack arm: a jagged walk that keeps its heading, thinning, and spawning thinner branches.
void grow_crack(Rng& rng, const Context& c, Branch b, cv::Mat& core) {
  std::vector<Branch> todo{b};
  const double step = std::max(0.8, 1.2 * c.unit);
  while (!todo.empty()) {
    const Branch cur = todo.back();
    todo.pop_back();
    std::vector<cv::Point2f> path{cur.from};
    std::vector<float> width, strength;
    double a = cur.angle;
    for (double s = 0; s < cur.length; s += step) {
      a += rng.normal(0, 0.45);
      a += (cur.angle - a) * 0.3;
      path.push_back(path.back() + polar(a, step * rng.uniform(0.6, 1.4)));
      width.push_back(static_cast<float>(cur.width * (1.0 - 0.7 * s / cur.length)));
      strength.push_back(static_cast<float>(rng.uniform(0.8, 1.0)));
      if (cur.depth < 2 && rng.chance(0.05))
        todo.push_back({path.back(), a + rng.uniform(0.4, 1.1) * (rng.chance(0.5) ? 1 : -1),
                        (cur.length - s) * rng.uniform(0.3, 0.7), cur.width * 0.65, cur.depth + 1});
    }
    if (path.size() > 1) cv::max(core, tapered_stroke(core.size(), path, width, strength), core);
  }
}

cv::Vec3f hsv(double h, double s, double v) {
  cv::Mat px(1, 1, CV_32FC3, cv::Scalar(h, s, v)), rgb;
  cv::cvtColor(px, rgb, cv::COLOR_HSV2RGB);
  return rgb.at<cv::Vec3f>(0, 0);
}

}  // namespace

cv::Mat paint_scratch(const Context& c, Rng& rng, cv::Mat& out) {
  // 1. One scratch, or a few parallel ones from the same stroke (abrasion).
  const double len = std::min(0.9 * c.side, draw_size(rng, c) * rng.uniform(1.5, 3.0));
  const cv::Point2f mid = draw_center(rng, c, 0.3 * len);
  const double angle = rng.uniform(0, M_PI);
  const double width = rng.uniform(1.0, 3.0) * std::clamp(c.side / 192.0, 0.6, 2.0);
  const int count = rng.chance(0.25) ? rng.uniform_int(2, 3) : 1;
  const cv::Point2f nrm = polar(angle + M_PI / 2, 1.0);
  cv::Mat alpha = cv::Mat::zeros(out.size(), CV_32F);
  for (int i = 0; i < count; ++i) {
    const cv::Point2f off =
        nrm * static_cast<float>(i * rng.uniform(2.0, 4.0) * c.unit) + polar(angle, rng.uniform(-0.15, 0.15) * len);
    cv::max(alpha,
            scratch_stroke(rng, c, mid + off, angle, len * (i ? rng.uniform(0.5, 1.0) : 1.0), width * (i ? 0.7 : 1.0)),
            alpha);
  }
  alpha = on_part(c, util::blur(alpha, 0.35 * c.unit));
  // 2. Lighter (exposed material) or darker (groove) than the local mean; bright surfaces
  //    can only get darker and dark ones lighter.
  const cv::Mat local = util::blur(out, 2.0 * c.unit);
  const cv::Point mp(std::clamp(static_cast<int>(mid.x), 0, out.cols - 1),
                     std::clamp(static_cast<int>(mid.y), 0, out.rows - 1));
  const float lm = luma(local.at<cv::Vec3f>(mp));
  const bool lighter = lm < 0.3f ? true : lm > 0.75f ? false : rng.chance(0.5);
  const double k = std::min(0.95, 1.3 * draw_contrast(rng, c) + 0.1);
  cv::Mat target = lighter ? cv::Mat(local + (cv::Scalar::all(1.0) - local) * k) : cv::Mat(local * (1.0 - k));
  // 3. A lit groove casts a faint shadow on one side.
  cv::Mat shadow = cv::Mat::zeros(out.size(), CV_32F);
  if (lighter && rng.chance(0.5)) {
    shadow = cv::max(shifted(alpha, nrm * static_cast<float>(0.8 * width)) - alpha, 0.0) * 0.6;
    util::blend(out, shadow, cv::Mat(local * (1.0 - 0.5 * k)));
  }
  util::blend(out, alpha, target);
  return cv::max(alpha, shadow);
}

cv::Mat paint_crack(const Context& c, Rng& rng, cv::Mat& out) {
  // 1. Two arms leaving a common origin in roughly opposite directions, each branching.
  const double len = std::min(0.9 * c.side, draw_size(rng, c) * rng.uniform(1.2, 2.2));
  const cv::Point2f mid = draw_center(rng, c, 0.3 * len);
  const double angle = rng.uniform(0, 2 * M_PI);
  const double width = rng.uniform(0.8, 2.0) * std::clamp(c.side / 160.0, 0.6, 2.0);
  cv::Mat core = cv::Mat::zeros(out.size(), CV_32F);
  grow_crack(rng, c, {mid, angle, len * rng.uniform(0.35, 0.65), width, 0}, core);
  grow_crack(rng, c, {mid, angle + M_PI + rng.normal(0, 0.3), len * rng.uniform(0.35, 0.65), width, 0}, core);
  core = on_part(c, core);
  // 2. The lit edge of the fracture: the core pushed towards the light, outside the core.
  const cv::Point2f light = polar(rng.uniform(0, 2 * M_PI), 0.9 * c.unit + 0.3 * width);
  cv::Mat rim = cv::max(util::blur(shifted(core, light), 0.5 * c.unit) - core, 0.0) * rng.uniform(0.4, 0.9);
  rim = on_part(c, rim);
  const cv::Mat local = util::blur(out, 2.0 * c.unit);
  const double k = std::clamp(1.2 * draw_contrast(rng, c) + 0.25, 0.3, 0.92);
  util::blend(out, rim, cv::Mat(local + (cv::Scalar::all(1.0) - local) * rng.uniform(0.15, 0.45)));
  util::blend(out, core, cv::Mat(local * (1.0 - k)));
  return cv::max(core, rim);
}

cv::Mat paint_hole(const Context& c, Rng& rng, cv::Mat& out) {
  // 1. An elliptical pit, lit from a random side: the far inner wall catches the light, the
  //    near wall is in shadow, and a raised lip shades the other way round.
  const double r = 0.5 * draw_size(rng, c) * rng.uniform(0.7, 1.1);
  const double aspect = rng.uniform(0.65, 1.5), phi = rng.uniform(0, M_PI);
  const double rim_w = rng.uniform(0.15, 0.4), rim_amt = rng.uniform(0.15, 0.5);
  const cv::Point2f at = draw_inner_point(rng, c, 1.3 * r);
  const cv::Point2f light = polar(rng.uniform(0, 2 * M_PI), 1.0);
  const double k = std::clamp(0.2 + draw_contrast(rng, c), 0.3, 0.85);
  const double ax = r * std::sqrt(aspect), ay = r / std::sqrt(aspect);
  const double ca = std::cos(phi), sa = std::sin(phi), aa = 1.0 / std::max(1.0, std::min(ax, ay));
  const cv::Mat local = util::blur(out, std::max(1.0, 0.5 * r));
  cv::Mat target = out.clone(), weight = cv::Mat::zeros(out.size(), CV_32F);
  const double reach = std::max(ax, ay) * (1 + rim_w) + 2;
  const cv::Rect box = cv::Rect(cv::Point(static_cast<int>(at.x - reach), static_cast<int>(at.y - reach)),
                                cv::Point(static_cast<int>(at.x + reach) + 2, static_cast<int>(at.y + reach) + 2)) &
                       cv::Rect(0, 0, out.cols, out.rows);
  for (int y = box.y; y < box.br().y; ++y)
    for (int x = box.x; x < box.br().x; ++x) {
      const double dx = x + 0.5 - at.x, dy = y + 0.5 - at.y, dl = std::hypot(dx, dy);
      const double ex = (dx * ca + dy * sa) / ax, ey = (-dx * sa + dy * ca) / ay, d = std::hypot(ex, ey);
      const double ul = dl > 1e-6 ? (dx * light.x + dy * light.y) / dl : 0.0;
      const float inside =
          1.f - util::smoothstep(static_cast<float>(1 - aa), static_cast<float>(1 + aa), static_cast<float>(d));
      const double wall = util::smoothstep(0.45f, 1.f, static_cast<float>(d));
      const double lip = d > 1 && d < 1 + rim_w ? std::sin(M_PI * (d - 1) / rim_w) : 0.0;
      const cv::Vec3f orig = out.at<cv::Vec3f>(y, x);
      const cv::Vec3f base = (local.at<cv::Vec3f>(y, x) * 0.75f + orig * 0.25f) * static_cast<float>(1 - k);
      const cv::Vec3f pit = base * static_cast<float>(1 + wall * (1.4 * std::max(0.0, -ul) - 0.5 * std::max(0.0, ul)));
      const cv::Vec3f rimmed = orig * static_cast<float>(1 + rim_amt * lip * ul);
      target.at<cv::Vec3f>(y, x) = rimmed + (pit - rimmed) * inside;
      weight.at<float>(y, x) = std::max(inside, static_cast<float>(std::min(1.0, 4 * rim_amt * lip)));
    }
  cv::Mat inside_mask = weight > 0.5f;
  add_noise(target, cv::Mat(weight.mul(cv::Mat_<float>(inside_mask) / 255.f)), rng, c.noise_sigma * c.p->renoise,
            c.grey);
  // 2. Objects: nothing off the body (the rim shading included).
  cv::Mat body = c.part ? c.fg_soft : cv::Mat::ones(out.size(), CV_32F);
  util::blend(out, body, target);
  return weight.mul(body);
}

cv::Mat paint_stain(const Context& c, Rng& rng, cv::Mat& out) {
  // 1. A soft lobed blob, mottled inside (uneven soaking), of varied opacity.
  const double r = 0.6 * draw_size(rng, c);
  const cv::Point2f at = draw_center(rng, c, r);
  cv::Mat shape = noisy_blob(rng, out.size(), at, r, rng.uniform(0.5, 1.8), rng.uniform(0, M_PI), rng.uniform(0.4, 0.9),
                             std::max(2.0, r * rng.uniform(0.4, 0.8)), rng.uniform(0.12, 0.35));
  const cv::Mat mottle = perlin_fbm(rng, out.size(), std::max(2.0, 0.25 * r), 3);
  const double opacity = std::clamp(0.25 + draw_contrast(rng, c), 0.3, 0.95);
  cv::Mat alpha = shape.mul(cv::min(cv::max(0.75 + 0.35 * mottle, 0.0), 1.0)) * opacity;
  alpha = on_part(c, alpha);
  // 2. What the liquid does: darken (oil), bleach, shift the hue (dye), or tint (rust).
  const int mode = c.grey ? (rng.chance(0.7) ? 0 : 1) : rng.uniform_int(0, 3);
  const double dark = rng.uniform(0.25, 0.6), bleach = rng.uniform(0.3, 0.7);
  const double turn = rng.uniform(M_PI / 3, M_PI) * (rng.chance(0.5) ? 1 : -1), sat = rng.uniform(1.2, 2.0);
  const double hue = rng.uniform(0, 360);
  const cv::Vec3f chroma_add = hsv(hue, 1.0, 1.0) - cv::Vec3f::all(0.5f);
  const cv::Vec3f tint = hsv(hue, rng.uniform(0.4, 0.9), rng.uniform(0.45, 0.9));
  const cv::Vec3f oil(1.f, 0.95f, 0.85f);
  cv::Mat target(out.size(), CV_32FC3);
  for (int y = 0; y < out.rows; ++y) {
    const cv::Vec3f* o = out.ptr<cv::Vec3f>(y);
    cv::Vec3f* t = target.ptr<cv::Vec3f>(y);
    for (int x = 0; x < out.cols; ++x) {
      const cv::Vec3f v = o[x];
      if (mode == 0) {
        t[x] = v.mul(oil) * static_cast<float>(dark);
      } else if (mode == 1) {
        t[x] = v + (cv::Vec3f::all(1.f) - v) * static_cast<float>(bleach);
      } else if (mode == 2) {  // rotate the chroma in YIQ; grey pixels get a chroma of their own
        const float Y = luma(v);
        float I = 0.596f * v[0] - 0.274f * v[1] - 0.322f * v[2], Q = 0.211f * v[0] - 0.523f * v[1] + 0.312f * v[2];
        const float I2 = static_cast<float>((I * std::cos(turn) - Q * std::sin(turn)) * sat);
        const float Q2 = static_cast<float>((I * std::sin(turn) + Q * std::cos(turn)) * sat);
        t[x] = cv::Vec3f(Y + 0.956f * I2 + 0.621f * Q2, Y - 0.272f * I2 - 0.647f * Q2, Y - 1.106f * I2 + 1.703f * Q2) +
               chroma_add * static_cast<float>(0.25 * std::max(0.0, 0.1 - std::hypot(I, Q)) / 0.1);
      } else {
        t[x] = v.mul(tint);
      }
    }
  }
  util::blend(out, alpha, target);
  return alpha;
}

}  // namespace lriad::anomaly::detail
